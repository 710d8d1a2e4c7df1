import Foundation

/// A value passed into or out of a Jinja template: the JSON-like data chat templates read (messages,
/// tools, flags). Dictionaries keep their insertion order, as Python's do, because `tojson` and
/// `items()` expose it.
public indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case object(JinjaObject)
}

/// An insertion-ordered string-keyed dictionary. Equality ignores order, as Python's `dict` does.
public struct JinjaObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// Setting a new key appends it; setting an existing key keeps its position; `nil` removes it.
    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Key-value pairs in insertion order.
    public var pairs: [(key: String, value: JinjaValue)] { keys.map { ($0, storage[$0]!) } }

    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool { lhs.storage == rhs.storage }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .none }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        self = .object(JinjaObject(elements.map { ($0.0, $0.1) }))
    }
}

extension JinjaValue {
    /// Converts `JSONSerialization` output (or any nesting of Swift strings, numbers, booleans, arrays,
    /// dictionaries and `NSNull`). Dictionary keys come out sorted because Foundation's dictionaries
    /// have no order; use `parseJSON(_:)` when the order matters (it does for `tojson` and `items()`).
    public init(jsonObject: Any) {
        switch jsonObject {
        case is NSNull: self = .none
        case let value as JinjaValue: self = value
        case let value as String: self = .string(value)
        case let value as Bool where !(jsonObject is NSNumber): self = .bool(value)
        case let value as NSNumber: self = JinjaValue(number: value)
        case let value as Int: self = .int(value)
        case let value as Double: self = .double(value)
        case let value as [Any]: self = .array(value.map { JinjaValue(jsonObject: $0) })
        case let value as [String: Any]:
            self = .object(JinjaObject(value.keys.sorted().map { ($0, JinjaValue(jsonObject: value[$0]!)) }))
        case let value as NSDictionary:
            var object = JinjaObject()
            for key in value.allKeys.map({ "\($0)" }).sorted() {
                object[key] = JinjaValue(jsonObject: value[key] as Any)
            }
            self = .object(object)
        default: self = .string("\(jsonObject)")
        }
    }

    private init(number: NSNumber) {
        let type = String(cString: number.objCType)
        if type == "c" || type == "B" {
            self = .bool(number.boolValue)
        } else if type == "d" || type == "f" {
            self = .double(number.doubleValue)
        } else if type == "Q", number.uint64Value > UInt64(Int.max) {
            self = .double(number.doubleValue)
        } else {
            self = .int(number.intValue)
        }
    }

    /// Parses JSON keeping the order of object keys (integers stay `.int`, numbers with a fraction or
    /// exponent become `.double`, as Python's `json.loads` does).
    public static func parseJSON(_ data: Data) throws -> JinjaValue {
        var parser = OrderedJSONParser(bytes: [UInt8](data))
        return try parser.parseDocument()
    }

    /// Parses JSON text keeping the order of object keys.
    public static func parseJSON(_ text: String) throws -> JinjaValue {
        try parseJSON(Data(text.utf8))
    }
}

/// A strict RFC 8259 parser whose objects keep their key order.
private struct OrderedJSONParser {
    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> JinjaValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if position != bytes.count { throw fail("unexpected trailing characters") }
        return value
    }

    func fail(_ message: String) -> JinjaError {
        JinjaError(.value, "invalid JSON at byte \(position): \(message)")
    }

    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func expect(_ literal: String) throws {
        for byte in literal.utf8 {
            guard position < bytes.count, bytes[position] == byte else { throw fail("expected \(literal)") }
            position += 1
        }
    }

    mutating func parseValue(depth: Int) throws -> JinjaValue {
        guard depth < 512 else { throw fail("nesting too deep") }
        guard position < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var object = JinjaObject()
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a string key")
                }
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                object[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            position += 1
            var array: [JinjaValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(array)
            }
            while true {
                skipWhitespace()
                array.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(array) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .none
        default:
            return try parseNumber()
        }
    }

    mutating func parseNumber() throws -> JinjaValue {
        let start = position
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
        if position == digitsStart { throw fail("invalid value") }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            let fractionStart = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            if position == fractionStart { throw fail("invalid number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let exponentStart = position
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            if position == exponentStart { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let value = Int(text) { return .int(value) }
        guard let value = Double(text) else { throw fail("invalid number") }
        return .double(value)
    }

    mutating func parseHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        guard let value = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16)
        else { throw fail("invalid \\u escape") }
        position += 4
        return value
    }

    mutating func parseString() throws -> String {
        position += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flush(_ end: Int) {
            scalars.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars)
        }
        while true {
            guard position < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                flush(position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail("control character in string") }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            flush(position)
            position += 1
            guard position < bytes.count else { throw fail("unterminated escape") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800..<0xDC00).contains(code), position + 6 <= bytes.count,
                    bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                {
                    let save = position
                    position += 2
                    let low = try parseHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        position = save
                    }
                }
                // Lone surrogates cannot live in a Swift string; Python keeps them, we substitute U+FFFD.
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: throw fail("invalid escape")
            }
            runStart = position
        }
    }
}

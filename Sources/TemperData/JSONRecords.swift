import Foundation
import TemperTokenizers

/// One top-level JSON value of a dataset file with the line it starts on, or the parse failure found
/// there.
struct JSONRecord {
    var line: Int
    var value: Result<JinjaValue, JSONParseFailure>
}

struct JSONParseFailure: Error, Equatable {
    var message: String
    var line: Int
    var column: Int
}

/// Splits dataset files into records. A file whose first non-blank character is `[` is one JSON
/// array (each element is a record, its line is where the element starts); anything else is JSON
/// Lines (one value per non-blank line). The format is chosen from the content, not the extension,
/// so a `.json` file holding JSON Lines reads as well.
///
/// The parser is our own (RFC 8259, object key order kept) so that errors carry a line and column
/// and read the same on every platform.
enum JSONRecords {
    /// The bytes of a dataset file; a missing or unreadable one throws `DataError.unreadableFile`.
    static func contents(of url: URL) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DataError.unreadableFile(
                path: url.path,
                reason: FileManager.default.fileExists(atPath: url.path) ? "permission denied" : "no such file")
        }
        return [UInt8](data)
    }

    /// Each record that is an object, through `make`; malformed JSON, records that are not objects
    /// and what `make` refuses become issues at the record's `path:line`.
    static func objects<Item>(
        _ bytes: [UInt8], path: String, _ make: (JinjaObject, SourceLocation) -> Result<Item, DataIssue.Reason>
    ) -> (items: [Item], issues: [DataIssue]) {
        var items: [Item] = [], issues: [DataIssue] = []
        for record in parse(bytes) {
            let location = SourceLocation(file: path, line: record.line)
            switch record.value {
            case .failure(let failure):
                issues.append(DataIssue(location, .malformedJSON(message: failure.message, line: failure.line, column: failure.column)))
            case .success(.object(let object)):
                switch make(object, location) {
                case .success(let item): items.append(item)
                case .failure(let reason): issues.append(DataIssue(location, reason))
                }
            case .success(let value):
                issues.append(DataIssue(location, .notAnObject(found: DatasetReader.typeName(value))))
            }
        }
        return (items, issues)
    }

    static func parse(_ bytes: [UInt8]) -> [JSONRecord] {
        // A UTF-8 byte order mark (Windows editors write one) is not JSON; skip it.
        let bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        var scanner = JSONScanner(bytes: bytes)
        scanner.skipWhitespace()
        if scanner.peek == UInt8(ascii: "[") { return parseArray(&scanner) }
        return parseLines(bytes)
    }

    private static func parseLines(_ bytes: [UInt8]) -> [JSONRecord] {
        var records: [JSONRecord] = []
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let line = Array(bytes[start..<end])
            start = end + 1
            if line.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) {
                if end >= bytes.count { break }
                continue
            }
            var scanner = JSONScanner(bytes: line, line: lineNumber)
            do throws(JSONParseFailure) {
                records.append(JSONRecord(line: lineNumber, value: .success(try scanner.parseDocument())))
            } catch {
                records.append(JSONRecord(line: lineNumber, value: .failure(error)))
            }
            if end >= bytes.count { break }
        }
        return records
    }

    private static func parseArray(_ scanner: inout JSONScanner) -> [JSONRecord] {
        var records: [JSONRecord] = []
        scanner.advance()  // [
        do throws(JSONParseFailure) {
            scanner.skipWhitespace()
            if scanner.peek == UInt8(ascii: "]") {
                scanner.advance()
            } else {
                while true {
                    scanner.skipWhitespace()
                    let line = scanner.line
                    records.append(JSONRecord(line: line, value: .success(try scanner.parseValue(depth: 1))))
                    scanner.skipWhitespace()
                    guard let byte = scanner.peek else { throw scanner.fail("unterminated array") }
                    scanner.advance()
                    if byte == UInt8(ascii: ",") { continue }
                    if byte == UInt8(ascii: "]") { break }
                    scanner.retreat()
                    throw scanner.fail("expected ',' or ']' after an array element")
                }
            }
            scanner.skipWhitespace()
            if scanner.peek != nil { throw scanner.fail("unexpected characters after the array") }
        } catch {
            // A broken element hides where the next one starts: report it and stop reading the file.
            records.append(JSONRecord(line: error.line, value: .failure(error)))
        }
        return records
    }
}

/// A byte scanner that tracks the line and column of its position.
struct JSONScanner {
    let bytes: [UInt8]
    private(set) var position = 0
    private(set) var line: Int
    private var lineStart = 0

    init(bytes: [UInt8], line: Int = 1) {
        self.bytes = bytes
        self.line = line
    }

    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func advance() {
        if bytes[position] == UInt8(ascii: "\n") {
            line += 1
            lineStart = position + 1
        }
        position += 1
    }

    mutating func retreat() { position -= 1 }

    /// The 1-based column in characters (UTF-8 continuation bytes do not count).
    var column: Int {
        bytes[lineStart..<min(position, bytes.count)].reduce(1) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    func fail(_ message: String) -> JSONParseFailure {
        JSONParseFailure(message: message, line: line, column: column)
    }

    mutating func skipWhitespace() {
        while let byte = peek, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { advance() }
    }

    mutating func parseDocument() throws(JSONParseFailure) -> JinjaValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if peek != nil { throw fail("unexpected characters after the value") }
        return value
    }

    mutating func expect(_ literal: String) throws(JSONParseFailure) {
        for byte in literal.utf8 {
            guard peek == byte else { throw fail("invalid literal (expected '\(literal)')") }
            advance()
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseFailure) -> JinjaValue {
        guard depth < 256 else { throw fail("nesting deeper than 256 levels") }
        guard let byte = peek else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            advance()
            var object = JinjaObject()
            skipWhitespace()
            if peek == UInt8(ascii: "}") {
                advance()
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                advance()
                skipWhitespace()
                object[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek else { throw fail("unterminated object") }
                if next == UInt8(ascii: ",") { advance(); continue }
                if next == UInt8(ascii: "}") { advance(); return .object(object) }
                throw fail("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            advance()
            var array: [JinjaValue] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                advance()
                return .array(array)
            }
            while true {
                skipWhitespace()
                array.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard let next = peek else { throw fail("unterminated array") }
                if next == UInt8(ascii: ",") { advance(); continue }
                if next == UInt8(ascii: "]") { advance(); return .array(array) }
                throw fail("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .none
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw fail("unexpected character '\(Character(Unicode.Scalar(byte)))'")
        }
    }

    private mutating func digits() -> Int {
        var count = 0
        while let byte = peek, (0x30...0x39).contains(byte) { advance(); count += 1 }
        return count
    }

    mutating func parseNumber() throws(JSONParseFailure) -> JinjaValue {
        let start = position
        var isInteger = true
        if peek == UInt8(ascii: "-") { advance() }
        if digits() == 0 { throw fail("invalid number") }
        if peek == UInt8(ascii: ".") {
            isInteger = false
            advance()
            if digits() == 0 { throw fail("invalid number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            advance()
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { advance() }
            if digits() == 0 { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let value = Int(text) { return .int(value) }
        guard let value = Double(text) else { throw fail("invalid number") }
        return .double(value)
    }

    private mutating func hex4() throws(JSONParseFailure) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek, let digit = UInt32(String(Unicode.Scalar(byte)), radix: 16) else {
                throw fail("invalid \\u escape")
            }
            value = value * 16 + digit
            advance()
        }
        return value
    }

    mutating func parseString() throws(JSONParseFailure) -> String {
        advance()  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek else { throw fail("unterminated string") }
            if byte == UInt8(ascii: "\"") {
                advance()
                return String(decoding: utf8, as: UTF8.self)
            }
            if byte < 0x20 { throw fail("unescaped control character in a string") }
            advance()
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                continue
            }
            guard let escape = peek else { throw fail("unterminated string") }
            advance()
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A UTF-16 surrogate pair spelled as two escapes.
                    guard peek == UInt8(ascii: "\\") else { throw fail("unpaired surrogate in \\u escape") }
                    advance()
                    guard peek == UInt8(ascii: "u") else { throw fail("unpaired surrogate in \\u escape") }
                    advance()
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                retreat()
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
            }
        }
    }
}

// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=…, separators=…,
// sort_keys=False)`, reproduced byte for byte (Python's separators, indentation, escapes and
// float repr; dicts in insertion order).

struct JinjaJSONEncoder {
    var ensureASCII = false
    /// nil: everything on one line; otherwise the string repeated per nesting level.
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    /// Builds the encoder from the filter's arguments, as Python binds them to
    /// `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    init(args: [Value], kwargs: [(String, Value)]) throws {
        let names = ["ensure_ascii", "indent", "separators", "sort_keys"]
        var bound: [String: Value] = [:]
        guard args.count <= names.count else {
            throw JinjaError(.type, "tojson() takes from 1 to 5 positional arguments but \(args.count + 1) were given")
        }
        for (name, value) in zip(names, args) { bound[name] = value }
        for (name, value) in kwargs {
            guard names.contains(name) else {
                throw JinjaError(.type, "tojson() got an unexpected keyword argument '\(name)'")
            }
            if bound[name] != nil { throw JinjaError(.type, "tojson() got multiple values for argument '\(name)'") }
            bound[name] = value
        }
        ensureASCII = bound["ensure_ascii"]?.isTruthy ?? false
        sortKeys = bound["sort_keys"]?.isTruthy ?? false
        switch bound["indent"] {
        case nil, .none?: indent = nil
        case .string(let s)?: indent = s
        case let value?:
            guard let count = value.integer else {
                throw JinjaError(.type, "can't multiply sequence by non-int of type '\(value.pythonTypeName)'")
            }
            indent = String(repeating: " ", count: max(0, count))
        }
        if indent != nil { itemSeparator = "," }
        switch bound["separators"] {
        case nil, .none?: break
        case .list(let pair)?, .tuple(let pair)?:
            guard pair.count == 2, case .string(let item) = pair[0], case .string(let key) = pair[1] else {
                throw JinjaError(.value, "separators must be a pair of strings")
            }
            itemSeparator = item
            keySeparator = key
        case let value?:
            throw JinjaError(.type, "cannot unpack non-iterable \(value.pythonTypeName) object")
        }
    }

    func encode(_ value: Value) throws -> String {
        var out = ""
        try encode(value, level: 0, into: &out)
        return out
    }

    private func encode(_ value: Value, level: Int, into out: inout String) throws {
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += pyFloatRepr(d)
            }
        case .string(let s), .markup(let s): appendString(s, into: &out)
        case .list(let items), .tuple(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "["
            let newline = indent.map { "\n" + String(repeating: $0, count: level + 1) } ?? ""
            out += newline
            for (index, item) in items.enumerated() {
                if index > 0 { out += itemSeparator + newline }
                try encode(item, level: level + 1, into: &out)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "]"
        case .dict(let dict):
            if dict.count == 0 {
                out += "{}"
                return
            }
            out += "{"
            let newline = indent.map { "\n" + String(repeating: $0, count: level + 1) } ?? ""
            out += newline
            var pairs = try dict.pairs.map { (try jsonKey($0.0), $0.1) }
            if sortKeys { pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } }
            for (index, (key, item)) in pairs.enumerated() {
                if index > 0 { out += itemSeparator + newline }
                appendString(key, into: &out)
                out += keySeparator
                try encode(item, level: level + 1, into: &out)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "}"
        default:
            throw JinjaError(.type, "Object of type \(value.pythonTypeName) is not JSON serializable")
        }
    }

    /// json.dumps turns non-string keys into strings: 1 -> "1", True -> "true", None -> "null".
    private func jsonKey(_ key: Value) throws -> String {
        switch key {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? pyFloatRepr(d) : (d.isNaN ? "NaN" : (d < 0 ? "-Infinity" : "Infinity"))
        default: throw JinjaError(.type, "keys must be str, int, float, bool or None, not \(key.pythonTypeName)")
        }
    }

    private func appendString(_ string: String, into out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let v = scalar.value - 0x10000
                        out += hex4(0xD800 | (v >> 10)) + hex4(0xDC00 | (v & 0x3FF))
                    } else {
                        out += hex4(scalar.value)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

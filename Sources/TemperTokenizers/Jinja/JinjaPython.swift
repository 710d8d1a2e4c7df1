import Foundation

// Python semantics the output depends on: str() and repr() of values, float formatting, truthiness,
// ==, ordering, arithmetic and membership, with Python's error messages.

typealias Value = JinjaRuntimeValue

/// Python's `repr(float)`: the shortest round-tripping digits, positional for 1e-4 <= |x| < 1e16,
/// otherwise scientific with a signed two-digit exponent.
func pyFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description gives the same shortest digits; only the layout differs.
    var text = "\(value.magnitude)"
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...])!
        text = String(text[..<e])
    }
    var digits = text
    var pointPosition = digits.count
    if let dot = digits.firstIndex(of: ".") {
        pointPosition = digits.distance(from: digits.startIndex, to: dot)
        digits.remove(at: dot)
    }
    // Normalize: digits without leading zeros, decimal exponent of the first digit.
    var leading = 0
    for character in digits {
        if character == "0" { leading += 1 } else { break }
    }
    digits.removeFirst(leading)
    while digits.count > 1, digits.hasSuffix("0") { digits.removeLast() }
    let decimalExponent = pointPosition - leading - 1 + exponent
    let sign = value < 0 ? "-" : ""
    if decimalExponent >= 16 || decimalExponent < -4 {
        var mantissa = String(digits.prefix(1))
        if digits.count > 1 { mantissa += "." + digits.dropFirst() }
        let exponentText = String(format: "%02d", abs(decimalExponent))
        return "\(sign)\(mantissa)e\(decimalExponent < 0 ? "-" : "+")\(exponentText)"
    }
    if decimalExponent < 0 {
        return sign + "0." + String(repeating: "0", count: -decimalExponent - 1) + digits
    }
    if digits.count <= decimalExponent + 1 {
        return sign + digits + String(repeating: "0", count: decimalExponent + 1 - digits.count) + ".0"
    }
    let split = digits.index(digits.startIndex, offsetBy: decimalExponent + 1)
    return sign + digits[..<split] + "." + digits[split...]
}

/// Python's `str.isprintable()` for one character (what `repr` leaves unescaped).
private func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
    if scalar == " " { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
        .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Python's `repr(str)`.
func pyRepr(_ string: String) -> String {
    let quote: Unicode.Scalar = string.contains("'") && !string.contains("\"") ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case quote: out.append("\\"); out.append(quote)
        default:
            if scalar.value < 0x7F && scalar.value >= 0x20 || scalar.value >= 0x7F && isPrintable(scalar) {
                out.append(scalar)
            } else if scalar.value < 0x100 {
                out.append(contentsOf: String(format: "\\x%02x", scalar.value).unicodeScalars)
            } else if scalar.value < 0x10000 {
                out.append(contentsOf: String(format: "\\u%04x", scalar.value).unicodeScalars)
            } else {
                out.append(contentsOf: String(format: "\\U%08x", scalar.value).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

extension JinjaRuntimeValue {
    /// Python's `str(x)` as jinja2 prints `{{ x }}` (Undefined prints as "").
    var pyStr: String {
        switch self {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return pyRepr
        }
    }

    /// Python's `repr(x)`.
    var pyRepr: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pyFloatRepr(d)
        case .string(let s): return TemperTokenizers.pyRepr(s)
        case .list(let items): return "[" + items.map(\.pyRepr).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].pyRepr + ",)" }
            return "(" + items.map(\.pyRepr).joined(separator: ", ") + ")"
        case .dict(let dict):
            return "{" + dict.pairs.map { $0.0.pyRepr + ": " + $0.1.pyRepr }.joined(separator: ", ") + "}"
        case .namespace(let namespace):
            return "<Namespace " + Value.dict(namespace.attributes).pyRepr + ">"
        case .loop(let loop): return "<LoopContext \(loop.index0 + 1)/\(loop.items.count)>"
        case .callable(.macro(let macro)): return "<Macro '\(macro.name)'>"
        case .callable(.global(let name)): return "<function \(name)>"
        case .callable(.method(let receiver, let name)):
            return "<built-in method \(name) of \(receiver.pythonTypeName) object>"
        case .iterator(let iterator): return "<\(iterator.typeName) object>"
        case .markup(let s): return "Markup(" + TemperTokenizers.pyRepr(s) + ")"
        }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .dict(let dict): return dict.count > 0
        case .namespace, .loop, .callable, .iterator: return true
        }
    }

    /// The value as a Python number (bool is an int), or nil.
    var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    var string: String? {
        switch self {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }
}

/// Python's `==`.
func pyEqual(_ a: Value, _ b: Value) -> Bool {
    switch (a.plain, b.plain) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy(pyEqual)
    case (.dict(let x), .dict(let y)):
        return x.count == y.count && x.pairs.allSatisfy { key, value in y[key: key].map { pyEqual(value, $0) } ?? false }
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.loop(let x), .loop(let y)): return x === y
    case (.iterator(let x), .iterator(let y)): return x === y
    default:
        if let x = a.integer, let y = b.integer { return x == y }
        if let x = a.number, let y = b.number { return x == y }
        return false
    }
}

/// Python's `<` (and friends through `op`), raising TypeError for unorderable types.
func pyLess(_ a: Value, _ b: Value, op: String = "<") throws -> Bool {
    let (a, b) = (a.plain, b.plain)
    switch (a, b) {
    case (.undefined(let u), _), (_, .undefined(let u)): throw u.error()
    case (.string(let x), .string(let y)):
        return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !pyEqual(p, q) { return try pyLess(p, q) }
        return x.count < y.count
    default:
        if let x = a.integer, let y = b.integer { return x < y }
        if let x = a.number, let y = b.number { return x < y }
        throw JinjaError(
            .type, "'\(op)' not supported between instances of '\(a.pythonTypeName)' and '\(b.pythonTypeName)'")
    }
}

func pyCompare(_ op: JinjaCompareOperator, _ a: Value, _ b: Value) throws -> Bool {
    switch op {
    case .equal: return pyEqual(a, b)
    case .notEqual: return !pyEqual(a, b)
    case .less: return try pyLess(a, b, op: "<")
    case .greater: return try pyLess(b, a, op: ">")
    case .lessEqual: return try pyLess(a, b, op: "<=") || pyEqual(a, b)
    case .greaterEqual: return try pyLess(b, a, op: ">=") || pyEqual(a, b)
    case .contains: return try pyContains(b, a)
    case .notContains: return try !pyContains(b, a)
    }
}

/// Python's `item in container`.
func pyContains(_ container: Value, _ item: Value) throws -> Bool {
    let (container, item) = (container.plain, item.plain)
    switch container {
    case .string(let s):
        guard case .string(let needle) = item else {
            if case .undefined(let u) = item { throw u.error() }
            throw JinjaError(.type, "'in <string>' requires string as left operand, not \(item.pythonTypeName)")
        }
        return needle.isEmpty || s.unicodeScalars.firstRange(of: needle.unicodeScalars) != nil
    case .list(let items), .tuple(let items): return items.contains { pyEqual($0, item) }
    case .dict(let dict):
        return dict[key: item] != nil
    case .namespace(let namespace):
        guard case .string(let key) = item else { return false }
        return namespace.attributes[key] != nil
    case .undefined: return false
    case .iterator(let iterator):
        // Consumes up to and including the match, like Python.
        while !iterator.remaining.isEmpty {
            if pyEqual(iterator.remaining.removeFirst(), item) { return true }
        }
        return false
    default:
        throw JinjaError(.type, "argument of type '\(container.pythonTypeName)' is not iterable")
    }
}

/// Python's `iter(x)` materialized; dicts iterate over keys, strings over characters.
func pyIterate(_ value: Value) throws -> [Value] {
    switch value.plain {
    case .undefined: return []
    case .list(let items), .tuple(let items): return items
    case .dict(let dict): return dict.keys
    case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
    case .iterator(let iterator): return iterator.drain()
    case .namespace, .markup: throw JinjaError(.type, "'TemplateNamespace' object is not iterable")
    default: throw JinjaError(.type, "'\(value.pythonTypeName)' object is not iterable")
    }
}

/// Python's `len(x)`.
func pyLength(_ value: Value) throws -> Int {
    switch value.plain {
    case .undefined: return 0
    case .string(let s): return s.unicodeScalars.count
    case .list(let items), .tuple(let items): return items.count
    case .dict(let dict): return dict.count
    default: throw JinjaError(.type, "object of type '\(value.pythonTypeName)' has no len()")
    }
}

private func floorDivide(_ a: Int, _ b: Int) -> Int {
    let quotient = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
}

private func floorModulo(_ a: Int, _ b: Int) -> Int {
    let remainder = a % b
    return remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder
}

private func floatModulo(_ a: Double, _ b: Double) -> Double {
    let remainder = fmod(a, b)
    if remainder != 0 && (remainder < 0) != (b < 0) { return remainder + b }
    return remainder == 0 ? (b < 0 ? -0.0 : 0.0) : remainder
}

/// Python's binary arithmetic (`+ - * / // % **`).
func pyArithmetic(_ op: JinjaBinaryOperator, _ a: Value, _ b: Value) throws -> Value {
    if case .undefined(let u) = a { throw u.error() }
    if case .undefined(let u) = b { throw u.error() }
    // Markup + str and str + Markup escape the plain operand (markupsafe's __add__/__radd__).
    switch (op, a, b) {
    case (.add, .markup(let x), .markup(let y)): return .markup(x + y)
    case (.add, .markup(let x), .string(let y)): return .markup(x + htmlEscape(y))
    case (.add, .string(let x), .markup(let y)): return .markup(htmlEscape(x) + y)
    default: break
    }
    let (a, b) = (a.plain, b.plain)
    func unsupported() -> JinjaError {
        JinjaError(
            .type, "unsupported operand type(s) for \(op.rawValue): '\(a.pythonTypeName)' and '\(b.pythonTypeName)'")
    }
    switch (op, a, b) {
    case (.add, .string(let x), .string(let y)): return .string(x + y)
    case (.add, .string, _): throw JinjaError(.type, "can only concatenate str (not \"\(b.pythonTypeName)\") to str")
    case (.add, .list(let x), .list(let y)): return .list(x + y)
    case (.add, .list, _): throw JinjaError(.type, "can only concatenate list (not \"\(b.pythonTypeName)\") to list")
    case (.add, .tuple(let x), .tuple(let y)): return .tuple(x + y)
    case (.add, .tuple, _):
        throw JinjaError(.type, "can only concatenate tuple (not \"\(b.pythonTypeName)\") to tuple")
    case (.multiply, .string(let s), _), (.multiply, _, .string(let s)):
        guard let count = (a.string == nil ? a : b).integer else {
            throw JinjaError(.type, "can't multiply sequence by non-int of type '\((a.string == nil ? a : b).pythonTypeName)'")
        }
        return .string(String(repeating: s, count: max(0, count)))
    case (.multiply, .list(let items), _), (.multiply, _, .list(let items)):
        let other = { if case .list = a { return b } else { return a } }()
        guard let count = other.integer else {
            throw JinjaError(.type, "can't multiply sequence by non-int of type '\(other.pythonTypeName)'")
        }
        return .list(Array([[Value]](repeating: items, count: max(0, count)).joined()))
    case (.modulo, .string(let format), _):
        return .string(try pyPercentFormat(format, b))
    default: break
    }
    if let x = a.integer, let y = b.integer {
        switch op {
        case .add: return .int(x &+ y)
        case .subtract: return .int(x &- y)
        case .multiply: return .int(x &* y)
        case .divide:
            if y == 0 { throw JinjaError(.zeroDivision, "division by zero") }
            return .double(Double(x) / Double(y))
        case .floorDivide:
            if y == 0 { throw JinjaError(.zeroDivision, "integer division or modulo by zero") }
            return .int(floorDivide(x, y))
        case .modulo:
            if y == 0 { throw JinjaError(.zeroDivision, "integer modulo by zero") }
            return .int(floorModulo(x, y))
        case .power:
            if y < 0 { return .double(pow(Double(x), Double(y))) }
            var result = 1
            for _ in 0..<y { result = result &* x }
            return .int(result)
        default: throw unsupported()
        }
    }
    if let x = a.number, let y = b.number {
        switch op {
        case .add: return .double(x + y)
        case .subtract: return .double(x - y)
        case .multiply: return .double(x * y)
        case .divide:
            if y == 0 { throw JinjaError(.zeroDivision, "float division by zero") }
            return .double(x / y)
        case .floorDivide:
            if y == 0 { throw JinjaError(.zeroDivision, "float floor division by zero") }
            return .double(((x - floatModulo(x, y)) / y).rounded())
        case .modulo:
            if y == 0 { throw JinjaError(.zeroDivision, "float modulo") }
            return .double(floatModulo(x, y))
        case .power: return .double(pow(x, y))
        default: throw unsupported()
        }
    }
    throw unsupported()
}

/// markupsafe's `escape` for a plain string.
func htmlEscape(_ s: String) -> String {
    var out = ""
    for character in s.unicodeScalars {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "'": out += "&#39;"
        case "\"": out += "&#34;"
        default: out.unicodeScalars.append(character)
        }
    }
    return out
}

/// Python's `format % args` for the conversions templates use (%s %r %d %i %f %%).
func pyPercentFormat(_ format: String, _ args: Value) throws -> String {
    var values: [Value]
    if case .tuple(let items) = args { values = items } else { values = [args] }
    var out = ""
    var scalars = Array(format.unicodeScalars)[...]
    while let scalar = scalars.popFirst() {
        guard scalar == "%" else {
            out.unicodeScalars.append(scalar)
            continue
        }
        var spec = ""
        while let next = scalars.first, "0123456789.-+ #".unicodeScalars.contains(next) {
            spec.unicodeScalars.append(next)
            scalars.removeFirst()
        }
        guard let conversion = scalars.popFirst() else { throw JinjaError(.value, "incomplete format") }
        if conversion == "%" {
            out += "%"
            continue
        }
        guard !values.isEmpty else { throw JinjaError(.type, "not enough arguments for format string") }
        let value = values.removeFirst()
        switch conversion {
        case "s" where spec.isEmpty: out += value.pyStr
        case "r" where spec.isEmpty: out += value.pyRepr
        case "d", "i":
            guard let number = value.number else {
                throw JinjaError(.type, "%\(conversion) format: a real number is required, not \(value.pythonTypeName)")
            }
            out += String(format: "%\(spec)d", Int(number))
        case "f":
            guard let number = value.number else {
                throw JinjaError(.type, "must be real number, not \(value.pythonTypeName)")
            }
            out += String(format: "%\(spec)f", number)
        default:
            throw JinjaError.unsupported("%-format '%\(spec)\(conversion)'")
        }
    }
    if !values.isEmpty, case .tuple = args {
        throw JinjaError(.type, "not all arguments converted during string formatting")
    }
    return out
}

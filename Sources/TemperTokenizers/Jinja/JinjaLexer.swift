// Tokenizer for Jinja templates, following jinja2 3.1's lexer (jinja2/lexer.py) with the options
// transformers sets: trim_blocks (drop the first newline after a block or comment tag) and
// lstrip_blocks (drop spaces and tabs before a block or comment tag at the start of a line), plus
// the `-`/`+` whitespace-control markers. Positions are counted in Unicode scalars, as Python counts
// characters.

struct JinjaToken: Equatable {
    enum Kind: Equatable {
        case data, variableBegin, variableEnd, blockBegin, blockEnd
        case name, string, integer, float, op
        case eof
    }

    var kind: Kind
    /// Data text, name, operator, or the decoded string literal.
    var text: String = ""
    var integer: Int = 0
    var float: Double = 0
    var line: Int
    var column: Int
}

struct JinjaLexer {
    typealias Scalars = [Unicode.Scalar]

    let source: Scalars
    let trimBlocks: Bool
    let lstripBlocks: Bool
    private let lineStarts: [Int]

    init(_ text: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) {
        // jinja2 normalizes \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
        var scalars: Scalars = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var previousCR = false
        for scalar in text.unicodeScalars {
            if scalar == "\r" {
                scalars.append("\n")
                previousCR = true
                continue
            }
            if scalar == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = false
            scalars.append(scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
        var starts = [0]
        for (index, scalar) in scalars.enumerated() where scalar == "\n" { starts.append(index + 1) }
        lineStarts = starts
    }

    func position(_ index: Int) -> (line: Int, column: Int) {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= index { low = middle } else { high = middle - 1 }
        }
        return (low + 1, index - lineStarts[low] + 1)
    }

    func syntaxError(_ message: String, at index: Int) -> JinjaError {
        let (line, column) = position(index)
        return JinjaError(.syntax, message, line: line, column: column)
    }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var i = index
        for scalar in literal.unicodeScalars {
            guard i < source.count, source[i] == scalar else { return false }
            i += 1
        }
        return true
    }

    private func token(_ kind: JinjaToken.Kind, _ text: String, at index: Int) -> JinjaToken {
        let (line, column) = position(index)
        return JinjaToken(kind: kind, text: text, line: line, column: column)
    }

    func tokenize() throws -> [JinjaToken] {
        var tokens: [JinjaToken] = []
        var pos = 0
        var lineStarting = true
        let count = source.count
        while pos < count {
            // Find the earliest tag opening.
            var tagStart = pos
            var opener: Unicode.Scalar = " "
            while tagStart + 1 < count {
                if source[tagStart] == "{", ["{", "%", "#"].contains(source[tagStart + 1]) {
                    opener = source[tagStart + 1]
                    break
                }
                tagStart += 1
            }
            if tagStart + 1 >= count {
                tokens.append(token(.data, String(String.UnicodeScalarView(source[pos..<count])), at: pos))
                break
            }
            var afterOpen = tagStart + 2
            var sign: Unicode.Scalar? = nil
            if afterOpen < count, source[afterOpen] == "-" || source[afterOpen] == "+" {
                sign = source[afterOpen]
                afterOpen += 1
            }
            if opener == "%", isRawTag(from: afterOpen) {
                throw JinjaError.unsupported("raw", line: position(tagStart).line, column: position(tagStart).column)
            }
            // Data before the tag, with whitespace control applied.
            var dataEnd = tagStart
            if sign == "-" {
                while dataEnd > pos, isPythonSpace(source[dataEnd - 1]) { dataEnd -= 1 }
            } else if sign != "+", lstripBlocks, opener != "{" {
                // jinja2: l_pos = text.rfind("\n") + 1; strip when l_pos > 0 or line_starting.
                var lineStart = tagStart
                while lineStart > pos, source[lineStart - 1] != "\n" { lineStart -= 1 }
                if lineStart > pos || lineStarting, lineStart < tagStart,
                    source[lineStart..<tagStart].allSatisfy(isPythonSpace)
                {
                    dataEnd = lineStart
                }
            }
            if dataEnd > pos {
                tokens.append(token(.data, String(String.UnicodeScalarView(source[pos..<dataEnd])), at: pos))
            }
            switch opener {
            case "#":
                // Comment: ends at the first `#}`; `-#}` strips the whitespace after it.
                var end = afterOpen
                while end + 1 < count, !(source[end] == "#" && source[end + 1] == "}") { end += 1 }
                guard end + 1 < count else { throw syntaxError("Missing end of comment tag", at: tagStart) }
                var next = end + 2
                let closeSign: Unicode.Scalar? = end > afterOpen ? source[end - 1] : nil
                if closeSign == "-" {
                    while next < count, isPythonSpace(source[next]) { next += 1 }
                } else if closeSign != "+", trimBlocks, next < count, source[next] == "\n" {
                    next += 1
                }
                lineStarting = source[next - 1] == "\n"
                pos = next
            default:
                let isBlock = opener == "%"
                tokens.append(token(isBlock ? .blockBegin : .variableBegin, "", at: tagStart))
                pos = try lexTag(from: afterOpen, isBlock: isBlock, into: &tokens)
                lineStarting = source[pos - 1] == "\n"
            }
        }
        let end = position(count)
        tokens.append(JinjaToken(kind: .eof, line: end.line, column: end.column))
        return tokens
    }

    private func isRawTag(from index: Int) -> Bool {
        var i = index
        while i < source.count, isPythonSpace(source[i]) { i += 1 }
        guard matches("raw", at: i) else { return false }
        i += 3
        while i < source.count, isPythonSpace(source[i]) { i += 1 }
        if i < source.count, source[i] == "-" || source[i] == "+" { i += 1 }
        return matches("%}", at: i)
    }

    /// Lexes the inside of `{{ … }}` or `{% … %}` and returns the position after the closing tag.
    private func lexTag(from start: Int, isBlock: Bool, into tokens: inout [JinjaToken]) throws -> Int {
        var pos = start
        var balancing: [Unicode.Scalar] = []
        let count = source.count
        while true {
            while pos < count, isPythonSpace(source[pos]) { pos += 1 }
            guard pos < count else {
                throw syntaxError(
                    "unexpected end of template, expected '\(isBlock ? "end of statement block" : "end of print statement")'",
                    at: pos)
            }
            if balancing.isEmpty {
                if isBlock {
                    if matches("-%}", at: pos) {
                        tokens.append(token(.blockEnd, "", at: pos))
                        pos += 3
                        while pos < count, isPythonSpace(source[pos]) { pos += 1 }
                        return pos
                    }
                    if matches("+%}", at: pos) {
                        tokens.append(token(.blockEnd, "", at: pos))
                        return pos + 3
                    }
                    if matches("%}", at: pos) {
                        tokens.append(token(.blockEnd, "", at: pos))
                        pos += 2
                        if trimBlocks, pos < count, source[pos] == "\n" { pos += 1 }
                        return pos
                    }
                } else {
                    if matches("-}}", at: pos) {
                        tokens.append(token(.variableEnd, "", at: pos))
                        pos += 3
                        while pos < count, isPythonSpace(source[pos]) { pos += 1 }
                        return pos
                    }
                    if matches("}}", at: pos) {
                        tokens.append(token(.variableEnd, "", at: pos))
                        return pos + 2
                    }
                }
            }
            let scalar = source[pos]
            if let (length, value) = lexNumber(at: pos) {
                var number = token(value.isInteger ? .integer : .float, "", at: pos)
                number.integer = value.integer
                number.float = value.float
                tokens.append(number)
                pos += length
            } else if isIdentifierStart(scalar) {
                var end = pos + 1
                while end < count, isIdentifierContinue(source[end]) { end += 1 }
                tokens.append(token(.name, String(String.UnicodeScalarView(source[pos..<end])), at: pos))
                pos = end
            } else if scalar == "'" || scalar == "\"" {
                var end = pos + 1
                while end < count, source[end] != scalar {
                    if source[end] == "\\" { end += 1 }
                    end += 1
                }
                guard end < count else { throw syntaxError("unexpected char \(pyRepr(String(scalar))) at \(pos)", at: pos) }
                let decoded = try decodeEscapes(source[(pos + 1)..<end], at: pos)
                tokens.append(token(.string, decoded, at: pos))
                pos = end + 1
            } else if let op = operatorAt(pos) {
                switch op {
                case "{": balancing.append("}")
                case "(": balancing.append(")")
                case "[": balancing.append("]")
                case "}", ")", "]":
                    guard let expected = balancing.popLast() else { throw syntaxError("unexpected '\(op)'", at: pos) }
                    if String(expected) != op { throw syntaxError("unexpected '\(op)', expected '\(expected)'", at: pos) }
                default: break
                }
                tokens.append(token(.op, op, at: pos))
                pos += op.unicodeScalars.count
            } else {
                throw syntaxError("unexpected char \(pyRepr(String(scalar))) at \(pos)", at: pos)
            }
        }
    }

    private static let operators = [
        "**", "//", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
        ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private func operatorAt(_ pos: Int) -> String? {
        JinjaLexer.operators.first { matches($0, at: pos) }
    }

    private struct Number {
        var isInteger: Bool
        var integer: Int
        var float: Double
    }

    private func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }

    /// Matches jinja2's float_re (digits with `_` separators, a fraction and/or an exponent) and
    /// integer_re (decimal, 0b, 0o, 0x).
    private func lexNumber(at start: Int) -> (Int, Number)? {
        guard isDigit(source[start]) else { return nil }
        if start > 0, source[start - 1] == "." { return lexInteger(at: start) }  // float_re's (?<!\.)
        func digits(_ from: Int) -> Int? {  // (\d+_)*\d+ ; returns end
            var i = from
            guard i < source.count, isDigit(source[i]) else { return nil }
            while true {
                while i < source.count, isDigit(source[i]) { i += 1 }
                if i + 1 < source.count, source[i] == "_", isDigit(source[i + 1]) { i += 1; continue }
                return i
            }
        }
        func exponent(_ from: Int) -> Int? {
            guard from < source.count, source[from] == "e" || source[from] == "E" else { return nil }
            var i = from + 1
            if i < source.count, source[i] == "+" || source[i] == "-" { i += 1 }
            return digits(i)
        }
        if let intEnd = digits(start) {
            var end: Int? = nil
            if intEnd < source.count, source[intEnd] == ".", let fractionEnd = digits(intEnd + 1) {
                end = exponent(fractionEnd) ?? fractionEnd
            } else if let exponentEnd = exponent(intEnd) {
                end = exponentEnd
            }
            if let end {
                let text = String(String.UnicodeScalarView(source[start..<end])).replacingOccurrences(of: "_", with: "")
                return (end - start, Number(isInteger: false, integer: 0, float: Double(text) ?? .infinity))
            }
        }
        return lexInteger(at: start)
    }

    private func lexInteger(at start: Int) -> (Int, Number)? {
        var radix = 10
        var i = start
        if source[start] == "0", start + 1 < source.count {
            switch source[start + 1] {
            case "b", "B": radix = 2
            case "o", "O": radix = 8
            case "x", "X": radix = 16
            default: break
            }
        }
        func isRadixDigit(_ scalar: Unicode.Scalar) -> Bool {
            guard let value = Int(String(scalar), radix: 16) else { return false }
            return value < radix
        }
        var text = ""
        if radix != 10 {
            i = start + 2
            while i < source.count {
                if source[i] == "_", i + 1 < source.count, isRadixDigit(source[i + 1]) { i += 1 }
                guard isRadixDigit(source[i]) else { break }
                text.unicodeScalars.append(source[i])
                i += 1
            }
            if text.isEmpty { radix = 10; i = start }
        }
        if radix == 10 {
            text = ""
            if source[start] == "0" {
                // 0(_?0)*
                i = start + 1
                text = "0"
                while i < source.count {
                    if source[i] == "0" { i += 1; continue }
                    if source[i] == "_", i + 1 < source.count, source[i + 1] == "0" { i += 2; continue }
                    break
                }
            } else {
                while i < source.count {
                    if isDigit(source[i]) { text.unicodeScalars.append(source[i]); i += 1; continue }
                    if source[i] == "_", i + 1 < source.count, isDigit(source[i + 1]) { i += 1; continue }
                    break
                }
            }
        }
        let value = Int(text, radix: radix) ?? Int.max
        return (i - start, Number(isInteger: true, integer: value, float: 0))
    }

    /// Python's "unicode-escape" decoding, which jinja2 applies to string literals.
    private func decodeEscapes(_ body: ArraySlice<Unicode.Scalar>, at start: Int) throws -> String {
        var out = String.UnicodeScalarView()
        var i = body.startIndex
        func hex(_ length: Int) throws -> Unicode.Scalar {
            guard i + length <= body.endIndex,
                let code = UInt32(String(String.UnicodeScalarView(body[i..<(i + length)])), radix: 16),
                let scalar = Unicode.Scalar(code)
            else { throw syntaxError("invalid escape sequence in string literal", at: start) }
            i += length
            return scalar
        }
        while i < body.endIndex {
            let scalar = body[i]
            i += 1
            guard scalar == "\\", i < body.endIndex else {
                out.append(scalar)
                continue
            }
            let escape = body[i]
            i += 1
            switch escape {
            case "\n": break
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "x": out.append(try hex(2))
            case "u": out.append(try hex(4))
            case "U": out.append(try hex(8))
            case "0"..."7":
                var code = escape.value - 48
                var digits = 1
                while digits < 3, i < body.endIndex, ("0"..."7").contains(body[i]) {
                    code = code * 8 + body[i].value - 48
                    i += 1
                    digits += 1
                }
                out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            case "N": throw JinjaError.unsupported("\\N{…} string escape", line: position(start).line)
            default:
                out.append("\\")
                out.append(escape)
            }
        }
        return String(out)
    }
}

func isIdentifierStart(_ scalar: Unicode.Scalar) -> Bool {
    scalar == "_" || scalar.properties.isXIDStart
}

func isIdentifierContinue(_ scalar: Unicode.Scalar) -> Bool {
    scalar == "_" || scalar.properties.isXIDContinue
}

/// Python's `str.isspace()` / regex `\s` for one character.
func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

// A small backtracking regular-expression engine for the pre-tokenizer patterns of byte-level BPE
// tokenizers (GPT-2, Llama 3, Qwen2, GPT-4o, Tekken, ...). Hugging Face `tokenizers` runs these
// patterns with Oniguruma, which matches leftmost-first (Perl order) over Unicode scalars; this
// engine does the same, with `\p{..}` classes driven by `Unicode.Scalar.Properties.generalCategory`
// and `\s` by the White_Space property, as Oniguruma defines them.
//
// Supported: literals, `.`, classes `[...]` with ranges and negation, escapes `\p{X}`/`\P{X}`/`\pX`,
// `\s \S \d \D \w \W \r \n \t \f \v \xHH \x{H..} \uHHHH`, groups `( )`, `(?: )`, `(?i: )`, `(?i)`,
// lookahead `(?= )`/`(?! )`, anchors `^ $ \A \z`, quantifiers `? * + {m} {m,} {m,n}` (greedy or lazy).
// Unsupported syntax throws, so callers can fall back to `NSRegularExpression`.

import Foundation

/// A compiled pattern. Immutable, so it is shared freely across threads.
struct SplitRegex: Sendable {
    enum ParseError: Error { case unsupported(String) }

    private let program: [Instruction]
    private let sets: [ScalarSet]

    init(_ pattern: String) throws {
        var parser = Parser(Array(pattern.unicodeScalars))
        let ast = try parser.parseAll()
        var compiler = Compiler()
        compiler.emit(ast)
        compiler.program.append(.match)
        program = compiler.program
        sets = compiler.sets
    }

    /// The ranges (in scalar offsets) of all non-overlapping matches, leftmost-first, as Oniguruma's
    /// search loop finds them (an empty match advances one scalar).
    func matches(in text: UnsafeBufferPointer<Unicode.Scalar>, properties: UnsafeBufferPointer<UInt64>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var stack: [(pc: Int, pos: Int)] = []
        stack.reserveCapacity(64)
        var start = 0
        let n = text.count
        while start <= n {
            if let end = run(from: 0, at: start, text: text, properties: properties, stack: &stack) {
                if end > start {
                    result.append(start..<end)
                    start = end
                    continue
                }
            }
            start += 1
        }
        return result
    }

    private func run(from entry: Int, at position: Int, text: UnsafeBufferPointer<Unicode.Scalar>,
                     properties: UnsafeBufferPointer<UInt64>, stack: inout [(pc: Int, pos: Int)]) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = entry
        var pos = position
        let n = text.count
        while true {
            switch program[pc] {
            case .set(let index):
                if pos < n && sets[index].contains(text[pos], properties: properties[pos]) {
                    pos += 1
                    pc += 1
                    continue
                }
            case .split(let first, let second):
                stack.append((second, pos))
                pc = first
                continue
            case .jump(let target):
                pc = target
                continue
            case .match:
                return pos
            case .lookahead(let negative, let body, let next):
                let found = run(from: body, at: pos, text: text, properties: properties, stack: &stack) != nil
                if found != negative {
                    pc = next
                    continue
                }
            case .assertStart:
                if pos == 0 { pc += 1; continue }
            case .assertEnd:
                if pos == n { pc += 1; continue }
            }
            // Backtrack.
            guard stack.count > base else { return nil }
            let state = stack.removeLast()
            pc = state.pc
            pos = state.pos
        }
    }
}

// MARK: - Character properties

/// Bit masks over general categories (one bit each) plus White_Space, precomputed per input scalar.
enum ScalarProperties {
    static let whiteSpaceBit: UInt64 = 1 << 40

    static func categoryBit(_ category: Unicode.GeneralCategory) -> UInt64 {
        1 << UInt64(categoryIndex(category))
    }

    static func categoryIndex(_ category: Unicode.GeneralCategory) -> Int {
        switch category {
        case .uppercaseLetter: 0
        case .lowercaseLetter: 1
        case .titlecaseLetter: 2
        case .modifierLetter: 3
        case .otherLetter: 4
        case .nonspacingMark: 5
        case .spacingMark: 6
        case .enclosingMark: 7
        case .decimalNumber: 8
        case .letterNumber: 9
        case .otherNumber: 10
        case .connectorPunctuation: 11
        case .dashPunctuation: 12
        case .openPunctuation: 13
        case .closePunctuation: 14
        case .initialPunctuation: 15
        case .finalPunctuation: 16
        case .otherPunctuation: 17
        case .mathSymbol: 18
        case .currencySymbol: 19
        case .modifierSymbol: 20
        case .otherSymbol: 21
        case .spaceSeparator: 22
        case .lineSeparator: 23
        case .paragraphSeparator: 24
        case .control: 25
        case .format: 26
        case .surrogate: 27
        case .privateUse: 28
        case .unassigned: 29
        @unknown default: 29
        }
    }

    static func compute(_ scalar: Unicode.Scalar) -> UInt64 {
        var bits = categoryBit(scalar.properties.generalCategory)
        if scalar.properties.isWhitespace { bits |= whiteSpaceBit }
        return bits
    }

    private static let ascii: [UInt64] = (0..<128).map { compute(Unicode.Scalar(UInt8($0))) }

    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> UInt64 {
        scalar.value < 128 ? ascii[Int(scalar.value)] : compute(scalar)
    }

    static let letter: UInt64 = (0...4).reduce(0) { $0 | (1 << UInt64($1)) }
    static let mark: UInt64 = (5...7).reduce(0) { $0 | (1 << UInt64($1)) }
    static let number: UInt64 = (8...10).reduce(0) { $0 | (1 << UInt64($1)) }
    static let punctuation: UInt64 = (11...17).reduce(0) { $0 | (1 << UInt64($1)) }
    static let symbol: UInt64 = (18...21).reduce(0) { $0 | (1 << UInt64($1)) }
    static let separator: UInt64 = (22...24).reduce(0) { $0 | (1 << UInt64($1)) }
    static let other: UInt64 = (25...29).reduce(0) { $0 | (1 << UInt64($1)) }
    /// Oniguruma's Unicode `\w`: letters, marks, decimal digits and connector punctuation.
    static let word: UInt64 = letter | mark | (1 << 8) | (1 << 11)

    /// The mask for a `\p{...}` name (one- or two-letter category or a few long names).
    static func named(_ name: String) -> UInt64? {
        let table: [String: UInt64] = [
            "L": letter, "Letter": letter, "M": mark, "Mark": mark, "N": number, "Number": number,
            "P": punctuation, "Punctuation": punctuation, "S": symbol, "Symbol": symbol,
            "Z": separator, "Separator": separator, "C": other, "Other": other,
            "Lu": 1 << 0, "Ll": 1 << 1, "Lt": 1 << 2, "Lm": 1 << 3, "Lo": 1 << 4,
            "Mn": 1 << 5, "Mc": 1 << 6, "Me": 1 << 7, "Nd": 1 << 8, "Nl": 1 << 9, "No": 1 << 10,
            "Pc": 1 << 11, "Pd": 1 << 12, "Ps": 1 << 13, "Pe": 1 << 14, "Pi": 1 << 15, "Pf": 1 << 16,
            "Po": 1 << 17, "Sm": 1 << 18, "Sc": 1 << 19, "Sk": 1 << 20, "So": 1 << 21,
            "Zs": 1 << 22, "Zl": 1 << 23, "Zp": 1 << 24, "Cc": 1 << 25, "Cf": 1 << 26, "Cs": 1 << 27,
            "Co": 1 << 28, "Cn": 1 << 29,
            "White_Space": whiteSpaceBit, "Space": whiteSpaceBit,
        ]
        return table[name]
    }
}

/// A set of scalars: general-category bits, explicit ranges, optionally negated.
struct ScalarSet: Sendable {
    var mask: UInt64 = 0
    var ranges: [ClosedRange<UInt32>] = []
    var negatedParts: [ScalarSet] = []  // members of a class such as `[^\S\r\n]`'s `\S`
    var negated = false

    @inline(__always)
    func contains(_ scalar: Unicode.Scalar, properties: UInt64) -> Bool {
        var hit = (mask & properties) != 0
        if !hit {
            let v = scalar.value
            for range in ranges where range.contains(v) {
                hit = true
                break
            }
        }
        if !hit {
            for part in negatedParts where part.contains(scalar, properties: properties) {
                hit = true
                break
            }
        }
        return hit != negated
    }

    static func single(_ scalar: Unicode.Scalar, caseInsensitive: Bool) -> ScalarSet {
        var set = ScalarSet()
        set.ranges = [scalar.value...scalar.value]
        if caseInsensitive {
            for variant in caseVariants(of: scalar) where variant != scalar.value {
                set.ranges.append(variant...variant)
            }
        }
        return set
    }

    /// The scalars a case-insensitive match treats as equal to `scalar` (simple case folding).
    static func caseVariants(of scalar: Unicode.Scalar) -> [UInt32] {
        var result: Set<UInt32> = [scalar.value]
        for mapped in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping,
                       scalar.properties.titlecaseMapping] {
            let scalars = Array(mapped.unicodeScalars)
            if scalars.count == 1 { result.insert(scalars[0].value) }
        }
        // Scalars whose case folding lands on an ASCII letter without a simple mapping back.
        let extra: [UInt32: [UInt32]] = [
            0x73: [0x17F], 0x53: [0x17F], 0x17F: [0x73, 0x53],
            0x6B: [0x212A], 0x4B: [0x212A], 0x212A: [0x6B, 0x4B],
        ]
        for value in extra[scalar.value] ?? [] { result.insert(value) }
        return result.sorted()
    }
}

// MARK: - Parsing

private indirect enum Node {
    case set(ScalarSet)
    case sequence([Node])
    case alternation([Node])
    case repeatNode(Node, min: Int, max: Int?, greedy: Bool)
    case lookahead(Node, negative: Bool)
    case assertStart
    case assertEnd
}

private struct Parser {
    let chars: [Unicode.Scalar]
    var index = 0
    var caseInsensitive = false

    init(_ chars: [Unicode.Scalar]) { self.chars = chars }

    mutating func parseAll() throws -> Node {
        let node = try parseAlternation()
        if index != chars.count { throw SplitRegex.ParseError.unsupported("unbalanced ')' at \(index)") }
        return node
    }

    private var atEnd: Bool { index >= chars.count }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < chars.count ? chars[index + offset] : nil
    }

    mutating func parseAlternation() throws -> Node {
        var branches = [try parseSequence()]
        while peek() == "|" {
            index += 1
            branches.append(try parseSequence())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseSequence() throws -> Node {
        var items: [Node] = []
        while let c = peek(), c != "|", c != ")" {
            var atom = try parseAtom()
            atom = try parseQuantifiers(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    mutating func parseQuantifiers(_ atom: Node) throws -> Node {
        var node = atom
        while let c = peek() {
            var bounds: (Int, Int?)
            switch c {
            case "?": bounds = (0, 1); index += 1
            case "*": bounds = (0, nil); index += 1
            case "+": bounds = (1, nil); index += 1
            case "{":
                guard let parsed = parseBraces() else { return node }
                bounds = parsed
            default: return node
            }
            var greedy = true
            if peek() == "?" {
                greedy = false
                index += 1
            } else if peek() == "+" {
                throw SplitRegex.ParseError.unsupported("possessive quantifier")
            }
            node = .repeatNode(node, min: bounds.0, max: bounds.1, greedy: greedy)
        }
        return node
    }

    /// `{m}`, `{m,}`, `{m,n}`; nil (and no input consumed) when the brace is a literal.
    mutating func parseBraces() -> (Int, Int?)? {
        var j = index + 1
        func number() -> Int? {
            var value: Int?
            while j < chars.count, let d = chars[j].properties.numericType == .decimal ? Int(String(chars[j])) : nil {
                value = (value ?? 0) * 10 + d
                j += 1
            }
            return value
        }
        guard let low = number() else { return nil }
        var high: Int? = low
        if j < chars.count, chars[j] == "," {
            j += 1
            high = number()
        }
        guard j < chars.count, chars[j] == "}" else { return nil }
        index = j + 1
        return (low, high)
    }

    mutating func parseAtom() throws -> Node {
        let c = chars[index]
        index += 1
        switch c {
        case "(":
            return try parseGroup()
        case "[":
            return .set(try parseClass())
        case ".":
            var set = ScalarSet()
            set.ranges = [0x0A...0x0A]
            set.negated = true
            return .set(set)
        case "^":
            return .assertStart
        case "$":
            return .assertEnd
        case "\\":
            return try parseEscapeAtom()
        case "*", "+", "?":
            throw SplitRegex.ParseError.unsupported("quantifier without operand")
        default:
            return .set(.single(c, caseInsensitive: caseInsensitive))
        }
    }

    mutating func parseGroup() throws -> Node {
        let saved = caseInsensitive
        defer { caseInsensitive = saved }
        var lookahead: Bool?  // negative?
        if peek() == "?" {
            index += 1
            switch peek() {
            case ":": index += 1
            case "=": index += 1; lookahead = false
            case "!": index += 1; lookahead = true
            case "i":
                index += 1
                if peek() == ":" {
                    index += 1
                    caseInsensitive = true
                } else if peek() == ")" {
                    // `(?i)`: applies to the rest of the enclosing group.
                    index += 1
                    caseInsensitive = true
                    let rest = try parseAlternation()
                    return rest
                } else {
                    throw SplitRegex.ParseError.unsupported("group flags")
                }
            default:
                throw SplitRegex.ParseError.unsupported("group syntax (?\(peek().map(String.init) ?? ""))")
            }
        } else if peek() == "?" {
            throw SplitRegex.ParseError.unsupported("group syntax")
        }
        let body = try parseAlternation()
        guard peek() == ")" else { throw SplitRegex.ParseError.unsupported("missing ')'") }
        index += 1
        if let negative = lookahead { return .lookahead(body, negative: negative) }
        return body
    }

    mutating func parseEscapeAtom() throws -> Node {
        guard let c = peek() else { throw SplitRegex.ParseError.unsupported("trailing backslash") }
        switch c {
        case "A": index += 1; return .assertStart
        case "z": index += 1; return .assertEnd
        default: return .set(try parseEscapeSet())
        }
    }

    /// The set an escape after a backslash denotes (inside or outside a class).
    mutating func parseEscapeSet() throws -> ScalarSet {
        guard let c = peek() else { throw SplitRegex.ParseError.unsupported("trailing backslash") }
        index += 1
        var set = ScalarSet()
        switch c {
        case "s": set.mask = ScalarProperties.whiteSpaceBit
        case "S": set.mask = ScalarProperties.whiteSpaceBit; set.negated = true
        case "d": set.mask = 1 << 8
        case "D": set.mask = 1 << 8; set.negated = true
        case "w": set.mask = ScalarProperties.word
        case "W": set.mask = ScalarProperties.word; set.negated = true
        case "p", "P":
            var name = ""
            if peek() == "{" {
                index += 1
                while let d = peek(), d != "}" { name.unicodeScalars.append(d); index += 1 }
                guard peek() == "}" else { throw SplitRegex.ParseError.unsupported("unterminated \\p{") }
                index += 1
            } else if let d = peek() {
                name = String(d)
                index += 1
            }
            var negated = c == "P"
            if name.hasPrefix("^") { negated.toggle(); name.removeFirst() }
            guard let mask = ScalarProperties.named(name) else {
                throw SplitRegex.ParseError.unsupported("property \\p{\(name)}")
            }
            set.mask = mask
            set.negated = negated
        case "r": return .single("\r", caseInsensitive: false)
        case "n": return .single("\n", caseInsensitive: false)
        case "t": return .single("\t", caseInsensitive: false)
        case "f": return .single("\u{0C}", caseInsensitive: false)
        case "v": return .single("\u{0B}", caseInsensitive: false)
        case "x", "u":
            var hex = ""
            if peek() == "{" {
                index += 1
                while let d = peek(), d != "}" { hex.unicodeScalars.append(d); index += 1 }
                index += 1
            } else {
                let count = c == "x" ? 2 : 4
                for _ in 0..<count {
                    guard let d = peek() else { break }
                    hex.unicodeScalars.append(d)
                    index += 1
                }
            }
            guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                throw SplitRegex.ParseError.unsupported("escape \\\(c)\(hex)")
            }
            return .single(scalar, caseInsensitive: caseInsensitive)
        default:
            if c.properties.isAlphabetic || c.properties.numericType != nil {
                throw SplitRegex.ParseError.unsupported("escape \\\(c)")
            }
            return .single(c, caseInsensitive: caseInsensitive)
        }
        return set
    }

    mutating func parseClass() throws -> ScalarSet {
        var set = ScalarSet()
        if peek() == "^" {
            set.negated = true
            index += 1
        }
        var first = true
        while let c = peek() {
            if c == "]" && !first { break }
            first = false
            if c == "[" { throw SplitRegex.ParseError.unsupported("nested class") }
            var low: UInt32
            if c == "\\" {
                index += 1
                let member = try parseEscapeSet()
                if member.negated || member.mask != 0 || member.ranges.count != 1
                    || member.ranges[0].lowerBound != member.ranges[0].upperBound {
                    if member.negated {
                        set.negatedParts.append(member)
                    } else {
                        set.mask |= member.mask
                        set.ranges += member.ranges
                    }
                    continue
                }
                low = member.ranges[0].lowerBound
            } else {
                index += 1
                low = c.value
            }
            if peek() == "-", let next = peek(1), next != "]" {
                index += 1
                var high: UInt32
                if next == "\\" {
                    index += 1
                    let member = try parseEscapeSet()
                    guard member.mask == 0, !member.negated, member.ranges.count == 1 else {
                        throw SplitRegex.ParseError.unsupported("class range to a class")
                    }
                    high = member.ranges[0].lowerBound
                } else {
                    index += 1
                    high = next.value
                }
                guard low <= high else { throw SplitRegex.ParseError.unsupported("reversed class range") }
                set.ranges.append(low...high)
                if caseInsensitive { addCaseVariants(of: low...high, to: &set) }
            } else {
                set.ranges.append(low...low)
                if caseInsensitive { addCaseVariants(of: low...low, to: &set) }
            }
        }
        guard peek() == "]" else { throw SplitRegex.ParseError.unsupported("unterminated class") }
        index += 1
        return set
    }

    private func addCaseVariants(of range: ClosedRange<UInt32>, to set: inout ScalarSet) {
        guard range.count <= 512 else { return }
        for value in range {
            guard let scalar = Unicode.Scalar(value) else { continue }
            for variant in ScalarSet.caseVariants(of: scalar) where !range.contains(variant) {
                set.ranges.append(variant...variant)
            }
        }
    }
}

// MARK: - Compiling

private enum Instruction: Sendable {
    case set(Int)
    case split(Int, Int)
    case jump(Int)
    case match
    case lookahead(negative: Bool, body: Int, next: Int)
    case assertStart
    case assertEnd
}

private struct Compiler {
    var program: [Instruction] = []
    var sets: [ScalarSet] = []

    mutating func emit(_ node: Node) {
        switch node {
        case .set(let set):
            sets.append(set)
            program.append(.set(sets.count - 1))
        case .sequence(let items):
            for item in items { emit(item) }
        case .alternation(let branches):
            // split L1, next; L1: a; jump end; next: split L2, next2; ...
            var jumps: [Int] = []
            for (i, branch) in branches.enumerated() {
                if i < branches.count - 1 {
                    let split = program.count
                    program.append(.split(0, 0))
                    emit(branch)
                    jumps.append(program.count)
                    program.append(.jump(0))
                    program[split] = .split(split + 1, program.count)
                } else {
                    emit(branch)
                }
            }
            for j in jumps { program[j] = .jump(program.count) }
        case .repeatNode(let body, let min, let max, let greedy):
            for _ in 0..<min { emit(body) }
            if let max {
                // Nested optionals: (body (body ...)?)?
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(program.count)
                    program.append(.split(0, 0))
                    emit(body)
                }
                let end = program.count
                for s in splits { program[s] = greedy ? .split(s + 1, end) : .split(end, s + 1) }
            } else {
                let loop = program.count
                program.append(.split(0, 0))
                emit(body)
                program.append(.jump(loop))
                let end = program.count
                program[loop] = greedy ? .split(loop + 1, end) : .split(end, loop + 1)
            }
        case .lookahead(let body, let negative):
            let at = program.count
            program.append(.jump(0))
            let bodyStart = program.count
            emit(body)
            program.append(.match)
            program[at] = .lookahead(negative: negative, body: bodyStart, next: program.count)
        case .assertStart:
            program.append(.assertStart)
        case .assertEnd:
            program.append(.assertEnd)
        }
    }
}

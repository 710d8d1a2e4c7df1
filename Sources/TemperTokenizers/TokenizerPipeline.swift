// The stages of an HF `tokenizers` pipeline that byte-level BPE families use: normalizers,
// pre-tokenizers, post-processors and decoders, each parsed from its `tokenizer.json` object.

import Foundation

typealias JSONObject = [String: Any]

// MARK: - Normalizers

indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(Pattern, String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: text.precomposedStringWithCanonicalMapping
        case .nfd: text.decomposedStringWithCanonicalMapping
        case .nfkc: text.precomposedStringWithCompatibilityMapping
        case .nfkd: text.decomposedStringWithCompatibilityMapping
        case .lowercase: text.lowercased()
        case .prepend(let prefix): text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content): pattern.replacingMatches(in: text, with: content)
        case .strip(let left, let right): Self.strip(text, left: left, right: right)
        case .sequence(let items): items.reduce(text) { $1.apply($0) }
        }
    }

    private static func strip(_ text: String, left: Bool, right: Bool) -> String {
        var scalars = Substring(text).unicodeScalars
        if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
        if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
        return String(scalars)
    }

    static func parse(_ json: JSONObject) throws(TokenizerError) -> Normalizer {
        let type = json["type"] as? String ?? ""
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend": return .prepend(json["prepend"] as? String ?? "")
        case "Replace":
            return .replace(try Pattern.parse(json["pattern"], field: "normalizer.pattern"), json["content"] as? String ?? "")
        case "Strip":
            return .strip(left: json["strip_left"] as? Bool ?? true, right: json["strip_right"] as? Bool ?? true)
        case "Sequence":
            let items = json["normalizers"] as? [JSONObject] ?? []
            var parsed: [Normalizer] = []
            for item in items { parsed.append(try parse(item)) }
            return .sequence(parsed)
        default:
            throw .unsupported(file: "tokenizer.json", field: "normalizer.type", value: type)
        }
    }
}

// MARK: - Patterns

/// A `Split`/`Replace` pattern: a literal string or a regex (native engine, else Foundation's).
enum Pattern: Sendable {
    case literal([Unicode.Scalar])
    case regex(SplitRegex)
    case foundation(FoundationRegex)

    static func parse(_ value: Any?, field: String) throws(TokenizerError) -> Pattern {
        guard let object = value as? JSONObject else {
            throw .invalid(file: "tokenizer.json", field: field, reason: "is not an object with \"String\" or \"Regex\"")
        }
        if let literal = object["String"] as? String { return .literal(Array(literal.unicodeScalars)) }
        guard let source = object["Regex"] as? String else {
            throw .invalid(file: "tokenizer.json", field: field, reason: "has neither \"String\" nor \"Regex\"")
        }
        return try regex(source, field: field)
    }

    static func regex(_ source: String, field: String) throws(TokenizerError) -> Pattern {
        if let native = try? SplitRegex(source) { return .regex(native) }
        guard let fallback = FoundationRegex(source) else {
            throw .invalid(file: "tokenizer.json", field: field, reason: "has a regex that does not compile: \(source)")
        }
        return .foundation(fallback)
    }

    /// Match ranges in scalar offsets, leftmost-first and non-overlapping.
    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .literal(let needle):
            guard !needle.isEmpty, needle.count <= scalars.count else { return [] }
            var result: [Range<Int>] = []
            var i = 0
            while i + needle.count <= scalars.count {
                if scalars[i] == needle[0] && scalars[i..<(i + needle.count)].elementsEqual(needle) {
                    result.append(i..<(i + needle.count))
                    i += needle.count
                } else {
                    i += 1
                }
            }
            return result
        case .regex(let regex):
            let properties = scalars.map(ScalarProperties.of)
            return scalars.withUnsafeBufferPointer { text in
                properties.withUnsafeBufferPointer { regex.matches(in: text, properties: $0) }
            }
        case .foundation(let regex):
            return regex.matches(in: scalars)
        }
    }

    func replacingMatches(in text: String, with content: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var result = String.UnicodeScalarView()
        var last = 0
        for range in matches(in: scalars) {
            result.append(contentsOf: scalars[last..<range.lowerBound])
            result.append(contentsOf: content.unicodeScalars)
            last = range.upperBound
        }
        result.append(contentsOf: scalars[last...])
        return String(result)
    }
}

/// `NSRegularExpression` for patterns the native engine does not parse; holds only the source and
/// compiles per use, so it stays a plain Sendable value.
struct FoundationRegex: Sendable {
    let source: String

    init?(_ source: String) {
        guard (try? NSRegularExpression(pattern: source)) != nil else { return nil }
        self.source = source
    }

    func matches(in scalars: [Unicode.Scalar]) -> [Range<Int>] {
        guard let regex = try? NSRegularExpression(pattern: source) else { return [] }
        var string = String.UnicodeScalarView()
        string.append(contentsOf: scalars)
        let text = String(string)
        // UTF-16 offset → scalar offset.
        var utf16ToScalar: [Int] = []
        utf16ToScalar.reserveCapacity(text.utf16.count + 1)
        for (i, scalar) in scalars.enumerated() {
            utf16ToScalar.append(i)
            if scalar.value > 0xFFFF { utf16ToScalar.append(i) }
        }
        utf16ToScalar.append(scalars.count)
        let found = regex.matches(in: text, range: NSRange(location: 0, length: text.utf16.count))
        return found.compactMap { match in
            let r = match.range
            guard r.location != NSNotFound, r.length > 0 else { return nil }
            return utf16ToScalar[r.location]..<utf16ToScalar[r.location + r.length]
        }
    }
}

// MARK: - Pre-tokenizers

/// How a `Split` keeps the pieces a pattern matches (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Pieces of `scalars` given the matches, as HF's `NormalizedString::split` cuts them.
    func split(_ scalars: [Unicode.Scalar], matches: [Range<Int>], invert: Bool) -> [Range<Int>] {
        // Cover the whole input with (range, isMatch).
        var spans: [(Range<Int>, Bool)] = []
        var last = 0
        for m in matches {
            if m.lowerBound > last { spans.append((last..<m.lowerBound, false)) }
            spans.append((m, true))
            last = m.upperBound
        }
        if last < scalars.count { spans.append((last..<scalars.count, false)) }
        if invert { spans = spans.map { ($0.0, !$0.1) } }

        var pieces: [Range<Int>] = []
        switch self {
        case .isolated:
            pieces = spans.map(\.0)
        case .removed:
            pieces = spans.filter { !$0.1 }.map(\.0)
        case .mergedWithPrevious:
            var previousMatch = false
            for (range, isMatch) in spans {
                if isMatch && !previousMatch, let end = pieces.last {
                    pieces[pieces.count - 1] = end.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (range, isMatch) in spans.reversed() {
                if isMatch && !previousMatch, let first = pieces.last {
                    pieces[pieces.count - 1] = range.lowerBound..<first.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
            pieces.reverse()
        case .contiguous:
            var previousMatch = false
            for (range, isMatch) in spans {
                if isMatch == previousMatch, let end = pieces.last {
                    pieces[pieces.count - 1] = end.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
        }
        return pieces.filter { !$0.isEmpty }
    }
}

indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(Pattern, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case sequence([PreTokenizer])

    /// GPT-2's pattern, used by `ByteLevel` with `use_regex`.
    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    private static let gpt2Regex = try! SplitRegex(gpt2Pattern)
    private static let whitespaceRegex = try! SplitRegex(#"\w+|[^\w\s]+"#)

    /// Whether the last stage maps pieces to the byte-level alphabet.
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: true
        case .sequence(let items): items.contains { $0.isByteLevel }
        default: false
        }
    }

    /// Splits each piece further (and, for `ByteLevel`, respells it in the byte alphabet).
    func apply(_ pieces: [String]) -> [String] {
        switch self {
        case .sequence(let items):
            return items.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var result: [String] = []
            for var piece in pieces {
                if addPrefixSpace && piece.unicodeScalars.first != " " { piece = " " + piece }
                if useRegex {
                    let scalars = Array(piece.unicodeScalars)
                    let properties = scalars.map(ScalarProperties.of)
                    let matches = scalars.withUnsafeBufferPointer { text in
                        properties.withUnsafeBufferPointer { Self.gpt2Regex.matches(in: text, properties: $0) }
                    }
                    for range in SplitBehavior.isolated.split(scalars, matches: matches, invert: false) {
                        result.append(ByteLevel.encode(String(String.UnicodeScalarView(scalars[range])).utf8))
                    }
                } else {
                    result.append(ByteLevel.encode(piece.utf8))
                }
            }
            return result
        case .split(let pattern, let behavior, let invert):
            return splitEach(pieces) { behavior.split($0, matches: pattern.matches(in: $0), invert: invert) }
        case .digits(let individual):
            return splitEach(pieces) { scalars in
                let matches = Self.characterMatches(scalars, Self.isNumeric)
                return (individual ? SplitBehavior.isolated : .contiguous).split(scalars, matches: matches, invert: false)
            }
        case .whitespace:
            return splitEach(pieces) { scalars in
                let properties = scalars.map(ScalarProperties.of)
                let matches = scalars.withUnsafeBufferPointer { text in
                    properties.withUnsafeBufferPointer { Self.whitespaceRegex.matches(in: text, properties: $0) }
                }
                return SplitBehavior.removed.split(scalars, matches: matches, invert: true)
            }
        case .whitespaceSplit:
            return splitEach(pieces) { scalars in
                let matches = Self.characterMatches(scalars) { $0.properties.isWhitespace }
                return SplitBehavior.removed.split(scalars, matches: matches, invert: false)
            }
        case .punctuation(let behavior):
            return splitEach(pieces) { scalars in
                let matches = Self.characterMatches(scalars) { s in
                    (s.isASCII && s.properties.generalCategory != .control && !s.properties.isAlphabetic
                        && !s.properties.isWhitespace && s.properties.numericType == nil)
                        || ScalarProperties.of(s) & ScalarProperties.punctuation != 0
                }
                return behavior.split(scalars, matches: matches, invert: false)
            }
        }
    }

    private static func isNumeric(_ s: Unicode.Scalar) -> Bool {
        ScalarProperties.of(s) & ScalarProperties.number != 0
    }

    private static func characterMatches(_ scalars: [Unicode.Scalar], _ predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for (i, s) in scalars.enumerated() where predicate(s) { result.append(i..<(i + 1)) }
        return result
    }

    private func splitEach(_ pieces: [String], _ cut: ([Unicode.Scalar]) -> [Range<Int>]) -> [String] {
        var result: [String] = []
        for piece in pieces {
            let scalars = Array(piece.unicodeScalars)
            for range in cut(scalars) { result.append(String(String.UnicodeScalarView(scalars[range]))) }
        }
        return result
    }

    static func parse(_ json: JSONObject) throws(TokenizerError) -> PreTokenizer {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true,
                              useRegex: json["use_regex"] as? Bool ?? true)
        case "Split":
            let behaviorName = json["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .unsupported(file: "tokenizer.json", field: "pre_tokenizer.behavior", value: behaviorName)
            }
            return .split(try Pattern.parse(json["pattern"], field: "pre_tokenizer.pattern"), behavior,
                          invert: json["invert"] as? Bool ?? false)
        case "Digits":
            return .digits(individual: json["individual_digits"] as? Bool ?? false)
        case "Whitespace":
            return .whitespace
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Punctuation":
            let name = json["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw .unsupported(file: "tokenizer.json", field: "pre_tokenizer.behavior", value: name)
            }
            return .punctuation(behavior)
        case "Sequence":
            var parsed: [PreTokenizer] = []
            for item in json["pretokenizers"] as? [JSONObject] ?? [] { parsed.append(try parse(item)) }
            return .sequence(parsed)
        default:
            throw .unsupported(file: "tokenizer.json", field: "pre_tokenizer.type", value: type)
        }
    }
}

// MARK: - Post-processors

indirect enum PostProcessor: Sendable {
    /// `TemplateProcessing` for a single sequence: the ids before and after the text.
    case template(prefix: [Int], suffix: [Int])
    case identity
    case sequence([PostProcessor])

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let prefix, let suffix): prefix + ids + suffix
        case .identity: ids
        case .sequence(let items): items.reduce(ids) { $1.apply($0) }
        }
    }

    static func parse(_ json: JSONObject, vocabulary: (String) -> Int?) throws(TokenizerError) -> PostProcessor {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel":
            return .identity
        case "TemplateProcessing":
            let specials = json["special_tokens"] as? JSONObject ?? [:]
            var prefix: [Int] = []
            var suffix: [Int] = []
            var seenSequence = false
            for item in json["single"] as? [JSONObject] ?? [] {
                if item["Sequence"] != nil {
                    seenSequence = true
                } else if let special = item["SpecialToken"] as? JSONObject, let name = special["id"] as? String {
                    guard let entry = specials[name] as? JSONObject, let ids = entry["ids"] as? [Int] else {
                        throw .invalid(file: "tokenizer.json", field: "post_processor.special_tokens",
                                       reason: "lacks '\(name)'")
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                }
            }
            return .template(prefix: prefix, suffix: suffix)
        case "RobertaProcessing", "BertProcessing":
            func id(_ key: String) throws(TokenizerError) -> Int {
                guard let pair = json[key] as? [Any], pair.count == 2, let id = pair[1] as? Int else {
                    throw .invalid(file: "tokenizer.json", field: "post_processor.\(key)", reason: "is not [token, id]")
                }
                return id
            }
            return .template(prefix: [try id("cls")], suffix: [try id("sep")])
        case "Sequence":
            var parsed: [PostProcessor] = []
            for item in json["processors"] as? [JSONObject] ?? [] {
                parsed.append(try parse(item, vocabulary: vocabulary))
            }
            return .sequence(parsed)
        default:
            throw .unsupported(file: "tokenizer.json", field: "post_processor.type", value: type)
        }
    }
}

// MARK: - Decoders

indirect enum Decoder: Sendable {
    case byteLevel
    case byteFallback
    case fuse
    case replace(Pattern, String)
    case strip(content: String, start: Int, stop: Int)
    case sequence([Decoder])

    /// HF's `decode_chain`: tokens in, tokens out; the caller joins the result.
    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let start = bytes.count
                var spelled = true
                for scalar in token.unicodeScalars {
                    guard let byte = ByteLevel.byte(for: scalar) else { spelled = false; break }
                    bytes.append(byte)
                }
                if !spelled {
                    bytes.removeSubrange(start...)
                    bytes.append(contentsOf: token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .byteFallback:
            var result: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let text = String(validating: pending, as: UTF8.self) {
                    result.append(text)
                } else {
                    result.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
                }
                pending = []
            }
            for token in tokens {
                if token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
                   let byte = UInt8(token.dropFirst(3).dropLast(), radix: 16) {
                    pending.append(byte)
                } else {
                    flush()
                    result.append(token)
                }
            }
            flush()
            return result
        case .fuse:
            return [tokens.joined()]
        case .replace(let pattern, let content):
            return tokens.map { pattern.replacingMatches(in: $0, with: content) }
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var scalars = Array(token.unicodeScalars)
                let c = content.unicodeScalars.first
                var removed = 0
                while removed < start, let f = scalars.first, f == c { scalars.removeFirst(); removed += 1 }
                removed = 0
                while removed < stop, let l = scalars.last, l == c { scalars.removeLast(); removed += 1 }
                return String(String.UnicodeScalarView(scalars))
            }
        case .sequence(let items):
            return items.reduce(tokens) { $1.apply($0) }
        }
    }

    static func parse(_ json: JSONObject) throws(TokenizerError) -> Decoder {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Replace":
            return .replace(try Pattern.parse(json["pattern"], field: "decoder.pattern"), json["content"] as? String ?? "")
        case "Strip":
            return .strip(content: json["content"] as? String ?? " ", start: json["start"] as? Int ?? 0,
                          stop: json["stop"] as? Int ?? 0)
        case "Sequence":
            var parsed: [Decoder] = []
            for item in json["decoders"] as? [JSONObject] ?? [] { parsed.append(try parse(item)) }
            return .sequence(parsed)
        default:
            throw .unsupported(file: "tokenizer.json", field: "decoder.type", value: type)
        }
    }
}

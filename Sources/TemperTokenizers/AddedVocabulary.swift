// Added tokens (HF `AddedVocabulary`): matched whole in the text before the model sees it, and never
// split. Tokens with `normalized: false` are found in the raw text, the others in normalized text;
// among tokens starting at the same place the longest wins (Aho-Corasick leftmost-longest).

/// One entry of `tokenizer.json`'s `added_tokens`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    public var normalized: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var singleWord: Bool

    public init(id: Int, content: String, special: Bool, normalized: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.normalized = normalized
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// A piece of input: either text still to tokenize or an added token found whole.
enum Segment {
    case text(String)
    case token(Int)
}

struct AddedTokenMatcher: Sendable {
    private final class Node: @unchecked Sendable {
        // Safety of @unchecked Sendable: nodes are built once in `init` and never mutated afterwards.
        var children: [UInt32: Node] = [:]
        var token: AddedToken?
    }

    private let root = Node()
    let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        for token in tokens where !token.content.isEmpty {
            var node = root
            for scalar in token.content.unicodeScalars {
                if let next = node.children[scalar.value] {
                    node = next
                } else {
                    let next = Node()
                    node.children[scalar.value] = next
                    node = next
                }
            }
            node.token = token
        }
        isEmpty = root.children.isEmpty
    }

    /// Cuts `text` around the added tokens it contains.
    func split(_ text: String) -> [Segment] {
        guard !isEmpty else { return [.text(text)] }
        let scalars = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var textStart = 0  // start of the pending plain text
        var i = 0
        while i < scalars.count {
            guard root.children[scalars[i].value] != nil else { i += 1; continue }
            // Longest token starting at i.
            var node = root
            var best: (token: AddedToken, end: Int)?
            var j = i
            while j < scalars.count, let next = node.children[scalars[j].value] {
                node = next
                j += 1
                if let token = node.token { best = (token, j) }
            }
            guard let (token, end) = best else { i += 1; continue }
            if token.singleWord {
                let before = i > 0 ? scalars[i - 1] : nil
                let after = end < scalars.count ? scalars[end] : nil
                if let before, Self.isWordCharacter(before) { i = end; continue }
                if let after, Self.isWordCharacter(after) { i = end; continue }
            }
            var start = i
            var stop = end
            if token.lstrip {
                while start > textStart, scalars[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rstrip {
                while stop < scalars.count, scalars[stop].properties.isWhitespace { stop += 1 }
            }
            if start > textStart {
                segments.append(.text(String(String.UnicodeScalarView(scalars[textStart..<start]))))
            }
            segments.append(.token(token.id))
            textStart = stop
            i = stop
        }
        if textStart < scalars.count {
            segments.append(.text(String(String.UnicodeScalarView(scalars[textStart...]))))
        }
        return segments
    }

    private static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        s == "_" || ScalarProperties.of(s) & (ScalarProperties.letter | ScalarProperties.number) != 0
            || s.properties.isAlphabetic
    }
}

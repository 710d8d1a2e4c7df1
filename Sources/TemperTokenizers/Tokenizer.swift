// A byte-level BPE tokenizer that encodes and decodes exactly as Hugging Face `tokenizers` does
// through transformers 5 (`AutoTokenizer.from_pretrained(folder)`), for the GPT-2, Llama 3, Qwen2/3
// and SmolLM families. Loading lives in Tokenizer+Loading.swift.

import Foundation

public final class Tokenizer: Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    /// Added tokens by id, and the two matchers (raw text, normalized text).
    let addedTokens: [Int: AddedToken]
    private let addedByContent: [String: Int]
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher

    public let bosToken: String?
    public let eosToken: String?
    public let padToken: String?
    public let unknownToken: String?
    /// `tokenizer_config.json`'s `chat_template` (a string, or the "default" of a list), or
    /// `chat_template.jinja` beside it.
    public let chatTemplate: String?
    /// Ids of the added tokens marked special (skipped by `decode(_:skipSpecialTokens: true)`).
    public let specialTokenIDs: Set<Int>
    /// Number of distinct ids: the model's vocabulary plus added tokens outside it (`len(tokenizer)`).
    public let vocabularySize: Int

    init(model: BPEModel, normalizer: Normalizer?, preTokenizer: PreTokenizer?, postProcessor: PostProcessor?,
         decoder: Decoder?, addedTokens: [AddedToken], bosToken: String?, eosToken: String?, padToken: String?,
         unknownToken: String?, chatTemplate: String?) {
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = decoder
        var byID: [Int: AddedToken] = [:]
        var byContent: [String: Int] = [:]
        for token in addedTokens {
            byID[token.id] = token
            byContent[token.content] = token.id
        }
        self.addedTokens = byID
        addedByContent = byContent
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.padToken = padToken
        self.unknownToken = unknownToken
        self.chatTemplate = chatTemplate
        specialTokenIDs = Set(addedTokens.filter(\.special).map(\.id))
        vocabularySize = model.tokens.count + byID.keys.filter { model.tokens[$0] == nil }.count
    }

    // MARK: Vocabulary

    public func id(for token: String) -> Int? {
        addedByContent[token] ?? model.vocabulary[token]
    }

    public func token(for id: Int) -> String? {
        addedTokens[id]?.content ?? model.tokens[id]
    }

    public var bosTokenID: Int? { bosToken.flatMap(id(for:)) }
    public var eosTokenID: Int? { eosToken.flatMap(id(for:)) }
    public var padTokenID: Int? { padToken.flatMap(id(for:)) }

    // MARK: Encoding

    /// The ids of `text`, with the post-processor's special tokens (e.g. BOS) when `addSpecialTokens`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for segment in rawMatcher.split(text) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                let normalized = normalizer?.apply(raw) ?? raw
                for inner in normalizedMatcher.split(normalized) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let piece):
                        let words = preTokenizer?.apply([piece]) ?? [piece]
                        for word in words where !word.isEmpty { model.tokenize(word, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }

    // MARK: Decoding

    /// The text of `ids`; unknown ids are skipped, as HF does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if skipSpecialTokens && specialTokenIDs.contains(id) { continue }
            if let token = token(for: id) { tokens.append(token) }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.apply(tokens).joined()
    }
}

/// Turns a stream of ids into text as it grows, holding back a token whose bytes do not yet form
/// complete UTF-8 (an emoji split over several byte tokens), like HF's `DecodeStream`.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var ids: [Int] = []
    private var prefix = ""
    private var prefixIndex = 0

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text newly completed by `id` (possibly empty).
    public mutating func append(_ id: Int) -> String {
        ids.append(id)
        let text = tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
        guard text.utf8.count > prefix.utf8.count, text.unicodeScalars.last != "\u{FFFD}",
              text.utf8.starts(with: prefix.utf8) else { return "" }
        let added = String(decoding: text.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
        // Keep only the tokens after the last emitted boundary as context.
        let consumed = ids.count - prefixIndex
        ids.removeFirst(prefixIndex)
        prefixIndex = consumed
        prefix = tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
        return added
    }

    /// Whatever is still held back (decoded with replacement characters if incomplete).
    public mutating func finish() -> String {
        let text = tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
        defer {
            ids = []
            prefix = ""
            prefixIndex = 0
        }
        guard text.utf8.count > prefix.utf8.count, text.utf8.starts(with: prefix.utf8) else { return "" }
        return String(decoding: text.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }
}

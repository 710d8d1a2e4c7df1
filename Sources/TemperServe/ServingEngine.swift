import Foundation
import TemperEngine
import TemperModels
import TemperTokenizers

/// What the server needs from a model and its engine: prompts in, event streams out, and the
/// tokenizer's view of single tokens for log-probs. `InferenceEngine` is the real one; tests pass a
/// scripted fake, so routing, validation and response shapes are tested without a model.
public protocol ServingEngine: Sendable {
    /// Tokens per sequence at most (prompt and output).
    var contextLength: Int { get }
    /// Names of the adapters requests may select through `model`.
    var adapterNames: [String] { get }
    /// Ids the tokenizer knows (valid `logit_bias` keys are below it).
    var vocabularySize: Int { get }
    /// Ids that end a sample unless the request ignores end of sequence.
    var endOfSequenceTokenIDs: Set<Int> { get }

    /// The prompt ids of a chat through the model's chat template, with the generation prompt.
    func encodeChat(_ messages: [LanguageModel.Message]) throws -> [Int]
    /// The ids of a completion prompt (with the tokenizer's BOS, as transformers and vLLM add it).
    func encodeCompletionPrompt(_ text: String) -> [Int]
    /// One token's bytes (the text it stands for, before UTF-8 decoding).
    func tokenBytes(_ id: Int) -> [UInt8]

    /// Queues a request; dropping the stream (or cancelling the task that iterates it) cancels it.
    func submit(_ request: EngineRequest) throws -> AsyncStream<EngineEvent>
    func metrics() -> EngineMetrics
    /// Stops admitting requests; returns once those in flight have finished.
    func shutdown() async
}

extension InferenceEngine: ServingEngine {
    public var vocabularySize: Int { model.tokenizer.vocabularySize }

    public var endOfSequenceTokenIDs: Set<Int> { model.eosTokenIDs }

    // `model` is a constant of the engine; the chat template and tokenizer it reads here are
    // immutable `Sendable` values, so these calls are safe from any task.
    public func encodeChat(_ messages: [LanguageModel.Message]) throws -> [Int] {
        try model.encodeChat(messages)
    }

    public func encodeCompletionPrompt(_ text: String) -> [Int] {
        model.tokenizer.encode(text, addSpecialTokens: true)
    }

    public func tokenBytes(_ id: Int) -> [UInt8] {
        TokenText.bytes(of: id, tokenizer: model.tokenizer)
    }
}

/// How a token is shown in log-probs: its bytes and a string for them.
enum TokenText {
    /// The bytes of one token. Special and added tokens are their content; byte-level BPE tokens
    /// (every family Temper loads) map back through GPT-2's byte alphabet; anything else is its
    /// UTF-8 spelling.
    static func bytes(of id: Int, tokenizer: Tokenizer) -> [UInt8] {
        guard let token = tokenizer.token(for: id) else { return [] }
        if tokenizer.specialTokenIDs.contains(id) { return Array(token.utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byteLevelByte(scalar) else { return Array(token.utf8) }
            bytes.append(byte)
        }
        return bytes
    }

    /// The string OpenAI shows for a token: its text when the bytes are valid UTF-8, else
    /// `bytes:\xNN…` (as OpenAI's legacy completions do for partial characters).
    static func string(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return "bytes:" + bytes.map { String(format: "\\x%02x", $0) }.joined()
    }

    /// The inverse of GPT-2's `bytes_to_unicode` table.
    private static let byteLevelTable: [Int16] = {
        var printable: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
        var mapped = printable
        var next = 0
        for byte in 0..<256 where !printable.contains(byte) {
            printable.append(byte)
            mapped.append(256 + next)
            next += 1
        }
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in zip(printable, mapped) { table[scalar] = Int16(byte) }
        return table
    }()

    private static func byteLevelByte(_ scalar: Unicode.Scalar) -> UInt8? {
        let value = Int(scalar.value)
        guard value < byteLevelTable.count, byteLevelTable[value] >= 0 else { return nil }
        return UInt8(byteLevelTable[value])
    }
}

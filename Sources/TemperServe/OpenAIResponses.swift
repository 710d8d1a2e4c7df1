import Foundation

// Response bodies in OpenAI's shapes. Optional fields that OpenAI sends as `null` are encoded as
// `null` (not left out), so strict clients see the same keys.

/// One token's log-probability and its most likely alternatives (raw model distribution).
struct TokenLogprob: Equatable, Sendable {
    struct Alternative: Equatable, Sendable {
        var token: String
        var bytes: [UInt8]
        var logprob: Float
    }

    var token: String
    var bytes: [UInt8]
    var logprob: Float
    var top: [Alternative]
}

/// Log-probs are finite in JSON: -inf (a banned or underflowed token) is written as -9999, as vLLM does.
func finiteLogprob(_ value: Float) -> Float { value.isFinite ? value : -9999 }

struct Usage: Encodable, Equatable {
    var promptTokens: Int
    var completionTokens: Int
    var cachedTokens: Int

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }

    struct Details: Encodable { var cached_tokens: Int }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(completionTokens, forKey: .completionTokens)
        try container.encode(promptTokens + completionTokens, forKey: .totalTokens)
        try container.encode(Details(cached_tokens: cachedTokens), forKey: .promptTokensDetails)
    }
}

// MARK: chat

/// `choice.logprobs` of a chat completion: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
struct ChatLogprobs: Encodable {
    var content: [TokenLogprob]

    struct Entry: Encodable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
        var top_logprobs: [Alternative]?
    }

    struct Alternative: Encodable {
        var token: String
        var logprob: Float
        var bytes: [UInt8]
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(
            content.map { item in
                Entry(
                    token: item.token, logprob: finiteLogprob(item.logprob), bytes: item.bytes,
                    top_logprobs: item.top.map {
                        Alternative(token: $0.token, logprob: finiteLogprob($0.logprob), bytes: $0.bytes)
                    })
            }, forKey: .content)
        try container.encodeNil(forKey: .refusal)
    }

    enum CodingKeys: String, CodingKey { case content, refusal }
}

struct ChatCompletion: Encodable {
    struct Message: Encodable {
        var role = "assistant"
        var content: String

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(role, forKey: .role)
            try container.encode(content, forKey: .content)
            try container.encodeNil(forKey: .refusal)
        }

        enum CodingKeys: String, CodingKey { case role, content, refusal }
    }

    struct Choice: Encodable {
        var index: Int
        var message: Message
        var logprobs: ChatLogprobs?
        var finishReason: String

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(message, forKey: .message)
            try container.encode(logprobs, forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }

        enum CodingKeys: String, CodingKey {
            case index, message, logprobs
            case finishReason = "finish_reason"
        }
    }

    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
}

struct ChatCompletionChunk: Encodable {
    struct Delta: Encodable {
        var role: String?
        var content: String?
    }

    struct Choice: Encodable {
        var index: Int
        var delta: Delta
        var logprobs: ChatLogprobs?
        var finishReason: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(delta, forKey: .delta)
            try container.encode(logprobs, forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }

        enum CodingKeys: String, CodingKey {
            case index, delta, logprobs
            case finishReason = "finish_reason"
        }
    }

    var id: String
    var created: Int
    var model: String
    var choices: [Choice]
    /// Present (null on all but the last chunk) only when `stream_options.include_usage` is set.
    var usage: Usage??

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode("chat.completion.chunk", forKey: .object)
        try container.encode(created, forKey: .created)
        try container.encode(model, forKey: .model)
        try container.encode(choices, forKey: .choices)
        if let usage { try container.encode(usage, forKey: .usage) }
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }
}

// MARK: legacy completions

/// `choice.logprobs` of a legacy completion: parallel arrays, alternatives as `{token: logprob}`.
struct CompletionLogprobs: Encodable {
    var content: [TokenLogprob]
    /// Characters (Unicode scalars) of the completion before each token's text.
    var textOffsets: [Int]

    struct TopMap: Encodable {
        var entries: [(String, Float)]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            for (token, logprob) in entries { try container.encode(finiteLogprob(logprob), forKey: AnyKey(token)) }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(content.map(\.token), forKey: .tokens)
        try container.encode(content.map { finiteLogprob($0.logprob) }, forKey: .tokenLogprobs)
        try container.encode(
            content.map { item in
                // The alternatives and the chosen token (as OpenAI and vLLM list it), one entry per string.
                var seen = Set<String>()
                var entries: [(String, Float)] = []
                for (token, logprob) in item.top.map({ ($0.token, $0.logprob) }) + [(item.token, item.logprob)]
                where seen.insert(token).inserted {
                    entries.append((token, logprob))
                }
                return TopMap(entries: entries)
            }, forKey: .topLogprobs)
        try container.encode(textOffsets, forKey: .textOffset)
    }

    enum CodingKeys: String, CodingKey {
        case tokens
        case tokenLogprobs = "token_logprobs"
        case topLogprobs = "top_logprobs"
        case textOffset = "text_offset"
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct Completion: Encodable {
    struct Choice: Encodable {
        var index: Int
        var text: String
        var logprobs: CompletionLogprobs?
        var finishReason: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(text, forKey: .text)
            try container.encode(logprobs, forKey: .logprobs)
            try container.encode(finishReason, forKey: .finishReason)
        }

        enum CodingKeys: String, CodingKey {
            case index, text, logprobs
            case finishReason = "finish_reason"
        }
    }

    var id: String
    var created: Int
    var model: String
    var choices: [Choice]
    /// Always present on a whole response; on stream chunks only with `include_usage` (null but last).
    var usage: Usage??

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode("text_completion", forKey: .object)
        try container.encode(created, forKey: .created)
        try container.encode(model, forKey: .model)
        try container.encode(choices, forKey: .choices)
        if let usage { try container.encode(usage, forKey: .usage) }
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }
}

// MARK: models

struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "temper"
        /// The base model of an adapter (vLLM's `parent`), null for the base itself.
        var parent: String?
        var max_model_len: Int

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(object, forKey: .object)
            try container.encode(created, forKey: .created)
            try container.encode(owned_by, forKey: .owned_by)
            try container.encode(parent, forKey: .parent)
            try container.encode(max_model_len, forKey: .max_model_len)
        }

        enum CodingKeys: String, CodingKey { case id, object, created, owned_by, parent, max_model_len }
    }

    var object = "list"
    var data: [Model]
}

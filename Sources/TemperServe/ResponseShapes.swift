import Foundation

/// How one endpoint writes choice updates: as stream chunks or as one whole response.
protocol ResponseShape: Sendable {
    /// Chunks sent before any token.
    func openingChunks(choices: Int) -> [[UInt8]]
    /// The chunk for one update (nil: nothing to send); `textOffset` is the characters of the
    /// choice's text before this update.
    func chunk(_ update: ChoiceUpdate, textOffset: Int) -> [UInt8]?
    /// The last chunk, with no choices and the usage (`stream_options.include_usage`).
    func usageChunk(_ usage: Usage) -> [UInt8]
    func whole(_ choices: [CollectedChoice], usage: Usage) -> [UInt8]
}

/// Identity of one response: every chunk of a stream repeats it.
struct ResponseIdentity: Sendable {
    var id: String
    var created: Int
    var model: String

    init(prefix: String, model: String) {
        id = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        created = Int(Date().timeIntervalSince1970)
        self.model = model
    }
}

/// /v1/chat/completions: `chat.completion` and `chat.completion.chunk`.
struct ChatShape: ResponseShape {
    var identity: ResponseIdentity
    var includeUsage: Bool
    var logprobsRequested: Bool

    private var usageField: Usage?? { includeUsage ? .some(nil) : nil }

    func chunk(choices: [ChatCompletionChunk.Choice], usage: Usage?? = nil) -> [UInt8] {
        JSONText.encode(
            ChatCompletionChunk(
                id: identity.id, created: identity.created, model: identity.model, choices: choices,
                usage: usage ?? usageField))
    }

    func openingChunks(choices: Int) -> [[UInt8]] {
        (0..<choices).map { index in
            chunk(choices: [.init(index: index, delta: .init(role: "assistant", content: ""))])
        }
    }

    func chunk(_ update: ChoiceUpdate, textOffset _: Int) -> [UInt8]? {
        switch update {
        case .token(let index, let text, let logprob):
            return chunk(choices: [
                .init(
                    index: index, delta: .init(content: text),
                    logprobs: logprob.map { ChatLogprobs(content: [$0]) })
            ])
        case .finish(let index, let text, let reason):
            return chunk(choices: [
                .init(index: index, delta: .init(content: text.isEmpty ? nil : text), finishReason: reason)
            ])
        }
    }

    func usageChunk(_ usage: Usage) -> [UInt8] {
        chunk(choices: [], usage: .some(.some(usage)))
    }

    func whole(_ choices: [CollectedChoice], usage: Usage) -> [UInt8] {
        JSONText.encode(
            ChatCompletion(
                id: identity.id, created: identity.created, model: identity.model,
                choices: choices.enumerated().map { index, choice in
                    .init(
                        index: index, message: .init(content: choice.text),
                        logprobs: logprobsRequested ? ChatLogprobs(content: choice.logprobs) : nil,
                        finishReason: choice.finishReason)
                }, usage: usage))
    }
}

/// /v1/completions: `text_completion`, whole or as chunks.
struct CompletionShape: ResponseShape {
    var identity: ResponseIdentity
    var includeUsage: Bool
    var logprobsRequested: Bool

    private var usageField: Usage?? { includeUsage ? .some(nil) : nil }

    func chunk(choices: [Completion.Choice], usage: Usage?? = nil) -> [UInt8] {
        JSONText.encode(
            Completion(
                id: identity.id, created: identity.created, model: identity.model, choices: choices,
                usage: usage ?? usageField))
    }

    func openingChunks(choices _: Int) -> [[UInt8]] { [] }

    func chunk(_ update: ChoiceUpdate, textOffset: Int) -> [UInt8]? {
        switch update {
        case .token(let index, let text, let logprob):
            return chunk(choices: [
                .init(
                    index: index, text: text,
                    logprobs: logprob.map { CompletionLogprobs(content: [$0], textOffsets: [textOffset]) })
            ])
        case .finish(let index, let text, let reason):
            return chunk(choices: [.init(index: index, text: text, finishReason: reason)])
        }
    }

    func usageChunk(_ usage: Usage) -> [UInt8] {
        chunk(choices: [], usage: .some(.some(usage)))
    }

    func whole(_ choices: [CollectedChoice], usage: Usage) -> [UInt8] {
        JSONText.encode(
            Completion(
                id: identity.id, created: identity.created, model: identity.model,
                choices: choices.enumerated().map { index, choice in
                    .init(
                        index: index, text: choice.text,
                        logprobs: logprobsRequested
                            ? CompletionLogprobs(content: choice.logprobs, textOffsets: choice.textOffsets) : nil,
                        finishReason: choice.finishReason)
                }, usage: .some(.some(usage))))
    }
}

/// Server-sent events as OpenAI streams them: `data: <json>\n\n`, ending with `data: [DONE]\n\n`.
enum ServerSentEvents {
    static func event(_ json: [UInt8]) -> [UInt8] {
        Array("data: ".utf8) + json + Array("\n\n".utf8)
    }

    static let done = Array("data: [DONE]\n\n".utf8)
}

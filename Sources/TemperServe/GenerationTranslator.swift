import Foundation
import TemperEngine

/// What a response writes for one choice, in order: tokens (text and, if asked, log-probs), then
/// one finish.
enum ChoiceUpdate: Equatable, Sendable {
    case token(choice: Int, text: String, logprob: TokenLogprob?)
    case finish(choice: Int, text: String, reason: String)
}

/// Turns one request's engine events into choice updates and counts its tokens. Tokens that end a
/// sample (end of sequence) are counted but not shown: no text, no log-prob entry, as OpenAI.
struct GenerationTranslator {
    let plan: GenerationPlan
    let tokenBytes: @Sendable (Int) -> [UInt8]
    private(set) var promptTokens: Int
    private(set) var cachedTokens = 0
    private(set) var completionTokens = 0
    private(set) var finished: Set<Int> = []
    private(set) var sawToken = false

    init(plan: GenerationPlan, tokenBytes: @escaping @Sendable (Int) -> [UInt8]) {
        self.plan = plan
        self.tokenBytes = tokenBytes
        promptTokens = plan.request.prompt.count
    }

    var usage: Usage {
        Usage(promptTokens: promptTokens, completionTokens: completionTokens, cachedTokens: cachedTokens)
    }

    static func finishReason(_ reason: EngineFinishReason) -> String {
        switch reason {
        case .stop: "stop"
        case .length: "length"
        case .cancelled: "abort"
        }
    }

    mutating func updates(for event: EngineEvent) -> [ChoiceUpdate] {
        switch event {
        case .started(let prompt, let cached):
            promptTokens = prompt
            cachedTokens = cached
            return []
        case .token(let token):
            sawToken = true
            guard !finished.contains(token.sample) else { return [] }
            if plan.terminalTokenIDs.contains(token.token) {
                return token.text.isEmpty ? [] : [.token(choice: token.sample, text: token.text, logprob: nil)]
            }
            let logprob = plan.logprobs.map { _ in logprobEntry(token) }
            if token.text.isEmpty && logprob == nil { return [] }
            return [.token(choice: token.sample, text: token.text, logprob: logprob)]
        case .finished(let sample):
            guard finished.insert(sample.sample).inserted else { return [] }
            completionTokens += sample.tokens.count
            return [.finish(choice: sample.sample, text: sample.text, reason: Self.finishReason(sample.reason))]
        }
    }

    /// Finishes for choices the engine's stream ended without finishing (it should not happen).
    mutating func unfinished() -> [ChoiceUpdate] {
        (0..<plan.request.sampleCount).filter { finished.insert($0).inserted }.map {
            .finish(choice: $0, text: "", reason: "abort")
        }
    }

    func logprobEntry(_ token: GeneratedToken) -> TokenLogprob {
        let bytes = tokenBytes(token.token)
        return TokenLogprob(
            token: TokenText.string(bytes), bytes: bytes, logprob: token.rawLogProb,
            top: token.alternatives.map { alternative in
                let bytes = tokenBytes(alternative.token)
                return .init(token: TokenText.string(bytes), bytes: bytes, logprob: alternative.logProb)
            })
    }
}

/// One choice of a whole (non-streamed) response.
struct CollectedChoice: Sendable, Equatable {
    var text = ""
    var logprobs: [TokenLogprob] = []
    /// Characters of `text` before each log-prob entry's token.
    var textOffsets: [Int] = []
    var finishReason = "abort"
    private var characters = 0

    init() {}

    mutating func apply(_ update: ChoiceUpdate) {
        switch update {
        case .token(_, let piece, let logprob):
            if let logprob {
                logprobs.append(logprob)
                textOffsets.append(characters)
            }
            append(piece)
        case .finish(_, let piece, let reason):
            append(piece)
            finishReason = reason
        }
    }

    private mutating func append(_ piece: String) {
        text += piece
        characters += piece.unicodeScalars.count
    }

    static func collect(_ updates: [ChoiceUpdate], into choices: inout [CollectedChoice]) {
        for update in updates {
            switch update {
            case .token(let index, _, _), .finish(let index, _, _):
                if choices.indices.contains(index) { choices[index].apply(update) }
            }
        }
    }
}

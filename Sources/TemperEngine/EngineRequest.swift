import Foundation
import TemperModels

/// One generation request to the engine: a tokenized prompt and how to continue it.
public struct EngineRequest: Sendable {
    public var prompt: [Int]
    public var sampling: RequestSamplingParameters
    /// New tokens at most, per sample.
    public var maxNewTokens: Int
    /// Samples drawn from the prompt (OpenAI's `n`, GRPO's group): the prompt is prefilled once and
    /// its KV blocks are shared by all of them. Sample i uses seed `seed + i`.
    public var sampleCount: Int
    public var seed: UInt64
    /// Ids that end a sample besides the model's end-of-sequence ids (kept in `tokens`, not in text).
    public var stopTokenIDs: Set<Int>
    /// Texts that end a sample; the text is cut before the stop.
    public var stopStrings: [String]
    /// A named LoRA adapter registered with the engine, or nil for the base model.
    public var adapter: String?
    /// Stop at the model's end-of-sequence ids (off: only `stopTokenIDs`, stops and length).
    public var stopAtEndOfSequence: Bool

    public init(
        prompt: [Int], sampling: RequestSamplingParameters = .greedy, maxNewTokens: Int = 256,
        sampleCount: Int = 1, seed: UInt64 = 0, stopTokenIDs: Set<Int> = [], stopStrings: [String] = [],
        adapter: String? = nil, stopAtEndOfSequence: Bool = true
    ) {
        self.prompt = prompt
        self.sampling = sampling
        self.maxNewTokens = maxNewTokens
        self.sampleCount = sampleCount
        self.seed = seed
        self.stopTokenIDs = stopTokenIDs
        self.stopStrings = stopStrings
        self.adapter = adapter
        self.stopAtEndOfSequence = stopAtEndOfSequence
    }
}

/// Why a sample ended (OpenAI's `finish_reason` values).
public enum EngineFinishReason: String, Sendable {
    /// An end-of-sequence id, a stop id or a stop string.
    case stop
    /// `maxNewTokens`, or the context ran out.
    case length
    /// The request was cancelled (its stream was dropped or `cancel` was called).
    case cancelled
}

/// One generated token of one sample.
public struct GeneratedToken: Sendable {
    public var sample: Int
    public var token: Int
    /// The text this token completed, after stop strings are held back (may be empty).
    public var text: String
    /// Log-probability under the sampling distribution and under the raw model, and the top
    /// alternatives of the raw one (as many as `sampling.alternatives`).
    public var logProb: Float
    public var rawLogProb: Float
    public var alternatives: [TokenLogProb]

    public init(sample: Int, token: Int, text: String, logProb: Float, rawLogProb: Float, alternatives: [TokenLogProb]) {
        self.sample = sample
        self.token = token
        self.text = text
        self.logProb = logProb
        self.rawLogProb = rawLogProb
        self.alternatives = alternatives
    }
}

/// The end of one sample.
public struct FinishedSample: Sendable {
    public var sample: Int
    public var reason: EngineFinishReason
    /// Text still held back when the sample ended (a partial stop-string match that did not stop).
    public var text: String
    /// Every generated id, the final stop id included.
    public var tokens: [Int]
    /// The stop string that ended it, if any.
    public var stop: String?

    public init(sample: Int, reason: EngineFinishReason, text: String, tokens: [Int], stop: String?) {
        self.sample = sample
        self.reason = reason
        self.text = text
        self.tokens = tokens
        self.stop = stop
    }
}

/// What the stream of one request delivers, in order; it ends after every sample has finished.
public enum EngineEvent: Sendable {
    /// The prompt is in the cache; how many of its tokens were found in the prefix cache.
    case started(promptTokens: Int, cachedTokens: Int)
    case token(GeneratedToken)
    case finished(FinishedSample)
}

/// Why the engine refused a request.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case emptyPrompt
    case promptTooLong(tokens: Int, limit: Int)
    case invalidParameter(String)
    case unknownAdapter(String)
    /// Too many requests waiting; retry after about `retryAfter` seconds.
    case queueFull(retryAfter: Int)
    /// The engine is stopping and takes no new requests.
    case shuttingDown

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt has no tokens"
        case .promptTooLong(let tokens, let limit):
            "the prompt has \(tokens) tokens; this model's context allows \(limit) (prompt and max_tokens together)"
        case .invalidParameter(let message): message
        case .unknownAdapter(let name): "no adapter named '\(name)' is loaded"
        case .queueFull(let seconds): "the request queue is full; retry in \(seconds) s"
        case .shuttingDown: "the server is shutting down"
        }
    }
}

/// A snapshot of the engine's load and totals (what `/metrics` exports).
public struct EngineMetrics: Sendable {
    public var runningSequences = 0
    public var waitingRequests = 0
    public var kvBlocksUsed = 0
    public var kvBlocksTotal = 0
    public var blockSize = 0
    /// Blocks held only by the prefix cache (reusable, evicted least recently used first).
    public var kvBlocksCached = 0
    public var requestsFinished = 0
    public var requestsCancelled = 0
    public var promptTokens = 0
    public var cachedPromptTokens = 0
    public var generatedTokens = 0
    public var decodeSteps = 0
    public var decodeSeconds = 0.0
    public var prefillSeconds = 0.0

    public init() {}
}

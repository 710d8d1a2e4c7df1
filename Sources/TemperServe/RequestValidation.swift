import Foundation
import TemperEngine
import TemperModels

/// A validated request: what goes to the engine, and what the response needs to know.
struct GenerationPlan: Sendable {
    var request: EngineRequest
    /// The `model` the response names.
    var modelName: String
    var stream: Bool
    var includeUsage: Bool
    /// Alternatives per token when log-probs were asked for (0: the chosen token only), else nil.
    var logprobs: Int?
    /// Ids whose token ends a sample and is left out of log-probs and text.
    var terminalTokenIDs: Set<Int>
}

/// The checks OpenAI makes on sampling fields, with its error wording, and the engine request they
/// become.
enum RequestValidation {
    /// `max_tokens` when a request has none.
    enum DefaultMaxTokens {
        /// The context left after the prompt, at most `cap` (chat completions).
        case remainingContext(cap: Int)
        /// A fixed number, at most the context left (legacy completions: OpenAI's 16).
        case fixed(Int)
    }

    /// The base model (nil adapter) or an adapter, by the request's `model`; no `model` means the base.
    static func resolveModel(
        _ name: String?, configuration: ServeConfiguration, engine: some ServingEngine
    ) throws(APIError) -> (name: String, adapter: String?) {
        guard let name, name != configuration.servedModelName else { return (configuration.servedModelName, nil) }
        guard engine.adapterNames.contains(name) else { throw .modelNotFound(name) }
        return (name, name)
    }

    static func plan(
        sampling fields: SamplingFields, prompt: [Int], promptParam: String, model: (name: String, adapter: String?),
        logprobs: Int?, defaultMaxTokens: DefaultMaxTokens, configuration: ServeConfiguration,
        engine: some ServingEngine
    ) throws(APIError) -> GenerationPlan {
        var sampling = RequestSamplingParameters()
        let temperature = fields.temperature ?? 1
        try check("temperature", temperature, 0, 2)
        sampling.temperature = Float(temperature)
        let topP = fields.topP ?? 1
        try check("top_p", topP, 0, 1)
        // top_p = 0 keeps only the most likely token: greedy.
        if topP == 0 { sampling.temperature = 0 } else { sampling.topP = Float(topP) }
        if let topK = fields.topK {
            guard topK >= -1 else { throw below("top_k", Double(topK), -1, integer: true) }
            sampling.topK = max(topK, 0)
        }
        if let minP = fields.minP {
            try check("min_p", minP, 0, 1)
            sampling.minP = Float(minP)
        }
        if let penalty = fields.repetitionPenalty {
            guard penalty > 0, penalty.isFinite else {
                throw .invalid(
                    "Invalid 'repetition_penalty': expected a positive number, but got \(penalty) instead.",
                    param: "repetition_penalty", code: "invalid_value")
            }
            sampling.repetitionPenalty = Float(penalty)
        }
        if let presence = fields.presencePenalty {
            try check("presence_penalty", presence, -2, 2)
            sampling.presencePenalty = Float(presence)
        }
        if let frequency = fields.frequencyPenalty {
            try check("frequency_penalty", frequency, -2, 2)
            sampling.frequencyPenalty = Float(frequency)
        }
        for (key, bias) in fields.logitBias ?? [:] {
            guard let token = Int(key), (0..<engine.vocabularySize).contains(token) else {
                throw .invalid(
                    "Invalid key in 'logit_bias': '\(key)' is not a token id of this model (0..<\(engine.vocabularySize)).",
                    param: "logit_bias", code: "invalid_value")
            }
            guard (-100...100).contains(bias) else {
                throw .invalid(
                    "Invalid value for 'logit_bias' of token \(key): expected a value in [-100, 100], but got \(bias) instead.",
                    param: "logit_bias", code: "invalid_value")
            }
            sampling.logitBias[token] = Float(bias)
        }
        if let logprobs {
            guard (0...20).contains(logprobs) else {
                throw .invalid(
                    "Invalid 'logprobs': expected a value in [0, 20], but got \(logprobs) instead.",
                    param: "logprobs", code: "invalid_value")
            }
            sampling.alternatives = logprobs
        }
        let n = fields.n ?? 1
        guard n >= 1 else { throw below("n", Double(n), 1, integer: true) }
        guard n <= configuration.maxSamples else { throw above("n", Double(n), Double(configuration.maxSamples), integer: true) }
        let stops = fields.stop ?? []
        guard stops.count <= 16 else {
            throw .invalid(
                "Invalid 'stop': at most 16 stop sequences are supported, got \(stops.count).", param: "stop",
                code: "invalid_value")
        }
        guard !stops.contains("") else {
            throw .invalid("Invalid 'stop': stop sequences must not be empty.", param: "stop", code: "invalid_value")
        }

        guard !prompt.isEmpty else {
            throw .invalid("The prompt has no tokens.", param: promptParam, code: "empty_prompt")
        }
        let context = engine.contextLength
        guard prompt.count < context else {
            throw .contextLengthExceeded(limit: context, prompt: prompt.count, completion: nil, param: promptParam)
        }
        let remaining = context - prompt.count
        let maxTokens: Int
        if let requested = fields.maxTokens {
            guard requested >= 1 else { throw below(fields.maxTokensParam, Double(requested), 1, integer: true) }
            guard requested <= remaining else {
                throw .contextLengthExceeded(limit: context, prompt: prompt.count, completion: requested, param: promptParam)
            }
            maxTokens = requested
        } else {
            switch defaultMaxTokens {
            case .remainingContext(let cap): maxTokens = min(remaining, cap)
            case .fixed(let count): maxTokens = min(remaining, count)
            }
        }

        let stopAtEndOfSequence = !(fields.ignoreEOS ?? false)
        let seed = fields.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max)
        let request = EngineRequest(
            prompt: prompt, sampling: sampling, maxNewTokens: maxTokens, sampleCount: n, seed: seed,
            stopStrings: stops, adapter: model.adapter, stopAtEndOfSequence: stopAtEndOfSequence)
        return GenerationPlan(
            request: request, modelName: model.name, stream: fields.stream ?? false,
            includeUsage: fields.includeUsage ?? false, logprobs: logprobs,
            terminalTokenIDs: stopAtEndOfSequence ? engine.endOfSequenceTokenIDs : [])
    }

    /// Token-id prompts must name ids of this model.
    static func checkTokenIDs(_ ids: [Int], engine: some ServingEngine) throws(APIError) {
        if let bad = ids.first(where: { !(0..<engine.vocabularySize).contains($0) }) {
            throw .invalid(
                "Invalid token id \(bad) in 'prompt': this model's ids are 0..<\(engine.vocabularySize).",
                param: "prompt", code: "invalid_value")
        }
    }

    static func check(_ param: String, _ value: Double, _ lower: Double, _ upper: Double) throws(APIError) {
        guard value.isFinite, value >= lower else { throw below(param, value, lower, integer: false) }
        guard value <= upper else { throw above(param, value, upper, integer: false) }
    }

    static func below(_ param: String, _ value: Double, _ lower: Double, integer: Bool) -> APIError {
        let kind = integer ? "integer" : "decimal"
        return .invalid(
            "Invalid '\(param)': \(kind) below minimum value. Expected a value >= \(show(lower)), but got "
                + "\(show(value)) instead.",
            param: param, code: "\(kind)_below_min_value")
    }

    static func above(_ param: String, _ value: Double, _ upper: Double, integer: Bool) -> APIError {
        let kind = integer ? "integer" : "decimal"
        return .invalid(
            "Invalid '\(param)': \(kind) above maximum value. Expected a value <= \(show(upper)), but got "
                + "\(show(value)) instead.",
            param: param, code: "\(kind)_above_max_value")
    }

    static func show(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

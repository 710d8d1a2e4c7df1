import Foundation
import TemperCore

/// What to generate and when to stop.
public struct GenerationParameters: Sendable {
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// Generation of a row ends after one of these tokens (it is kept in the output ids).
    public var stopTokenIDs: Set<Int>
    /// Generation of a row ends when its decoded text contains one of these (the text is cut
    /// before it); needs a decoder.
    public var stopStrings: [String]
    /// Prompt tokens run per forward pass during prefill.
    public var prefillChunk: Int

    public init(
        maxNewTokens: Int = 256, sampling: SamplingParameters = .greedy, seed: UInt64 = 0,
        stopTokenIDs: Set<Int> = [], stopStrings: [String] = [], prefillChunk: Int = 512
    ) {
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.seed = seed
        self.stopTokenIDs = stopTokenIDs
        self.stopStrings = stopStrings
        self.prefillChunk = prefillChunk
    }
}

/// Why a row stopped.
public enum FinishReason: String, Sendable {
    case stopToken = "stop"
    case stopString = "stop_string"
    case length
}

/// One prompt's output.
public struct GenerationOutput: Sendable {
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// The decoded text, cut before a stop string (nil without a decoder).
    public var text: String?
}

/// Timing of one `generate` call.
public struct GenerationStatistics: Sendable {
    public var promptTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0

    public init(promptTokens: Int = 0) { self.promptTokens = promptTokens }

    public var prefillTokensPerSecond: Double { Double(promptTokens) / max(prefillSeconds, 1e-9) }
    public var decodeTokensPerSecond: Double { Double(generatedTokens) / max(decodeSeconds, 1e-9) }
}

/// Batched autoregressive generation with a KV cache.
///
/// Prompts of different lengths are left-padded: padding tokens get segment id -1 so no token
/// attends to them, and positions count real tokens only, so each row computes exactly what it
/// would alone.
public struct Generator {
    public let model: CausalLanguageModel
    /// Decodes generated ids for stop strings and `GenerationOutput.text`.
    public var decode: (([Int]) -> String)?

    public init(model: CausalLanguageModel, decode: (([Int]) -> String)? = nil) {
        self.model = model
        self.decode = decode
    }

    /// Generates continuations of `prompts`; `onToken(row, token)` streams each new token and may
    /// return false to stop everything.
    public func generate(
        prompts: [[Int]], parameters: GenerationParameters,
        statistics: UnsafeMutablePointer<GenerationStatistics>? = nil,
        onToken: ((Int, Int) -> Bool)? = nil
    ) -> [GenerationOutput] {
        precondition(!prompts.isEmpty && prompts.allSatisfy { !$0.isEmpty }, "generate: empty prompt")
        let batch = prompts.count
        let width = prompts.map(\.count).max()!
        var stats = GenerationStatistics(promptTokens: prompts.reduce(0) { $0 + $1.count })
        let padded = Self.leftPadded(prompts, width: width)
        let cache = KVCache(model: model)
        var samplers = (0..<batch).map {
            TokenSampler(parameters: parameters.sampling, seed: parameters.seed &+ UInt64($0))
        }

        // Prefill in chunks; only the last position's logits are needed.
        let start = Date()
        var lastLogits: Tensor?
        var chunkStart = 0
        while chunkStart < width {
            let chunkEnd = min(width, chunkStart + max(1, parameters.prefillChunk))
            let ids = padded.ids[0..., chunkStart..<chunkEnd]
            let layout = TokenLayout(
                positions: padded.positions[0..., chunkStart..<chunkEnd],
                segments: padded.hasPadding ? padded.segments[0..., chunkStart..<chunkEnd] : nil,
                sharedOffset: padded.hasPadding ? nil : chunkStart)
            let hidden = model.hiddenStates(ids, layout: layout, cache: cache)
            if chunkEnd == width {
                lastLogits = model.logits(hidden[0..., (chunkEnd - chunkStart - 1)...])
                eval([lastLogits!] + cache.tensors)
            } else {
                eval(cache.tensors)
            }
            chunkStart = chunkEnd
        }
        stats.prefillSeconds = Date().timeIntervalSince(start)

        let decodeStart = Date()
        var outputs = Array(repeating: [Int](), count: batch)
        var finished = [FinishReason?](repeating: nil, count: batch)
        var texts = [String?](repeating: nil, count: batch)
        var nextPositions = prompts.map(\.count)
        let vocabulary = model.configuration.vocabularySize
        var cancelled = false
        for step in 0..<parameters.maxNewTokens {
            let rows = lastLogits!.reshaped(batch, -1).asType(.float32).toArray(Float.self)
            var nextTokens = [Int32](repeating: 0, count: batch)
            for row in 0..<batch where finished[row] == nil {
                let logits = Array(rows[(row * vocabulary)..<((row + 1) * vocabulary)])
                let token = samplers[row].next(logits: logits, history: prompts[row] + outputs[row])
                outputs[row].append(token)
                nextTokens[row] = Int32(token)
                stats.generatedTokens += 1
                if onToken?(row, token) == false { cancelled = true }
                if parameters.stopTokenIDs.contains(token) {
                    finished[row] = .stopToken
                } else if !parameters.stopStrings.isEmpty, let decode {
                    let text = decode(outputs[row])
                    if let range = parameters.stopStrings.compactMap({ text.range(of: $0) })
                        .min(by: { $0.lowerBound < $1.lowerBound }) {
                        finished[row] = .stopString
                        texts[row] = String(text[..<range.lowerBound])
                    }
                }
            }
            if cancelled || finished.allSatisfy({ $0 != nil }) || step == parameters.maxNewTokens - 1 { break }
            let ids = Tensor(nextTokens, shape: [batch, 1])
            let positions = Tensor(nextPositions.map { Int32($0) }, shape: [batch, 1])
            let shared = Set(nextPositions).count == 1 ? nextPositions[0] : nil
            lastLogits = model(ids, layout: TokenLayout(positions: positions, sharedOffset: shared), cache: cache)
            for row in 0..<batch { nextPositions[row] += 1 }
            eval([lastLogits!] + cache.tensors)
        }
        stats.decodeSeconds = Date().timeIntervalSince(decodeStart)
        statistics?.pointee = stats
        return (0..<batch).map { row in
            let text = texts[row] ?? decode?(outputs[row])
            return GenerationOutput(tokens: outputs[row], finishReason: finished[row] ?? .length, text: text)
        }
    }

    /// Prompts left-padded with token 0 to `width`, with positions counting real tokens and
    /// segment ids (-1 on padding).
    static func leftPadded(_ prompts: [[Int]], width: Int)
        -> (ids: Tensor, positions: Tensor, segments: Tensor, hasPadding: Bool)
    {
        var ids = [Int32](), positions = [Int32](), segments = [Int32]()
        for prompt in prompts {
            let pad = width - prompt.count
            ids += Array(repeating: 0, count: pad) + prompt.map { Int32($0) }
            positions += Array(repeating: 0, count: pad) + (0..<prompt.count).map { Int32($0) }
            segments += Array(repeating: -1, count: pad) + Array(repeating: 0, count: prompt.count)
        }
        let shape = [prompts.count, width]
        return (Tensor(ids, shape: shape), Tensor(positions, shape: shape), Tensor(segments, shape: shape),
                prompts.contains { $0.count != width })
    }
}

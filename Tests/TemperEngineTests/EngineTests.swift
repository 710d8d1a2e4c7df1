import Foundation
import TemperCore
import TemperEngine
import TemperModels
import TemperTestSupport
import TemperTokenizers
import Testing

/// The committed tiny models with transformers' greedy continuations; Qwen3's tokenizer (setup's
/// real files) only turns their ids into text.
enum EngineFixtures {
    static let names = ["llama-tied-llama3rope", "qwen2-untied-bias", "qwen3-qknorm-sharded"]

    static func folder(_ name: String) -> URL { TestPaths.fixtures.appendingPathComponent("models/\(name)") }

    static func model(_ name: String) throws -> LanguageModel {
        let network = try CausalLanguageModel.load(directory: folder(name))
        let tokenizer = try Tokenizer.load(directory: TestPaths.assets.appendingPathComponent("qwen3-tokenizer"))
        return try LanguageModel(network: network, tokenizer: tokenizer, directory: folder(name))
    }

    static func expected(_ name: String) throws -> (prompts: [[Int]], continuations: [[Int]]) {
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: folder(name).appendingPathComponent("expected.json"))) as! [String: Any]
        return (json["prompts"] as! [[Int]], json["greedy_continuations"] as! [[Int]])
    }

    /// Runs requests concurrently through the engine's streams; each request's samples' tokens.
    static func run(_ engine: InferenceEngine, _ requests: [EngineRequest]) async throws -> [[[Int]]] {
        let streams = try requests.map { try engine.submit($0) }
        return try await withThrowingTaskGroup(of: (Int, [[Int]]).self) { group in
            for (index, stream) in streams.enumerated() {
                let count = requests[index].sampleCount
                group.addTask {
                    var tokens = Array(repeating: [Int](), count: count)
                    for await event in stream {
                        if case .finished(let sample) = event { tokens[sample.sample] = sample.tokens }
                    }
                    return (index, tokens)
                }
            }
            var results = Array(repeating: [[Int]](), count: requests.count)
            for try await (index, tokens) in group { results[index] = tokens }
            return results
        }
    }

    /// Waits until the engine thread has published an idle state.
    static func settled(_ engine: InferenceEngine) async throws -> EngineMetrics {
        for _ in 0..<200 {
            let metrics = engine.metrics()
            if metrics.runningSequences == 0 && metrics.waitingRequests == 0 { return metrics }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        return engine.metrics()
    }
}

@Suite("Inference engine", .serialized)
struct InferenceEngineTests {
    @Test("greedy answers equal transformers', every prompt in flight at once", arguments: EngineFixtures.names)
    func greedyMatchesTransformers(name: String) async throws {
        let lm = try EngineFixtures.model(name)
        let expected = try EngineFixtures.expected(name)
        // Small blocks so the prompts span several, and a short prefill chunk so they take several steps.
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4, prefillChunk: 5))
        let requests = expected.prompts.map {
            EngineRequest(prompt: $0, maxNewTokens: 20, stopTokenIDs: [], stopAtEndOfSequence: false)
        }
        let outputs = try await EngineFixtures.run(engine, requests + requests)
        #expect(outputs.map { $0[0] } == expected.continuations + expected.continuations)
        let metrics = try await EngineFixtures.settled(engine)
        #expect(metrics.kvBlocksUsed == 0)
        #expect(metrics.requestsFinished == 4)
        #expect(metrics.generatedTokens == 80)
    }

    @Test("log-probs of sampled tokens and their alternatives equal a teacher-forced forward within 1e-5")
    func logProbsMatchTeacherForcing() async throws {
        let lm = try EngineFixtures.model("qwen3-qknorm-sharded")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4))
        let prompt = [5, 17, 99, 3, 250, 42, 7]
        let request = EngineRequest(
            prompt: prompt, sampling: .init(temperature: 0.9, topP: 0.95, alternatives: 3), maxNewTokens: 16,
            seed: 11, stopAtEndOfSequence: false)
        var sampled: [GeneratedToken] = []
        for await event in try engine.submit(request) {
            if case .token(let token) = event { sampled.append(token) }
        }
        #expect(sampled.count == 16)
        let ids = prompt + sampled.map(\.token)
        let logits = lm.network(Tensor(ids.map(Int32.init), shape: [1, ids.count]))[0]
        let logProbs = (logits - logits.logSumExp(axes: [-1], keepDims: true)).toArray(Float.self)
        let vocabulary = lm.network.configuration.vocabularySize
        for (index, token) in sampled.enumerated() {
            let row = (prompt.count - 1 + index) * vocabulary
            #expect(abs(token.rawLogProb - logProbs[row + token.token]) < 1e-5)
            #expect(token.alternatives.count == 3)
            for alternative in token.alternatives {
                #expect(abs(alternative.logProb - logProbs[row + alternative.token]) < 1e-5)
            }
            let best = (0..<vocabulary).max { logProbs[row + $0] < logProbs[row + $1] }!
            #expect(token.alternatives.first?.token == best)
        }
    }

    @Test("n samples share the prompt's blocks and each equals a lone request with its seed")
    func forkedSamples() async throws {
        let lm = try EngineFixtures.model("llama-tied-llama3rope")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4, prefixCaching: false))
        let prompt = [11, 12, 13, 200, 201, 90, 91, 92, 93, 5]
        let sampling = RequestSamplingParameters(temperature: 1.0, topK: 50)
        let group = EngineRequest(prompt: prompt, sampling: sampling, maxNewTokens: 12, sampleCount: 3, seed: 7, stopAtEndOfSequence: false)
        let forked = try await EngineFixtures.run(engine, [group])[0]
        var alone: [[Int]] = []
        for sample in 0..<3 {
            var request = group
            request.sampleCount = 1
            request.seed = 7 + UInt64(sample)
            alone.append(try await EngineFixtures.run(engine, [request])[0][0])
        }
        #expect(forked == alone)
        #expect(Set(forked).count > 1, "different seeds should give different samples")
        let metrics = try await EngineFixtures.settled(engine)
        #expect(metrics.kvBlocksUsed == 0)
    }

    @Test("a repeated prefix is served from the prefix cache and gives the same answer")
    func prefixCache() async throws {
        let lm = try EngineFixtures.model("qwen2-untied-bias")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4))
        let prompt = Array(20..<45)
        let request = EngineRequest(prompt: prompt, maxNewTokens: 10, stopAtEndOfSequence: false)
        var cached: [Int] = []
        var outputs: [[Int]] = []
        for _ in 0..<2 {
            for await event in try engine.submit(request) {
                if case .started(_, let hits) = event { cached.append(hits) }
                if case .finished(let sample) = event { outputs.append(sample.tokens) }
            }
        }
        #expect(cached == [0, 24])
        #expect(outputs[0] == outputs[1])
        let metrics = try await EngineFixtures.settled(engine)
        #expect(metrics.cachedPromptTokens == 24)
        #expect(metrics.kvBlocksUsed == 0)
        #expect(metrics.kvBlocksCached > 0)
    }

    @Test("a pool too small for every sequence preempts and recomputes without changing answers")
    func preemption() async throws {
        let name = "qwen3-qknorm-sharded"
        let lm = try EngineFixtures.model(name)
        let expected = try EngineFixtures.expected(name)
        // 16 blocks of 4 tokens: not enough for 6 sequences of up to 32 tokens at once.
        let bytes = 16 * InferenceEngine.bytesPerBlock(lm.network.configuration, blockSize: 4)
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: bytes, blockSize: 4, contextLength: 64))
        let requests = (0..<3).flatMap { _ in
            expected.prompts.map { EngineRequest(prompt: $0, maxNewTokens: 20, stopAtEndOfSequence: false) }
        }
        let outputs = try await EngineFixtures.run(engine, requests)
        #expect(outputs.map { $0[0] } == Array([[Int]](repeating: [], count: 3).map { _ in expected.continuations }.joined()))
        let metrics = try await EngineFixtures.settled(engine)
        #expect(metrics.kvBlocksUsed == 0)
    }

    @Test("dropping a stream mid-generation cancels the request and frees its blocks")
    func cancellation() async throws {
        let lm = try EngineFixtures.model("llama-tied-llama3rope")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4))
        let task = Task {
            var count = 0
            for await event in try engine.submit(EngineRequest(prompt: [5, 6, 7], maxNewTokens: 400, stopAtEndOfSequence: false)) {
                if case .token = event { count += 1 }
                if count == 3 { break }
            }
            return count
        }
        #expect(try await task.value == 3)
        var metrics = engine.metrics()
        for _ in 0..<200 where metrics.requestsCancelled == 0 {
            try await Task.sleep(nanoseconds: 10_000_000)
            metrics = engine.metrics()
        }
        metrics = try await EngineFixtures.settled(engine)
        #expect(metrics.requestsCancelled == 1)
        #expect(metrics.kvBlocksUsed == 0)
        #expect(metrics.generatedTokens < 400)
    }

    @Test("bad requests are refused with errors that say why")
    func refusals() throws {
        let lm = try EngineFixtures.model("llama-tied-llama3rope")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, contextLength: 32))
        #expect(throws: EngineError.emptyPrompt) { try engine.submit(EngineRequest(prompt: [])) }
        #expect(throws: EngineError.promptTooLong(tokens: 40, limit: 32)) {
            try engine.submit(EngineRequest(prompt: Array(repeating: 3, count: 40)))
        }
        #expect(throws: EngineError.unknownAdapter("math")) { try engine.submit(EngineRequest(prompt: [1], adapter: "math")) }
        #expect(throws: EngineError.invalidParameter("prompt token id 256 is outside the vocabulary (0..<256)")) {
            try engine.submit(EngineRequest(prompt: [1, 256]))
        }
        #expect(EngineError.promptTooLong(tokens: 40, limit: 32).description
            == "the prompt has 40 tokens; this model's context allows 32 (prompt and max_tokens together)")
    }

    @Test("stop strings cut the text and end the sample; generate() blocks until done")
    func stopStrings() throws {
        let lm = try EngineFixtures.model("llama-tied-llama3rope")
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22))
        let expected = try EngineFixtures.expected("llama-tied-llama3rope")
        let plain = try engine.generate(EngineRequest(prompt: expected.prompts[0], maxNewTokens: 20, stopAtEndOfSequence: false))[0]
        let text = lm.tokenizer.decode(plain.tokens, skipSpecialTokens: true)
        // Stop at a piece of the greedy text that starts after its first characters.
        let scalars = Array(text.unicodeScalars)
        #expect(scalars.count > 6)
        var stop = String.UnicodeScalarView()
        stop.append(contentsOf: scalars[4..<6])
        let collected = LockedBox("")
        let cut = try engine.generate(EngineRequest(
            prompt: expected.prompts[0], maxNewTokens: 20, stopStrings: [String(stop)], stopAtEndOfSequence: false
        )) { event in
            if case .token(let token) = event { collected.mutate { $0 += token.text } }
            if case .finished(let sample) = event { collected.mutate { $0 += sample.text } }
        }[0]
        #expect(cut.reason == .stop)
        #expect(cut.stop == String(stop))
        #expect(text.hasPrefix(collected.value))
        #expect(!collected.value.contains(String(stop)))
    }
}

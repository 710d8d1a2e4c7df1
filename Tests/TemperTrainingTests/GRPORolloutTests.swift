import Foundation
import TemperCore
import TemperData
import TemperEngine
import TemperModels
import TemperPEFT
import TemperTestSupport
import TemperTokenizers
import Testing
@testable import TemperTraining

/// GRPO's rollouts on the inference engine: what the sampler reports is what training computes.
@Suite("GRPO rollouts")
struct GRPORolloutTests {
    /// The tiny Llama of the golden tests with its adapter, as the engine serves it (Qwen3's
    /// tokenizer only turns ids into text).
    static func policy() throws -> LanguageModel {
        let folder = TestPaths.fixtures.appendingPathComponent("training/llama-tied")
        let network = try CausalLanguageModel.load(directory: folder)
        _ = try PEFTAdapter.load(into: network, from: folder.appendingPathComponent("adapter"))
        let tokenizer = try Tokenizer.load(directory: TestPaths.assets.appendingPathComponent("qwen3-tokenizer"))
        return try LanguageModel(network: network, tokenizer: tokenizer, directory: folder)
    }

    @Test("the sampler's per-token log-probs equal a teacher-forced forward within 1e-5", arguments: [Float(1), 0.7])
    func samplerLogProbs(temperature: Float) throws {
        let lm = try Self.policy()
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4, prefixCaching: false))
        defer { engine.shutdownAndWait() }
        var recipe = GRPORecipe()
        recipe.numGenerations = 3
        let prompts = [[5, 17, 99, 3], [11, 12]]
        let rollouts = GRPORollouts(
            recipe: recipe, prompts: [], engine: engine, network: lm.network, rewards: [], reference: nil, padTokenID: 0,
            cursor: .init())
        let sampling = RequestSamplingParameters(temperature: temperature)
        let groups = try rollouts.sample(prompts.enumerated().map {
            EngineRequest(prompt: $0.element, sampling: sampling, maxNewTokens: 7, sampleCount: 3, seed: UInt64($0.offset), stopAtEndOfSequence: false)
        })
        let completions = groups.flatMap(\.tokens)
        #expect(completions.count == 6 && completions.allSatisfy { $0.count == 7 })
        // Different seeds: the group is not one completion three times.
        #expect(Set(groups[0].tokens).count > 1)
        let batch = GRPOBatch(
            prompts: prompts.flatMap { Array(repeating: $0, count: 3) }, completions: completions,
            advantages: Array(repeating: 0, count: 6), padTokenID: 0)
        let forward = CompletionTokenStatistics.logProbs(lm.network, batch, temperature: temperature).toArray(Float.self)
        let sampled = groups.flatMap(\.logProbs).flatMap { $0 }
        #expect(sampled.count == forward.count)
        let worst = zip(sampled, forward).map { Swift.abs($0 - $1) }.max()!
        #expect(worst <= 1e-5, "largest difference \(worst)")
    }

    @Test("one generation batch: groups prompt-major, advantages from the rewards, split into micro-batches")
    func generationBatch() throws {
        let lm = try Self.policy()
        let engine = InferenceEngine(model: lm, configuration: .init(kvCacheBytes: 1 << 22, blockSize: 4, prefixCaching: false))
        defer { engine.shutdownAndWait() }
        var recipe = GRPORecipe()
        recipe.numGenerations = 2
        recipe.batchSize = 2
        recipe.gradAccum = 2
        recipe.maxCompletionLength = 5
        let prompts = (0..<3).map { (index: Int) -> TokenizedPrompt in
            let fields: [String: JSONValue] = ["index": .number(Double(index))]
            return TokenizedPrompt(ids: [5 + index, 17, 3], text: "p\(index)", fields: fields, source: SourceLocation(file: "p.jsonl", line: index + 1))
        }
        // Reward: the number of completion tokens that are even ids.
        let evens = ClosureReward(name: "evens") { inputs in inputs.map { Double($0.completion.count % 3) } }
        let rollouts = GRPORollouts(
            recipe: recipe, prompts: prompts, engine: engine, network: lm.network, rewards: [evens], reference: nil,
            padTokenID: 0, cursor: .init())
        let first = try rollouts.next()!
        let second = try rollouts.next()!
        #expect(first.rowCount == 2 && second.rowCount == 2)
        #expect(rollouts.cursor == DataCursor(epoch: 0, index: 2))
        #expect(first.generationMetrics["rewards/evens/mean"] != nil && first.generationMetrics["frac_reward_zero_std"] != nil)
        #expect(first.generationTokens == second.generationTokens)
        #expect(first.oldLogProbs == nil)  // one generation per optimizer step: on-policy
        // The third micro-batch starts the next generation, wrapping into epoch 1.
        _ = try rollouts.next()
        #expect(rollouts.cursor == DataCursor(epoch: 1, index: 1))
    }
}

import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTestSupport
import Testing
@testable import TemperTraining

/// GRPO against TRL 1.16's GRPOTrainer (Tests/Fixtures/grpo, from Tools/fixtures/generate_grpo_fixtures.py):
/// a tiny Llama and a tiny Qwen2 with a non-zero PEFT adapter, two prompts × 3 fixed completions with fixed
/// rewards and old log-probs; for every loss type × importance-sampling level × beta and the dapo variants,
/// the advantages, per-token log-probs, entropies and loss, the loss, every metric TRL logs and every
/// adapter gradient.
@Suite("GRPO against TRL 1.16")
struct GoldenGRPOTests {
    static let models = ["llama-tied", "qwen2-bias"]

    struct Case {
        let folder: URL
        let json: [String: Any]
        let expected: [String: Tensor]
        let prompts: [[Int]]
        let completions: [[Int]]
        let groupSize: Int

        init(_ name: String) throws {
            let fixtures = TestPaths.fixtures
            folder = fixtures.appendingPathComponent("training/\(name)")
            let grpo = fixtures.appendingPathComponent("grpo/\(name)")
            json = try JSONSerialization.jsonObject(with: Data(contentsOf: grpo.appendingPathComponent("expected.json"))) as! [String: Any]
            expected = try Safetensors.load(grpo.appendingPathComponent("expected.safetensors")).tensors
            let meta = json["_meta"] as! [String: Any]
            groupSize = meta["num_generations"] as! Int
            prompts = (meta["prompts"] as! [[Int]]).flatMap { Array(repeating: $0, count: meta["num_generations"] as! Int) }
            completions = meta["completions"] as! [[Int]]
        }

        var configurations: [String] { json.keys.filter { $0 != "_meta" }.sorted() }

        func entry(_ configuration: String) -> [String: Any] { json[configuration] as! [String: Any] }
        func parameters(_ configuration: String) -> [String: Any] { entry(configuration)["params"] as! [String: Any] }
        func inputs(_ configuration: String) -> [String: String] { entry(configuration)["inputs"] as! [String: String] }

        func settings(_ configuration: String) -> GRPOLossSettings {
            let p = parameters(configuration)
            var s = GRPOLossSettings()
            s.lossType = GRPOLossType(rawValue: p["loss_type"] as! String)!
            s.importanceSamplingLevel = ImportanceSamplingLevel(rawValue: p["importance_sampling_level"] as! String)!
            s.beta = Float(p["beta"] as! Double)
            s.epsilon = Float(p["epsilon"] as! Double)
            s.epsilonHigh = (p["epsilon_high"] as? Double).map(Float.init)
            s.delta = (p["delta"] as? Double).map(Float.init)
            s.useBiasCorrectionKL = p["use_bias_correction_kl"] as! Bool
            s.topEntropyQuantile = Float(p["top_entropy_quantile"] as! Double)
            s.offPolicyMaskThreshold = (p["off_policy_mask_threshold"] as? Double).map(Float.init)
            s.entropyCoefficient = Float(p["entropy_coef"] as! Double)
            s.sapoTemperaturePositive = Float(p["sapo_temperature_pos"] as! Double)
            s.sapoTemperatureNegative = Float(p["sapo_temperature_neg"] as! Double)
            s.vespoKPositive = Float(p["vespo_k_pos"] as! Double)
            s.vespoLambdaPositive = Float(p["vespo_lambda_pos"] as! Double)
            s.vespoKNegative = Float(p["vespo_k_neg"] as! Double)
            s.vespoLambdaNegative = Float(p["vespo_lambda_neg"] as! Double)
            s.temperature = Float(p["temperature"] as! Double)
            s.maxCompletionLength = p["max_completion_length"] as! Int
            return s
        }

        /// The fixture's rewards, NaN (TRL's None) as nil.
        func rewards(_ configuration: String) -> [[Double?]] {
            let values = expected[inputs(configuration)["rewards_per_func"]!]!
            let flat = values.toArray(Float.self)
            let width = values.dim(1)
            return (0..<values.dim(0)).map { row in
                (0..<width).map { flat[row * width + $0].isNaN ? nil : Double(flat[row * width + $0]) }
            }
        }

        func advantages(_ configuration: String) -> GRPOAdvantages {
            let p = parameters(configuration)
            let meta = json["_meta"] as! [String: Any]
            return GRPOAdvantages(
                rewards: rewards(configuration), names: meta["reward_functions"] as! [String],
                weights: p["reward_weights"] as? [Double], groupSize: groupSize,
                scaling: RewardScaling(rawValue: p["scale_rewards"] as! String)!,
                aggregation: RewardAggregation(rawValue: p["multi_objective_aggregation"] as! String)!)
        }

        /// A completion that hit the length limit without EOS.
        var truncated: [Bool] {
            let limit = (json["_meta"] as! [String: Any])["max_completion_length"] as! Int
            return completions.map { $0.count == limit && $0.last != 2 }
        }

        func batch(_ configuration: String, model: CausalLanguageModel) -> GRPOBatch {
            let p = parameters(configuration)
            let advantages = advantages(configuration)
            var metrics = advantages.metrics.merging(
                completionLengthMetrics(lengths: completions.map(\.count), truncated: truncated)) { a, _ in a }
            metrics["num_tokens"] = Double(prompts.reduce(0) { $0 + $1.count } + completions.reduce(0) { $0 + $1.count })
            let maskTruncated = p["mask_truncated_completions"] as! Bool
            var batch = GRPOBatch(
                prompts: prompts, completions: completions, advantages: advantages.advantages, padTokenID: 0,
                masked: maskTruncated ? truncated : nil, generationMetrics: metrics)
            // "KEY" or "KEY (how TRL made it)".
            if let old = inputs(configuration)["old_per_token_logps"]?.split(separator: " ").first {
                batch.oldLogProbs = expected[String(old)]!
            }
            if settings(configuration).beta != 0 {
                batch.referenceLogProbs = model.withAdaptersDisabled {
                    CompletionTokenStatistics.logProbs(model, batch, temperature: settings(configuration).temperature)
                }
            }
            return batch
        }

        func policy(_ configuration: String) throws -> CausalLanguageModel {
            let model = try CausalLanguageModel.load(directory: folder)
            _ = try PEFTAdapter.load(into: model, from: folder.appendingPathComponent("adapter"))
            if let adapter = inputs(configuration)["adapter"], adapter.hasSuffix(".*") {
                let prefix = String(adapter.dropLast(1)) + "base_model.model."
                let names = model.loraParameters.keys
                try model.update(parameters: Dictionary(uniqueKeysWithValues: names.map { ($0, expected[prefix + $0]!) }))
            }
            return model
        }
    }

    static func expectNear(_ ours: Double, _ theirs: Double, _ label: String, relative: Double = 1e-4, absolute: Double = 1e-5) {
        #expect(Swift.abs(ours - theirs) <= absolute + relative * Swift.abs(theirs), "\(label): \(ours) vs TRL \(theirs)")
    }

    /// Element-wise within 1e-4 relative plus 2e-5 of the tensor's largest element (float32 noise),
    /// only where `mask` is 1.
    static func expectClose(_ ours: Tensor, _ theirs: Tensor, _ label: String, mask: Tensor? = nil) {
        let (a, b) = mask.map { (ours * $0, theirs * $0) } ?? (ours, theirs)
        let scale = Double(b.abs().max().item(Float.self))
        let report = closenessReport(a, b, tolerance: Tolerance(absolute: max(1e-6, 2e-5 * scale), relative: 1e-4))
        #expect(report == nil, "\(label): \(report ?? "")")
    }

    @Test("advantages and reward metrics of every configuration", arguments: models)
    func advantages(model name: String) throws {
        let c = try Case(name)
        for configuration in c.configurations {
            let ours = c.advantages(configuration)
            let theirs = c.entry(configuration)["advantages"] as! [Double]
            for (index, (a, b)) in zip(ours.advantages, theirs).enumerated() {
                Self.expectNear(a, b, "\(configuration) advantage[\(index)]")
            }
            // A reused generation batch (the second of num_iterations 2) logs no reward metrics again.
            if configuration.hasSuffix("_iter2") {
                #expect(ours.metrics.keys.allSatisfy { c.entry(configuration)[$0] == nil })
                continue
            }
            for (metric, value) in ours.metrics {
                guard let expected = c.entry(configuration)[metric] as? Double else {
                    Issue.record("\(configuration): TRL logged no \(metric)")
                    continue
                }
                Self.expectNear(value, expected, "\(configuration) \(metric)")
            }
        }
    }

    @Test("every loss type and variant: per-token values, loss, metrics, adapter gradients", arguments: models)
    func losses(model name: String) throws {
        let c = try Case(name)
        #expect(c.configurations.count == 49)
        let skipped: Set<String> = ["params", "inputs", "loss", "advantages"]
        for configuration in c.configurations {
            let model = try c.policy(configuration)
            let batch = c.batch(configuration, model: model)
            let objective = GRPOObjective(settings: c.settings(configuration))
            let entry = c.entry(configuration)
            let mask = batch.completionMask
            let statistics = CompletionTokenStatistics(model, batch, temperature: objective.settings.temperature)
            Self.expectClose(statistics.logProbs, c.expected["\(configuration).per_token_logps"]!, "\(name) \(configuration) log-probs", mask: mask)
            Self.expectClose(statistics.entropies, c.expected["\(configuration).entropies"]!, "\(name) \(configuration) entropies", mask: mask)
            if let reference = batch.referenceLogProbs, let theirs = c.expected["\(configuration).ref_per_token_logps"] {
                Self.expectClose(reference, theirs, "\(name) \(configuration) reference log-probs", mask: mask)
            }
            if configuration == "dapo_num_iterations2" {
                // TRL computed this generation batch's old log-probs itself (one forward, no gradient).
                let old = CompletionTokenStatistics.logProbs(model, batch, temperature: objective.settings.temperature)
                Self.expectClose(old, batch.oldLogProbs!, "\(name) old log-probs", mask: mask)
            }
            let (_, perTokenLoss, _) = objective.evaluate(model: model, batch: batch)
            Self.expectClose(perTokenLoss, c.expected["\(configuration).per_token_loss"]!, "\(name) \(configuration) per-token loss", mask: mask)

            let names = model.loraParameters.keys.sorted()
            let step = TrainStep(model: model, trainableNames: names, optimizer: AdamW(), maxGradientNorm: 0)
            let (loss, metrics, gradients) = step.gradients(objective, microBatches: [batch])
            Self.expectNear(Double(loss.item(Float.self)), entry["loss"] as! Double, "\(name) \(configuration) loss")
            for (metric, value) in entry where !skipped.contains(metric) {
                guard let theirs = value as? Double else { continue }  // a note
                let ours = try #require(metrics[metric], "\(name) \(configuration): no metric \(metric)")
                Self.expectNear(Double(ours.item(Float.self)), theirs, "\(name) \(configuration) \(metric)")
            }
            for name in names {
                let theirs = try #require(c.expected["\(configuration).grad.base_model.model.\(name)"], "\(configuration) grad \(name)")
                Self.expectClose(gradients[name]!, theirs, "\(configuration) grad \(name)")
            }
        }
    }
}

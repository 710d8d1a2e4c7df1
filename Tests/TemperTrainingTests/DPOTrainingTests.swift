import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperPEFT
import TemperTestSupport
import Testing
@testable import TemperTraining

/// The DPO trainer end to end on a tiny random Llama with SmolLM2's real tokenizer and chat
/// template, on the shipped preference data.
@Suite("DPO training", .serialized)
struct DPOTrainingTests {
    static let data = TestPaths.repositoryRoot.appendingPathComponent("Data/dpo-demo.jsonl")

    func recipe(model: URL, output: URL, steps: Int) -> DPORecipe {
        var recipe = DPORecipe()
        recipe.model = model.path
        recipe.data = [Self.data.path]
        recipe.output = output.path
        recipe.method = .lora
        recipe.lora.rank = 4
        recipe.lora.alpha = 8
        recipe.lora.dropout = 0
        recipe.learningRate = 5e-3
        recipe.batchSize = 2
        recipe.maxLength = 160
        recipe.maxSteps = steps
        recipe.seed = 5
        recipe.saveEvery = 2
        recipe.evalFraction = 0.02
        return recipe
    }

    static func records(_ output: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: output.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func losses(_ output: URL) throws -> [Double] { try records(output).compactMap { $0["loss"] as? Double } }

    @Test("precomputed and on-the-fly reference log-probs give identical losses; the cache is reused and invalidated")
    func precomputedReference() throws {
        let model = try TinyModel.folder()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: model)
            try? FileManager.default.removeItem(at: root)
        }
        let live = root.appendingPathComponent("live")
        let summary = try DPOTrainer(recipe: recipe(model: model, output: live, steps: 3), log: { _ in }).run()
        #expect(summary.steps == 3)
        let expected = try Self.losses(live)
        #expect(expected.count == 3)
        // The policy starts as the reference: the first loss is log 2 and every reward 0 (up to float
        // noise: the reference runs each pair as its own batch, the policy pairs together).
        #expect(Swift.abs(expected[0] - Foundation.log(2.0)) < 1e-5)
        let first = try Self.records(live)[0]
        #expect(Swift.abs(first["rewards/chosen"] as? Double ?? 1) < 1e-4 && Swift.abs(first["rewards/margins"] as? Double ?? 1) < 1e-4)
        #expect(expected.last! < expected.first!, "DPO loss should fall: \(expected)")
        #expect(summary.finalEval["eval_rewards/accuracies"] != nil)

        var cached = recipe(model: model, output: root.appendingPathComponent("cached"), steps: 3)
        cached.precomputeRefLogps = true
        var lines: [String] = []
        _ = try DPOTrainer(recipe: cached, log: { lines.append($0) }).run()
        #expect(try Self.losses(URL(fileURLWithPath: cached.output)) == expected)
        #expect(lines.contains { $0.hasPrefix("reference log-probs: written to reference-logps.safetensors") })
        lines = []
        _ = try DPOTrainer(recipe: cached, log: { lines.append($0) }).run()
        #expect(lines.contains { $0.hasPrefix("reference log-probs: cached in reference-logps.safetensors") })
        cached.maxLength = 150  // other tokens: the cache no longer applies
        lines = []
        _ = try DPOTrainer(recipe: cached, log: { lines.append($0) }).run()
        #expect(lines.contains { $0.hasPrefix("reference log-probs: written to") })
    }

    @Test("4 steps straight equal 2 steps + resume + 2 steps; the output is a PEFT adapter")
    func resumeIsExact() throws {
        let model = try TinyModel.folder()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-resume-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: model)
            try? FileManager.default.removeItem(at: root)
        }
        var straight = recipe(model: model, output: root.appendingPathComponent("straight"), steps: 4)
        straight.lossType = [.sigmoid, .bcoPair, .sft]
        straight.lossWeights = [0.8, 0.2, 1.0]
        _ = try DPOTrainer(recipe: straight, log: { _ in }).run()
        let expected = try Self.losses(URL(fileURLWithPath: straight.output))
        var resumed = straight
        resumed.output = root.appendingPathComponent("resumed").path
        _ = try DPOTrainer(recipe: resumed, log: { _ in }).run()
        try FileManager.default.removeItem(at: URL(fileURLWithPath: resumed.output).appendingPathComponent("checkpoints/step-000004"))
        _ = try DPOTrainer(recipe: resumed, log: { _ in }).run(resume: true)
        #expect(try Self.losses(URL(fileURLWithPath: resumed.output)) == expected)
        let adapter = URL(fileURLWithPath: straight.output)
        let tensors = try Safetensors.load(adapter.appendingPathComponent("adapter_model.safetensors")).tensors
        #expect(tensors.count == 2 * 7 * 2)

        // Continuing from that adapter: it is trained further, and the reference is the model with
        // it as loaded, so the first step's rewards are 0 again.
        var next = recipe(model: model, output: root.appendingPathComponent("next"), steps: 1)
        next.adapter = adapter.path
        var lines: [String] = []
        _ = try DPOTrainer(recipe: next, log: { lines.append($0) }).run()
        #expect(lines.contains("reference: the model with the starting adapter, frozen as loaded"))
        let record = try Self.records(URL(fileURLWithPath: next.output))[0]
        #expect(Swift.abs(record["rewards/chosen"] as? Double ?? 1) < 1e-4)
        #expect(Swift.abs((record["loss"] as? Double ?? 0) - Foundation.log(2.0)) < 1e-5)
    }

    @Test("full fine-tuning: a frozen (bf16) reference copy, the output is a model folder")
    func fullFineTuning() throws {
        let model = try TinyModel.folder()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-full-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: model)
            try? FileManager.default.removeItem(at: output)
        }
        var full = recipe(model: model, output: output, steps: 2)
        full.method = .full
        full.referenceDType = .bfloat16
        full.learningRate = 1e-3
        var lines: [String] = []
        let summary = try DPOTrainer(recipe: full, log: { lines.append($0) }).run()
        #expect(lines.contains("reference: a frozen copy of the starting model"))
        let losses = try Self.losses(output)
        #expect(losses.count == 2 && summary.trainableParameters == summary.totalParameters)
        // bf16 projections in the reference: not exactly the policy's start, but within rounding.
        #expect(Swift.abs(losses[0] - Foundation.log(2.0)) < 1e-2)
        let trained = try CausalLanguageModel.load(directory: output)
        let base = try CausalLanguageModel.load(directory: model)
        let name = "model.layers.0.mlp.down_proj.weight"
        #expect((trained.parameters()[name]! - base.parameters()[name]!).abs().max().item(Float.self) > 0)
    }

    @Test("recipes: DPO fields from YAML, loss types checked with the allowed values, TRL's restrictions")
    func recipes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-recipe-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let yaml = folder.appendingPathComponent("dpo.yaml")
        try """
            model: m
            data: d.jsonl
            output: o
            max_steps: 3
            loss_type: [sigmoid, bco_pair, sft]
            loss_weights: [0.8, 0.2, 1.0]
            beta: 0.2
            precompute_ref_log_probs: true
            """.write(to: yaml, atomically: true, encoding: .utf8)
        let recipe = try DPORecipe.load(yaml)
        #expect(recipe.lossType == [.sigmoid, .bcoPair, .sft] && recipe.lossWeights == [0.8, 0.2, 1.0])
        #expect(recipe.beta == 0.2 && recipe.precomputeRefLogps && recipe.learningRate == 5e-6 && recipe.maxLength == 1024)
        try recipe.validate()
        var bad = recipe
        bad.lossWeights = [1]
        #expect(throws: TrainingError.invalidRecipe(
            field: "loss_weights", reason: "must have one weight per loss type: 1 weights for 3 loss types", file: yaml.path)) {
            try bad.validate()
        }
        bad = recipe
        bad.fDivergenceType = .jsDivergence
        #expect(throws: TrainingError.self) { try bad.validate() }
        let typo = folder.appendingPathComponent("typo.yaml")
        try "model: m\nloss_type: sigmod\n".write(to: typo, atomically: true, encoding: .utf8)
        #expect {
            _ = try DPORecipe.load(typo)
        } throws: { error in
            let message = (error as? TrainingError)?.localizedDescription ?? ""
            return message.contains("loss_type") && message.contains("got 'sigmod'") && message.contains("sigmoid_norm")
        }
    }
}

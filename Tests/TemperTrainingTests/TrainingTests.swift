import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTestSupport
import TemperTokenizers
import Testing
@testable import TemperTraining

/// A tiny random Llama with the real SmolLM2 tokenizer (from the GGUF's metadata), written as a
/// Hugging Face folder, so the whole SFT path runs in seconds.
enum TinyModel {
    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-tiny-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configuration = ModelConfiguration(
            modelType: "llama", vocabularySize: 49152, hiddenSize: 32, intermediateSize: 48, layerCount: 2,
            headCount: 4, keyValueHeadCount: 2, rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true,
            bosTokenID: 1, eosTokenIDs: [2])
        let model = CausalLanguageModel(configuration: configuration)
        let names = model.parameters().keys.sorted()
        let keys = Random.split(Random.key(3), count: names.count)
        var values: [String: Tensor] = [:]
        for (index, name) in names.enumerated() {
            let shape = model.parameters()[name]!.shape
            values[name] = name.hasSuffix("norm.weight") ? Tensor.ones(shape) : Random.normal(shape, standardDeviation: 0.1, key: keys[index])
        }
        try model.update(parameters: values)
        try model.save(to: folder)
        try GGUFTokenizerConversion.write(
            from: TestPaths.assets.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), to: folder)
        return folder
    }
}

@Suite("SFT training", .serialized)
struct TrainingTests {
    func recipe(model: URL, output: URL, steps: Int) -> SFTRecipe {
        var recipe = SFTRecipe()
        recipe.model = model.path
        recipe.data = [TestPaths.repositoryRoot.appendingPathComponent("Data/sft-demo.jsonl").path]
        recipe.output = output.path
        recipe.method = .lora
        recipe.lora.rank = 4
        recipe.lora.alpha = 8
        recipe.lora.dropout = 0.1
        recipe.learningRate = 5e-3
        recipe.batchSize = 2
        recipe.maxLength = 128
        recipe.maxSteps = steps
        recipe.warmupSteps = 1
        recipe.seed = 11
        recipe.saveEvery = 2
        return recipe
    }

    static func losses(_ output: URL) throws -> [Double] {
        let text = try String(contentsOf: output.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
        }
    }

    @Test("4 steps straight equal 2 steps + resume + 2 steps, bit for bit; outputs are a PEFT adapter")
    func resumeIsExact() throws {
        let model = try TinyModel.folder()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-sft-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: model)
            try? FileManager.default.removeItem(at: root)
        }
        let straight = root.appendingPathComponent("straight")
        let summary = try SFTTrainer(recipe: recipe(model: model, output: straight, steps: 4), log: { _ in }).run()
        #expect(summary.steps == 4)
        let expected = try Self.losses(straight)
        #expect(expected.count == 4)
        #expect(expected.last! < expected.first!, "loss should fall: \(expected)")

        let resumed = root.appendingPathComponent("resumed")
        var firstHalf = recipe(model: model, output: resumed, steps: 4)
        // Stop after 2 steps by training a 2-step prefix with the same schedule length: run to the
        // checkpoint at step 2, then remove what followed, as an interrupted run would leave it.
        _ = try SFTTrainer(recipe: firstHalf, log: { _ in }).run()
        let checkpoints = resumed.appendingPathComponent("checkpoints")
        try FileManager.default.removeItem(at: checkpoints.appendingPathComponent("step-000004"))
        firstHalf.output = resumed.path
        _ = try SFTTrainer(recipe: firstHalf, log: { _ in }).run(resume: true)
        #expect(try Self.losses(resumed) == expected)

        // PEFT's layout.
        let config = try JSONSerialization.jsonObject(
            with: Data(contentsOf: straight.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        #expect(config["peft_type"] as? String == "LORA" && config["r"] as? Int == 4)
        #expect(config["task_type"] as? String == "CAUSAL_LM")
        // The recipe's float values as written there, not their float32 widening (0.10000000149…).
        #expect(config["lora_dropout"] as? Double == 0.1 && config["lora_alpha"] as? Double == 8)
        #expect((config["target_modules"] as? [String])?.sorted() == LoRAConfiguration.allLinear.sorted())
        let tensors = try Safetensors.load(straight.appendingPathComponent("adapter_model.safetensors")).tensors
        #expect(tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]?.shape == [4, 32])
        #expect(tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]?.shape == [32, 4])
        #expect(tensors.count == 2 * 7 * 2)
        #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent("recipe.json").path))
    }

    @Test("a loaded adapter reproduces the trained model, and merging folds it in")
    func adapterAndMerge() throws {
        let model = try TinyModel.folder()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("temper-merge-\(UUID())")
        defer {
            try? FileManager.default.removeItem(at: model)
            try? FileManager.default.removeItem(at: output)
        }
        _ = try SFTTrainer(recipe: recipe(model: model, output: output, steps: 2), log: { _ in }).run()
        let ids = Tensor([Int32(1), 504, 3575, 282], shape: [1, 4])
        let base = try CausalLanguageModel.load(directory: model)
        let baseLogits = base(ids)
        let adapted = try CausalLanguageModel.load(directory: model)
        let configuration = try PEFTAdapter.load(into: adapted, from: output)
        #expect(configuration.rank == 4 && configuration.alpha == 8)
        let adaptedLogits = adapted(ids)
        #expect((adaptedLogits - baseLogits).abs().max().item(Float.self) > 1e-4)
        adapted.mergeLoRA()
        #expect(adapted.loraParameters.isEmpty)
        let merged = adapted(ids)
        #expect((merged - adaptedLogits).abs().max().item(Float.self) < 1e-4)
    }

    @Test("recipes: YAML and JSON, validation names the field")
    func recipes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-recipe-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let yaml = folder.appendingPathComponent("r.yaml")
        try """
            model: m
            data: d.jsonl
            output: o
            method: lora
            lora: {rank: 8, alpha: 16, target_modules: [q_proj, v_proj]}
            learning_rate: 0.0002
            max_steps: 10
            """.write(to: yaml, atomically: true, encoding: .utf8)
        let recipe = try SFTRecipe.load(yaml)
        #expect(recipe.data == ["d.jsonl"] && recipe.lora.rank == 8 && recipe.lora.targetModules == ["q_proj", "v_proj"])
        #expect(recipe.learningRate == 0.0002 && recipe.maxSteps == 10 && recipe.batchSize == 4)
        try recipe.validate()
        var bad = recipe
        bad.lora.targetModules = ["qq_proj"]
        #expect(throws: TrainingError.invalidRecipe(
            field: "lora.target_modules",
            reason: "unknown module(s) qq_proj; use names from q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear",
            file: yaml.path)) {
            try bad.validate()
        }
        // A value outside an enum's set names the file, the field and the allowed values.
        let badSchedule = folder.appendingPathComponent("s.yaml")
        try "model: m\nschedule: cosin\n".write(to: badSchedule, atomically: true, encoding: .utf8)
        #expect(throws: TrainingError.unreadableFile(
            path: badSchedule.path, reason: "field 'schedule': must be one of constant, linear, cosine; got 'cosin'")) {
            _ = try SFTRecipe.load(badSchedule)
        }
        // A field no SFT recipe has (a typo) is an error, not silently ignored.
        let typo = folder.appendingPathComponent("t.yaml")
        try "model: m\nlearning_rat: 0.1\n".write(to: typo, atomically: true, encoding: .utf8)
        #expect {
            _ = try SFTRecipe.load(typo)
        } throws: { error in
            (error as? TrainingError)?.localizedDescription.hasPrefix("\(typo.path): unknown field 'learning_rat'") == true
        }
        let json = folder.appendingPathComponent("r.json")
        try Data("{\"model\": \"m\", \"batch_size\": \"four\"}".utf8).write(to: json)
        #expect {
            _ = try SFTRecipe.load(json)
        } throws: { error in
            (error as? TrainingError)?.localizedDescription.contains("batch_size") == true
        }
    }

    @Test("learning-rate schedules match transformers' formulas")
    func schedules() {
        let cosine = LearningRateSchedule(kind: .cosine, peak: 1, warmupSteps: 2, totalSteps: 10)
        #expect(cosine.rate(at: 0) == 0 && cosine.rate(at: 1) == 0.5 && cosine.rate(at: 2) == 1)
        #expect(Swift.abs(cosine.rate(at: 6) - 0.5) < 1e-6)
        let linear = LearningRateSchedule(kind: .linear, peak: 2, warmupSteps: 0, totalSteps: 4)
        #expect([0, 1, 2, 3].map { linear.rate(at: $0) } == [2, 1.5, 1, 0.5])
    }
}

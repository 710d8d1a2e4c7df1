import Foundation
import TemperCore
import TemperNN
import TemperTestSupport
import Testing

@testable import TemperModels

/// `--quantize int8|q4` on the real SmolLM2: every projection and the tied LM head stored weight-only
/// quantized, the float weights dropped, and the quality cost bounded.
@Suite("Weight-only quantization for inference", .serialized)
struct InferenceQuantizationTests {
    static func model() throws -> CausalLanguageModel {
        let (configuration, tensors, _) = try GGUFConversion.readModel(GGUFImportTests.gguf)
        let model = CausalLanguageModel(configuration: configuration)
        try model.loadWeights(tensors, source: GGUFImportTests.gguf.path)
        return model
    }

    @Test func int8KeepsGreedyTokensAndQ4StaysClose() throws {
        let reference = try Self.model()
        let (_, json) = try GGUFImportTests.expected()
        let prompts = (json["prompts"] as! [String: [Int]]).sorted { $0.key < $1.key }.map(\.value)
        func lastLogProbs(_ model: CausalLanguageModel, _ prompt: [Int]) -> Tensor {
            model(Tensor(prompt.map { Int32($0) }, shape: [1, prompt.count]))[0, -1].logSoftmax(axis: -1)
        }
        let generator = { (model: CausalLanguageModel, prompt: [Int]) in
            Generator(model: model).generate(prompts: [prompt], parameters: GenerationParameters(maxNewTokens: 12, stopTokenIDs: [2]))[0].tokens
        }
        for format in [WeightOnlyQuantizedMatrix.Format.int8, .q4] {
            let model = try Self.model()
            let (before, after) = model.quantizeForInference(format)
            // 210 projections (30 layers × 7) and the tied head; the float embedding table stays for the lookup.
            #expect(model.model.layers.allSatisfy { $0.mlp.downProj.inferenceWeight != nil && $0.selfAttention.qProj.inferenceWeight != nil })
            #expect(model.inferenceHead != nil && model.parameters()["model.layers.0.mlp.up_proj.weight"] == nil)
            #expect(Double(after) < Double(before) * (format == .int8 ? 0.27 : 0.19), "\(format): \(before) -> \(after) bytes")
            for prompt in prompts {
                // KL(float32 ‖ quantized) of the next-token distribution. Measured: int8 0.002-0.005;
                // q4 (group 64) 0.15-0.67, a real cost on a 135M model whose GGUF was already 4-bit
                // (a wrong nibble order or scale gives KL > 5).
                let p = lastLogProbs(reference, prompt), q = lastLogProbs(model, prompt)
                let kl = Double((p.exp() * (p - q)).sum().item(Float.self))
                #expect(kl < (format == .int8 ? 0.01 : 1.0), "\(format): KL \(kl)")
                if format == .int8 { #expect(generator(model, prompt) == generator(reference, prompt)) }
            }
        }
    }

    /// `--quantize f32` changes only the product's kernel: the same logits up to float reordering
    /// and the same greedy tokens; `--quantize bf16` rounds every weight to bfloat16 and keeps the
    /// greedy tokens on the fixture prompts.
    @Test func floatFormatsKeepGreedyTokens() throws {
        let reference = try Self.model()
        let (_, json) = try GGUFImportTests.expected()
        let prompts = (json["prompts"] as! [String: [Int]]).sorted { $0.key < $1.key }.map(\.value)
        func logits(_ model: CausalLanguageModel, _ prompt: [Int]) -> Tensor {
            model(Tensor(prompt.map { Int32($0) }, shape: [1, prompt.count]))[0]
        }
        let generator = { (model: CausalLanguageModel, prompt: [Int]) in
            Generator(model: model).generate(prompts: [prompt], parameters: GenerationParameters(maxNewTokens: 12, stopTokenIDs: [2]))[0].tokens
        }
        for format in [WeightOnlyQuantizedMatrix.Format.float32, .bfloat16] {
            let model = try Self.model()
            let (before, after) = model.quantizeForInference(format)
            #expect(model.model.layers.allSatisfy { $0.mlp.downProj.inferenceWeight?.format == format })
            #expect(model.inferenceHead?.format == format, "the head keeps the layers' format")
            if format == .float32 {
                #expect(after == before, "\(before) -> \(after) bytes")
            } else {
                #expect(after * 2 == before, "\(before) -> \(after) bytes")
            }
            for prompt in prompts {
                let p = logits(reference, prompt), q = logits(model, prompt)
                if format == .float32 {
                    // Measured (AVX2): at most 8e-5 on logits up to 38; another build reorders the
                    // sums differently, hence 1e-5 of the logit on top of 1e-4.
                    let difference = (p - q).abs().max().item(Float.self)
                    let excess = ((p - q).abs() - p.abs() * 1e-5).max().item(Float.self)
                    #expect(excess < 1e-4, "f32: logits differ by \(difference)")
                } else {
                    // KL(float32 ‖ bf16) of the next-token distribution; measured 2e-5 and 1e-4.
                    let (pl, ql) = (p[-1].logSoftmax(axis: -1), q[-1].logSoftmax(axis: -1))
                    let kl = Double((pl.exp() * (pl - ql)).sum().item(Float.self))
                    #expect(kl < 0.01, "bf16: KL \(kl)")
                }
                #expect(generator(model, prompt) == generator(reference, prompt), "\(format)")
            }
        }
    }

    @Test func decodeRowsReadCodesAndPrefillRowsWidenTheWeight() throws {
        let layer = Linear(weight: Random.normal([96, 128], key: Random.key(3)), bias: Random.normal([96], key: Random.key(4)))
        #expect(layer.quantizeForInference(.q4))
        #expect(layer.ownParameters["weight"] == nil && layer.outputSize == 96 && layer.inputSize == 128)
        let widened = layer.inferenceWeight!.dequantized()
        for rows in [1, 64, 65, 200] {
            let x = Random.normal([rows, 128], key: Random.key(UInt64(rows)))
            let expected = x.matmul(widened.mT) + layer.bias!
            let difference = (layer(x) - expected).abs().max().item(Float.self)
            #expect(difference < 1e-4, "\(rows) rows: \(difference)")
        }
        // An input size that is not a multiple of 64 stays float32.
        let small = Linear(weight: Random.normal([8, 32], key: Random.key(5)))
        #expect(!small.quantizeForInference(.int8) && small.inferenceWeight == nil)
    }
}

/// A model saved in the engine's int8 or q4 format loads back with the very matrices quantizing at load
/// makes: the same logits to the last bit, tied and untied heads, a projection too narrow to quantize
/// kept float.
@Suite struct QuantizedFolderTests {
    @Test(arguments: ["llama-tied-llama3rope", "qwen2-untied-bias"], [WeightOnlyQuantizedMatrix.Format.int8, .q4])
    func savesAndLoadsTheEngineFormat(_ fixture: String, _ format: WeightOnlyQuantizedMatrix.Format) throws {
        let source = TestPaths.fixtures.appendingPathComponent("models/\(fixture)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quantized-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try CausalLanguageModel.load(directory: source).saveQuantizedForInference(to: folder, format: format)
        #expect(try CausalLanguageModel.inferenceQuantization(of: folder) == (format == .int8 ? "int8" : "q4"))
        #expect(try CausalLanguageModel.inferenceQuantization(of: source) == nil)

        let loaded = try CausalLanguageModel.load(directory: folder)
        let reference = try CausalLanguageModel.load(directory: source)
        reference.quantizeForInference(format)
        let layer = loaded.model.layers[0]
        #expect(layer.selfAttention.qProj.inferenceWeight?.format == format)
        // intermediate 96 is not a multiple of the group size: down_proj stays a float parameter.
        #expect(layer.mlp.downProj.inferenceWeight == nil && loaded.parameters()["model.layers.0.mlp.down_proj.weight"] != nil)
        #expect((loaded.inferenceHead != nil) == (loaded.lmHead == nil))
        #expect(loaded.lmHead.map { $0.inferenceWeight?.format == (format == .q4 ? .int8 : format) } ?? true, "q4's head is int8")
        #expect(loaded.quantizedInferenceBytes == reference.quantizedInferenceBytes)
        let ids = Tensor([1, 5, 9, 42, 7, 100, 3].map(Int32.init), shape: [1, 7])
        #expect(loaded(ids).toArray(Float.self) == reference(ids).toArray(Float.self))

        // A matrix whose scales are missing is named.
        var tensors = try Safetensors.load(folder.appendingPathComponent("model.safetensors")).tensors
        tensors["model.layers.0.self_attn.q_proj.weight.scales"] = nil
        try Safetensors.save(tensors, metadata: [:], to: folder.appendingPathComponent("model.safetensors"))
        let error = #expect(throws: ModelError.self) { try CausalLanguageModel.load(directory: folder) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("model.layers.0.self_attn.q_proj.weight.scales"))
    }
}

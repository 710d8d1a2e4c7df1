import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTestSupport
import Testing
@testable import TemperTraining

/// Loss, gradients and AdamW steps against PyTorch + transformers + peft
/// (Tests/Fixtures/training, from Tools/fixtures/generate_training_fixtures.py).
@Suite("Training against PyTorch and PEFT")
struct GoldenTrainingTests {
    static let names = ["llama-tied", "qwen2-bias"]

    struct Case {
        let folder: URL
        let expected: [String: Tensor]
        let batch: TokenBatch

        init(_ name: String) throws {
            folder = TestPaths.fixtures.appendingPathComponent("training/\(name)")
            expected = try Safetensors.load(folder.appendingPathComponent("expected.safetensors")).tensors
            let ids = expected["input_ids"]!, mask = expected["attention_mask"]!, labels = expected["labels"]!
            let (rows, length) = (ids.dim(0), ids.dim(1))
            let targets = Tensor.concatenated(
                [labels[0..., 1...], Tensor.full([rows, 1], value: -100, dtype: .int32)], axis: 1)
            let positions = Tensor.arange(Double(length), dtype: .int32).reshaped(1, length).broadcast(to: [rows, length])
            let segments = which(mask .== 1, Tensor.zeros(like: mask), Tensor.full(mask.shape, value: -1, dtype: .int32))
            batch = TokenBatch(
                ids: ids, targets: targets.reshaped(-1), layout: TokenLayout(positions: positions, segments: segments),
                trainedTokenCount: Int((targets .!= -100).asType(.int32).sum().item(Int32.self)))
        }

        /// The trainer's own step, as the reference takes it: AdamW lr 1e-2, weight decay 0.01 on
        /// matrices, no clipping.
        func trainStep(_ model: CausalLanguageModel, _ names: [String]) -> TrainStep {
            TrainStep(model: model, trainableNames: names, optimizer: AdamW(weightDecay: 0.01), maxGradientNorm: 0)
        }

        func objective(_ model: CausalLanguageModel, _ names: [String]) -> SFTObjective {
            SFTObjective(trainsOutputWeight: names.contains(model.outputWeightName))
        }

        /// Mean loss and its gradient for the named trainable tensors.
        func lossAndGradients(_ model: CausalLanguageModel, _ names: [String]) -> (Float, [String: Tensor]) {
            let (loss, _, gradients) = trainStep(model, names).gradients(objective(model, names), microBatches: [batch])
            return (loss.item(Float.self), gradients)
        }

        func threeSteps(_ model: CausalLanguageModel, _ names: [String]) throws {
            let step = trainStep(model, names)
            for index in 0..<3 {
                _ = try step(objective(model, names), microBatches: [batch], step: index, learningRate: 1e-2)
            }
        }
    }

    /// Element-wise |ours − theirs| ≤ absolute + relative·|theirs|: a bound taken from the largest
    /// element would hide errors in the small ones.
    static func expectClose(_ ours: Tensor, _ theirs: Tensor, _ label: String, relative: Double = 1e-4, absolute: Double = 1e-6) {
        let report = closenessReport(ours, theirs, tolerance: Tolerance(absolute: absolute, relative: relative))
        #expect(report == nil, "\(label): \(report ?? "")")
    }

    @Test("full fine-tuning: loss, every gradient and 3 AdamW steps", arguments: names)
    func full(name: String) throws {
        let c = try Case(name)
        let model = try CausalLanguageModel.load(directory: c.folder)
        let names = model.parameters().keys.sorted()
        let (loss, gradients) = c.lossAndGradients(model, names)
        #expect(Swift.abs(loss - c.expected["full.loss"]!.item(Float.self)) <= 1e-4 * Swift.abs(loss))
        for name in names {
            Self.expectClose(gradients[name]!, try #require(c.expected["full.grad." + name], "\(name)"), "grad \(name)")
        }
        try c.threeSteps(model, names)
        let after = model.parameters()
        for name in names {
            // The k-projection bias has an exactly zero true gradient (softmax ignores a shift of
            // all scores), so Adam's m/√v turns both sides' float noise into ±lr-sized steps:
            // compare it within lr·1e-3 instead.
            let absolute = name.hasSuffix("k_proj.bias") ? 1e-5 : 1e-6
            Self.expectClose(after[name]!, c.expected["full.after3." + name]!, "after 3 steps \(name)", absolute: absolute)
        }
    }

    @Test("a PEFT-written adapter: logits, loss, adapter gradients, 3 AdamW steps, merge", arguments: names)
    func lora(name: String) throws {
        let c = try Case(name)
        let model = try CausalLanguageModel.load(directory: c.folder)
        let configuration = try PEFTAdapter.load(into: model, from: c.folder.appendingPathComponent("adapter"))
        #expect(configuration.rank == 4 && configuration.alpha == 8)
        let logits = model(c.batch.ids, layout: c.batch.layout)
        let valid = (c.expected["attention_mask"]! .== 1).expandedDimensions(axis: -1)
        Self.expectClose(
            which(valid, logits, Tensor.zeros(like: logits)),
            which(valid, c.expected["lora.logits"]!, Tensor.zeros(like: logits)), "logits",
            absolute: 1e-5)  // logits of size ~1 summed over 32 products: float32 noise is ~1e-6

        let names = model.loraParameters.keys.sorted()
        #expect(names.count == 2 * 7 * 2)
        let (loss, gradients) = c.lossAndGradients(model, names)
        #expect(Swift.abs(loss - c.expected["lora.loss"]!.item(Float.self)) <= 1e-4 * Swift.abs(loss))
        for name in names {
            Self.expectClose(gradients[name]!, try #require(c.expected["lora.grad.base_model.model." + name], "\(name)"), "grad \(name)")
        }
        try c.threeSteps(model, names)
        let after = model.parameters()
        for name in names {
            Self.expectClose(after[name]!, c.expected["lora.after3.base_model.model." + name]!, "after 3 steps \(name)")
        }

        let merged = try CausalLanguageModel.load(directory: c.folder)
        _ = try PEFTAdapter.load(into: merged, from: c.folder.appendingPathComponent("adapter"))
        merged.mergeLoRA()
        let weights = merged.parameters()
        let mergedNames = c.expected.keys.filter { $0.hasPrefix("merged.") && $0.hasSuffix(".weight") }
        #expect(mergedNames.count == 2 * 7)
        for key in mergedNames {
            let name = String(key.dropFirst("merged.".count))
            Self.expectClose(weights[name]!, c.expected[key]!, "merged \(name)", relative: 1e-5)
        }
    }
}

@Suite("Gradient checkpointing")
struct CheckpointingTests {
    @Test("recomputing blocks in the backward pass gives the same loss and gradients", arguments: GoldenTrainingTests.names)
    func sameGradients(name: String) throws {
        let c = try GoldenTrainingTests.Case(name)
        let model = try CausalLanguageModel.load(directory: c.folder)
        _ = try PEFTAdapter.load(into: model, from: c.folder.appendingPathComponent("adapter"))
        for names in [model.loraParameters.keys.sorted(), model.parameters().keys.sorted()] {
            model.gradientCheckpointing = false
            let (plainLoss, plain) = c.lossAndGradients(model, names)
            model.gradientCheckpointing = true
            let (loss, gradients) = c.lossAndGradients(model, names)
            #expect(Swift.abs(loss - plainLoss) <= 1e-6 * Swift.abs(plainLoss))
            for name in names {
                GoldenTrainingTests.expectClose(gradients[name]!, plain[name]!, "checkpointed grad \(name)", relative: 1e-5)
            }
        }
    }
}

@Suite("bfloat16 storage of frozen weights")
struct FrozenStorageTests {
    @Test("bf16-stored projections compute in float32 from their rounded values")
    func bf16Projections() throws {
        let c = try GoldenTrainingTests.Case("llama-tied")
        let model = try CausalLanguageModel.load(directory: c.folder)
        let exact = model(c.batch.ids, layout: c.batch.layout)
        for (_, layer) in model.projections { layer.weight = layer.weight.asType(.bfloat16) }
        let rounded = model(c.batch.ids, layout: c.batch.layout)
        #expect(rounded.dtype == .float32)
        let relative = ((rounded - exact).square().sum() / exact.square().sum()).sqrt().item(Float.self)
        #expect(relative > 0 && relative < 1e-2, "relative difference \(relative)")
        var recipe = SFTRecipe()
        (recipe.model, recipe.data, recipe.output, recipe.maxSteps) = ("m", ["d"], "o", 1)
        recipe.method = .full
        recipe.frozenDType = .bfloat16
        #expect(throws: TrainingError.invalidRecipe(field: "frozen_dtype", reason: "bfloat16 storage applies to method lora only")) {
            try recipe.validate()
        }
    }
}

@Suite("NF4 and int8 block quantization")
struct BlockQuantizationTests {
    @Test("NF4 codes follow the published table and bitsandbytes' midpoint rule")
    func nf4() {
        // One block (absmax 2): normalized values and their expected levels.
        let values: [Float] = [-2, 2, 0, 1.0, 1.0034, -0.1, 0.0795, 0.08, -1.3924, 0.15]
        let q = BlockQuantizedWeight(quantizing: Tensor(values, shape: [2, 5]), format: .nf4)
        // 1.0/2 = 0.5 < midpoint(0.4407, 0.5626) = 0.50166 → level 12; 1.0034/2 = 0.5017 → 13;
        // -0.05 is below midpoint(-0.0911, 0) = -0.0455 → level 6; 0.03975 is below 0.03979 → 7.
        let bytes = q.codes.toArray(UInt8.self)
        let codes = bytes.flatMap { [Int($0 >> 4), Int($0 & 15)] }
        #expect(codes == [0, 15, 7, 12, 13, 6, 7, 8, 1, 8])
        #expect(q.absmax.toArray(Float.self) == [2])
        let back = q.dequantized().toArray(Float.self)
        #expect(back[0] == -2 && back[1] == 2 && back[2] == 0)
        #expect(Swift.abs(back[3] - 2 * 0.44070982933044434) < 1e-6)
        #expect(Swift.abs(back[8] - 2 * -0.6961928009986877) < 1e-6)
    }

    @Test("double quantization keeps the scales within an int8 step and uses fewer bytes")
    func doubleQuantization() {
        let weight = Random.normal([64, 512], key: Random.key(7))
        let plain = BlockQuantizedWeight(quantizing: weight, format: .nf4)
        let nested = BlockQuantizedWeight(quantizing: weight, format: .nf4, doubleQuantization: true)
        #expect(nested.codes.toArray(UInt8.self) == plain.codes.toArray(UInt8.self))
        let scales = plain.absmax.toArray(Float.self), approximate = nested.absmax.toArray(Float.self)
        let mean = scales.reduce(0, +) / Float(scales.count)
        let step = scales.map { Swift.abs($0 - mean) }.max()! / 127
        #expect(zip(scales, approximate).allSatisfy { Swift.abs($0 - $1) <= step * 0.5 + 1e-6 })
        // 512 blocks: 2048 bytes of float32 scales become 512 int8 codes + 2 block scales + the mean.
        #expect(plain.byteCount == 64 * 512 / 2 + 512 * 4)
        #expect(nested.byteCount == 64 * 512 / 2 + 512 + 2 * 4 + 4)
    }

    @Test("int8 blocks round to the nearest of 255 levels; a QLoRA layer dequantizes on the fly")
    func int8AndLayer() {
        let weight = Random.normal([8, 64], key: Random.key(2))
        let q = BlockQuantizedWeight(quantizing: weight, format: .int8)
        #expect(q.absmax.shape == [8] && q.codes.dtype == .int8)
        let error = (q.dequantized() - weight).abs().max().item(Float.self)
        #expect(error <= weight.abs().max().item(Float.self) / 127 * 0.5 + 1e-6)

        let layer = Linear(weight: weight)
        let x = Random.normal([3, 64], key: Random.key(4))
        let exact = layer(x)
        layer.quantizeWeight(.nf4)
        #expect(layer.ownParameters["weight"] == nil && layer.inputSize == 64 && layer.outputSize == 8)
        #expect(layer.quantizedWeight!.byteCount == 8 * 64 / 2 + 8 * 4)
        let approximate = layer(x)
        let relative = ((approximate - exact).square().sum() / exact.square().sum()).sqrt().item(Float.self)
        #expect(relative < 0.15, "NF4 relative error \(relative)")
    }
}

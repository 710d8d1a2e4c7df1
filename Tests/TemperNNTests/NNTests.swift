import Foundation
import Testing
import TemperCore
import TemperTestSupport

@testable import TemperNN

@Suite struct LayerTests {
    @Test func linearMatchesHandComputation() {
        let weight = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])  // [out, in]
        let x = Tensor([1, 0, -1, 2, 1, 0] as [Float], shape: [2, 3])
        #expect(Linear(weight: weight)(x).toArray(Float.self) == [-2, -2, 4, 13])
        let biased = Linear(weight: weight, bias: Tensor([10, 20] as [Float]))
        #expect(biased(x).toArray(Float.self) == [8, 18, 14, 33])
        // Leading batch dimensions are kept.
        #expect(biased(x.reshaped(1, 2, 3)).shape == [1, 2, 2])
        let initialized = Linear(inputSize: 16, outputSize: 4, key: Random.key(0))
        #expect(initialized.weight.shape == [4, 16])
        #expect(initialized.weight.abs().max().item(Float.self) <= 0.25)  // ±1/√16
    }

    @Test func embeddingAndRMSNorm() {
        let table = Tensor([0, 0, 1, 1, 2, 2] as [Float], shape: [3, 2])
        let embedding = Embedding(weight: table)
        #expect(embedding(Tensor([2, 0] as [Int32])).toArray(Float.self) == [2, 2, 0, 0])
        #expect(embedding(Tensor([1, 2, 0, 1] as [Int32], shape: [2, 2])).shape == [2, 2, 2])
        let norm = RMSNorm(dimensions: 2, eps: 0)
        assertClose(norm(Tensor([3, 4] as [Float])), [3 / 12.5.squareRoot(), 4 / 12.5.squareRoot()])
    }

    @Test func mlpParameterNamesAndCount() {
        let mlp = MLP(sizes: [3, 5, 2], key: Random.key(1))
        #expect(Set(mlp.parameters().keys) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        #expect(mlp.parameterCount == 3 * 5 + 5 + 5 * 2 + 2)
        #expect(mlp(Tensor.ones([4, 3])).shape == [4, 2])
    }
}

@Suite struct ParameterUpdateTests {
    @Test func updateReplacesByDottedName() throws {
        let mlp = MLP(sizes: [2, 2], key: Random.key(2))
        try mlp.update(parameters: ["layers.0.bias": Tensor([7, 8] as [Float])])
        #expect(mlp.layers[0].bias?.toArray(Float.self) == [7, 8])
    }

    @Test func unknownNamesAndWrongShapesChangeNothing() {
        let mlp = MLP(sizes: [2, 2], key: Random.key(3))
        let original = mlp.layers[0].weight.toArray(Float.self)
        #expect(throws: ParameterError.unknownNames(["layers.0.gate"])) {
            try mlp.update(parameters: ["layers.0.weight": Tensor.zeros([2, 2]), "layers.0.gate": Tensor.zeros([2])])
        }
        #expect(throws: ParameterError.shapeMismatch(name: "layers.0.weight", expected: [2, 2], got: [3, 2])) {
            try mlp.update(parameters: ["layers.0.bias": Tensor.zeros([2]), "layers.0.weight": Tensor.zeros([3, 2])])
        }
        #expect(mlp.layers[0].weight.toArray(Float.self) == original)
        #expect(mlp.layers[0].bias?.toArray(Float.self) != [0, 0])
        #expect(throws: ParameterError.missingNames(["layers.0.bias"])) {
            try mlp.update(parameters: ["layers.0.weight": Tensor.zeros([2, 2])], strict: true)
        }
        #expect(ParameterError.missingNames(["a", "b"]).description == "missing parameters: a, b")
    }
}

@Suite struct LossAndOptimizerTests {
    @Test func crossEntropyMatchesHandComputation() {
        // Row 0: logits [0, ln 3] → p(target 1) = 3/4; row 1: uniform over 2 → 1/2.
        let logits = Tensor([0, Float(Foundation.log(3.0)), 1, 1] as [Float], shape: [2, 2])
        let loss = Losses.crossEntropy(logits: logits, targets: Tensor([1, 0] as [Int32]))
        assertClose(loss, [(-Foundation.log(0.75) - Foundation.log(0.5)) / 2], shape: [])
        assertClose(Losses.meanSquaredError(Tensor([1, 2] as [Float]), Tensor([0, 0] as [Float])), [2.5], shape: [])
    }

    @Test func sgdLowersTheLoss() throws {
        let model = Linear(inputSize: 2, outputSize: 1, key: Random.key(4))
        let x = Random.normal([32, 2], key: Random.key(5))
        let y = x.matmul(Tensor([2, -1] as [Float], shape: [2, 1])) + 0.5
        let lossAndGradient = valueAndGrad { (p: [String: Tensor]) -> Tensor in
            try? model.update(parameters: p)
            return Losses.meanSquaredError(model(x), y)
        }
        let optimizer = SGD(learningRate: 0.1)
        var losses: [Float] = []
        for _ in 0..<30 {
            let (loss, gradients) = lossAndGradient(model.parameters())
            try optimizer.update(model, gradients: gradients)
            losses.append(loss.item(Float.self))
        }
        #expect(losses[29] < losses[0] * 0.05)
    }

    @Test func demoFitsAndChecksItsGradient() {
        let report = AutodiffDemo(steps: 50).run()
        #expect(report.contains("Fitting y = sin(x) on 256 points"))
        #expect(report.contains("gradient check"))
    }
}

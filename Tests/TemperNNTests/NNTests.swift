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
        let result = AutodiffDemo(steps: 50).result()
        #expect(result.report.contains("Fitting y = sin(x) on 256 points"))
        // Seed 0 starts near 0.70 and reaches about 0.14 after 50 steps.
        #expect(result.firstLoss > 0.5, "first loss \(result.firstLoss)")
        #expect(result.lastLoss < 0.2, "last loss \(result.lastLoss)")
        // Autodiff agrees with the five-point differences to about 2e-7.
        #expect(result.gradientError < 1e-5, "gradient error \(result.gradientError)")
        #expect(result.report.contains(String(format: "max difference %.2e", result.gradientError)))
    }
}

// MARK: against hand computation in Swift doubles

/// Row-major values of a tensor as Doubles, and small helpers to compute layers by hand.
private enum Hand {
    static func values(_ t: Tensor) -> [Double] { t.toArray(Double.self) }

    /// y[r][o] = Σᵢ x[r][i]·W[o][i] + b[o] for x: [rows, in], W: [out, in].
    static func linear(_ x: [Double], rows: Int, _ w: [Double], out: Int, bias: [Double]?)
        -> [Double]
    {
        let inputs = w.count / out
        var y: [Double] = []
        for r in 0..<rows {
            for o in 0..<out {
                var sum = bias?[o] ?? 0
                for i in 0..<inputs { sum += x[r * inputs + i] * w[o * inputs + i] }
                y.append(sum)
            }
        }
        return y
    }

    static func silu(_ x: Double) -> Double { x / (1 + Foundation.exp(-x)) }
}

@Suite struct LayerHandComputationTests {
    static let float32 = Tolerance(absolute: 1e-5, relative: 1e-5)

    @Test(arguments: [false, true])
    func linearMatchesAHandMatmul(withBias: Bool) {
        let layer = Linear(inputSize: 5, outputSize: 3, bias: withBias, key: Random.key(10))
        #expect(layer.weight.shape == [3, 5])
        #expect(layer.bias?.shape == (withBias ? [3] : nil))
        #expect(Set(layer.parameters().keys) == (withBias ? ["weight", "bias"] : ["weight"]))
        let x = Random.normal([2, 4, 5], key: Random.key(11))  // leading batch axes are kept
        let y = layer(x)
        #expect(y.shape == [2, 4, 3])
        let want = Hand.linear(
            Hand.values(x), rows: 8, Hand.values(layer.weight), out: 3,
            bias: layer.bias.map(Hand.values))
        assertClose(y, want, shape: [2, 4, 3], tolerance: Self.float32)
        // Changing the bias changes the output by exactly the new bias.
        if withBias {
            layer.bias = Tensor([1, 2, 3] as [Float])
            let unbiased = Hand.linear(
                Hand.values(x), rows: 8, Hand.values(layer.weight), out: 3, bias: [1, 2, 3])
            assertClose(layer(x), unbiased, shape: [2, 4, 3], tolerance: Self.float32)
        }
    }

    @Test func embeddingLooksUpRows() {
        let embedding = Embedding(count: 7, dimensions: 4, key: Random.key(12))
        let table = Hand.values(embedding.weight)
        let ids: [Int32] = [6, 0, 3, 3, 1, 6]
        let out = embedding(Tensor(ids, shape: [2, 3]))
        #expect(out.shape == [2, 3, 4])
        let want = ids.flatMap { id in table[Int(id) * 4..<Int(id) * 4 + 4] }
        #expect(Hand.values(out) == want)  // a gather copies bits exactly
    }

    @Test func rmsNormMatchesTheFormula() {
        let norm = RMSNorm(dimensions: 6, eps: 1e-5)
        #expect(norm.weight.toArray(Float.self) == [1, 1, 1, 1, 1, 1])
        norm.weight = Random.normal([6], key: Random.key(13))
        let x = Random.normal([3, 6], key: Random.key(14)) * 3
        let xs = Hand.values(x)
        let w = Hand.values(norm.weight)
        var want: [Double] = []
        for row in 0..<3 {
            let slice = xs[row * 6..<row * 6 + 6]
            let meanSquare = slice.map { $0 * $0 }.reduce(0, +) / 6
            want += slice.enumerated().map {
                $0.element / (meanSquare + 1e-5).squareRoot() * w[$0.offset]
            }
        }
        assertClose(
            norm(x), want, shape: [3, 6], tolerance: Tolerance(absolute: 1e-5, relative: 1e-5))
    }

    @Test func mlpComposesLinearAndSiLU() {
        let mlp = MLP(sizes: [4, 8, 8, 2], key: Random.key(15))
        #expect(mlp.layers.count == 3)
        #expect(
            Set(mlp.parameters().keys) == [
                "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                "layers.2.weight", "layers.2.bias",
            ])
        #expect(mlp.parameters()["layers.1.weight"]?.shape == [8, 8])
        #expect(mlp.parameters()["layers.2.bias"]?.shape == [2])
        #expect(mlp.parameterCount == (4 * 8 + 8) + (8 * 8 + 8) + (8 * 2 + 2))
        let x = Random.normal([5, 4], key: Random.key(16))
        var h = Hand.values(x)
        for (index, layer) in mlp.layers.enumerated() {
            h = Hand.linear(
                h, rows: 5, Hand.values(layer.weight), out: layer.weight.dim(0),
                bias: layer.bias.map(Hand.values))
            if index < 2 { h = h.map(Hand.silu) }
        }
        assertClose(mlp(x), h, shape: [5, 2], tolerance: Tolerance(absolute: 1e-5, relative: 1e-4))
    }
}

@Suite struct ParameterErrorTests {
    /// Every parameter of `mlp` as Swift arrays, to check that a failed update changed nothing.
    static func snapshot(_ mlp: MLP) -> [String: [Float]] {
        mlp.parameters().mapValues { $0.toArray(Float.self) }
    }

    @Test func unknownNamesAreListedSortedAndNothingChanges() {
        let mlp = MLP(sizes: [3, 4, 2], key: Random.key(20))
        let before = Self.snapshot(mlp)
        #expect(throws: ParameterError.unknownNames(["layers.0.gate", "layers.2.weight"])) {
            try mlp.update(parameters: [
                "layers.2.weight": Tensor.zeros([2, 4]),
                "layers.0.bias": Tensor.zeros([4]),  // valid, but must not be applied either
                "layers.0.gate": Tensor.zeros([4]),
            ])
        }
        #expect(Self.snapshot(mlp) == before)
        #expect(
            ParameterError.unknownNames(["a", "b"]).description == "unexpected parameters: a, b")
    }

    @Test func shapeMismatchNamesTheTensorAndNothingChanges() {
        let mlp = MLP(sizes: [3, 4, 2], key: Random.key(21))
        let before = Self.snapshot(mlp)
        let error = ParameterError.shapeMismatch(
            name: "layers.1.weight", expected: [2, 4], got: [4, 2])
        #expect(throws: error) {
            try mlp.update(parameters: [
                "layers.0.weight": Tensor.zeros([4, 3]),
                "layers.1.weight": Tensor.zeros([4, 2]),
            ])
        }
        #expect(Self.snapshot(mlp) == before)
        #expect(error.description == "parameter layers.1.weight has shape [4, 2], expected [2, 4]")
        // A scalar where a vector is expected is a mismatch too.
        #expect(throws: ParameterError.shapeMismatch(name: "layers.1.bias", expected: [2], got: []))
        {
            try mlp.update(parameters: ["layers.1.bias": Tensor(Float(1))])
        }
        #expect(Self.snapshot(mlp) == before)
    }

    @Test func strictModeListsEveryMissingName() throws {
        let mlp = MLP(sizes: [3, 4, 2], key: Random.key(22))
        let before = Self.snapshot(mlp)
        #expect(
            throws: ParameterError.missingNames([
                "layers.0.bias", "layers.1.bias", "layers.1.weight",
            ])
        ) {
            try mlp.update(parameters: ["layers.0.weight": Tensor.zeros([4, 3])], strict: true)
        }
        #expect(Self.snapshot(mlp) == before)
        // Unknown names are reported before missing ones.
        #expect(throws: ParameterError.unknownNames(["extra"])) {
            try mlp.update(parameters: ["extra": Tensor.zeros([1])], strict: true)
        }
        // Non-strict, the same partial update applies.
        try mlp.update(parameters: ["layers.0.weight": Tensor.zeros([4, 3])])
        #expect(mlp.layers[0].weight.toArray(Float.self) == Array(repeating: 0, count: 12))
        #expect(mlp.layers[1].weight.toArray(Float.self) == before["layers.1.weight"])
        // Strict with every name succeeds and replaces everything.
        let ones = mlp.parameters().mapValues { Tensor.ones($0.shape) }
        try mlp.update(parameters: ones, strict: true)
        #expect(Self.snapshot(mlp).values.allSatisfy { $0.allSatisfy { $0 == 1 } })
    }
}

@Suite struct LossAndTrainingTests {
    @Test func crossEntropyMatchesAHandLogSoftmax() {
        let logits = Random.normal([4, 6], key: Random.key(30)) * 2
        let targets: [Int32] = [5, 0, 2, 5]
        let loss = Losses.crossEntropy(logits: logits, targets: Tensor(targets))
        #expect(loss.shape == [])
        let z = Hand.values(logits)
        var want = 0.0
        for (row, target) in targets.enumerated() {
            let rowValues = z[row * 6..<row * 6 + 6]
            let peak = rowValues.max() ?? 0
            let logSumExp =
                peak + Foundation.log(rowValues.map { Foundation.exp($0 - peak) }.reduce(0, +))
            want += (logSumExp - z[row * 6 + Int(target)]) / 4
        }
        assertClose(loss, [want], shape: [], tolerance: Tolerance(absolute: 1e-5, relative: 1e-5))

        // Its gradient is (softmax(z) − onehot(target)) / N.
        let gradient = grad { Losses.crossEntropy(logits: $0[0], targets: Tensor(targets)) }([
            logits
        ])[0]
        var wantGradient: [Double] = []
        for (row, target) in targets.enumerated() {
            let rowValues = z[row * 6..<row * 6 + 6]
            let total = rowValues.map(Foundation.exp).reduce(0, +)
            wantGradient += rowValues.indices.map { j in
                (Foundation.exp(z[j]) / total - (j == row * 6 + Int(target) ? 1 : 0)) / 4
            }
        }
        assertClose(
            gradient, wantGradient, shape: [4, 6],
            tolerance: Tolerance(absolute: 1e-6, relative: 1e-4))
    }

    @Test func sgdStepsDownTheGradient() throws {
        // y = 3x − 1 on eight points; the model starts at w = 0, b = 0.
        let x = Tensor.linspace(-1, 1, count: 8).reshaped(8, 1)
        let y = x * 3 - 1
        let model = Linear(weight: Tensor.zeros([1, 1]), bias: Tensor.zeros([1]))
        let lossAndGradients = valueAndGrad { (p: [String: Tensor]) -> Tensor in
            try? model.update(parameters: p)
            return Losses.meanSquaredError(model(x), y)
        }
        let optimizer = SGD(learningRate: 0.2)

        // One step by hand: at w = b = 0, ∂L/∂w = −2·mean(x·y) and ∂L/∂b = −2·mean(y) = 2.
        let (firstLoss, gradients) = lossAndGradients(model.parameters())
        let xs = Hand.values(x)
        let ys = xs.map { 3 * $0 - 1 }
        let meanXY = zip(xs, ys).map(*).reduce(0, +) / 8
        assertClose(firstLoss, [ys.map { $0 * $0 }.reduce(0, +) / 8], shape: [])
        assertClose(gradients["weight"] ?? Tensor(Float(0)), [-2 * meanXY], shape: [1, 1])
        assertClose(gradients["bias"] ?? Tensor(Float(0)), [2], shape: [1])
        // Gradients for names the model does not have are ignored.
        try optimizer.update(
            model, gradients: gradients.merging(["ghost": Tensor(Float(1))]) { a, _ in a })
        assertClose(model.weight, [0.4 * meanXY], shape: [1, 1])
        assertClose(model.bias ?? Tensor(Float(0)), [-0.4], shape: [1])

        var losses = [firstLoss.item(Float.self)]
        for _ in 0..<40 {
            let (loss, gradients) = lossAndGradients(model.parameters())
            try optimizer.update(model, gradients: gradients)
            losses.append(loss.item(Float.self))
        }
        #expect(zip(losses, losses.dropFirst()).allSatisfy { $1 < $0 }, "\(losses)")
        #expect(losses.last ?? .infinity < 1e-3 * losses[0], "\(losses)")
        assertClose(
            model.weight, [3], shape: [1, 1], tolerance: Tolerance(absolute: 0.05, relative: 0))
        assertClose(
            model.bias ?? Tensor(Float(0)), [-1], shape: [1],
            tolerance: Tolerance(absolute: 0.01, relative: 0))
    }

    @Test func autodiffDemoLowersItsLoss() throws {
        let report = AutodiffDemo(steps: 50).run()
        #expect(report.contains("loss"))
        // "loss 0.7039 -> 0.12345 in 0.05 s (1000 steps/s)"
        let summary = try #require(report.split(separator: "\n").first { $0.hasPrefix("loss ") })
        let words = summary.split(separator: " ")
        let first = try #require(Double(words[1]))
        let last = try #require(Double(words[3]))
        #expect(words[2] == "->")
        #expect(first > 0)
        #expect(last < first, "\(summary)")
        // Five progress lines (steps 0, 10, 20, 30, 40) and the last step, 49.
        #expect(report.split(separator: "\n").filter { $0.hasPrefix("  step") }.count == 6)
        // The gradient check it prints agrees to better than 1e-5.
        let check = try #require(
            report.split(separator: "\n").first { $0.hasPrefix("gradient check") })
        let difference = try #require(check.split(separator: " ").last.flatMap { Double($0) })
        #expect(difference < 1e-5, "\(check)")
    }
}

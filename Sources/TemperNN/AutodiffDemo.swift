import Foundation
import TemperCore

/// Fits a small SiLU network to y = sin(x) by gradient descent and checks one gradient against
/// finite differences: tensors, autodiff and the optimizer working together.
public struct AutodiffDemo {
    public var steps: Int
    public var seed: UInt64

    /// What one run measured, beside the report it prints.
    public struct Result: Sendable {
        /// The training loss at the first and at the last step.
        public var firstLoss: Float
        public var lastLoss: Float
        /// The gradient check's largest |autodiff − finite difference| over its three elements.
        public var gradientError: Double
        /// The report's lines, joined by newlines.
        public var report: String
    }

    public init(steps: Int = 200, seed: UInt64 = 0) {
        self.steps = steps
        self.seed = seed
    }

    /// Runs the demo and returns its report.
    public func run() -> String { result().report }

    /// Runs the demo and returns its numbers with its report.
    public func result() -> Result {
        var lines: [String] = []
        let keys = Random.split(Random.key(seed), count: 2)
        let x = Tensor.linspace(-3, 3, count: 256).reshaped(256, 1)
        let y = x.sin()
        let model = MLP(sizes: [1, 32, 32, 1], key: keys[0])
        let optimizer = SGD(learningRate: 0.05)
        lines.append("Fitting y = sin(x) on 256 points with an MLP 1-32-32-1 (\(model.parameterCount) parameters)")
        let lossAndGradient = valueAndGrad { (parameters: [String: Tensor]) -> Tensor in
            try? model.update(parameters: parameters)
            return Losses.meanSquaredError(model(x), y)
        }
        let start = Date()
        var firstLoss: Float = 0
        var lastLoss: Float = 0
        for step in 0..<steps {
            let (loss, gradients) = lossAndGradient(model.parameters())
            try? optimizer.update(model, gradients: gradients)
            eval(Array(model.parameters().values) + [loss])
            lastLoss = loss.item(Float.self)
            if step == 0 { firstLoss = lastLoss }
            if step % Swift.max(steps / 5, 1) == 0 || step == steps - 1 {
                lines.append(String(format: "  step %4d  loss %.5f", step, lastLoss))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        lines.append(String(format: "loss %.4f -> %.5f in %.2f s (%.0f steps/s)", firstLoss, lastLoss, seconds, Double(steps) / seconds))

        // d/dx Σ sigmoid(x)·x² by autodiff and by central differences.
        let point = Tensor([0.5, -1.25, 2.0] as [Double])
        let f = { (t: Tensor) -> Tensor in (t.sigmoid() * t.square()).sum() }
        let analytic = grad { f($0[0]) }([point])[0].toArray(Double.self)
        // Five-point central differences with a step of 2e-2: MLX's float64 sigmoid computes its
        // exp in float32 on CPU, so a tiny step would amplify that rounding.
        let h = 2e-2
        let numeric = (0..<3).map { i -> Double in
            func shifted(_ delta: Double) -> Double {
                var values = point.toArray(Double.self)
                values[i] += delta
                return f(Tensor(values)).item(Double.self)
            }
            return (8 * (shifted(h) - shifted(-h)) - (shifted(2 * h) - shifted(-2 * h))) / (12 * h)
        }
        let worst = zip(analytic, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
        lines.append(String(format: "gradient check, d/dx sum(sigmoid(x)*x^2) in float64: autodiff vs finite differences, max difference %.2e", worst))
        lines.append(String(format: "memory: peak %.1f MB", Double(Memory.peakBytes) / 1e6))
        return Result(
            firstLoss: firstLoss, lastLoss: lastLoss, gradientError: worst,
            report: lines.joined(separator: "\n"))
    }
}

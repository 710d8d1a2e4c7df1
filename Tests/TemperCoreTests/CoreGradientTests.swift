import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// Gradients of ops by autodiff against the five-point central difference
/// (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h, whose truncation error is O(h⁴).
///
/// Inputs are float64 where MLX's CPU backend computes the op in float64. MLX's float64 arithmetic
/// (add, multiply, divide, matmul, reductions) is exact to double precision, so those use h = 1e-4
/// and tolerance 1e-8. Its float64 transcendental functions (exp, log, sigmoid, tanh, erf, sin, …)
/// are only float32-accurate (~6e-8 relative), so those use h = 2e-2 (rounding error ~5e-6,
/// truncation ~1e-8) and tolerance atol 2e-5 + rtol 1e-4. Ops MLX evaluates only in float32 use
/// h = 2e-2 and atol 1e-3 + rtol 1e-3.
@Suite struct GradientTests {
    static let exact = (h: 1e-4, tolerance: Tolerance(absolute: 1e-8, relative: 1e-8))
    static let transcendental = (h: 2e-2, tolerance: Tolerance(absolute: 2e-5, relative: 1e-4))
    static let float32 = (h: 2e-2, tolerance: Tolerance(absolute: 1e-3, relative: 1e-3))

    /// Random float64 values in [low, high), fixed by `seed`.
    static func input(_ shape: [Int], seed: UInt64, low: Float = -2, high: Float = 2, dtype: DType = .float64) -> Tensor {
        Random.uniform(shape, low: low, high: high, key: Random.key(seed)).asType(dtype)
    }

    /// A fixed weighting that turns an op's output into a scalar with a non-trivial gradient.
    static func weights(like t: Tensor, seed: UInt64 = 1000) -> Tensor {
        Random.normal(t.shape, key: Random.key(seed)).asType(t.dtype)
    }

    /// Compares `grad(f)` with central differences for every element of every input.
    static func check(
        _ label: String, _ inputs: [Tensor], h: Double, tolerance: Tolerance,
        sourceLocation: SourceLocation = #_sourceLocation, _ f: @escaping ([Tensor]) -> Tensor
    ) {
        let analytic = grad(f)(inputs)
        #expect(analytic.count == inputs.count, sourceLocation: sourceLocation)
        for (index, input) in inputs.enumerated() {
            let values = input.toArray(Double.self)
            var numeric: [Double] = []
            func value(at j: Int, shiftedBy delta: Double) -> Double {
                var moved = values
                moved[j] += delta
                var shifted = inputs
                shifted[index] = Tensor(moved, shape: input.shape).asType(input.dtype)
                return f(shifted).item(Double.self)
            }
            for j in values.indices {
                let near = value(at: j, shiftedBy: h) - value(at: j, shiftedBy: -h)
                let far = value(at: j, shiftedBy: 2 * h) - value(at: j, shiftedBy: -2 * h)
                numeric.append((8 * near - far) / (12 * h))
            }
            let want = Tensor(numeric, shape: input.shape)
            if let report = closenessReport(analytic[index].asType(.float64), want, tolerance: tolerance) {
                Issue.record("\(label), input \(index): \(report)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Checks the gradient of Σ w ⊙ op(x) for a one-input op.
    static func checkUnary(
        _ label: String, _ x: Tensor, precision: (h: Double, tolerance: Tolerance),
        sourceLocation: SourceLocation = #_sourceLocation, _ op: @escaping (Tensor) -> Tensor
    ) {
        let w = weights(like: op(x))
        check(label, [x], h: precision.h, tolerance: precision.tolerance, sourceLocation: sourceLocation) {
            (op($0[0]) * w).sum()
        }
    }

    @Test func elementwiseTranscendentals() {
        let x = Self.input([3, 4], seed: 1)
        let positive = Self.input([3, 4], seed: 2, low: 0.2, high: 3)
        Self.checkUnary("exp", x, precision: Self.transcendental) { $0.exp() }
        Self.checkUnary("log", positive, precision: Self.transcendental) { $0.log() }
        Self.checkUnary("log1p", positive, precision: Self.transcendental) { $0.log1p() }
        Self.checkUnary("sqrt", positive, precision: Self.transcendental) { $0.sqrt() }
        Self.checkUnary("rsqrt", positive, precision: Self.transcendental) { $0.rsqrt() }
        Self.checkUnary("sigmoid", x, precision: Self.transcendental) { $0.sigmoid() }
        Self.checkUnary("tanh", x, precision: Self.transcendental) { $0.tanh() }
        Self.checkUnary("silu", x, precision: Self.transcendental) { $0.silu() }
        Self.checkUnary("gelu", x, precision: Self.transcendental) { $0.gelu() }
        Self.checkUnary("geluApproximate", x, precision: Self.transcendental) { $0.geluApproximate() }
        Self.checkUnary("sin", x, precision: Self.transcendental) { $0.sin() }
    }

    @Test func softmaxFamily() {
        let x = Self.input([3, 5], seed: 3)
        Self.checkUnary("softmax", x, precision: Self.transcendental) { $0.softmax(axis: -1) }
        Self.checkUnary("logSoftmax", x, precision: Self.transcendental) { $0.logSoftmax(axis: -1) }
        Self.checkUnary("logSumExp", x, precision: Self.transcendental) { $0.logSumExp(axis: 1) }
    }

    @Test func arithmeticAndReductions() {
        let a = Self.input([3, 4], seed: 4)
        let b = Self.input([3, 4], seed: 5, low: 0.5, high: 2)
        let w = Self.weights(like: a)
        Self.check("divide", [a, b], h: Self.exact.h, tolerance: Self.exact.tolerance) { (($0[0] / $0[1]) * w).sum() }
        Self.check("multiply+subtract", [a, b], h: Self.exact.h, tolerance: Self.exact.tolerance) { (($0[0] * $0[1] - $0[1]) * w).sum() }
        Self.checkUnary("pow 3", a, precision: Self.transcendental) { $0.pow(3) }
        Self.check("pow tensor", [b, Self.input([3, 4], seed: 6, low: 0.5, high: 2)], h: Self.transcendental.h, tolerance: Self.transcendental.tolerance) { ($0[0].pow($0[1]) * w).sum() }
        // maximum: inputs kept apart so no element sits on the kink.
        Self.check("maximum", [a, a + 0.25 * Self.weights(like: a, seed: 7).sign()], h: Self.exact.h, tolerance: Self.exact.tolerance) { (maximum($0[0], $0[1]) * w).sum() }
        Self.checkUnary("mean", a, precision: Self.exact) { $0.mean(axis: 1) }
        Self.checkUnary("variance", a, precision: Self.exact) { $0.variance(axes: [0]) }
        Self.checkUnary("cumsum", a, precision: Self.exact) { $0.cumsum(axis: 1) }
    }

    @Test func matrixProducts() {
        let a = Self.input([3, 4], seed: 8)
        let b = Self.input([4, 2], seed: 9)
        let c = Self.input([3, 2], seed: 10)
        let w = Self.weights(like: c)
        Self.check("matmul", [a, b], h: Self.exact.h, tolerance: Self.exact.tolerance) { ($0[0].matmul($0[1]) * w).sum() }
        Self.check("addmm", [c, a, b], h: Self.exact.h, tolerance: Self.exact.tolerance) { ($0[0].addmm($0[1], $0[2], alpha: 0.5, beta: 2) * w).sum() }
        let batched = Self.input([2, 3, 4], seed: 11)
        Self.checkUnary("batched matmul", batched, precision: Self.exact) { $0.matmul(b) }
    }

    @Test func gatherSliceConcatenate() {
        let table = Self.input([5, 3], seed: 12)
        let ids = Tensor([4, 0, 4, 2] as [Int32])
        Self.checkUnary("take", table, precision: Self.exact) { $0.take(ids, axis: 0) }
        Self.checkUnary("takeAlong", table, precision: Self.exact) { $0.takeAlong(Tensor([2, 0, 1, 1, 0] as [Int32], shape: [5, 1]), axis: 1) }
        Self.checkUnary("slice", table, precision: Self.exact) { $0[1..<4, TensorIndex.stride(by: 2)] }
        Self.check("concatenate", [table, Self.input([2, 3], seed: 13)], h: Self.exact.h, tolerance: Self.exact.tolerance) {
            (Tensor.concatenated([$0[0], $0[1]], axis: 0) * Self.weights(like: Tensor.zeros([7, 3], dtype: .float64))).sum()
        }
        Self.checkUnary("where", table, precision: Self.exact) { which($0 .> 0, $0 * 3, $0 * $0) }
    }

    @Test func fastKernels() {
        let x = Self.input([2, 3, 8], seed: 14, dtype: .float32)
        let weight = Self.input([8], seed: 15, dtype: .float32)
        let bias = Self.input([8], seed: 16, dtype: .float32)
        let w = Self.weights(like: x)
        Self.check("rmsNorm", [x, weight], h: Self.float32.h, tolerance: Self.float32.tolerance) {
            (Fast.rmsNorm($0[0], weight: $0[1], eps: 1e-5) * w).sum()
        }
        Self.check("layerNorm", [x, weight, bias], h: Self.float32.h, tolerance: Self.float32.tolerance) {
            (Fast.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) * w).sum()
        }
        let y = Self.input([1, 2, 4, 8], seed: 17, dtype: .float32)
        let wy = Self.weights(like: y)
        Self.check("rope", [y], h: Self.float32.h, tolerance: Self.float32.tolerance) {
            (Fast.rope($0[0], dimensions: 8, traditional: false, base: 10_000, offset: 2) * wy).sum()
        }
        let q = Self.input([1, 2, 3, 4], seed: 18, dtype: .float32)
        let k = Self.input([1, 1, 3, 4], seed: 19, dtype: .float32)
        let v = Self.input([1, 1, 3, 4], seed: 20, dtype: .float32)
        let wq = Self.weights(like: q)
        Self.check("attention (causal, GQA)", [q, k, v], h: Self.float32.h, tolerance: Self.float32.tolerance) {
            (Fast.scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.5, mask: .causal) * wq).sum()
        }
    }

    @Test func stoppedGradientIsZero() {
        let x = Self.input([4], seed: 21)
        let g = grad { ($0[0] * $0[0].stoppedGradient()).sum() }([x])[0]
        // d/dx x·stop(x) = stop(x) = x.
        assertClose(g, x)
    }
}

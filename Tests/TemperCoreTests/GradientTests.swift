import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

// Gradients by autodiff (`grad`) against central finite differences, element by element:
//
//     ∂f/∂xⱼ ≈ (f(x + h·eⱼ) − f(x − h·eⱼ)) / (x⁺ⱼ − x⁻ⱼ)
//
// where x⁺ⱼ − x⁻ⱼ is the step actually taken after rounding to the input's dtype (2h in float64).
// Every op is reduced to a scalar as Σ w ⊙ op(x) with fixed random weights w, so that every
// element of the Jacobian contributes, and the sum is taken in float64.
//
// Precision classes (see `OpGradientTests.FiniteDifference`), chosen from measurements of
// MLX's CPU backend (float64 inputs against libm over [−5, 5]):
// - MLX computes float64 add/multiply/divide/matmul/reductions and its libm-backed functions
//   (log, log1p, expm1, sqrt, rsqrt, tanh, pow) to full double precision (measured error 0 to
//   5e-16), so those use h = 1e-6 and atol 1e-7 + rtol 1e-7.
// - MLX's float64 exp, erf, sin and cos are float32 polynomials inside
//   (mlx/backend/cpu/simd/math.h) and sigmoid is built on that exp: relative error up to ~5e-7
//   for exp/sigmoid, absolute up to ~3e-7 for sin/cos/erf. Everything built on them (softmax,
//   logSumExp, silu, gelu, attention) inherits that. Central differences at h = 1e-3 err by up to 4× atol 1e-5 + rtol 1e-4 there
//   (measured), so those use the Richardson-extrapolated central difference at h = 2e-2 with
//   that tolerance.
// - fast::rms_norm and fast::layer_norm compute in float32 even for float64 inputs, so they run on
//   float32 inputs with h = 1e-2 and atol 5e-4 + rtol 2e-3.

extension OpGradientTests {
    /// Step, stencil and tolerance of one finite-difference check.
    struct FiniteDifference: Sendable, CustomStringConvertible {
        var h: Double
        /// Richardson-extrapolated central differences, (4·D(h) − D(2h)) / 3 = (8(f₊₁ − f₋₁) −
        /// (f₊₂ − f₋₂)) / 12h: truncation error O(h⁴) instead of O(h²), so a larger step can be taken
        /// where the function's own rounding would swamp a small one.
        var extrapolated = false
        var tolerance: Tolerance

        /// float64 ops that MLX computes to double precision. Truncation h²/6·f‴ ≲ 1e-11 and rounding
        /// ≈ 1e-16·|f|/h ≲ 1e-9: measured errors stay below 2% of the tolerance.
        static let exact = FiniteDifference(
            h: 1e-6, tolerance: Tolerance(absolute: 1e-7, relative: 1e-7))
        /// float64 ops built on MLX's float32-accurate exp/sigmoid/erf/sin/cos. Their float32-grade
        /// rounding (δ ≈ 6e-8·|f|) makes plain central differences err by ~δ/h: 2e-5 to 1e-4 at h = 1e-3
        /// (measured, up to 4× atol 1e-5 + rtol 1e-4 for attention), while h = 1e-2 leaves a
        /// truncation error h²/6·f‴ of the same size (2× for gelu). The extrapolated stencil at
        /// h = 2e-2 has truncation ≈ h⁴/30·f⁽⁵⁾ ≈ 5e-9 and rounding ≈ δ/2h ≈ 1.5e-6·|f|.
        static let approximate = FiniteDifference(
            h: 2e-2, extrapolated: true, tolerance: Tolerance(absolute: 1e-5, relative: 1e-4))
        /// float32 inputs: central differences with h = 1e-2 (rounding ≈ 6e-8·|f|/h ≈ 6e-6·|f|);
        /// measured errors stay below 3% of the tolerance.
        static let float32 = FiniteDifference(
            h: 1e-2, tolerance: Tolerance(absolute: 5e-4, relative: 2e-3))

        var description: String { "h \(h)\(extrapolated ? " extrapolated" : ""), \(tolerance)" }
    }

    /// Inputs and the finite-difference comparison.
    enum Check {
        /// Normal values (mean 0, standard deviation 1) fixed by `seed`.
        static func normal(_ shape: [Int], seed: UInt64, dtype: DType = .float64) -> Tensor {
            Random.normal(shape, key: Random.key(seed)).asType(dtype)
        }

        /// Uniform values in [low, high) fixed by `seed`, for ops defined on part of the line only.
        static func uniform(
            _ shape: [Int], seed: UInt64, low: Float, high: Float, dtype: DType = .float64
        ) -> Tensor {
            Random.uniform(shape, low: low, high: high, key: Random.key(seed)).asType(dtype)
        }

        /// Σ w ⊙ y in float64, with w fixed normal weights shaped like y.
        static func weightedSum(_ y: Tensor, seed: UInt64 = 999) -> Tensor {
            (y.asType(.float64) * normal(y.shape, seed: seed)).sum()
        }

        /// The central-difference gradient of the scalar `f` with respect to `inputs[index]`.
        static func numericGradient(
            _ f: ([Tensor]) -> Tensor, _ inputs: [Tensor], index: Int, h: Double,
            extrapolated: Bool = false
        ) -> Tensor {
            let input = inputs[index]
            let values = input.toArray(Double.self)
            func rounded(_ value: Double) -> Double {
                input.dtype == .float32 ? Double(Float(value)) : value
            }
            func value(_ moved: [Double]) -> Double {
                var shifted = inputs
                shifted[index] = Tensor(moved, shape: input.shape).asType(input.dtype)
                return f(shifted).item(Double.self)
            }
            /// (f(x + step·eⱼ) − f(x − step·eⱼ)) / (the step actually taken after rounding).
            func central(_ j: Int, _ step: Double) -> Double {
                var plus = values
                var minus = values
                plus[j] = rounded(values[j] + step)
                minus[j] = rounded(values[j] - step)
                return (value(plus) - value(minus)) / (plus[j] - minus[j])
            }
            let gradient = values.indices.map { j in
                extrapolated ? (4 * central(j, h) - central(j, 2 * h)) / 3 : central(j, h)
            }
            return Tensor(gradient, shape: input.shape)
        }

        /// Compares `grad(f)` with central differences for every element of every input, and makes
        /// sure the gradient is not identically zero (which would make the comparison vacuous).
        static func check(
            _ label: String, _ inputs: [Tensor], _ precision: FiniteDifference,
            sourceLocation: SourceLocation = #_sourceLocation, _ f: @escaping ([Tensor]) -> Tensor
        ) {
            let analytic = grad(f)(inputs)
            #expect(analytic.count == inputs.count, "\(label)", sourceLocation: sourceLocation)
            for index in inputs.indices where index < analytic.count {
                let numeric = numericGradient(
                    f, inputs, index: index, h: precision.h, extrapolated: precision.extrapolated)
                let got = analytic[index].asType(.float64)
                #expect(
                    numeric.abs().max().item(Double.self) > 1e-3,
                    "\(label), input \(index): gradient is ~0", sourceLocation: sourceLocation)
                if let report = closenessReport(got, numeric, tolerance: precision.tolerance) {
                    Issue.record(
                        "\(label), input \(index) (\(precision)): \(report)",
                        sourceLocation: sourceLocation)
                }
            }
        }

        /// Checks the gradient of Σ w ⊙ op(x) for a one-input op.
        static func checkUnary(
            _ label: String, _ x: Tensor, _ precision: FiniteDifference,
            sourceLocation: SourceLocation = #_sourceLocation, _ op: @escaping (Tensor) -> Tensor
        ) {
            check(label, [x], precision, sourceLocation: sourceLocation) { weightedSum(op($0[0])) }
        }
    }

    /// Elementwise ops, each checked on its own domain.
    enum ElementwiseOp: String, CaseIterable, Sendable, CustomStringConvertible {
        case exp, expm1, log, log1p, sqrt, rsqrt, square, reciprocal, sigmoid, tanh, sin, cos, erf
        case silu, gelu, geluApproximate

        var description: String { rawValue }

        func apply(_ x: Tensor) -> Tensor {
            switch self {
            case .exp: x.exp()
            case .expm1: x.expm1()
            case .log: x.log()
            case .log1p: x.log1p()
            case .sqrt: x.sqrt()
            case .rsqrt: x.rsqrt()
            case .square: x.square()
            case .reciprocal: x.reciprocal()
            case .sigmoid: x.sigmoid()
            case .tanh: x.tanh()
            case .sin: x.sin()
            case .cos: x.cos()
            case .erf: x.erf()
            case .silu: x.silu()
            case .gelu: x.gelu()
            case .geluApproximate: x.geluApproximate()
            }
        }

        /// Inputs in the op's domain, away from poles and branch points.
        var input: Tensor {
            switch self {
            case .log, .sqrt, .rsqrt, .reciprocal:
                Check.uniform([3, 5], seed: 11, low: 0.3, high: 3)
            case .log1p:
                Check.uniform([3, 5], seed: 12, low: -0.6, high: 3)
            default:
                Check.normal([3, 5], seed: 13)
            }
        }

        var precision: FiniteDifference {
            switch self {
            case .exp, .sigmoid, .sin, .cos, .erf, .silu, .gelu: .approximate
            default: .exact
            }
        }
    }
}

@Suite struct OpGradientTests {
    typealias G = Check

    @Test func finiteDifferencesMatchAKnownDerivativeAndCatchAWrongOne() {
        // d/dx Σ x³ = 3x², computed by the helper alone.
        let x = Tensor([0.5, -1.5, 2.0] as [Double])
        let numeric = G.numericGradient({ $0[0].pow(3).sum() }, [x], index: 0, h: 1e-6)
        assertClose(
            numeric, [0.75, 6.75, 12], tolerance: Tolerance(absolute: 1e-8, relative: 1e-8))
        // The gradient of Σ x² (2x) is told apart from that of Σ x³ (3x²).
        let wrong = grad { $0[0].square().sum() }([x])[0]
        #expect(
            closenessReport(wrong, numeric, tolerance: FiniteDifference.approximate.tolerance)
                != nil)
    }

    @Test(arguments: ElementwiseOp.allCases)
    func elementwise(_ op: ElementwiseOp) {
        G.checkUnary(op.rawValue, op.input, op.precision) { op.apply($0) }
    }

    @Test func softmaxLogSoftmaxAndLogSumExp() {
        let x = G.normal([3, 5], seed: 20)
        G.checkUnary("softmax(axis: -1)", x, .approximate) { $0.softmax(axis: -1) }
        G.checkUnary("softmax(axis: 0)", x, .approximate) { $0.softmax(axis: 0) }
        G.checkUnary("softmax(axes: [0, 1])", x, .approximate) { $0.softmax(axes: [0, 1]) }
        G.checkUnary("logSoftmax(axis: -1)", x, .approximate) { $0.logSoftmax(axis: -1) }
        G.checkUnary("logSoftmax(axis: 0)", x, .approximate) { $0.logSoftmax(axis: 0) }
        G.checkUnary("logSumExp(axis: 1)", x, .approximate) { $0.logSumExp(axis: 1) }
        G.checkUnary("logSumExp(all, keepDims)", x, .approximate) { $0.logSumExp(keepDims: true) }
    }

    @Test func matmulAndAddmm() {
        let a = G.normal([3, 4], seed: 30)
        let b = G.normal([4, 2], seed: 31)
        let c = G.normal([3, 2], seed: 32)
        G.check("matmul", [a, b], .exact) { G.weightedSum($0[0].matmul($0[1])) }
        G.check("batched matmul, broadcast right", [G.normal([2, 3, 4], seed: 33), b], .exact) {
            G.weightedSum($0[0].matmul($0[1]))
        }
        G.check("vector · matrix", [G.normal([4], seed: 34), b], .exact) {
            G.weightedSum($0[0].matmul($0[1]))
        }
        G.check("addmm(alpha 0.5, beta 2)", [c, a, b], .exact) {
            G.weightedSum($0[0].addmm($0[1], $0[2], alpha: 0.5, beta: 2))
        }
        G.check("addmm broadcast bias", [G.normal([2], seed: 35), a, b], .exact) {
            G.weightedSum($0[0].addmm($0[1], $0[2]))
        }
    }

    @Test func arithmeticAndPower() {
        let a = G.normal([3, 4], seed: 40)
        let b = G.uniform([3, 4], seed: 41, low: 0.5, high: 2)
        G.check("a · b − b", [a, b], .exact) { G.weightedSum($0[0] * $0[1] - $0[1]) }
        G.check("a / b", [a, b], .exact) { G.weightedSum($0[0] / $0[1]) }
        G.check("a / b, b broadcast", [a, G.uniform([4], seed: 42, low: 0.5, high: 2)], .exact) {
            G.weightedSum($0[0] / $0[1])
        }
        G.checkUnary("2 / x", b, .exact) { 2.0 / $0 }
        G.checkUnary("x^3", a, .exact) { $0.pow(3) }
        G.checkUnary("x^-2", b, .exact) { $0.pow(-2) }
        G.checkUnary("x^2.5", b, .exact) { $0.pow(2.5) }
        G.check("x^y", [b, G.normal([3, 4], seed: 43)], .exact) { G.weightedSum($0[0].pow($0[1])) }
    }

    @Test func maximumAndMinimum() {
        let a = G.normal([3, 4], seed: 50)
        // b differs from a by ±0.5 everywhere, so no element sits on the kink where a = b.
        let b = a + G.normal([3, 4], seed: 51).sign() * 0.5
        #expect((a - b).abs().min().item(Double.self) > 0.49)
        G.check("maximum", [a, b], .exact) { G.weightedSum(maximum($0[0], $0[1])) }
        G.check("minimum", [a, b], .exact) { G.weightedSum(minimum($0[0], $0[1])) }
        // ReLU as maximum with a broadcast zero; inputs kept away from 0.
        #expect(a.abs().min().item(Double.self) > 1e-3)
        G.checkUnary("maximum(x, 0)", a, .exact) { maximum($0, Tensor(0.0)) }
    }

    @Test func reductions() {
        let x = G.normal([2, 3, 4], seed: 60)
        G.checkUnary("sum(all)", x, .exact) { $0.sum() }
        G.checkUnary("sum(axes: [0, 2])", x, .exact) { $0.sum(axes: [0, 2]) }
        G.checkUnary("mean(axis: 1, keepDims)", x, .exact) { $0.mean(axis: 1, keepDims: true) }
        G.checkUnary("mean(all)", x, .exact) { $0.mean() }
        G.checkUnary("variance(axes: [2])", x, .exact) { $0.variance(axes: [2]) }
        G.checkUnary("variance(ddof 1)", x, .exact) { $0.variance(axes: [0, 1], ddof: 1) }
        G.checkUnary("standardDeviation(axes: [2])", x, .exact) { $0.standardDeviation(axes: [2]) }
        G.checkUnary("product(axes: [2])", x, .exact) { $0.product(axes: [2]) }
        G.checkUnary("cumsum(axis: 2)", x, .exact) { $0.cumsum(axis: 2) }
    }

    @Test func gathers() {
        let table = G.normal([5, 3], seed: 70)
        // Repeated indices must accumulate their gradients.
        let ids = Tensor([4, 0, 4, 2, 4] as [Int32])
        G.checkUnary("take(axis: 0)", table, .exact) { $0.take(ids, axis: 0) }
        G.checkUnary("take(axis: 1), 2-D ids", table, .exact) {
            $0.take(Tensor([2, 2, 0, 1] as [Int32], shape: [2, 2]), axis: 1)
        }
        let along = Tensor([2, 0, 1, 1, 0, 2, 2, 2, 0, 1] as [Int32], shape: [5, 2])
        G.checkUnary("takeAlong(axis: 1)", table, .exact) { $0.takeAlong(along, axis: 1) }
        let rows = Tensor([4, 4, 0] as [Int32], shape: [1, 3])
        G.checkUnary("takeAlong(axis: 0)", table, .exact) { $0.takeAlong(rows, axis: 0) }
    }

    @Test func slicingConcatenationAndShapes() {
        let x = G.normal([4, 5], seed: 80)
        let y = G.normal([4, 2], seed: 81)
        G.check("concatenated(axis: 1)", [x, y, x], .exact) {
            G.weightedSum(Tensor.concatenated([$0[0], $0[1], $0[2].square()], axis: 1))
        }
        G.check("concatenated(axis: 0)", [x, G.normal([1, 5], seed: 82)], .exact) {
            G.weightedSum(Tensor.concatenated([$0[0], $0[1]], axis: 0))
        }
        G.check("stacked", [x, x * 2], .exact) {
            G.weightedSum(Tensor.stacked([$0[0], $0[1]], axis: 1))
        }
        G.checkUnary("sliced(strided)", x, .exact) {
            $0.sliced(start: [1, 0], stop: [4, 5], strides: [2, 2])
        }
        G.checkUnary("subscript", x, .exact) { $0[1..., TensorIndex.stride(from: 1, by: 3)] }
        G.checkUnary("split", x, .exact) { x in
            let parts = x.split(indices: [2], axis: 1)
            return parts[0].sum(axis: 1) * parts[1].mean(axis: 1)
        }
        G.checkUnary("transposed + reshaped", x, .exact) { $0.transposed(1, 0).reshaped(2, 10) }
        G.checkUnary("padded", x, .exact) { $0.padded([(1, 0), (0, 2)], value: 3) }
        G.checkUnary("broadcast", G.normal([1, 5], seed: 83), .exact) {
            $0.broadcast(to: [3, 5]).square()
        }
        G.checkUnary("which", x, .exact) { which($0 .> 0, $0 * 3, $0.square()) }
    }

    @Test func rmsNormAndLayerNorm() {
        let x = G.normal([2, 3, 8], seed: 90, dtype: .float32)
        let weight = G.normal([8], seed: 91, dtype: .float32)
        let bias = G.normal([8], seed: 92, dtype: .float32)
        G.check("rmsNorm", [x, weight], .float32) {
            G.weightedSum(Fast.rmsNorm($0[0], weight: $0[1], eps: 1e-5))
        }
        G.checkUnary("rmsNorm, no weight", x, .float32) { Fast.rmsNorm($0, weight: nil, eps: 1e-5) }
        G.check("layerNorm", [x, weight, bias], .float32) {
            G.weightedSum(Fast.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5))
        }
        G.checkUnary("layerNorm, no affine", x, .float32) {
            Fast.layerNorm($0, weight: nil, bias: nil, eps: 1e-5)
        }
    }

    @Test(arguments: [false, true])
    func rope(traditional: Bool) {
        let x = G.normal([1, 2, 5, 8], seed: 100)
        G.checkUnary("rope(traditional: \(traditional))", x, .exact) {
            Fast.rope($0, dimensions: 8, traditional: traditional, base: 10_000, offset: 3)
        }
        G.checkUnary("rope(6 of 8 dims, scale 0.5)", x, .exact) {
            Fast.rope($0, dimensions: 6, traditional: traditional, base: 500, scale: 0.5)
        }
        let x32 = G.normal([1, 2, 4, 8], seed: 101, dtype: .float32)
        G.checkUnary("rope(traditional: \(traditional)), float32", x32, .float32) {
            Fast.rope($0, dimensions: 8, traditional: traditional, base: 10_000, offset: 2)
        }
    }

    @Test func scaledDotProductAttention() {
        // Grouped-query: 4 query heads share 2 key/value heads.
        let q = G.normal([1, 4, 3, 4], seed: 110)
        let k = G.normal([1, 2, 5, 4], seed: 111)
        let v = G.normal([1, 2, 5, 4], seed: 112)
        let additive = G.normal([3, 5], seed: 113)
        let boolean = Tensor(
            [
                true, true, false, true, false, true, true, true, true, false, true, false, false,
                true, true,
            ], shape: [3, 5])
        let masks: [(String, Fast.AttentionMask)] = [
            ("none", .none), ("causal", .causal), ("additive", .array(additive)),
            ("boolean", .array(boolean)),
        ]
        for (name, mask) in masks {
            G.check("attention, mask \(name)", [q, k, v], .approximate) {
                G.weightedSum(
                    Fast.scaledDotProductAttention(
                        queries: $0[0], keys: $0[1], values: $0[2], scale: 0.5, mask: mask))
            }
        }
        // float32 inputs: 2 query heads share one key/value head.
        let q32 = G.normal([1, 2, 3, 4], seed: 114, dtype: .float32)
        let k32 = G.normal([1, 1, 3, 4], seed: 115, dtype: .float32)
        let v32 = G.normal([1, 1, 3, 4], seed: 116, dtype: .float32)
        G.check("attention, float32, mask causal", [q32, k32, v32], .float32) {
            G.weightedSum(
                Fast.scaledDotProductAttention(
                    queries: $0[0], keys: $0[1], values: $0[2], scale: 0.5, mask: .causal))
        }
    }
}

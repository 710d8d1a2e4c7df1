import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// The fused kernels against MLX's own composition of the same function, forward and gradient,
/// for random float32 inputs of several shapes (odd sizes exercise the vector tails).
///
/// The reference runs in float64 and the tolerance is 1e-5 relative (2e-6 absolute floor): the
/// float32 composition itself strays further than that from the exact value on long rows (a softmax
/// gradient sums 1000 products), so comparing two float32 results would measure MLX's rounding.
@Suite struct KernelTests {
    static let shapes: [[Int]] = [[1], [7], [3, 5], [4, 33], [2, 3, 129], [64, 1000]]
    /// Relative 1e-5 with an absolute floor for values near zero, where relative error is meaningless.
    static let tolerance = Tolerance(absolute: 2e-6, relative: 1e-5)

    static func input(_ shape: [Int], seed: UInt64, scale: Float = 3) -> Tensor {
        Random.normal(shape, standardDeviation: scale, key: Random.key(seed))
    }

    /// Forward values and the vjp for a random cotangent must match.
    static func compare(
        _ label: String, _ inputs: [Tensor], tolerance: Tolerance = KernelTests.tolerance,
        sourceLocation: SourceLocation = #_sourceLocation,
        fused: @escaping ([Tensor]) -> Tensor, reference: @escaping ([Tensor]) -> Tensor
    ) {
        let wide = inputs.map { $0.asType(.float64) }
        let want = reference(wide)
        let got = fused(inputs)
        assertWithin(got, want, tolerance: tolerance, "\(label) forward", sourceLocation: sourceLocation)
        let cotangent = Random.normal(want.shape, key: Random.key(777))
        let gotGradients = vjp({ [fused($0)] }, primals: inputs, cotangents: [cotangent]).vjps
        let wantGradients = vjp({ [reference($0)] }, primals: wide, cotangents: [cotangent.asType(.float64)]).vjps
        for index in inputs.indices {
            assertWithin(gotGradients[index], wantGradients[index], tolerance: tolerance, "\(label) gradient \(index)",
                         sourceLocation: sourceLocation)
        }
    }

    /// assertClose against the float64 `want` rounded to float32, checked with MLX reductions first
    /// (a Swift loop over millions of values is slow in debug builds); itemized only on failure.
    static func assertWithin(
        _ got: Tensor, _ want: Tensor, tolerance: Tolerance, _ label: String, sourceLocation: SourceLocation
    ) {
        let expected = want.asType(.float32)
        if got.shape == expected.shape {
            let (a, b) = (got.asType(.float64), expected.asType(.float64))
            let excess = ((a - b).abs() - b.abs() * tolerance.relative - tolerance.absolute).max().item(Double.self)
            if excess <= 0 { return }
        }
        assertClose(got, expected, tolerance: tolerance, label, sourceLocation: sourceLocation)
    }

    @Test(arguments: shapes)
    func elementwise(shape: [Int]) {
        let x = Self.input(shape, seed: 1)
        let positive = x.abs() + 0.01
        Self.compare("exp", [x], fused: { Kernels.exp($0[0]) }, reference: { $0[0].exp() })
        Self.compare("log", [positive], fused: { Kernels.log($0[0]) }, reference: { $0[0].log() })
        Self.compare("sigmoid", [x], fused: { Kernels.sigmoid($0[0]) }, reference: { $0[0].sigmoid() })
        Self.compare("silu", [x], fused: { Kernels.silu($0[0]) }, reference: { $0[0].silu() })
        Self.compare("tanh", [x], fused: { Kernels.tanh($0[0]) }, reference: { $0[0].tanh() })
        Self.compare("gelu tanh", [x], fused: { Kernels.geluApproximate($0[0]) }, reference: { $0[0].geluApproximate() })
        Self.compare("gelu erf", [x], fused: { Kernels.gelu($0[0]) }, reference: { $0[0].gelu() })
        Self.compare("softplus", [x], fused: { Kernels.softplus($0[0]) }, reference: { maximum($0[0], Tensor.zeros(like: $0[0])) + ($0[0].abs() * -1).exp().log1p() })
    }

    @Test func elementwiseEdgeValues() {
        let x = Tensor([-Float.infinity, -200, -88, -20, -1e-6, 0, 1e-6, 20, 88, 200] as [Float])
        #expect(Kernels.exp(x).toArray(Float.self)[0] == 0)
        #expect(Kernels.exp(x).toArray(Float.self)[9] == Float.infinity)
        #expect(Kernels.sigmoid(x).toArray(Float.self)[0] == 0)
        #expect(Kernels.sigmoid(x).toArray(Float.self)[9] == 1)
        assertClose(Kernels.tanh(x), x.tanh(), tolerance: Self.tolerance)
        assertClose(Kernels.softplus(x), [0, 0, 6.054601895401186e-39, 2.0611536181902037e-09, 0.6931466805598203, 0.6931471805599453, 0.6931476805603203, 20.000000002061153, 88, 200], tolerance: Tolerance(absolute: 1e-30, relative: 1e-5))
        let logs = Kernels.log(Tensor([0, -1, 1, Float.infinity] as [Float])).toArray(Float.self)
        #expect(logs[0] == -Float.infinity)
        #expect(logs[1].isNaN)
        #expect(logs[2] == 0)
        #expect(logs[3] == Float.infinity)
    }

    /// gelu computes Φ's lower tail itself rather than 1 + erf, so its relative accuracy holds
    /// where x·Φ(x) is tiny (float32's own 1 + erf(x/√2) has none left below x ≈ −5).
    @Test func geluKeepsItsRelativeAccuracyInBothTails() {
        let xs = stride(from: -12.0, through: 12.0, by: 0.0125).map { Float($0) }
        let want = xs.map { Double($0) * 0.5 * Foundation.erfc(-Double($0) / 2.0.squareRoot()) }
        assertClose(Kernels.gelu(Tensor(xs)), want, tolerance: Tolerance(absolute: 1e-37, relative: 1e-6))
    }

    @Test func expIsFiniteUpToFloatMaxAndExactlyZeroForMinusInfinity() {
        let x = Tensor([-80, -1e-3, 1e-3, 50, 88.5, 88.72] as [Float])
        assertClose(Kernels.exp(x), [-80, -1e-3, 1e-3, 50, 88.5, 88.72].map { Foundation.exp(Double(Float($0))) },
                    tolerance: Tolerance(absolute: 0, relative: 2e-7))
    }

    @Test(arguments: shapes)
    func swiGLU(shape: [Int]) {
        let gate = Self.input(shape, seed: 2)
        let up = Self.input(shape, seed: 3)
        Self.compare("swiGLU", [gate, up], fused: { Kernels.swiGLU(gate: $0[0], up: $0[1]) }, reference: { $0[0].silu() * $0[1] })
    }

    @Test(arguments: shapes)
    func softmaxFamily(shape: [Int]) {
        let x = Self.input(shape, seed: 4, scale: 5)
        Self.compare("softmax", [x], fused: { Kernels.softmax($0[0]) }, reference: { $0[0].softmax(axis: -1) })
        Self.compare("logSoftmax", [x], fused: { Kernels.logSoftmax($0[0]) }, reference: { $0[0].logSoftmax(axis: -1) })
        Self.compare("logSumExp", [x], fused: { Kernels.logSumExp($0[0]) }, reference: { $0[0].logSumExp(axis: -1) })
        Self.compare("logSumExp keepDims", [x], fused: { Kernels.logSumExp($0[0], keepDims: true) }, reference: { $0[0].logSumExp(axis: -1, keepDims: true) })
    }

    /// Outputs of 32 MiB and more are written with non-temporal stores from each row's first
    /// 32-byte boundary; an odd width starts every row at a different alignment.
    @Test func softmaxFamilyOnRowsLargerThanTheCaches() {
        let x = Self.input([3, 2_796_203], seed: 6, scale: 5)
        Self.compare("softmax", [x], fused: { Kernels.softmax($0[0]) }, reference: { $0[0].softmax(axis: -1) })
        Self.compare("logSoftmax", [x], fused: { Kernels.logSoftmax($0[0]) }, reference: { $0[0].logSoftmax(axis: -1) })
        Self.compare("logSumExp", [x], fused: { Kernels.logSumExp($0[0]) }, reference: { $0[0].logSumExp(axis: -1) })
    }

    @Test func softmaxWithMaskedEntriesAndFullyMaskedRows() {
        let ninf = -Float.infinity
        let x = Tensor([1, ninf, 2, ninf, ninf, ninf, ninf, ninf, 3, 1000, 1000, ninf] as [Float], shape: [3, 4])
        let s = Kernels.softmax(x).toArray(Float.self)
        assertClose(Kernels.softmax(x)[0], x[0].softmax(axis: -1), tolerance: Self.tolerance)
        assertClose(Kernels.softmax(x)[2], x[2].softmax(axis: -1), tolerance: Self.tolerance)
        #expect(s[1] == 0 && s[3] == 0)
        #expect(s[4...7].allSatisfy { $0 == 0 })  // a fully masked row
        let lse = Kernels.logSumExp(x).toArray(Float.self)
        #expect(lse[1] == -Float.infinity)  // a fully masked row
        #expect(Swift.abs(lse[2] - (1000 + Float(Foundation.log(2.0)))) < 1e-3)
        // A fully masked row gets no gradient, not NaN.
        let g = grad { Kernels.logSumExp($0[0])[TensorIndex.stride(by: 2)].sum() }([x])[0].toArray(Float.self)
        #expect(g[4...7].allSatisfy { $0 == 0 })
        #expect(g.allSatisfy { !$0.isNaN })
    }

    @Test func nonContiguousInputsAndSecondUse() {
        let base = Self.input([6, 10], seed: 5)
        let transposed = base.transposed()          // [10, 6], not row-contiguous
        assertClose(Kernels.softmax(transposed), transposed.softmax(axis: -1), tolerance: Self.tolerance)
        assertClose(Kernels.silu(base[TensorIndex.all, TensorIndex.stride(by: 3)]), base[TensorIndex.all, TensorIndex.stride(by: 3)].silu(), tolerance: Self.tolerance)
        // Other dtypes take MLX's path and keep their dtype.
        let half = base.asType(.bfloat16)
        #expect(Kernels.silu(half).dtype == .bfloat16)
        #expect(Kernels.softmax(half).dtype == .bfloat16)
        #expect(Kernels.threadCount >= 1)
    }

    /// OpenBLAS 0.3.21 falls back to SSE3 (Prescott) kernels on CPUs it does not know, five times
    /// slower; on a CPU with AVX2 the kernel set in use must be a vector one.
    @Test func openBLASRunsTheCPUsVectorKernels() throws {
        #if arch(x86_64)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
        let core = Kernels.openBLASCore
        if getenv("OPENBLAS_CORETYPE") == nil && flags.contains("avx2") && flags.contains("fma") {
            #expect(!core.hasPrefix("Prescott"), "OpenBLAS runs \(core) on a CPU with AVX2")
            let expected = flags.contains("avx512f") && flags.contains("avx512bw") ? "SkylakeX" : "Haswell"
            if core.contains("chosen by Temper") { #expect(core.hasPrefix(expected)) }
        }
        #endif
    }
}

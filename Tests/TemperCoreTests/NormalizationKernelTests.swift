import Testing
import TemperTestSupport

@testable import TemperCore

/// RMSNorm and rotary embedding kernels against float64 compositions of MLX ops, forward and
/// gradients (odd widths exercise the vector tails; T = 1 is the decoding case).
@Suite struct NormalizationKernelTests {
    /// The composition transformers' LlamaRMSNorm computes.
    static func rmsNormReference(_ x: Tensor, _ weight: Tensor, eps: Double) -> Tensor {
        x * ((x * x).mean(axis: -1, keepDims: true) + eps).rsqrt() * weight
    }

    @Test(arguments: [[1, 8], [3, 5], [2, 7, 33], [64, 576], [5, 1, 2, 24]])
    func rmsNormMatchesTheComposition(shape: [Int]) {
        let x = KernelTests.input(shape, seed: 11)
        let weight = KernelTests.input([shape.last!], seed: 12, scale: 1) + 1
        // The weight gradient sums over rows, so float32 rounding grows with their number: at 64 rows
        // MLX's own float32 composition is 7e-6 off the float64 value (this kernel 5e-6).
        KernelTests.compare("rms_norm \(shape)", [x, weight], tolerance: Tolerance(absolute: 1e-5, relative: 1e-5),
                            fused: { Kernels.rmsNorm($0[0], weight: $0[1], eps: 1e-5) },
                            reference: { Self.rmsNormReference($0[0], $0[1], eps: 1e-5) })
    }

    @Test func rmsNormOfAZeroRowIsZeroAndFallsBackOffFloat32() {
        let x = Tensor.zeros([2, 16])
        let weight = Tensor.ones([16])
        #expect(Kernels.rmsNorm(x, weight: weight, eps: 1e-6).abs().max().item(Float.self) == 0)
        let half = KernelTests.input([3, 16], seed: 3).asType(.bfloat16)
        #expect(Kernels.rmsNorm(half, weight: weight.asType(.bfloat16), eps: 1e-6).dtype == .bfloat16)
    }

    /// Rotate-half RoPE of [B, T, H, D] by tables [Bc, T, D/2], transposed to [B, H, T, D].
    static func ropeReference(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
        let heads = x.transposed(0, 2, 1, 3)
        let half = x.dim(-1) / 2
        let (c, s) = (cos.expandedDimensions(axis: 1), sin.expandedDimensions(axis: 1))
        let first = heads[TensorIndex.ellipsis, ..<half], second = heads[TensorIndex.ellipsis, half...]
        return Tensor.concatenated([first * c - second * s, second * c + first * s], axis: -1)
    }

    /// [B, T, H, D] and whether every row has its own angles (packed or padded batches).
    @Test(arguments: [([1, 1, 1, 2], false), ([2, 5, 3, 24], true), ([4, 17, 9, 64], false), ([3, 1, 2, 128], true),
                      ([2, 9, 2, 18], false)])
    func ropeHeadsMatchesTheComposition(shape: [Int], batchedAngles: Bool) {
        let x = KernelTests.input(shape, seed: 21)
        let rows = batchedAngles ? shape[0] : 1
        let angles = KernelTests.input([rows, shape[1], shape[3] / 2], seed: 22)
        let (cos, sin) = (angles.cos(), angles.sin())
        let got = Kernels.ropeHeads(x, cos: cos, sin: sin) { _ in Tensor.zeros([1]) }
        #expect(got.shape == [shape[0], shape[2], shape[1], shape[3]])
        KernelTests.compare("rope \(shape)", [x],
                            fused: { Kernels.ropeHeads($0[0], cos: cos, sin: sin) { _ in Tensor.zeros([1]) } },
                            reference: { Self.ropeReference($0[0], cos: cos.asType(.float64), sin: sin.asType(.float64)) })
    }

    @Test func ropeHeadsFallsBackForTablesThatDoNotFit() {
        let x = KernelTests.input([2, 3, 1, 4], seed: 1)
        let wrong = Tensor.ones([2, 4, 2])  // T = 4 for a 3-token x
        let got = Kernels.ropeHeads(x, cos: wrong, sin: wrong) { heads in heads * 2 }
        assertClose(got, x.transposed(0, 2, 1, 3) * 2, tolerance: Tolerance(absolute: 0, relative: 0))
    }
}

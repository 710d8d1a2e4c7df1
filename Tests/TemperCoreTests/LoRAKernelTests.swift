import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// The fused LoRA linear layer against MLX's composition (float64): forward and the gradients of
/// x, W, A, B, the bias and the dropped input, for odd and real sizes.
@Suite struct LoRAKernelTests {
    struct Sizes: CustomStringConvertible, Sendable {
        var rows, input, output, rank: Int
        var description: String { "N\(rows) in\(input) out\(output) r\(rank)" }
    }

    static let sizes = [
        Sizes(rows: 1, input: 5, output: 3, rank: 1),
        Sizes(rows: 7, input: 33, output: 17, rank: 4),
        Sizes(rows: 37, input: 100, output: 300, rank: 6),
        Sizes(rows: 130, input: 576, output: 192, rank: 16),
    ]

    /// x, W, A, B (B nonzero so every path carries signal), bias, dropped x.
    static func inputs(_ s: Sizes) -> [Tensor] {
        let keys = Random.split(Random.key(3), count: 6)
        return [Random.normal([s.rows, s.input], key: keys[0]),
                Random.normal([s.output, s.input], standardDeviation: 0.2, key: keys[1]),
                Random.normal([s.rank, s.input], standardDeviation: 0.2, key: keys[2]),
                Random.normal([s.output, s.rank], standardDeviation: 0.2, key: keys[3]),
                Random.normal([s.output], key: keys[4]),
                Random.normal([s.rows, s.input], key: keys[5])]
    }

    @Test(arguments: sizes)
    func matchesTheComposition(sizes: Sizes) {
        let all = Self.inputs(sizes)
        // dA and dB sum N products and reach a few hundred here; MLX's own float32 composition is
        // 1.4e-4 off float64 at the largest size, the fused kernel under 7e-5.
        let tolerance = Tolerance(absolute: 1e-4, relative: 1e-5)
        KernelTests.compare("lora \(sizes)", Array(all[0..<4]), tolerance: tolerance,
            fused: { Kernels.loraLinear($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 2) },
            reference: { Kernels.referenceLoRALinear($0[0], weight: $0[1], a: $0[2], b: $0[3], scale: 2) })
        KernelTests.compare("lora \(sizes) bias dropout", all, tolerance: tolerance,
            fused: { Kernels.loraLinear($0[0], weight: $0[1], bias: $0[4], a: $0[2], b: $0[3], scale: 0.5, droppedInput: $0[5]) },
            reference: { Kernels.referenceLoRALinear($0[0], weight: $0[1], bias: $0[4], a: $0[2], b: $0[3], scale: 0.5, droppedInput: $0[5]) })
        // The kernel's own dropout equals the composition on x times the mask Kernels.dropout draws
        // for the same seed, the gradient of x included (its path through the mask too).
        let mask = Kernels.dropout(Tensor.ones([sizes.rows, sizes.input]), probability: 0.25, seed: 77)
        KernelTests.compare("lora \(sizes) bias, the kernel's dropout", Array(all[0..<5]), tolerance: tolerance,
            fused: { Kernels.loraLinear($0[0], weight: $0[1], bias: $0[4], a: $0[2], b: $0[3], scale: 0.5, dropout: (0.25, 77)) },
            reference: { Kernels.referenceLoRALinear($0[0], weight: $0[1], bias: $0[4], a: $0[2], b: $0[3], scale: 0.5,
                                                     droppedInput: $0[0] * mask.asType($0[0].dtype)) })
    }

    /// The plain layer of full fine-tuning, whose backward computes W's gradient as dyᵀ·x.
    @Test(arguments: sizes)
    func denseLinearMatchesTheComposition(sizes: Sizes) {
        let all = Self.inputs(sizes)
        let tolerance = Tolerance(absolute: 1e-4, relative: 1e-5)
        KernelTests.compare("linear \(sizes)", [all[0], all[1]], tolerance: tolerance,
            fused: { Kernels.linear($0[0], weight: $0[1]) }, reference: { $0[0].matmul($0[1].mT) })
        KernelTests.compare("linear \(sizes) bias", [all[0], all[1], all[4]], tolerance: tolerance,
            fused: { Kernels.linear($0[0], weight: $0[1], bias: $0[2]) },
            reference: { $0[2].addmm($0[0], $0[1].mT) })
        // Forward-mode too: the tangent of every input at once.
        let tangents = [all[5], all[1] * 0.5, all[4] * 2]
        let got = jvp({ [Kernels.linear($0[0], weight: $0[1], bias: $0[2])] },
                      primals: [all[0], all[1], all[4]], tangents: tangents).jvps[0]
        let want = jvp({ [$0[2].addmm($0[0], $0[1].mT)] },
                       primals: [all[0], all[1], all[4]], tangents: tangents).jvps[0]
        assertClose(got, want, tolerance: tolerance, "linear \(sizes) jvp")
    }

    /// Only A and B trained and x a constant (the first layer in LoRA training): the backward skips
    /// the input products and the adapter gradients stay exact.
    @Test(arguments: [sizes[1], sizes[3]])
    func adapterGradientsWithoutAnInputGradient(sizes: Sizes) {
        let all = Self.inputs(sizes)
        let wide = all.map { $0.asType(.float64) }
        let tolerance = Tolerance(absolute: 1e-4, relative: 1e-5)
        KernelTests.compare("lora \(sizes) adapter only", [all[2], all[3]], tolerance: tolerance,
            fused: { Kernels.loraLinear(all[0], weight: all[1], a: $0[0], b: $0[1], scale: 2) },
            reference: { Kernels.referenceLoRALinear(wide[0], weight: wide[1], a: $0[0], b: $0[1], scale: 2) })
        KernelTests.compare("lora \(sizes) adapter only, dropout", [all[2], all[3]], tolerance: tolerance,
            fused: { Kernels.loraLinear(all[0], weight: all[1], bias: all[4], a: $0[0], b: $0[1], scale: 0.5, droppedInput: all[5]) },
            reference: { Kernels.referenceLoRALinear(wide[0], weight: wide[1], bias: wide[4], a: $0[0], b: $0[1], scale: 0.5, droppedInput: wide[5]) })
        let mask = Kernels.dropout(Tensor.ones([sizes.rows, sizes.input]), probability: 0.1, seed: 5).asType(.float64)
        KernelTests.compare("lora \(sizes) adapter only, the kernel's dropout", [all[2], all[3]], tolerance: tolerance,
            fused: { Kernels.loraLinear(all[0], weight: all[1], a: $0[0], b: $0[1], scale: 0.5, dropout: (0.1, 5)) },
            reference: { Kernels.referenceLoRALinear(wide[0], weight: wide[1], a: $0[0], b: $0[1], scale: 0.5, droppedInput: wide[0] * mask) })
    }

    @Test func nonContiguousInputAndFallbacks() {
        let s = Sizes(rows: 9, input: 12, output: 10, rank: 2)
        let all = Self.inputs(s)
        let transposedX = Random.normal([s.input, s.rows], key: Random.key(9)).mT  // a strided view
        let fused = Kernels.loraLinear(transposedX, weight: all[1], a: all[2], b: all[3], scale: 1.5)
        let reference = Kernels.referenceLoRALinear(transposedX, weight: all[1], a: all[2], b: all[3], scale: 1.5)
        assertClose(fused, reference, tolerance: Tolerance(absolute: 1e-5, relative: 1e-5), "strided x")
        // A rank above the kernel's limit takes MLX's composition and still gives the layer.
        let wideA = Random.normal([300, s.input], key: Random.key(10))
        let wideB = Random.normal([s.output, 300], key: Random.key(11))
        assertClose(Kernels.loraLinear(all[0], weight: all[1], a: wideA, b: wideB, scale: 0.1),
                    Kernels.referenceLoRALinear(all[0], weight: all[1], a: wideA, b: wideB, scale: 0.1),
                    tolerance: Tolerance(absolute: 1e-4, relative: 1e-5), "rank 300")
    }

    /// A frozen weight stored in bfloat16 is widened inside the kernel, exactly (bfloat16 is the
    /// top half of a float32), so the layer and its gradients equal those of the widened weight.
    @Test func aBFloat16WeightGivesTheSameLayerAsItsFloat32Widening() {
        let s = Sizes(rows: 37, input: 40, output: 24, rank: 4)
        let all = Self.inputs(s)
        let stored = all[1].asType(.bfloat16)
        let widened = stored.asType(.float32)
        let cotangent = Random.normal([s.rows, s.output], key: Random.key(12))
        func layer(_ weight: Tensor) -> ([Tensor]) -> Tensor {
            { (Kernels.loraLinear($0[0], weight: weight, a: $0[1], b: $0[2], scale: 2) * cotangent).sum() }
        }
        let (storedValue, storedGradients) = valueAndGrad(layer(stored))([all[0], all[2], all[3]])
        let (widenedValue, widenedGradients) = valueAndGrad(layer(widened))([all[0], all[2], all[3]])
        #expect(storedValue.item(Float.self) == widenedValue.item(Float.self))
        for (index, name) in ["x", "A", "B"].enumerated() {
            #expect(storedGradients[index].toArray(Float.self) == widenedGradients[index].toArray(Float.self), "d\(name)")
        }
    }
}

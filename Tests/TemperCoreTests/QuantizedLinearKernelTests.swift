import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// Weight-only quantized matrices (int8 symmetric, q4 affine, groups of 64; bfloat16 and float32
/// weights as they are) and the fused decode-shaped product x·dequant(W)ᵀ against
/// dequantize-then-matmul, on every kernel build.
@Suite struct QuantizedLinearKernelTests {
    static let formats: [WeightOnlyQuantizedMatrix.Format] = [.int8, .q4]
    static let floatFormats: [WeightOnlyQuantizedMatrix.Format] = [.bfloat16, .float32]
    /// Portable, AVX2 and AVX-512 (each capped to what this CPU runs).
    static let instructionSets: [Int32] = [0, 1, 2]

    /// Every element within half a step (scale / 2) of its value, up to float32 rounding.
    @Test(arguments: formats)
    func dequantizedIsWithinHalfAStep(format: WeightOnlyQuantizedMatrix.Format) {
        let keys = Random.split(Random.key(5), count: 2)
        var w = Random.normal([40, 576], standardDeviation: 0.3, key: keys[0])
        // A constant group and a group with one outlier.
        w = w.updatingSlice(Tensor.full([1, 64], value: 0.25), start: [3, 64], stop: [4, 128])
        w = w.updatingSlice(Tensor.full([1, 1], value: 40), start: [5, 0], stop: [6, 1])
        let q = WeightOnlyQuantizedMatrix(quantizing: w, format: format)
        let groups = 576 / 64
        #expect(q.scales.shape == [40, groups])
        #expect(q.codes.shape == (format == .int8 ? [40, 576] : [40, 288]))
        #expect(q.codes.dtype == (format == .int8 ? .int8 : .uint8))
        #expect((q.mins == nil) == (format == .int8))
        let step = q.scales.reshaped(40, groups, 1).broadcast(to: [40, groups, 64]).reshaped(40, 576)
        let error = (q.dequantized() - w).abs()
        let excess = (error - step * 0.5 * (1 + 1e-5) - w.abs() * 1e-6).max().item(Float.self)
        #expect(excess <= 0, "worst excess over scale/2: \(excess)")
        #expect(error[3, 64..<128].max().item(Float.self) == 0, "a constant group is exact")
    }

    @Test func int8CodesOfAHandMadeGroup() {
        // Group 0: −127 then j − 32 (absmax 127, scale 1); group 1: the same halved (scale 0.5).
        var values = (0..<64).map { Float($0 - 32) }
        values[0] = -127
        let row = values + values.map { $0 * 0.5 }
        let q = WeightOnlyQuantizedMatrix(quantizing: Tensor(row, shape: [1, 128]), format: .int8)
        let codes = q.codes.toArray(Int8.self)
        #expect(codes == (values + values).map { Int8($0) })
        #expect(q.scales.toArray(Float.self) == [1, 0.5])
        #expect(q.dequantized().toArray(Float.self) == row)
    }

    @Test func q4CodesOfAHandMadeGroup() {
        // Values (j mod 16) − 1: min −1, max 14, scale 1, codes j mod 16, two per byte, low first.
        let values = (0..<64).map { Float($0 % 16) - 1 }
        let q = WeightOnlyQuantizedMatrix(quantizing: Tensor(values, shape: [1, 64]), format: .q4)
        let want: [UInt8] = (0..<32).map { (k: Int) -> UInt8 in
            let low = UInt8((2 * k) % 16), high = UInt8((2 * k + 1) % 16)
            return low | (high << 4)
        }
        #expect(q.codes.toArray(UInt8.self) == want)
        #expect(q.scales.toArray(Float.self) == [1])
        #expect(q.mins?.toArray(Float.self) == [-1])
        #expect(q.dequantized().toArray(Float.self) == values)
        #expect(q.byteCount == 32 + 4 + 4)
    }

    struct Shape: CustomStringConvertible, Sendable {
        var input, output: Int
        var description: String { "in\(input) out\(output)" }
    }

    static let shapes = [64, 576, 1536].flatMap { input in [1, 576, 1000].map { Shape(input: input, output: $0) } }

    /// The fused product on each build equals the composition (in float64) for N ∈ {1, 3, 17, 64},
    /// with and without a bias.
    @Test(arguments: formats, shapes)
    func fusedMatchesTheComposition(format: WeightOnlyQuantizedMatrix.Format, shape: Shape) {
        let keys = Random.split(Random.key(UInt64(shape.input * 7 + shape.output)), count: 2)
        let w = Random.normal([shape.output, shape.input], standardDeviation: 0.05, key: keys[0])
        let q = WeightOnlyQuantizedMatrix(quantizing: w, format: format)
        let dequantized = q.dequantized().asType(.float64)
        let bias = Random.normal([shape.output], key: keys[1])
        // Each output sums `in` products; float32 accumulation is ~1e-6 off float64 at in 1536.
        let tolerance = Tolerance(absolute: 1e-5, relative: 1e-5)
        for rows in [1, 3, 17, 64] {
            let x = Random.normal([rows, shape.input], key: Random.key(UInt64(shape.input * 131 + shape.output * 7 + rows)))
            for isa in Self.instructionSets {
                let plain = Self.kernelInput(x, format: format, instructionSet: isa).matmul(dequantized.mT)
                let biased = plain + bias.asType(.float64)
                let label = "\(format) \(shape) N\(rows) isa\(isa)"
                KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: nil, instructionSet: isa), plain,
                                         tolerance: tolerance, label, sourceLocation: #_sourceLocation)
                KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: bias, instructionSet: isa), biased,
                                         tolerance: tolerance, "\(label) bias", sourceLocation: #_sourceLocation)
            }
        }
    }

    /// x as the kernel multiplies it, in float64: on the x86 builds int8 codes meet x rounded to int16
    /// per row (W8A16), step = the row's largest |x| / 32767, rounded as the kernel rounds it.
    static func kernelInput(_ x: Tensor, format: WeightOnlyQuantizedMatrix.Format, instructionSet: Int32) -> Tensor {
        let effective = instructionSet < 0 ? Kernels.instructionSet : min(instructionSet, Kernels.instructionSet)
        guard format == .int8 && effective > 0 else { return x.asType(.float64) }
        let width = x.dim(-1)
        var values = x.toArray(Float.self)
        var rounded = [Double](repeating: 0, count: values.count)
        for start in stride(from: 0, to: values.count, by: width) {
            let largest = values[start..<(start + width)].map(abs).max()!
            let inverse: Float = largest > 0 ? 32767 / largest : 0
            for j in start..<(start + width) {
                values[j] = (values[j] * inverse).rounded(.toNearestOrEven)
                rounded[j] = Double(values[j]) * Double(largest / 32767)
            }
        }
        return Tensor(rounded, shape: x.shape)
    }

    /// W8A16 rounds x to 1/65534 of its row's largest |x|: far inside the int8 codes' own error.
    @Test func roundingTheInputCostsLittle() {
        let keys = Random.split(Random.key(21), count: 2)
        let w = Random.normal([300, 1536], standardDeviation: 0.05, key: keys[0])
        let q = WeightOnlyQuantizedMatrix(quantizing: w, format: .int8)
        let x = Random.normal([8, 1536], key: keys[1])
        let exact = x.asType(.float64).matmul(q.dequantized().asType(.float64).mT)
        let float32Weights = x.asType(.float64).matmul(w.asType(.float64).mT)
        let roundingError = (Kernels.quantizedLinear(x, weights: q).asType(.float64) - exact).abs().max().item(Double.self)
        let codesError = (exact - float32Weights).abs().max().item(Double.self)
        // Outputs are about 2 here: rounding x moves them by about 1e-4 of that, the codes by about 1%.
        let expectedRoundingError = Kernels.instructionSet > 0 ? 5e-4 : 1e-5
        #expect(roundingError < expectedRoundingError, "rounding x moved an output by \(roundingError)")
        #expect(roundingError < codesError / 20, "rounding x: \(roundingError), int8 codes: \(codesError)")
    }

    /// The float formats hold the weight itself: float32 the caller's tensor (no copy), bfloat16
    /// rounded to nearest; no scales, no mins.
    @Test func floatFormatsHoldTheWeight() {
        let w = Random.normal([40, 576], standardDeviation: 0.3, key: Random.key(6))
        let f32 = WeightOnlyQuantizedMatrix(quantizing: w, format: .float32)
        #expect(f32.codes.storage === w.storage, "float32 keeps the weight's own tensor")
        #expect(f32.dequantized().storage === w.storage, "and widens nothing")
        #expect(f32.scales.shape == [40, 0] && f32.mins == nil && f32.shape == [40, 576])
        #expect(f32.byteCount == 40 * 576 * 4)
        let bf16 = WeightOnlyQuantizedMatrix(quantizing: w, format: .bfloat16)
        #expect(bf16.codes.dtype == .bfloat16 && bf16.codes.shape == [40, 576] && bf16.scales.shape == [40, 0])
        #expect(bf16.byteCount == 40 * 576 * 2)
        #expect(bf16.dequantized().dtype == .float32)
        #expect(bf16.dequantized().toArray(Float.self) == w.asType(.bfloat16).asType(.float32).toArray(Float.self))
        // A bfloat16 weight is taken as it is, and widened exactly for float32.
        let half = w.asType(.bfloat16)
        #expect(WeightOnlyQuantizedMatrix(quantizing: half, format: .bfloat16).codes.storage === half.storage)
        #expect(WeightOnlyQuantizedMatrix(quantizing: half, format: .float32).dequantized().toArray(Float.self)
                == half.asType(.float32).toArray(Float.self))
    }

    static let floatShapes = [64, 576, 1536].flatMap { input in [1, 7, 577, 1001].map { Shape(input: input, output: $0) } }

    /// The float formats' fused product on each build, for N ∈ {1, 3, 8, 64, 65} with and without a
    /// bias, equals the product with the weight they hold (bfloat16: the bf16-rounded weight) in
    /// float64; the public entry point too, which sends 65 rows to the dense product. float32 also
    /// equals the dense float32 product (Kernels.linear) up to float reordering.
    @Test(arguments: floatFormats, floatShapes)
    func floatFormatsMatchTheDenseProduct(format: WeightOnlyQuantizedMatrix.Format, shape: Shape) {
        let keys = Random.split(Random.key(UInt64(shape.input * 11 + shape.output)), count: 2)
        let w = Random.normal([shape.output, shape.input], standardDeviation: 0.05, key: keys[0])
        let q = WeightOnlyQuantizedMatrix(quantizing: w, format: format)
        let held = (format == .bfloat16 ? w.asType(.bfloat16) : w).asType(.float64)
        let bias = Random.normal([shape.output], key: keys[1])
        let tolerance = Tolerance(absolute: 1e-5, relative: 1e-5)
        for rows in [1, 3, 8, 64, 65] {
            let x = Random.normal([rows, shape.input], key: Random.key(UInt64(shape.input * 17 + shape.output * 3 + rows)))
            let plain = x.asType(.float64).matmul(held.mT)
            let biased = plain + bias.asType(.float64)
            eval(plain, biased)
            for isa in Self.instructionSets {
                let label = "\(format) \(shape) N\(rows) isa\(isa)"
                KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: nil, instructionSet: isa), plain,
                                         tolerance: tolerance, label, sourceLocation: #_sourceLocation)
                KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: bias, instructionSet: isa), biased,
                                         tolerance: tolerance, "\(label) bias", sourceLocation: #_sourceLocation)
            }
            let label = "\(format) \(shape) N\(rows)"
            KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q), plain, tolerance: tolerance, label,
                                     sourceLocation: #_sourceLocation)
            KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: bias), biased, tolerance: tolerance,
                                     "\(label) bias", sourceLocation: #_sourceLocation)
            if format == .float32 {
                KernelTests.assertWithin(Kernels.quantizedLinear(x, weights: q, bias: bias), Kernels.linear(x, weight: w, bias: bias),
                                         tolerance: tolerance, "\(label) vs dense float32", sourceLocation: #_sourceLocation)
            }
        }
    }

    @Test(arguments: floatFormats)
    func floatFormatsRejectBadShapes(format: WeightOnlyQuantizedMatrix.Format) {
        let q = WeightOnlyQuantizedMatrix(quantizing: Tensor.ones([4, 128]), format: format)
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 192]), weights: q).evaluated() }
        }
        // Weights of the other float type, or scales where the float formats take none.
        var broken = q
        broken.codes = Tensor.ones([4, 128], dtype: format == .float32 ? .bfloat16 : .float32)
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 128]), weights: broken).evaluated() }
        }
        broken = q
        broken.scales = Tensor.ones([4, 2])
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 128]), weights: broken).evaluated() }
        }
    }

    /// Leading axes are flattened on the fused path; off it (here: fused kernels off) the product is
    /// the composition.
    @Test(arguments: formats + floatFormats)
    func batchedInputAndFallback(format: WeightOnlyQuantizedMatrix.Format) {
        let keys = Random.split(Random.key(9), count: 2)
        let q = WeightOnlyQuantizedMatrix(quantizing: Random.normal([70, 128], key: keys[0]), format: format)
        let x = Random.normal([2, 3, 128], key: keys[1])
        let dequantized = q.dequantized().asType(.float64).mT
        let want = Self.kernelInput(x.reshaped(6, 128), format: format, instructionSet: -1).matmul(dequantized).reshaped(2, 3, 70)
        let tolerance = Tolerance(absolute: 1e-5, relative: 1e-5)
        let fused = Kernels.quantizedLinear(x, weights: q)
        #expect(fused.shape == [2, 3, 70])
        KernelTests.assertWithin(fused, want, tolerance: tolerance, "\(format) batched", sourceLocation: #_sourceLocation)
        let composed = Kernels.$useFusedKernels.withValue(false) { Kernels.quantizedLinear(x, weights: q) }
        KernelTests.assertWithin(composed, x.asType(.float64).matmul(dequantized), tolerance: tolerance, "\(format) fallback",
                                 sourceLocation: #_sourceLocation)
    }

    @Test(arguments: formats)
    func badShapesThrowInsideTheErrorScope(format: WeightOnlyQuantizedMatrix.Format) {
        let q = WeightOnlyQuantizedMatrix(quantizing: Tensor.ones([4, 128]), format: format)
        // x's width is not the weight's, nor a multiple of the group size.
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 100]), weights: q).evaluated() }
        }
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 192]), weights: q).evaluated() }
        }
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 128]), weights: q, bias: Tensor.ones([5])).evaluated() }
        }
        // Codes that do not match the scales.
        var broken = q
        broken.codes = format == .int8 ? Tensor.zeros([4, 64], dtype: .int8) : Tensor.zeros([4, 128], dtype: .uint8)
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.quantizedLinear(Tensor.ones([2, 128]), weights: broken).evaluated() }
        }
    }

    @Test func theFusedProductIsNotDifferentiable() {
        let q = WeightOnlyQuantizedMatrix(quantizing: Tensor.ones([4, 64]), format: .int8)
        #expect(throws: MLXError.self) {
            try withErrorHandling {
                let result = vjp({ [Kernels.quantizedLinear($0[0], weights: q)] }, primals: [Tensor.ones([1, 64])],
                                 cotangents: [Tensor.ones([1, 4])])
                eval(result.vjps)
            }
        }
    }
}

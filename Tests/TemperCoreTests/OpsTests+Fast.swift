import Foundation
import TemperTestSupport
import Testing

@testable import TemperCore

// MLX's fused kernels against explicit numbers and against references written out with loops,
// and affine quantization against its error bound and a loop reference of the scheme.

@Suite struct FastOpsTests {
    /// [[1, 2, 3, 4], [−1, 0, 1, 2]]
    let x = Tensor([1, 2, 3, 4, -1, 0, 1, 2] as [Float], shape: [2, 4])
    let weight = Tensor([1, 0.5, 2, 1] as [Float])

    @Test func rmsNormMatchesExplicitNumbers() {
        // Row 0: mean(x²) = 7.5; row 1: mean(x²) = 1.5; then x / √(ms + 1e-5) · weight.
        assertClose(Fast.rmsNorm(x, weight: weight, eps: 1e-5), [
            0.3651481282381064, 0.3651481282381064, 2.1908887694286383, 1.4605925129524255,
            -0.8164938592860644, 0, 1.6329877185721289, 1.6329877185721289,
        ])
        assertClose(Fast.rmsNorm(x, weight: nil, eps: 0)[0], [
            1 / 7.5.squareRoot(), 2 / 7.5.squareRoot(), 3 / 7.5.squareRoot(), 4 / 7.5.squareRoot(),
        ])
        // eps matters when the row is small: √(0 + 1) = 1 leaves a zero row's neighbours alone.
        assertClose(Fast.rmsNorm(Tensor([0, 0] as [Float]), weight: nil, eps: 1), [0, 0])
        assertClose(Fast.rmsNorm(Tensor([1, 1] as [Float]), weight: nil, eps: 3), [0.5, 0.5])
    }

    @Test func rmsNormMatchesComposition() {
        let input = Random.normal([3, 5, 16], key: Random.key(21))
        let gain = Random.uniform([16], low: 0.5, high: 1.5, key: Random.key(22))
        let eps: Float = 1e-6
        let reference = input * ((input * input).mean(axis: -1, keepDims: true) + Double(eps)).rsqrt() * gain
        assertClose(Fast.rmsNorm(input, weight: gain, eps: eps), reference)
        // bfloat16 input gives bfloat16 output close to the float32 result.
        let half = Fast.rmsNorm(input.asType(.bfloat16), weight: gain.asType(.bfloat16), eps: eps)
        #expect(half.dtype == .bfloat16)
        assertClose(half.asType(.float32), reference, tolerance: Tolerance(absolute: 3e-2, relative: 2e-2))
    }

    @Test func layerNormMatchesExplicitNumbers() {
        // Both rows have variance 1.25 around means 2.5 and 0.5.
        let bias = Tensor([0, 1, 0, -1] as [Float])
        assertClose(Fast.layerNorm(x, weight: weight, bias: bias, eps: 1e-5), [
            -1.3416354199689269, 0.7763940966718454, 0.894423613312618, 0.3416354199689269,
            -1.3416354199689269, 0.7763940966718454, 0.894423613312618, 0.3416354199689269,
        ])
        let plain = [-1.3416354199689269, -0.447211806656309, 0.447211806656309, 1.3416354199689269]
        assertClose(Fast.layerNorm(x, weight: nil, bias: nil, eps: 1e-5), plain + plain)
        assertClose(Fast.layerNorm(x, weight: nil, bias: bias, eps: 1e-5)[1], zip(plain, [0, 1, 0, -1]).map { $0 + $1 })
        assertClose(Fast.layerNorm(x, weight: weight, bias: nil, eps: 1e-5)[1], zip(plain, [1, 0.5, 2, 1]).map { $0 * $1 })
    }

    @Test func layerNormMatchesComposition() {
        let input = Random.normal([4, 3, 32], mean: 1, standardDeviation: 2, key: Random.key(23))
        let gain = Random.normal([32], key: Random.key(24))
        let shift = Random.normal([32], key: Random.key(25))
        let eps: Float = 1e-5
        let mean = input.mean(axis: -1, keepDims: true)
        let centered = input - mean
        let variance = (centered * centered).mean(axis: -1, keepDims: true)
        let reference = centered * (variance + Double(eps)).rsqrt() * gain + shift
        assertClose(Fast.layerNorm(input, weight: gain, bias: shift, eps: eps), reference)
    }

    // MARK: rotary embeddings

    /// RoPE by explicit loops over x of shape [..., T, D] (row-major), positions
    /// (offset + t) · scale and θ_i = position · base^(−2i/dimensions). Traditional rotates
    /// (x[2i], x[2i+1]); otherwise (x[i], x[i + dimensions/2]). Features past `dimensions` pass.
    static func referenceRoPE(
        _ x: [Float], T: Int, D: Int, dimensions: Int, traditional: Bool, base: Double,
        scale: Double, offset: Int
    ) -> [Double] {
        var out = x.map(Double.init)
        let half = dimensions / 2
        for row in 0..<(x.count / (T * D)) {
            for t in 0..<T {
                let start = (row * T + t) * D
                let position = Double(t + offset) * scale
                for i in 0..<half {
                    let theta = position * Foundation.pow(base, -2 * Double(i) / Double(dimensions))
                    let (a, b) = traditional ? (start + 2 * i, start + 2 * i + 1) : (start + i, start + i + half)
                    out[a] = Double(x[a]) * Foundation.cos(theta) - Double(x[b]) * Foundation.sin(theta)
                    out[b] = Double(x[b]) * Foundation.cos(theta) + Double(x[a]) * Foundation.sin(theta)
                }
            }
        }
        return out
    }

    @Test func ropeMatchesExplicitNumbers() {
        // Rows at positions 0 and 1, D = 4, base 10 000: θ₀ = 1, θ₁ = 0.01 at position 1.
        let input = Tensor([1, 2, 3, 4, 1, 2, 3, 4] as [Float], shape: [1, 1, 2, 4])
        let halves = Fast.rope(input, dimensions: 4, traditional: false, base: 10_000)
        assertClose(halves.reshaped(-1), [
            1, 2, 3, 4,
            -1.9841106485555495, 1.959900667496664, 2.4623779024123156, 4.019799668334994,
        ])
        let pairs = Fast.rope(input, dimensions: 4, traditional: true, base: 10_000)
        assertClose(pairs.reshaped(-1), [
            1, 2, 3, 4,
            -1.1426396637476532, 1.922075596544176, 2.9598506679133294, 4.029799501669161,
        ])
        // An offset of 1 moves the first row to position 1.
        let shifted = Fast.rope(input[TensorIndex.ellipsis, 0..<1, TensorIndex.all], dimensions: 4, traditional: false, base: 10_000, offset: 1)
        assertClose(shifted.reshaped(-1), [-1.9841106485555495, 1.959900667496664, 2.4623779024123156, 4.019799668334994])
    }

    @Test(arguments: [false, true])
    func ropeMatchesLoops(traditional: Bool) {
        let (T, D) = (6, 16)
        let input = Random.normal([2, 3, T, D], key: Random.key(26))
        let values = input.toArray(Float.self)
        // Angles reach 13 rad; MLX computes them in float32, so allow a few ulps of 13.
        let tolerance = Tolerance(absolute: 2e-5, relative: 1e-4)
        let cases: [(dimensions: Int, base: Float, scale: Float, offset: Int)] = [
            (16, 10_000, 1, 0), (16, 500_000, 1, 7), (16, 10, 1, 3), (8, 10_000, 1, 2), (16, 10_000, 0.5, 5),
        ]
        for c in cases {
            let got = Fast.rope(
                input, dimensions: c.dimensions, traditional: traditional, base: c.base, scale: c.scale,
                offset: c.offset)
            #expect(got.shape == [2, 3, T, D])
            let want = Self.referenceRoPE(
                values, T: T, D: D, dimensions: c.dimensions, traditional: traditional,
                base: Double(c.base), scale: Double(c.scale), offset: c.offset)
            assertClose(got.reshaped(-1), want, tolerance: tolerance, "traditional \(traditional), \(c)")
        }
    }

    // MARK: attention

    /// softmax(q·kᵀ · scale + mask) · v by loops in Double; query head h reads key/value head
    /// h / (H / Hkv). `mask(b, h, i, j)` is added to the score (−∞ blocks).
    static func referenceAttention(
        q: Tensor, k: Tensor, v: Tensor, scale: Double,
        mask: (Int, Int, Int, Int) -> Double = { _, _, _, _ in 0 }
    ) -> Tensor {
        let (B, H, Tq, D) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3))
        let (Hkv, Tk) = (k.dim(1), k.dim(2))
        let (qs, ks, vs) = (q.toArray(Double.self), k.toArray(Double.self), v.toArray(Double.self))
        var out = [Double](repeating: 0, count: B * H * Tq * D)
        for b in 0..<B {
            for h in 0..<H {
                let kvHead = h / (H / Hkv)
                for i in 0..<Tq {
                    let qBase = ((b * H + h) * Tq + i) * D
                    var scores = [Double](repeating: 0, count: Tk)
                    for j in 0..<Tk {
                        let kBase = ((b * Hkv + kvHead) * Tk + j) * D
                        var dot = 0.0
                        for d in 0..<D { dot += qs[qBase + d] * ks[kBase + d] }
                        scores[j] = dot * scale + mask(b, h, i, j)
                    }
                    let top = scores.max()!
                    let weights = scores.map { Foundation.exp($0 - top) }
                    let total = weights.reduce(0, +)
                    for j in 0..<Tk {
                        let vBase = ((b * Hkv + kvHead) * Tk + j) * D
                        for d in 0..<D { out[qBase + d] += weights[j] / total * vs[vBase + d] }
                    }
                }
            }
        }
        return Tensor(out, shape: [B, H, Tq, D]).asType(.float32)
    }

    static let attentionTolerance = Tolerance(absolute: 2e-5, relative: 1e-4)

    static func inputs(B: Int, H: Int, Hkv: Int, Tq: Int, Tk: Int, D: Int, seed: UInt64)
        -> (Tensor, Tensor, Tensor)
    {
        let keys = Random.split(Random.key(seed), count: 3)
        return (
            Random.normal([B, H, Tq, D], key: keys[0]),
            Random.normal([B, Hkv, Tk, D], key: keys[1]),
            Random.normal([B, Hkv, Tk, D], key: keys[2])
        )
    }

    @Test func attentionWithoutMask() {
        let (q, k, v) = Self.inputs(B: 2, H: 2, Hkv: 2, Tq: 5, Tk: 7, D: 8, seed: 31)
        let scale = 1 / Float(8).squareRoot()
        let got = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale)
        #expect(got.shape == [2, 2, 5, 8])
        assertClose(got, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)), tolerance: Self.attentionTolerance)
        // The same through Temper's own ops: softmax(q kᵀ · scale) v.
        let composed = (q.matmul(k.mT) * Double(scale)).softmax(axis: -1).matmul(v)
        assertClose(got, composed, tolerance: Self.attentionTolerance)
        // A single key: every query returns that key's value.
        let single = Fast.scaledDotProductAttention(
            queries: q, keys: k[TensorIndex.ellipsis, 0..<1, TensorIndex.all],
            values: v[TensorIndex.ellipsis, 0..<1, TensorIndex.all], scale: 0.3)
        assertClose(single, v[TensorIndex.ellipsis, 0..<1, TensorIndex.all].broadcast(to: [2, 2, 5, 8]))
    }

    @Test func attentionWithCausalMask() {
        let scale: Float = 0.3
        // Square: query i sees keys 0...i.
        let (q, k, v) = Self.inputs(B: 1, H: 2, Hkv: 2, Tq: 6, Tk: 6, D: 8, seed: 32)
        let got = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .causal)
        let want = Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { _, _, i, j in
            j <= i ? 0 : -Double.infinity
        }
        assertClose(got, want, tolerance: Self.attentionTolerance)
        // The first query sees only the first key.
        assertClose(got[TensorIndex.all, TensorIndex.all, 0], v[TensorIndex.all, TensorIndex.all, 0])
        // Fewer queries than keys (decoding after a cache): query i sees keys 0...i + 3.
        let (q2, k2, v2) = Self.inputs(B: 2, H: 2, Hkv: 2, Tq: 3, Tk: 6, D: 8, seed: 33)
        let decoding = Fast.scaledDotProductAttention(queries: q2, keys: k2, values: v2, scale: scale, mask: .causal)
        let wantDecoding = Self.referenceAttention(q: q2, k: k2, v: v2, scale: Double(scale)) { _, _, i, j in
            j <= i + 3 ? 0 : -Double.infinity
        }
        assertClose(decoding, wantDecoding, tolerance: Self.attentionTolerance)
    }

    @Test func attentionWithAdditiveMask() {
        let (q, k, v) = Self.inputs(B: 2, H: 2, Hkv: 2, Tq: 4, Tk: 5, D: 8, seed: 34)
        let scale: Float = 0.35
        // One [Tq, Tk] mask for every batch and head.
        let shared = Random.normal([4, 5], standardDeviation: 2, key: Random.key(35))
        let sharedValues = shared.toArray(Double.self)
        let got = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(shared))
        assertClose(got, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { _, _, i, j in
            sharedValues[i * 5 + j]
        }, tolerance: Self.attentionTolerance)
        // A [B, 1, Tq, Tk] mask differs per batch entry.
        let perBatch = Random.normal([2, 1, 4, 5], key: Random.key(36))
        let perBatchValues = perBatch.toArray(Double.self)
        let gotPerBatch = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(perBatch))
        assertClose(gotPerBatch, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { b, _, i, j in
            perBatchValues[(b * 4 + i) * 5 + j]
        }, tolerance: Self.attentionTolerance)
        // A large negative entry acts as a block: padding the last key away.
        let padding = Tensor((0..<5).map { $0 == 4 ? Float(-1e9) : 0 })
        let padded = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(padding))
        let trimmed = Fast.scaledDotProductAttention(
            queries: q, keys: k[TensorIndex.ellipsis, 0..<4, TensorIndex.all],
            values: v[TensorIndex.ellipsis, 0..<4, TensorIndex.all], scale: scale)
        assertClose(padded, trimmed, tolerance: Self.attentionTolerance)
    }

    @Test func attentionWithBooleanMask() {
        let (q, k, v) = Self.inputs(B: 2, H: 2, Hkv: 2, Tq: 4, Tk: 6, D: 8, seed: 37)
        let scale: Float = 0.35
        // true = attend. Key 0 is always visible so no row is fully masked.
        let allowed: (Int, Int) -> Bool = { i, j in j == 0 || (i + 2 * j) % 3 != 0 }
        var flags: [Bool] = []
        for i in 0..<4 { for j in 0..<6 { flags.append(allowed(i, j)) } }
        let mask = Tensor(flags, shape: [4, 6])
        #expect(mask.dtype == .bool)
        let got = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(mask))
        let want = Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { _, _, i, j in
            allowed(i, j) ? 0 : -Double.infinity
        }
        assertClose(got, want, tolerance: Self.attentionTolerance)
        // Equivalent additive mask.
        let additive = which(mask, Tensor(Float(0)), Tensor(-Float.infinity))
        let viaAdditive = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(additive))
        assertClose(got, viaAdditive, tolerance: Self.attentionTolerance)
    }

    @Test func attentionWithGroupedQueryHeads() {
        // H = 4 query heads share Hkv = 2 key/value heads: heads 0, 1 read kv 0; heads 2, 3 read kv 1.
        let (q, k, v) = Self.inputs(B: 2, H: 4, Hkv: 2, Tq: 5, Tk: 5, D: 8, seed: 38)
        let scale = 1 / Float(8).squareRoot()
        let repeatHeads: (Tensor) -> Tensor = { t in
            Tensor.concatenated([0, 0, 1, 1].map { t[TensorIndex.all, $0..<($0 + 1)] }, axis: 1)
        }
        let (kRepeated, vRepeated) = (repeatHeads(k), repeatHeads(v))
        #expect(kRepeated.shape == [2, 4, 5, 8])

        let plain = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale)
        #expect(plain.shape == [2, 4, 5, 8])
        let composed = (q.matmul(kRepeated.mT) * Double(scale)).softmax(axis: -1).matmul(vRepeated)
        assertClose(plain, composed, tolerance: Self.attentionTolerance)
        assertClose(plain, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)), tolerance: Self.attentionTolerance)
        // The same as full multi-head attention over repeated heads.
        assertClose(plain, Fast.scaledDotProductAttention(queries: q, keys: kRepeated, values: vRepeated, scale: scale), tolerance: Self.attentionTolerance)

        let causal = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .causal)
        let causalMask = which(Tensor.ones([5, 5]).tril() .> 0, Tensor(Float(0)), Tensor(-Float.infinity))
        let composedCausal = (q.matmul(kRepeated.mT) * Double(scale) + causalMask).softmax(axis: -1).matmul(vRepeated)
        assertClose(causal, composedCausal, tolerance: Self.attentionTolerance)

        let additive = Random.normal([1, 4, 5, 5], key: Random.key(39))
        let additiveValues = additive.toArray(Double.self)
        let masked = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(additive))
        assertClose(masked, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { _, h, i, j in
            additiveValues[(h * 5 + i) * 5 + j]
        }, tolerance: Self.attentionTolerance)

        // A boolean [1, 1, 1, Tk] mask: the last two keys are padding for every query.
        let keep = Tensor((0..<5).map { $0 < 3 }, shape: [1, 1, 1, 5])
        let padded = Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(keep))
        assertClose(padded, Self.referenceAttention(q: q, k: k, v: v, scale: Double(scale)) { _, _, _, j in
            j < 3 ? 0 : -Double.infinity
        }, tolerance: Self.attentionTolerance)
    }
}

@Suite struct QuantizationOpsTests {
    /// MLX's affine scheme per group, by loops: the extreme of larger magnitude (`edge`) is the bias
    /// and lands exactly on a code; the step is edge / round(edge / ((max − min) / (2^bits − 1))),
    /// signed so codes count away from the edge; codes are rounded and clipped to [0, 2^bits − 1].
    static func referenceDequantized(_ group: [Float], bits: Int) -> (scale: Float, bias: Float, values: [Float]) {
        let bins = Float((1 << bits) - 1)
        let (low, high) = (group.min()!, group.max()!)
        let lowSide = Swift.abs(low) > Swift.abs(high)
        var scale = Swift.max((high - low) / bins, 1e-7)
        if !lowSide { scale = -scale }
        let edge = lowSide ? low : high
        let q0 = (edge / scale).rounded(.toNearestOrEven)
        var bias: Float = 0
        if q0 != 0 {
            scale = edge / q0
            bias = edge
        }
        let values = group.map { w -> Float in
            let code = Swift.min(Swift.max(((w - bias) / scale).rounded(.toNearestOrEven), 0), bins)
            return code * scale + bias
        }
        return (scale, bias, values)
    }

    @Test(arguments: [32, 64, 128], [4, 8])
    func quantizeDequantizeAndMatmul(groupSize: Int, bits: Int) {
        let (rows, columns) = (8, 256)
        let w = Random.normal([rows, columns], key: Random.key(UInt64(100 + groupSize + bits)))
        let quantized = QuantizedMatrix(quantizing: w, groupSize: groupSize, bits: bits)
        #expect(quantized.groupSize == groupSize)
        #expect(quantized.bits == bits)
        #expect(quantized.weight.dtype == .uint32)
        #expect(quantized.weight.shape == [rows, columns * bits / 32])
        #expect(quantized.scales.shape == [rows, columns / groupSize])
        #expect(quantized.biases.shape == [rows, columns / groupSize])
        #expect(quantized.scales.dtype == .float32)
        let restored = quantized.dequantized()
        #expect(restored.shape == [rows, columns])
        #expect(restored.dtype == .float32)

        let original = w.toArray(Float.self)
        let got = restored.toArray(Float.self)
        let scales = quantized.scales.toArray(Float.self)
        let biases = quantized.biases.toArray(Float.self)
        let bins = Float((1 << bits) - 1)
        // |edge| ≥ (max − min) / 2, so edge / naive step ≥ 2^(bits−1) − ½ and rounding it stretches
        // the step by at most 8.5/8 (4 bits) or 128.5/128 (8 bits).
        let stretch: Float = bits == 4 ? 1.0626 : 1.0040
        var worstRatio: Float = 0
        for g in 0..<(rows * columns / groupSize) {
            let range = (g * groupSize)..<((g + 1) * groupSize)
            let group = Array(original[range])
            let naiveStep = (group.max()! - group.min()!) / bins
            let reference = Self.referenceDequantized(group, bits: bits)
            #expect(Swift.abs(scales[g] - reference.scale) <= 1e-6 * Swift.abs(reference.scale), "group \(g) scale")
            #expect(biases[g] == reference.bias, "group \(g) bias")
            // The step MLX picks stays within rounding of the naive one.
            #expect(Swift.abs(scales[g]) <= naiveStep * stretch, "group \(g) step")
            for (offset, index) in range.enumerated() {
                let error = Swift.abs(got[index] - group[offset])
                #expect(Swift.abs(got[index] - reference.values[offset]) <= 1e-5, "element \(index)")
                // Codes count from the edge (code 0), so nothing lies before the grid.
                let code = (group[offset] - reference.bias) / reference.scale
                #expect(code >= -1e-4, "element \(index) before the edge")
                if code <= bins {
                    // Inside the grid, rounding is off by at most half a step.
                    #expect(error <= Swift.abs(scales[g]) / 2 + 1e-6, "element \(index): error \(error)")
                    worstRatio = Swift.max(worstRatio, error / naiveStep)
                } else {
                    // A shrunk step can leave the far extreme just past the last code.
                    #expect(error <= naiveStep, "clipped element \(index): error \(error)")
                }
            }
        }
        // Against the naive step (max − min) / (2^bits − 1): half a step, stretched as above. (Exactly
        // half a naive step does not hold: MLX moves the grid so the edge, and zero, are exact.)
        #expect(worstRatio <= 0.5 * stretch, "worst error \(worstRatio) naive steps")

        // The product on packed values equals the product with the dequantized matrix.
        let x = Random.normal([3, columns], key: Random.key(UInt64(200 + groupSize + bits)))
        let product = quantized.matmul(x)
        #expect(product.shape == [3, rows])
        assertClose(product, x.matmul(restored.mT), tolerance: Tolerance(absolute: 1e-4, relative: 1e-4))
        // Untransposed: x [3, rows] @ w [rows, columns].
        let y = Random.normal([3, rows], key: Random.key(UInt64(300 + groupSize + bits)))
        assertClose(quantized.matmul(y, transposed: false), y.matmul(restored), tolerance: Tolerance(absolute: 1e-4, relative: 1e-4))
        // And the dequantized matrix is close to the original in relative Frobenius norm.
        let relative = ((restored - w).square().sum() / w.square().sum()).sqrt().item(Float.self)
        #expect(relative < (bits == 4 ? 0.15 : 0.01), "relative error \(relative)")
    }

    @Test func exactlyRepresentableRowsRoundTrip() {
        // A group holding 0…15 · 0.5 is exactly a 4-bit grid: the round trip is lossless.
        let values = (0..<32).map { Float($0 % 16) * 0.5 }
        let w = Tensor(values + values.map { -$0 }, shape: [2, 32])
        let quantized = QuantizedMatrix(quantizing: w, groupSize: 32, bits: 4)
        #expect(quantized.dequantized().toArray(Float.self) == values + values.map { -$0 })
        // Row 0's edge is the max 7.5 with a negative step of 0.5; row 1's is the min −7.5.
        #expect(quantized.scales.toArray(Float.self) == [-0.5, 0.5])
        #expect(quantized.biases.toArray(Float.self) == [7.5, -7.5])
    }
}

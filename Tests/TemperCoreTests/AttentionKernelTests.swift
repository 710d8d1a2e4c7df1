import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// The tiled attention kernel against the materialized composition (float64), forward and gradients.
@Suite struct AttentionKernelTests {
    struct Shape: CustomStringConvertible, Sendable {
        var B, H, Hkv, Tq, Tk, Dh: Int
        var description: String { "B\(B) H\(H) Hkv\(Hkv) Tq\(Tq) Tk\(Tk) Dh\(Dh)" }
    }

    static func inputs(_ s: Shape, seed: UInt64 = 1) -> [Tensor] {
        let keys = Random.split(Random.key(seed), count: 3)
        return [Random.normal([s.B, s.H, s.Tq, s.Dh], key: keys[0]),
                Random.normal([s.B, s.Hkv, s.Tk, s.Dh], key: keys[1]),
                Random.normal([s.B, s.Hkv, s.Tk, s.Dh], key: keys[2])]
    }

    static func check(_ s: Shape, causal: Bool, segments: Kernels.Segments? = nil, mask: Tensor? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let scale = 1 / Float(s.Dh).squareRoot()
        let wideMask = mask.map { $0.dtype == .bool ? $0 : $0.asType(.float64) }
        KernelTests.compare(
            "attention \(s) causal \(causal) segments \(segments != nil) mask \(mask.map { "\($0.dtype)" } ?? "none")",
            inputs(s), tolerance: Tolerance(absolute: 1e-5, relative: 1e-4), sourceLocation: sourceLocation,
            fused: { Kernels.attention(queries: $0[0], keys: $0[1], values: $0[2], scale: scale, causal: causal, segments: segments, mask: mask) },
            reference: { Kernels.referenceAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: scale, causal: causal, segments: segments, mask: $0[0].dtype == .float64 ? wideMask : mask) })
    }

    @Test(arguments: [
        Shape(B: 1, H: 1, Hkv: 1, Tq: 5, Tk: 5, Dh: 8),
        Shape(B: 2, H: 4, Hkv: 2, Tq: 37, Tk: 37, Dh: 16),
        Shape(B: 1, H: 6, Hkv: 1, Tq: 130, Tk: 130, Dh: 64),
        Shape(B: 1, H: 2, Hkv: 2, Tq: 70, Tk: 70, Dh: 128),
    ])
    func causalAndFull(shape: Shape) {
        Self.check(shape, causal: true)
        Self.check(shape, causal: false)
    }

    /// Keys past one 256-key chunk (online rescaling), head sizes that fill no whole vector, the
    /// largest head size, and query heads sharing a 16-row panel (3 heads × 7 queries).
    @Test(arguments: [
        Shape(B: 1, H: 2, Hkv: 1, Tq: 300, Tk: 300, Dh: 20),
        Shape(B: 1, H: 4, Hkv: 2, Tq: 40, Tk: 600, Dh: 72),
        Shape(B: 2, H: 3, Hkv: 1, Tq: 7, Tk: 7, Dh: 3),
        Shape(B: 1, H: 2, Hkv: 1, Tq: 33, Tk: 290, Dh: 256),
    ])
    func longKeysOddSizesAndMixedPanels(shape: Shape) {
        Self.check(shape, causal: true)
        Self.check(shape, causal: false)
    }

    @Test func decodingOneQueryAgainstACache() {
        Self.check(Shape(B: 2, H: 4, Hkv: 2, Tq: 1, Tk: 9, Dh: 16), causal: true)
        Self.check(Shape(B: 1, H: 2, Hkv: 1, Tq: 3, Tk: 70, Dh: 8), causal: true)  // chunked prefill
        // Panels of at most four queries go row by row: one head per kv head, past one key chunk.
        Self.check(Shape(B: 2, H: 3, Hkv: 3, Tq: 1, Tk: 520, Dh: 36), causal: true)
        Self.check(Shape(B: 1, H: 2, Hkv: 2, Tq: 4, Tk: 300, Dh: 64), causal: false)
    }

    @Test func packedSegmentsWithPadding() {
        // Row 0: three samples; row 1: one sample then two padding positions (−1).
        let ids = Tensor([0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, -1, -1] as [Int32], shape: [2, 8])
        let s = Shape(B: 2, H: 2, Hkv: 1, Tq: 8, Tk: 8, Dh: 8)
        Self.check(s, causal: true, segments: Kernels.Segments(ids))
        Self.check(s, causal: false, segments: Kernels.Segments(ids))
        // Padding queries see nothing: their output is exactly zero.
        let out = Kernels.attention(queries: Self.inputs(s)[0], keys: Self.inputs(s)[1], values: Self.inputs(s)[2], scale: 0.5, causal: true, segments: Kernels.Segments(ids))
        #expect(out[1, TensorIndex.all, 6...].abs().max().item(Float.self) == 0)
        // Segment isolation: changing sample 1 of row 0 leaves sample 0's outputs unchanged.
        var changed = Self.inputs(s)
        changed[1][0, TensorIndex.all, 3..<5] = Tensor.ones([1, 2, 8]) * 5
        let again = Kernels.attention(queries: changed[0], keys: changed[1], values: changed[2], scale: 0.5, causal: true, segments: Kernels.Segments(ids))
        #expect((again[0, TensorIndex.all, 0..<3] - out[0, TensorIndex.all, 0..<3]).abs().max().item(Float.self) == 0)
        // Samples spanning several 16-query panels, a padded tail, and decoding two packed queries.
        // Row 0: samples of 30, 25 and 15 tokens; row 1: 50 tokens then padding.
        let long = Tensor((0..<140).map { (i: Int) -> Int32 in i < 70 ? (i < 30 ? 0 : i < 55 ? 1 : 2) : (i < 120 ? 0 : -1) }, shape: [2, 70])
        Self.check(Shape(B: 2, H: 4, Hkv: 2, Tq: 70, Tk: 70, Dh: 16), causal: true, segments: Kernels.Segments(long))
        Self.check(Shape(B: 2, H: 4, Hkv: 2, Tq: 70, Tk: 70, Dh: 16), causal: false, segments: Kernels.Segments(long))
        let decoding = Kernels.Segments(queries: long[TensorIndex.all, 68..<70], keys: long)  // row 1: padding
        Self.check(Shape(B: 2, H: 2, Hkv: 2, Tq: 2, Tk: 70, Dh: 8), causal: true, segments: decoding)
    }

    @Test func additiveAndBooleanMasks() {
        let s = Shape(B: 2, H: 2, Hkv: 1, Tq: 6, Tk: 6, Dh: 8)
        Self.check(s, causal: false, mask: Random.normal([6, 6], key: Random.key(5)))
        Self.check(s, causal: true, mask: Random.normal([2, 1, 6, 6], key: Random.key(6)))
        let keepAllButLastTwo = Tensor((0..<6).map { $0 < 4 }, shape: [1, 1, 1, 6])
        Self.check(s, causal: false, mask: keepAllButLastTwo)
        // A fully masked query row gives zeros, not NaN, and no NaN gradients.
        let none = Tensor.zeros([1, 1, 6, 6], dtype: .bool)
        let x = Self.inputs(s)
        let out = Kernels.attention(queries: x[0], keys: x[1], values: x[2], scale: 0.5, mask: none)
        #expect(out.abs().max().item(Float.self) == 0)
        let g = grad { Kernels.attention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.5, mask: none).sum() }(x)
        #expect(g.allSatisfy { !$0.abs().max().item(Float.self).isNaN })
    }

    /// PyTorch 2.13's scaled_dot_product_attention (Tools/fixtures/generate_attention_fixture.py):
    /// outputs and q/k/v gradients for GQA, causal (bottom-right aligned), decoding and packed cases.
    @Test(arguments: ["gqa_causal", "gqa_full", "decode", "packed_causal", "packed_full"])
    func matchesPyTorchFixture(name: String) throws {
        let url = try #require(Bundle.module.resourceURL?.appendingPathComponent("Fixtures/attention.safetensors"))
        let fixture = try Safetensors.load(url).tensors
        func tensor(_ key: String) throws -> Tensor { try #require(fixture["\(name).\(key)"], "\(name).\(key)") }
        let (q, k, v) = (try tensor("q"), try tensor("k"), try tensor("v"))
        let segments = fixture["\(name).segments"].map { Kernels.Segments($0) }
        let causal = name.contains("causal") || name == "decode"
        let scale = 1 / Float(q.dim(3)).squareRoot()
        let (outputs, gradients) = vjp(
            { [Kernels.attention(queries: $0[0], keys: $0[1], values: $0[2], scale: scale, causal: causal, segments: segments)] },
            primals: [q, k, v], cotangents: [try tensor("cotangent")])
        let tolerance = Tolerance(absolute: 1e-5, relative: 1e-4)
        assertClose(outputs[0], try tensor("out"), tolerance: tolerance, "\(name) out")
        assertClose(gradients[0], try tensor("dq"), tolerance: tolerance, "\(name) dq")
        assertClose(gradients[1], try tensor("dk"), tolerance: tolerance, "\(name) dk")
        assertClose(gradients[2], try tensor("dv"), tolerance: tolerance, "\(name) dv")
    }

    @Test func badShapesThrowInsideTheErrorScope() {
        let x = Self.inputs(Shape(B: 1, H: 3, Hkv: 2, Tq: 4, Tk: 4, Dh: 8))
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.attention(queries: x[0], keys: x[1], values: x[2], scale: 1) }
        }
    }
}

import CMLXShim

extension Kernels {
    /// Segment ids of packed sequences: a query attends only to keys with its own id; a negative
    /// id marks padding, which attends to nothing.
    public struct Segments {
        /// [B, Tq] integer ids.
        public var queries: Tensor
        /// [B, Tk] integer ids.
        public var keys: Tensor

        public init(queries: Tensor, keys: Tensor) {
            self.queries = queries
            self.keys = keys
        }

        /// The same ids for queries and keys (self-attention over a packed batch).
        public init(_ ids: Tensor) { self.init(queries: ids, keys: ids) }
    }

    /// softmax(q·kᵀ·scale + masks)·v, tiled with an online softmax so memory stays O(T·d)
    /// (FlashAttention, Dao et al. 2022), with its own backward.
    ///
    /// - Parameters:
    ///   - queries: [B, H, Tq, Dh].
    ///   - keys, values: [B, Hkv, Tk, Dh] with H a multiple of Hkv (grouped-query attention).
    ///   - causal: query i sees keys up to i + (Tk − Tq), so Tq = 1 decodes against a KV cache.
    ///   - segments: packed-sequence ids; a fully masked query gives zeros.
    ///   - mask: additive float or boolean (true = attend) mask broadcastable to [B, H, Tq, Tk].
    /// On a GPU or for non-float32 inputs this falls back to the materialized MLX composition.
    public static func attention(
        queries: Tensor, keys: Tensor, values: Tensor, scale: Float, causal: Bool = false,
        segments: Segments? = nil, mask: Tensor? = nil
    ) -> Tensor {
        guard fused(queries, keys, values) else {
            return referenceAttention(
                queries: queries, keys: keys, values: values, scale: scale, causal: causal,
                segments: segments, mask: mask)
        }
        return makeTensor("Kernels.attention") {
            tmx_kernel_attention(
                $0, queries.handle, keys.handle, values.handle, scale, causal,
                segments?.queries.handle, segments?.keys.handle, mask?.handle)
        }
    }

    /// The same attention from materialized scores with MLX's ops.
    public static func referenceAttention(
        queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float, causal: Bool = false,
        segments: Segments? = nil, mask: Tensor? = nil
    ) -> Tensor {
        let (B, H, Tq, Dh) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3))
        let (Hkv, Tk) = (k.dim(1), k.dim(2))
        let group = H / Hkv
        // Repeat each key/value head for the query heads it serves: [B, H, Tk, Dh].
        let kRepeated = k.expandedDimensions(axis: 2).broadcast(to: [B, Hkv, group, Tk, Dh]).reshaped(B, H, Tk, Dh)
        let vRepeated = v.expandedDimensions(axis: 2).broadcast(to: [B, Hkv, group, Tk, Dh]).reshaped(B, H, Tk, Dh)
        var scores = q.matmul(kRepeated.mT) * Double(scale)                       // [B, H, Tq, Tk]
        var visible = Tensor.ones([1, 1, Tq, Tk], dtype: .bool)
        if causal {
            let queryPositions = Tensor.arange(Double(Tk - Tq), Double(Tk), dtype: .int32).reshaped(Tq, 1)
            let keyPositions = Tensor.arange(Double(Tk), dtype: .int32).reshaped(1, Tk)
            visible = visible .& (keyPositions .<= queryPositions).reshaped(1, 1, Tq, Tk)
        }
        if let segments {
            let same = segments.queries.reshaped(B, 1, Tq, 1) .== segments.keys.reshaped(B, 1, 1, Tk)
            visible = visible .& same .& (segments.queries.reshaped(B, 1, Tq, 1) .>= 0)
        }
        if let mask {
            if mask.dtype == .bool {
                visible = visible .& mask
            } else {
                scores = scores + mask.asType(scores.dtype)
            }
        }
        let masked = which(visible, scores, Tensor(-Double.infinity, dtype: scores.dtype))
        // Fully masked rows: softmax of all −inf is NaN; give them zeros as the kernel does.
        let anyVisible = visible.broadcast(to: [B, H, Tq, Tk]).any(axes: [-1], keepDims: true)
        let safe = which(anyVisible, masked, Tensor.zeros(like: masked))
        let weights = which(anyVisible, safe.softmax(axis: -1), Tensor.zeros(like: masked))
        return weights.matmul(vRepeated)
    }
}

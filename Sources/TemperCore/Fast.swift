import CMLXShim

/// MLX's fused kernels (`mlx.core.fast`).
public enum Fast {
    /// x / √(mean(x²) + eps) · weight over the last axis (Zhang & Sennrich 2019).
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
        makeTensor("rmsNorm") { tmx_rms_norm($0, x.handle, weight?.handle, eps) }
    }

    /// (x − mean) / √(var + eps) · weight + bias over the last axis (Ba et al. 2016).
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        makeTensor("layerNorm") { tmx_layer_norm($0, x.handle, weight?.handle, bias?.handle, eps) }
    }

    /// Rotary position embedding (Su et al. 2021) of the first `dimensions` features of x: [..., T, D].
    ///
    /// - Parameters:
    ///   - traditional: rotate adjacent pairs (x0, x1), as the original paper and GPT-J; false
    ///     rotates the two halves (x[i], x[i + D/2]), as Llama/Qwen in transformers do.
    ///   - base: θ in θ^(−2i/D).
    ///   - scale: multiplies positions.
    ///   - offset: position of the first row (the KV-cache length when decoding).
    public static func rope(
        _ x: Tensor, dimensions: Int, traditional: Bool, base: Float, scale: Float = 1,
        offset: Int = 0
    ) -> Tensor {
        makeTensor("rope") {
            tmx_rope($0, x.handle, Int32(dimensions), traditional, base, scale, Int32(offset))
        }
    }

    /// How attention is masked.
    public enum AttentionMask {
        case none
        /// Query i attends to keys up to i + (keyLength − queryLength).
        case causal
        /// Additive float mask or boolean mask (true = attend), broadcastable to [B, H, Tq, Tk].
        case array(Tensor)
    }

    /// softmax(q·kᵀ · scale + mask) · v with grouped-query heads.
    /// q: [B, H, Tq, Dh], k and v: [B, Hkv, Tk, Dh] with H a multiple of Hkv → [B, H, Tq, Dh].
    public static func scaledDotProductAttention(
        queries q: Tensor, keys k: Tensor, values v: Tensor, scale: Float,
        mask: AttentionMask = .none
    ) -> Tensor {
        switch mask {
        case .none:
            makeTensor("scaledDotProductAttention") {
                tmx_scaled_dot_product_attention($0, q.handle, k.handle, v.handle, scale, "", nil)
            }
        case .causal:
            makeTensor("scaledDotProductAttention") {
                tmx_scaled_dot_product_attention(
                    $0, q.handle, k.handle, v.handle, scale, "causal", nil)
            }
        case .array(let maskTensor):
            makeTensor("scaledDotProductAttention") {
                tmx_scaled_dot_product_attention(
                    $0, q.handle, k.handle, v.handle, scale, "", maskTensor.handle)
            }
        }
    }
}

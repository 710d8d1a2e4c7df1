import CMLXShim

extension Kernels {
    /// Attention over a paged KV cache: each row's keys and values live in fixed-size blocks of a
    /// shared pool, listed in order by the row's block table (vLLM's PagedAttention, Kwon et al. 2023).
    ///
    /// - Parameters:
    ///   - queries: [B, H, Tq, Dh], the rows' newest Tq tokens.
    ///   - keyPool, valuePool: [slots, Hkv, Dh] with slots = blocks × blockSize; slot s of block b
    ///     is row b × blockSize + s.
    ///   - blockTable: [B, maxBlocks] int32 block ids of each row, in token order (entries past the
    ///     row's last block are ignored).
    ///   - keyCounts: [B] int32 keys of each row, the new ones included; query j of row b sees
    ///     keys 0 ..< keyCounts[b] − Tq + j + 1. A row with no visible key gives zeros.
    /// - Returns: [B, H, Tq, Dh].
    ///
    /// float32 on the CPU runs the fused kernel: one pass over each row's keys, block by block through
    /// its table, with an online softmax; nothing is gathered and no mask is built. Inference only:
    /// it has no gradient. Elsewhere this is ``referencePagedAttention(queries:keyPool:valuePool:blockTable:keyCounts:blockSize:scale:)``.
    public static func pagedAttention(
        queries: Tensor, keyPool: Tensor, valuePool: Tensor, blockTable: Tensor, keyCounts: Tensor,
        blockSize: Int, scale: Float
    ) -> Tensor {
        guard fused(queries, keyPool, valuePool) else {
            return referencePagedAttention(
                queries: queries, keyPool: keyPool, valuePool: valuePool, blockTable: blockTable,
                keyCounts: keyCounts, blockSize: blockSize, scale: scale)
        }
        return makeTensor("Kernels.pagedAttention") {
            tmx_kernel_paged_attention(
                $0, queries.handle, keyPool.handle, valuePool.handle, blockTable.handle, keyCounts.handle,
                Int32(blockSize), scale)
        }
    }

    /// The same attention by gathering each row's blocks into contiguous keys and values and
    /// running ``attention(queries:keys:values:scale:causal:segments:mask:)`` with a visibility mask.
    public static func referencePagedAttention(
        queries: Tensor, keyPool: Tensor, valuePool: Tensor, blockTable: Tensor, keyCounts: Tensor,
        blockSize: Int, scale: Float
    ) -> Tensor {
        let (batch, queryCount) = (queries.dim(0), queries.dim(2))
        let (kvHeads, headDimension) = (keyPool.dim(1), keyPool.dim(2))
        let keyCount = blockTable.dim(1) * blockSize
        let slots = (blockTable.asType(.int32).reshaped(batch, -1, 1) * Tensor(Double(blockSize), dtype: .int32)
            + Tensor.arange(Double(blockSize), dtype: .int32).reshaped(1, 1, blockSize)).reshaped(-1)
        func gathered(_ pool: Tensor) -> Tensor {
            pool.take(slots, axis: 0).reshaped(batch, keyCount, kvHeads, headDimension).transposed(0, 2, 1, 3)
        }
        let keyIndex = Tensor.arange(Double(keyCount), dtype: .int32).reshaped(1, 1, 1, keyCount)
        let limits = keyCounts.asType(.int32).reshaped(batch, 1, 1, 1) - Tensor(Double(queryCount), dtype: .int32)
            + Tensor.arange(1, Double(queryCount + 1), dtype: .int32).reshaped(1, 1, queryCount, 1)
        return attention(
            queries: queries, keys: gathered(keyPool), values: gathered(valuePool), scale: scale,
            mask: keyIndex .< limits)
    }

    /// Writes `rows` [n, Hkv, Dh] into `pool` [slots, Hkv, Dh] at int32 `slots` [n]; the pool's
    /// buffer is reused when nothing else holds it (MLX donation), so a write costs O(n), not O(pool).
    public static func writingSlots(_ pool: Tensor, slots: Tensor, rows: Tensor) -> Tensor {
        writingSlots(pool, indices: slotIndices(slots, rowShape: Array(pool.shape.dropFirst())), rows: rows)
    }

    /// The scatter indices [n, rowShape...] that put n rows at `slots` [n] of a pool whose rows have
    /// `rowShape`: made once per forward pass and shared by every layer's writes.
    public static func slotIndices(_ slots: Tensor, rowShape: [Int]) -> Tensor {
        let count = slots.dim(0)
        return slots.asType(.int32).reshaped([count] + rowShape.map { _ in 1 }).broadcast(to: [count] + rowShape)
    }

    /// `writingSlots` with indices from `slotIndices`; `rows` is reshaped to their shape.
    public static func writingSlots(_ pool: Tensor, indices: Tensor, rows: Tensor) -> Tensor {
        pool.putAlong(indices, values: rows.reshaped(indices.shape), axis: 0)
    }
}

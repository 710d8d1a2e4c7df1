import TemperCore
import TemperModels

/// The engine's KV cache: per layer, one pool of keys and one of values, cut into blocks of
/// `blockSize` tokens. A sequence owns a list of blocks (its block table), so sequences of any
/// length share one bounded pool without fragmentation, and several sequences can point at the
/// same block: samples forked from one prompt share its blocks, and the prefix cache lends the
/// blocks of an earlier identical prefix (vLLM's design; slots of a fixed maximum length would
/// waste the unused tail of every slot and could not share a prefix without copying it).
///
/// Block bookkeeping (reference counts, the free list, the prefix cache) is plain Swift on the
/// engine thread; only the pools are tensors.
final class PagedKVCache {
    let blockSize: Int
    let blockCount: Int
    let layerCount: Int
    private(set) var keyPools: [Tensor]
    private(set) var valuePools: [Tensor]

    /// Sequences (and prefix-cache entries do not count) holding each block.
    private var referenceCounts: [Int]
    private var freeBlocks: [Int]
    /// Full blocks kept for reuse, by the hash of their tokens and everything before them.
    private var prefixIndex: [PrefixHash: Int] = [:]
    private var hashOfBlock: [Int: PrefixHash] = [:]
    /// Cached blocks no sequence holds, least recently used first: evicted when the free list is empty.
    private var evictable = LRUSet()

    /// Bytes of one block over all layers, keys and values.
    static func bytesPerBlock(_ configuration: ModelConfiguration, blockSize: Int) -> Int {
        configuration.layerCount * 2 * configuration.keyValueHeadCount * configuration.headDimension
            * blockSize * MemoryLayout<Float>.size
    }

    init(configuration: ModelConfiguration, blockSize: Int, blockCount: Int) {
        precondition(blockCount > 0 && blockSize > 0)
        self.blockSize = blockSize
        self.blockCount = blockCount
        layerCount = configuration.layerCount
        let shape = [blockCount * blockSize, configuration.keyValueHeadCount, configuration.headDimension]
        keyPools = (0..<layerCount).map { _ in Tensor.zeros(shape) }
        valuePools = (0..<layerCount).map { _ in Tensor.zeros(shape) }
        eval(keyPools + valuePools)
        referenceCounts = Array(repeating: 0, count: blockCount)
        freeBlocks = Array((0..<blockCount).reversed())
    }

    /// Blocks held by at least one sequence.
    var usedBlocks: Int { blockCount - freeBlocks.count - evictable.count }
    /// Blocks only the prefix cache holds.
    var cachedBlocks: Int { evictable.count }
    /// Blocks a sequence could take now (free, or cached and evictable).
    var availableBlocks: Int { freeBlocks.count + evictable.count }

    /// A fresh block with reference count 1, evicting the least recently used cached block when
    /// none is free; nil when every block is held.
    func allocate() -> Int? {
        let block: Int
        if let free = freeBlocks.popLast() {
            block = free
        } else if let oldest = evictable.popOldest() {
            if let hash = hashOfBlock.removeValue(forKey: oldest) { prefixIndex[hash] = nil }
            block = oldest
        } else {
            return nil
        }
        referenceCounts[block] = 1
        return block
    }

    func retain(_ block: Int) {
        if referenceCounts[block] == 0 { evictable.remove(block) }
        referenceCounts[block] += 1
    }

    func release(_ block: Int) {
        referenceCounts[block] -= 1
        precondition(referenceCounts[block] >= 0, "KV block \(block) released twice")
        guard referenceCounts[block] == 0 else { return }
        if hashOfBlock[block] != nil { evictable.insert(block) } else { freeBlocks.append(block) }
    }

    func isShared(_ block: Int) -> Bool { referenceCounts[block] > 1 }

    /// The cached block holding exactly this prefix, retained for the caller.
    func lookUp(_ hash: PrefixHash) -> Int? {
        guard let block = prefixIndex[hash] else { return nil }
        retain(block)
        return block
    }

    /// Offers a full block to the prefix cache (kept if no block with the same prefix is there).
    func register(_ block: Int, hash: PrefixHash) {
        guard prefixIndex[hash] == nil, hashOfBlock[block] == nil else { return }
        prefixIndex[hash] = block
        hashOfBlock[block] = hash
    }

    /// Copies the first `tokens` slots of block `source` into block `target` in every layer (a
    /// forked sample's own copy of the prompt's last, partly filled block).
    func copy(block source: Int, to target: Int, tokens: Int) {
        guard tokens > 0 else { return }
        let from = Tensor((0..<tokens).map { Int32(source * blockSize + $0) }, shape: [tokens])
        let to = Tensor((0..<tokens).map { Int32(target * blockSize + $0) }, shape: [tokens])
        for layer in 0..<layerCount {
            keyPools[layer] = Kernels.writingSlots(keyPools[layer], slots: to, rows: keyPools[layer].take(from, axis: 0))
            valuePools[layer] = Kernels.writingSlots(valuePools[layer], slots: to, rows: valuePools[layer].take(from, axis: 0))
        }
        eval(keyPools + valuePools)
    }

    /// The view one forward pass attends through: row r's new tokens go to `slots` (row-major,
    /// T per row) and it attends over its block table's first `keyCounts[r]` tokens.
    func batch(blockTables: [[Int]], keyCounts: [Int], newTokens: Int) -> Batch {
        let width = max(1, blockTables.map(\.count).max() ?? 1)
        var table = [Int32](), slots = [Int32]()
        for (row, blocks) in blockTables.enumerated() {
            table += blocks.map(Int32.init) + Array(repeating: 0, count: width - blocks.count)
            for position in (keyCounts[row] - newTokens)..<keyCounts[row] {
                slots.append(Int32(blocks[position / blockSize] * blockSize + position % blockSize))
            }
        }
        return Batch(
            cache: self, blockTable: Tensor(table, shape: [blockTables.count, width]),
            keyCounts: Tensor(keyCounts.map(Int32.init), shape: [keyCounts.count]),
            slotIndices: Kernels.slotIndices(
                Tensor(slots, shape: [slots.count]), rowShape: Array(keyPools[0].shape.dropFirst())))
    }

    fileprivate func attend(layer: Int, queries: Tensor, keys: Tensor, values: Tensor, scale: Float, batch: Batch) -> Tensor {
        // [B, Hkv, T, Dh] -> one row per token, in the order of the batch's slots (a decode step's
        // T = 1 needs no transpose).
        func rows(_ t: Tensor) -> Tensor { t.dim(2) == 1 ? t : t.transposed(0, 2, 1, 3) }
        keyPools[layer] = Kernels.writingSlots(keyPools[layer], indices: batch.slotIndices, rows: rows(keys))
        valuePools[layer] = Kernels.writingSlots(valuePools[layer], indices: batch.slotIndices, rows: rows(values))
        return Kernels.pagedAttention(
            queries: queries, keyPool: keyPools[layer], valuePool: valuePools[layer], blockTable: batch.blockTable,
            keyCounts: batch.keyCounts, blockSize: blockSize, scale: scale)
    }

    /// Every pool, to evaluate with a step's logits (so the writes happen in place, once).
    var tensors: [Tensor] { keyPools + valuePools }

    /// One forward pass's view of the cache.
    struct Batch: ModelCache {
        let cache: PagedKVCache
        let blockTable: Tensor
        let keyCounts: Tensor
        /// Where the pass's new keys and values go, as scatter indices shared by every layer.
        let slotIndices: Tensor

        /// Rows have their own lengths; callers always pass explicit positions.
        var length: Int { 0 }
        func layer(_ index: Int) -> any AttentionCache { LayerView(batch: self, index: index) }
    }

    final class LayerView: AttentionCache {
        let batch: Batch
        let index: Int

        init(batch: Batch, index: Int) {
            self.batch = batch
            self.index = index
        }

        func attend(queries: Tensor, keys: Tensor, values: Tensor, scale: Float, layout: TokenLayout) -> Tensor {
            batch.cache.attend(layer: index, queries: queries, keys: keys, values: values, scale: scale, batch: batch)
        }
    }
}

/// The identity of a full block's contents: its tokens, the blocks before it, and the adapter
/// that computed its keys and values (FNV-1a, 64 bits, chained block to block).
struct PrefixHash: Hashable {
    let value: UInt64

    static func chain(_ previous: PrefixHash?, tokens: ArraySlice<Int>, adapter: String?) -> PrefixHash {
        var hash: UInt64 = previous?.value ?? 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        if previous == nil { for byte in (adapter ?? "").utf8 { mix(byte) }; mix(0xff) }
        for token in tokens { withUnsafeBytes(of: UInt32(truncatingIfNeeded: token).littleEndian) { $0.forEach(mix) } }
        return PrefixHash(value: hash)
    }
}

/// Block ids in least-recently-inserted order with O(1) insert, remove and pop.
struct LRUSet {
    private var order: [Int: UInt64] = [:]
    private var queue: [(block: Int, stamp: UInt64)] = []
    private var head = 0
    private var clock: UInt64 = 0

    var count: Int { order.count }

    mutating func insert(_ block: Int) {
        clock += 1
        order[block] = clock
        queue.append((block, clock))
    }

    mutating func remove(_ block: Int) { order[block] = nil }

    mutating func popOldest() -> Int? {
        while head < queue.count {
            let (block, stamp) = queue[head]
            head += 1
            if order[block] == stamp {
                order[block] = nil
                compact()
                return block
            }
        }
        return nil
    }

    /// Drops consumed entries once they are most of the queue.
    private mutating func compact() {
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }
}

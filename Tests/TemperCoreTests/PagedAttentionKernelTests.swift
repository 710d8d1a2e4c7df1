import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// The fused paged-attention kernel against the gathering reference and against plain attention
/// over the same keys laid out contiguously; and writing rows into a pool.
@Suite struct PagedAttentionKernelTests {
    struct Case: CustomStringConvertible, Sendable {
        var counts: [Int]
        var queries: Int
        var heads, kvHeads: Int
        var headDimension = 64
        var blockSize = 16
        var batch: Int { counts.count }
        var description: String { "B\(batch) Tq\(queries) H\(heads) Hkv\(kvHeads) Dh\(headDimension) keys \(counts)" }
    }

    /// A paged cache holding each row's keys and values: `keys` and `values` [B, Hkv, Tk, Dh]
    /// contiguous (Tk = maxBlocks × blockSize), the pools [slots, Hkv, Dh] holding every row's blocks
    /// at shuffled block ids among spare blocks of noise, and the block table [B, maxBlocks], whose
    /// entries past a row's last block name spare blocks.
    struct PagedCache {
        var queries, keys, values, keyPool, valuePool, blockTable, keyCounts: Tensor
        /// The table with every entry past a row's last block replaced by ids outside the pool.
        var tableWithJunkTail: Tensor
    }

    static func cache(_ c: Case, seed: UInt64 = 1) -> PagedCache {
        let (b, hkv, dh, bs) = (c.batch, c.kvHeads, c.headDimension, c.blockSize)
        let blocksPerRow = c.counts.map { ($0 + bs - 1) / bs }
        let maxBlocks = max(1, blocksPerRow.max() ?? 1)
        let tk = maxBlocks * bs
        let poolBlocks = b * maxBlocks + 3
        let random = Random.split(Random.key(seed), count: 5)
        let queries = Random.normal([b, c.heads, c.queries, dh], key: random[0])
        let keys = Random.normal([b, hkv, tk, dh], key: random[1])
        let values = Random.normal([b, hkv, tk, dh], key: random[2])
        var keyPool = Random.normal([poolBlocks * bs, hkv, dh], key: random[3]).toArray(Float.self)
        var valuePool = Random.normal([poolBlocks * bs, hkv, dh], key: random[4]).toArray(Float.self)
        var generator = SplitMix64(seed: seed)
        let ids = Array(0..<poolBlocks).shuffled(using: &generator)
        let (keyRows, valueRows) = (keys.toArray(Float.self), values.toArray(Float.self))
        var table = [Int32](repeating: 0, count: b * maxBlocks)
        var junk = table
        var next = 0
        for row in 0..<b {
            for block in 0..<maxBlocks {
                let used = block < blocksPerRow[row]
                // Used blocks get their own ids; the rest of the table names spare blocks.
                let id = used ? ids[next] : ids[b * maxBlocks + (row + block) % 3]
                if used { next += 1 }
                table[row * maxBlocks + block] = Int32(id)
                junk[row * maxBlocks + block] = used ? Int32(id) : (block % 2 == 0 ? -1 : Int32(poolBlocks + 1000))
                guard used else { continue }
                for offset in 0..<bs {
                    for head in 0..<hkv {
                        let source = ((row * hkv + head) * tk + block * bs + offset) * dh
                        let target = ((id * bs + offset) * hkv + head) * dh
                        keyPool.replaceSubrange(target..<(target + dh), with: keyRows[source..<(source + dh)])
                        valuePool.replaceSubrange(target..<(target + dh), with: valueRows[source..<(source + dh)])
                    }
                }
            }
        }
        return PagedCache(
            queries: queries, keys: keys, values: values,
            keyPool: Tensor(keyPool, shape: [poolBlocks * bs, hkv, dh]),
            valuePool: Tensor(valuePool, shape: [poolBlocks * bs, hkv, dh]),
            blockTable: Tensor(table, shape: [b, maxBlocks]), keyCounts: Tensor(c.counts.map(Int32.init)),
            tableWithJunkTail: Tensor(junk, shape: [b, maxBlocks]))
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        #expect(a.shape == b.shape)
        return (a - b).abs().max().item(Float.self)
    }

    /// Fused == gathering reference == plain attention over the contiguous keys with the documented
    /// visibility (query j of row b sees keys 0 ..< count − Tq + j + 1), to 1e-5.
    static func check(_ c: Case, sourceLocation: SourceLocation = #_sourceLocation) {
        let p = cache(c)
        let scale = 1 / Float(c.headDimension).squareRoot()
        func paged(_ table: Tensor) -> Tensor {
            Kernels.pagedAttention(
                queries: p.queries, keyPool: p.keyPool, valuePool: p.valuePool, blockTable: table,
                keyCounts: p.keyCounts, blockSize: c.blockSize, scale: scale)
        }
        let fused = paged(p.blockTable)
        let reference = Kernels.referencePagedAttention(
            queries: p.queries, keyPool: p.keyPool, valuePool: p.valuePool, blockTable: p.blockTable,
            keyCounts: p.keyCounts, blockSize: c.blockSize, scale: scale)
        let tk = p.keys.dim(2)
        let limits = p.keyCounts.reshaped(c.batch, 1, 1, 1) - Tensor(Int32(c.queries))
            + Tensor.arange(1, Double(c.queries + 1), dtype: .int32).reshaped(1, 1, c.queries, 1)
        let visible = Tensor.arange(Double(tk), dtype: .int32).reshaped(1, 1, 1, tk) .< limits
        let plain = Kernels.referenceAttention(
            queries: p.queries, keys: p.keys, values: p.values, scale: scale, mask: visible)
        #expect(maxDifference(fused, reference) < 1e-5, "\(c): fused vs gathering reference", sourceLocation: sourceLocation)
        #expect(maxDifference(fused, plain) < 1e-5, "\(c): fused vs attention over contiguous keys", sourceLocation: sourceLocation)
        // Entries past a row's last block are never read, whatever they hold.
        #expect(maxDifference(paged(p.tableWithJunkTail), fused) == 0, "\(c): table tail read", sourceLocation: sourceLocation)
        // A query that sees no key gives exactly zeros.
        for (row, count) in c.counts.enumerated() where count < c.queries {
            let blind = fused[row, TensorIndex.all, 0..<(c.queries - count)]
            #expect(blind.abs().max().item(Float.self) == 0, "\(c): row \(row) sees no key", sourceLocation: sourceLocation)
        }
    }

    /// Rows of 0 keys, of one key, ending mid-block and on a block boundary.
    static let counts: [Int: [Int]] = [1: [37], 3: [0, 21, 48], 8: [0, 1, 16, 17, 33, 50, 64, 90]]

    @Test(arguments: [1, 3, 8], [1, 5])
    func matchesReferences(batch: Int, queries: Int) {
        for (heads, kvHeads) in [(9, 3), (4, 4)] {
            Self.check(Case(counts: Self.counts[batch]!, queries: queries, heads: heads, kvHeads: kvHeads))
        }
    }

    /// Rows long enough to have their keys split across threads when there are few tiles (one
    /// kv head, one row), several 64-key chunks, and head sizes that fill no whole vector.
    @Test func longRowsAndOddHeadSizes() {
        Self.check(Case(counts: [700], queries: 1, heads: 2, kvHeads: 1))
        Self.check(Case(counts: [1000, 3], queries: 1, heads: 2, kvHeads: 1, headDimension: 128))
        Self.check(Case(counts: [300, 130], queries: 2, heads: 3, kvHeads: 1, headDimension: 20, blockSize: 8))
        Self.check(Case(counts: [70], queries: 3, heads: 2, kvHeads: 2, headDimension: 7, blockSize: 5))
    }

    /// A prefill chunk: more query rows than one 16-row tile, causal within the chunk.
    @Test func prefillChunk() {
        Self.check(Case(counts: [120], queries: 40, heads: 9, kvHeads: 3))
        Self.check(Case(counts: [40, 75], queries: 40, heads: 4, kvHeads: 2))
    }

    /// Off the fused path (Kernels.useFusedKernels false) the reference runs, with the same result.
    @Test func referenceWhenFusedKernelsAreOff() {
        let c = Case(counts: [5, 40], queries: 1, heads: 4, kvHeads: 2)
        let p = Self.cache(c)
        func run() -> Tensor {
            Kernels.pagedAttention(
                queries: p.queries, keyPool: p.keyPool, valuePool: p.valuePool, blockTable: p.blockTable,
                keyCounts: p.keyCounts, blockSize: c.blockSize, scale: 0.125)
        }
        let unfused = Kernels.$useFusedKernels.withValue(false) { run().evaluated() }
        #expect(Self.maxDifference(run(), unfused) < 1e-5)
    }

    @Test func writingSlotsReplacesExactlyTheNamedRows() {
        let (slots, width) = (20, 6)
        let original = (0..<(slots * width)).map { Float($0) }
        let rows = (0..<(3 * width)).map { -1 - Float($0) }
        let written = Kernels.writingSlots(
            Tensor(original, shape: [slots, 2, 3]), slots: Tensor([5, 0, 19] as [Int32]),
            rows: Tensor(rows, shape: [3, 2, 3]))
        var expected = original
        for (index, slot) in [5, 0, 19].enumerated() {
            expected.replaceSubrange((slot * width)..<((slot + 1) * width), with: rows[(index * width)..<((index + 1) * width)])
        }
        #expect(written.shape == [slots, 2, 3])
        #expect(written.toArray(Float.self) == expected)
    }

    /// Writing one row into a 64 MB pool that nothing else holds allocates no second pool: MLX
    /// donates the pool's buffer to put_along_axis. Memory statistics are process-wide and other
    /// suites allocate meanwhile, so this retries a few times.
    @Test func writingSlotsReusesAnUnsharedPool() {
        let (slots, kvHeads, headDimension) = (16384, 4, 256)
        let poolBytes = slots * kvHeads * headDimension * 4
        var pool = Tensor.zeros([slots, kvHeads, headDimension]).evaluated()
        let row = Tensor.ones([1, kvHeads, headDimension]).evaluated()
        var observed: [Int] = []
        for attempt in 0..<5 {
            let slot = Tensor([Int32(attempt * 7)]).evaluated()
            let live = Memory.activeBytes
            Memory.resetPeak()
            pool = Kernels.writingSlots(pool, slots: slot, rows: row)
            eval(pool)
            observed.append(Memory.peakBytes - live)
            if observed.last! < poolBytes / 2 { break }
        }
        #expect(observed.contains { $0 < poolBytes / 2 }, "peak above live memory per attempt: \(observed)")
        #expect(pool[0].sum().item(Float.self) == Float(kvHeads * headDimension))
    }
}

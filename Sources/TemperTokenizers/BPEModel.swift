// The BPE model of HF `tokenizers` (models/bpe/model.rs): a word is split into characters, then the
// adjacent pair with the best (lowest) merge rank is merged until none is left, ties going to the
// leftmost pair. Results are cached per word.

import Foundation

final class BPEModel: Sendable {
    let vocabulary: [String: Int]
    let tokens: [Int: String]
    /// (left id, right id) packed into 64 bits → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    /// Ids of single-scalar tokens by scalar value, for the scalars below 1024 (-1: not a token).
    private let smallScalarIDs: [Int32]
    let unknownToken: String?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    private let cache = WordCache()

    init(vocabulary: [String: Int], merges: [(String, String)], unknownToken: String?, fuseUnknown: Bool,
         byteFallback: Bool, ignoreMerges: Bool) throws(TokenizerError) {
        self.vocabulary = vocabulary
        var tokens: [Int: String] = [:]
        tokens.reserveCapacity(vocabulary.count)
        for (token, id) in vocabulary { tokens[id] = token }
        self.tokens = tokens
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let a = vocabulary[left], let b = vocabulary[right] else {
                throw .invalid(file: "merges", field: "merges[\(rank)]", reason: "token '\(left)' or '\(right)' is not in the vocabulary")
            }
            guard let merged = vocabulary[left + right] else {
                throw .invalid(file: "merges", field: "merges[\(rank)]", reason: "merged token '\(left + right)' is not in the vocabulary")
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            // The first occurrence of a pair wins, as in HF's hash map built in order.
            if table[key] == nil { table[key] = (Int32(rank), Int32(merged)) }
        }
        self.merges = table
        var small = [Int32](repeating: -1, count: 1024)
        for (token, id) in vocabulary {
            let scalars = token.unicodeScalars
            if scalars.count == 1, let s = scalars.first, s.value < 1024 { small[Int(s.value)] = Int32(id) }
        }
        smallScalarIDs = small
        self.unknownToken = unknownToken
        self.fuseUnknown = fuseUnknown
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
    }

    /// The ids for one pre-tokenized word.
    func tokenize(_ word: String, into output: inout [Int]) {
        if let cached = cache.get(word) {
            output.append(contentsOf: cached)
            return
        }
        let ids = tokenizeUncached(word)
        cache.set(word, ids)
        output.append(contentsOf: ids)
    }

    private struct Symbol {
        var id: Int32
        var prev: Int32
        var next: Int32
        var length: Int32  // 0 once merged away
    }

    private func tokenizeUncached(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocabulary[word] { return [id] }
        // Initial symbols: one per scalar (or per byte with byte fallback), unknowns fused if asked.
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.unicodeScalars.count)
        var unknownID: Int32?
        if let unknownToken { unknownID = vocabulary[unknownToken].map(Int32.init) }
        var lastWasUnknown = false
        for scalar in word.unicodeScalars {
            var id: Int32 = -1
            if scalar.value < 1024 {
                id = smallScalarIDs[Int(scalar.value)]
            } else if let found = vocabulary[String(scalar)] {
                id = Int32(found)
            }
            if id >= 0 {
                symbols.append(Symbol(id: id, prev: Int32(symbols.count) - 1, next: Int32(symbols.count) + 1, length: 1))
                lastWasUnknown = false
                continue
            }
            if byteFallback {
                var bytes: [Int32] = []
                for byte in String(scalar).utf8 {
                    guard let b = vocabulary[String(format: "<0x%02X>", byte)] else { bytes = []; break }
                    bytes.append(Int32(b))
                }
                if !bytes.isEmpty {
                    for b in bytes {
                        symbols.append(Symbol(id: b, prev: Int32(symbols.count) - 1, next: Int32(symbols.count) + 1, length: 1))
                    }
                    lastWasUnknown = false
                    continue
                }
            }
            guard let unknownID else { continue }  // HF drops characters it cannot represent without an unk token
            if fuseUnknown && lastWasUnknown { continue }
            symbols.append(Symbol(id: unknownID, prev: Int32(symbols.count) - 1, next: Int32(symbols.count) + 1, length: 1))
            lastWasUnknown = true
        }
        guard symbols.count > 1 else { return symbols.map { Int($0.id) } }
        symbols[symbols.count - 1].next = -1

        // Candidate merges in a binary heap ordered by (rank, position).
        var heap = MergeHeap()
        for i in 0..<(symbols.count - 1) {
            if let m = merges[pairKey(symbols[i].id, symbols[i + 1].id)] {
                heap.push(MergeCandidate(rank: m.rank, position: Int32(i), newID: m.id))
            }
        }
        while let top = heap.pop() {
            let i = Int(top.position)
            let symbol = symbols[i]
            guard symbol.length > 0, symbol.next >= 0 else { continue }
            let j = Int(symbol.next)
            // Still the same pair? (Either side may have changed since it was pushed.)
            guard let m = merges[pairKey(symbol.id, symbols[j].id)], m.id == top.newID, m.rank == top.rank else { continue }
            symbols[i].id = top.newID
            symbols[i].length += symbols[j].length
            symbols[i].next = symbols[j].next
            symbols[j].length = 0
            if symbols[i].next >= 0 { symbols[Int(symbols[i].next)].prev = Int32(i) }
            if symbols[i].prev >= 0 {
                let p = Int(symbols[i].prev)
                if let m = merges[pairKey(symbols[p].id, symbols[i].id)] {
                    heap.push(MergeCandidate(rank: m.rank, position: Int32(p), newID: m.id))
                }
            }
            if symbols[i].next >= 0 {
                let n = Int(symbols[i].next)
                if let m = merges[pairKey(symbols[i].id, symbols[n].id)] {
                    heap.push(MergeCandidate(rank: m.rank, position: Int32(i), newID: m.id))
                }
            }
        }
        var result: [Int] = []
        var k = 0
        while k >= 0 && k < symbols.count {
            result.append(Int(symbols[k].id))
            k = Int(symbols[k].next)
        }
        return result
    }

    @inline(__always)
    private func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }
}

private struct MergeCandidate {
    var rank: Int32
    var position: Int32
    var newID: Int32

    @inline(__always)
    func precedes(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : position < other.position
    }
}

/// A binary min-heap of merge candidates.
private struct MergeHeap {
    private var items: [MergeCandidate] = []

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var best = parent
                if left < items.count && items[left].precedes(items[best]) { best = left }
                if right < items.count && items[right].precedes(items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}

/// A bounded word → ids cache shared by all callers of one tokenizer.
// Safety of @unchecked Sendable: `storage` is only read or written while `lock` is held.
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String: [Int]] = [:]
    private let capacity = 50_000

    func get(_ word: String) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        return storage[word]
    }

    func set(_ word: String, _ ids: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
        storage[word] = ids
    }
}

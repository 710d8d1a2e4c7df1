import Foundation

/// How samples are laid out in rows.
public enum Packing: String, Codable, Sendable, CaseIterable {
    /// One sample per row, each batch padded to its longest sample.
    case none
    /// Samples in (shuffled) order, a new row whenever the next one does not fit.
    case sequential
    /// First-fit decreasing: longest first, each into the first row with room (fewer rows than
    /// sequential); the rows are then shuffled.
    case firstFitDecreasing
}

/// Groups samples into rows of at most `capacity` tokens.
public enum Packer {
    /// - Parameters:
    ///   - lengths: token count of every sample.
    ///   - order: the sample indices to place, in the order they are taken.
    /// - Returns: rows of sample indices. Deterministic: equal lengths keep their order in `order`.
    public static func rows(lengths: [Int], order: [Int], capacity: Int, packing: Packing) -> [[Int]] {
        switch packing {
        case .none:
            return order.map { [$0] }
        case .sequential:
            var rows: [[Int]] = []
            var current: [Int] = []
            var used = 0
            for index in order {
                if !current.isEmpty, used + lengths[index] > capacity {
                    rows.append(current)
                    current = []
                    used = 0
                }
                current.append(index)
                used += lengths[index]
            }
            if !current.isEmpty { rows.append(current) }
            return rows
        case .firstFitDecreasing:
            let sorted = order.enumerated().sorted {
                lengths[$0.element] != lengths[$1.element]
                    ? lengths[$0.element] > lengths[$1.element] : $0.offset < $1.offset
            }.map(\.element)
            // Free space per row in a max segment tree, so "first row with room" is O(log rows).
            var rows: [[Int]] = []
            var free = MaxTree(count: sorted.count)
            for index in sorted {
                if let row = free.firstIndex(atLeast: lengths[index]), row < rows.count {
                    rows[row].append(index)
                    free[row] -= lengths[index]
                } else {
                    rows.append([index])
                    free[rows.count - 1] = capacity - lengths[index]
                }
            }
            return rows
        }
    }
}

/// A max segment tree over `count` slots (all -1 at first) that finds the leftmost slot holding at
/// least a value.
struct MaxTree {
    private var size = 1
    private var nodes: [Int]

    init(count: Int) {
        while size < max(count, 1) { size *= 2 }
        nodes = [Int](repeating: -1, count: 2 * size)
    }

    subscript(slot: Int) -> Int {
        get { nodes[size + slot] }
        set {
            var node = size + slot
            nodes[node] = newValue
            while node > 1 {
                node /= 2
                nodes[node] = max(nodes[2 * node], nodes[2 * node + 1])
            }
        }
    }

    func firstIndex(atLeast value: Int) -> Int? {
        guard nodes[1] >= value else { return nil }
        var node = 1
        while node < size { node = nodes[2 * node] >= value ? 2 * node : 2 * node + 1 }
        return node - size
    }
}

/// Where a loader stands: the epoch, and how many rows of that epoch's order were consumed. Save it
/// with a checkpoint; a loader made with the same samples and options from it continues with
/// exactly the batches the original would have produced.
public struct DataCursor: Codable, Sendable, Hashable {
    public var epoch: Int
    public var index: Int

    public init(epoch: Int = 0, index: Int = 0) {
        self.epoch = epoch
        self.index = index
    }
}

/// A batch for the trainer: all rows have the same length.
///
/// `labels` is aligned with `ids` (the trainer shifts by one); -100 marks tokens without loss,
/// including padding and each sample's first token. `positions` restart at 0 for every sample of a
/// packed row; `segments` number the samples within a row (0, 1, …) and are -1 on padding, so
/// attention is allowed from token `t` to token `s` only when `s ≤ t` and `segments[s] ==
/// segments[t] ≠ -1`.
public struct Batch: Sendable, Equatable {
    public var ids: [[Int32]]
    public var labels: [[Int32]]
    public var positions: [[Int32]]
    public var segments: [[Int32]]
    /// Labels that are not -100: the number of loss terms.
    public var trainedTokenCount: Int
    /// Tokens that are not padding.
    public var tokenCount: Int
    /// The samples in each row, by index into the loader's samples.
    public var sampleIndices: [[Int]]
    /// The row of the whole batch this one's first row is, when it is a data-parallel rank's share.
    public var firstRow = 0

    public var rowCount: Int { ids.count }
    public var length: Int { ids.first?.count ?? 0 }
}

/// Shuffles, packs and batches tokenized samples, deterministically from a seed and resumable from
/// a cursor.
///
/// Every epoch has its own permutation of the samples (from `seed` and the epoch number); packing
/// is applied to that order, so the rows of an epoch are a pure function of (samples, options,
/// epoch). `next()` moves on to the next epoch by itself, and returns nil after `epochs` epochs
/// (never when `epochs` is nil, unless there are no samples).
public struct DataLoader: Sendable {
    public let samples: [TokenizedSample]
    public let batchSize: Int
    /// Row length when packing; the longest a sample may be.
    public let maxLength: Int
    public let packing: Packing
    public let shuffle: Bool
    public let seed: UInt64
    public let padTokenID: Int
    public let epochs: Int?
    /// Skip the last batch of an epoch when it has fewer than `batchSize` rows.
    public let dropLastPartialBatch: Bool
    public private(set) var cursor: DataCursor
    private var plan: (epoch: Int, rows: [[Int]])?

    /// - Throws: `DataError.invalidOption` for a non-positive batch size or length, or a sample
    ///   longer than `maxLength` (encode with the same `maxLength`).
    public init(
        samples: [TokenizedSample], batchSize: Int, maxLength: Int, packing: Packing = .firstFitDecreasing,
        shuffle: Bool = true, seed: UInt64 = 0, padTokenID: Int, epochs: Int? = nil,
        dropLastPartialBatch: Bool = false, cursor: DataCursor = DataCursor()
    ) throws {
        guard batchSize > 0 else { throw DataError.invalidOption("batchSize must be positive, got \(batchSize)") }
        guard maxLength > 0 else { throw DataError.invalidOption("maxLength must be positive, got \(maxLength)") }
        if let epochs, epochs < 0 { throw DataError.invalidOption("epochs must not be negative, got \(epochs)") }
        guard cursor.epoch >= 0, cursor.index >= 0 else {
            throw DataError.invalidOption("cursor must not be negative, got \(cursor)")
        }
        if let long = samples.first(where: { $0.count > maxLength }) {
            throw DataError.invalidOption(
                "\(long.source): sample of \(long.count) tokens is longer than the loader's maxLength \(maxLength)")
        }
        self.samples = samples
        self.batchSize = batchSize
        self.maxLength = maxLength
        self.packing = packing
        self.shuffle = shuffle
        self.seed = seed
        self.padTokenID = padTokenID
        self.epochs = epochs
        self.dropLastPartialBatch = dropLastPartialBatch
        self.cursor = cursor
    }

    /// The rows of one epoch, as sample indices.
    public func rows(epoch: Int) -> [[Int]] {
        let epochSeed = Shuffling.epochSeed(seed, epoch: epoch)
        let order = shuffle ? Shuffling.permutation(count: samples.count, seed: epochSeed) : Array(samples.indices)
        var rows = Packer.rows(lengths: samples.map(\.count), order: order, capacity: maxLength, packing: packing)
        if shuffle, packing == .firstFitDecreasing {
            // First-fit decreasing sorts by length; shuffle the rows so batches mix long and short.
            rows = Shuffling.permutation(count: rows.count, seed: epochSeed &+ 1).map { rows[$0] }
        }
        return rows
    }

    /// Batches in the first epoch (epochs differ by at most a few with sequential packing).
    public var batchesPerEpoch: Int {
        let count = rows(epoch: 0).count
        return dropLastPartialBatch ? count / batchSize : (count + batchSize - 1) / batchSize
    }

    /// Rank `rank`'s share of a batch of `size` × the per-rank batch size: its consecutive rows, laid
    /// out as long as the whole batch. A rank left without rows (the last, short batch) gets the
    /// first row with nothing to train, so it still runs the step's shapes and adds nothing.
    public func shard(of batch: Batch, rank: Int, size: Int) -> Batch {
        let perRank = batchSize / size
        let rows = Array(batch.sampleIndices.dropFirst(rank * perRank).prefix(perRank))
        guard rows.isEmpty else {
            var share = makeBatch(rows, length: batch.length)
            share.firstRow = rank * perRank
            return share
        }
        var idle = makeBatch(Array(batch.sampleIndices.prefix(1)), length: batch.length)
        idle.labels = idle.labels.map { $0.map { _ in Int32(ignoredLabel) } }
        idle.trainedTokenCount = 0
        idle.tokenCount = 0
        return idle
    }

    public mutating func next() -> Batch? {
        guard !samples.isEmpty else { return nil }
        while true {
            if let epochs, cursor.epoch >= epochs { return nil }
            if plan?.epoch != cursor.epoch { plan = (cursor.epoch, rows(epoch: cursor.epoch)) }
            let rows = plan?.rows ?? []
            let remaining = rows.count - cursor.index
            if remaining <= 0 || (dropLastPartialBatch && remaining < batchSize) {
                if dropLastPartialBatch && rows.count < batchSize { return nil }  // no epoch fills a batch
                cursor = DataCursor(epoch: cursor.epoch + 1, index: 0)
                continue
            }
            let taken = Array(rows[cursor.index..<cursor.index + min(batchSize, remaining)])
            cursor.index += taken.count
            let left = rows.count - cursor.index
            if left == 0 || (dropLastPartialBatch && left < batchSize) {
                cursor = DataCursor(epoch: cursor.epoch + 1, index: 0)
            }
            return makeBatch(taken)
        }
    }

    /// Lays out rows: packed rows are `maxLength` long, unpacked batches as long as their longest
    /// sample (or `length`, to lay out part of a batch as the whole one is).
    public func makeBatch(_ rows: [[Int]], length: Int? = nil) -> Batch {
        let lengths = rows.map { $0.reduce(0) { $0 + samples[$1].count } }
        let length = length ?? (packing == .none ? (lengths.max() ?? 0) : maxLength)
        var batch = Batch(
            ids: [], labels: [], positions: [], segments: [], trainedTokenCount: 0, tokenCount: 0, sampleIndices: rows)
        for row in rows {
            var ids: [Int32] = []
            var labels: [Int32] = []
            var positions: [Int32] = []
            var segments: [Int32] = []
            ids.reserveCapacity(length)
            for (segment, index) in row.enumerated() {
                let sample = samples[index]
                ids += sample.ids.map { Int32($0) }
                labels += sample.labels.map { Int32($0) }
                positions += (0..<sample.count).map { Int32($0) }
                segments += [Int32](repeating: Int32(segment), count: sample.count)
                batch.trainedTokenCount += sample.trainedTokenCount
                batch.tokenCount += sample.count
            }
            let padding = length - ids.count
            ids += [Int32](repeating: Int32(padTokenID), count: padding)
            labels += [Int32](repeating: Int32(ignoredLabel), count: padding)
            positions += [Int32](repeating: 0, count: padding)
            segments += [Int32](repeating: -1, count: padding)
            batch.ids.append(ids)
            batch.labels.append(labels)
            batch.positions.append(positions)
            batch.segments.append(segments)
        }
        return batch
    }
}

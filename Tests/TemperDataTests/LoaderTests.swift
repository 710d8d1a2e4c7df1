import Foundation
import TemperCore
import Testing

@testable import TemperData

/// A sample of `length` tokens with ids `base, base+1, …`, every token after the first trained.
func synthetic(_ length: Int, base: Int = 0, line: Int = 1) -> TokenizedSample {
    let ids = Array(base..<base + length)
    return TokenizedSample(ids: ids, labels: [ignoredLabel] + ids.dropFirst(), source: SourceLocation(file: "s", line: line))
}

@Suite struct PackingTests {
    let lengths = [5, 3, 4, 2, 6]

    @Test func firstFitDecreasing() {
        #expect(
            Packer.rows(lengths: lengths, order: [0, 1, 2, 3, 4], capacity: 8, packing: .firstFitDecreasing)
                == [[4, 3], [0, 1], [2]])
    }

    @Test func firstFitDecreasingMatchesALinearScan() {
        var generator = SplitMix64(seed: 1)
        let lengths = (0..<500).map { _ in 1 + generator.next(below: 64) }
        let order = Shuffling.permutation(count: lengths.count, seed: 2)
        var expected: [[Int]] = []
        var free: [Int] = []
        for index in order.enumerated().sorted(by: {
            lengths[$0.element] != lengths[$1.element] ? lengths[$0.element] > lengths[$1.element] : $0.offset < $1.offset
        }).map(\.element) {
            if let row = free.firstIndex(where: { $0 >= lengths[index] }) {
                expected[row].append(index)
                free[row] -= lengths[index]
            } else {
                expected.append([index])
                free.append(64 - lengths[index])
            }
        }
        let rows = Packer.rows(lengths: lengths, order: order, capacity: 64, packing: .firstFitDecreasing)
        #expect(rows == expected)
        #expect(rows.allSatisfy { $0.reduce(0) { $0 + lengths[$1] } <= 64 })
    }

    @Test func sequential() {
        #expect(
            Packer.rows(lengths: lengths, order: [0, 1, 2, 3, 4], capacity: 8, packing: .sequential)
                == [[0, 1], [2, 3], [4]])
        #expect(
            Packer.rows(lengths: lengths, order: [4, 3, 2, 1, 0], capacity: 8, packing: .sequential)
                == [[4, 3], [2, 1], [0]])
    }

    @Test func noPacking() {
        #expect(Packer.rows(lengths: lengths, order: [2, 0], capacity: 8, packing: .none) == [[2], [0]])
    }

    @Test func packedRowsRestartPositionsAndNumberSegments() throws {
        let samples = lengths.enumerated().map { synthetic($0.element, base: 100 * $0.offset) }
        var loader = try DataLoader(
            samples: samples, batchSize: 2, maxLength: 8, packing: .firstFitDecreasing, shuffle: false, padTokenID: 7,
            epochs: 1)
        let firstBatch = loader.next()
        let first = try #require(firstBatch)
        #expect(first.sampleIndices == [[4, 3], [0, 1]])
        #expect(first.ids == [[400, 401, 402, 403, 404, 405, 300, 301], [0, 1, 2, 3, 4, 100, 101, 102]])
        #expect(first.positions == [[0, 1, 2, 3, 4, 5, 0, 1], [0, 1, 2, 3, 4, 0, 1, 2]])
        #expect(first.segments == [[0, 0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1]])
        #expect(
            first.labels == [
                [-100, 401, 402, 403, 404, 405, -100, 301], [-100, 1, 2, 3, 4, -100, 101, 102],
            ])
        #expect(first.tokenCount == 16)
        #expect(first.trainedTokenCount == 12)
        #expect(loader.cursor == DataCursor(epoch: 0, index: 2))

        let secondBatch = loader.next()
        let second = try #require(secondBatch)
        #expect(second.sampleIndices == [[2]])
        #expect(second.ids == [[200, 201, 202, 203, 7, 7, 7, 7]])
        #expect(second.labels == [[-100, 201, 202, 203, -100, -100, -100, -100]])
        #expect(second.positions == [[0, 1, 2, 3, 0, 0, 0, 0]])
        #expect(second.segments == [[0, 0, 0, 0, -1, -1, -1, -1]])
        #expect(second.tokenCount == 4)
        #expect(second.trainedTokenCount == 3)
        #expect(loader.cursor == DataCursor(epoch: 1, index: 0))
        #expect(loader.next() == nil)
    }

    @Test func unpackedBatchesPadToTheLongestSample() throws {
        let samples = lengths.enumerated().map { synthetic($0.element, base: 100 * $0.offset) }
        var loader = try DataLoader(
            samples: samples, batchSize: 2, maxLength: 8, packing: .none, shuffle: false, padTokenID: 0, epochs: 1)
        let batchBatch = loader.next()
        let batch = try #require(batchBatch)
        #expect(batch.length == 5)
        #expect(batch.ids == [[0, 1, 2, 3, 4], [100, 101, 102, 0, 0]])
        #expect(batch.labels == [[-100, 1, 2, 3, 4], [-100, 101, 102, -100, -100]])
        #expect(batch.positions == [[0, 1, 2, 3, 4], [0, 1, 2, 0, 0]])
        #expect(batch.segments == [[0, 0, 0, 0, 0], [0, 0, 0, -1, -1]])
        #expect(batch.tokenCount == 8)
        #expect(batch.trainedTokenCount == 6)
        #expect(loader.next()?.length == 4)
        #expect(loader.next()?.rowCount == 1)
        #expect(loader.next() == nil)
    }

    @Test func sampleLongerThanTheRowIsRejected() {
        let error = #expect(throws: DataError.self) {
            try DataLoader(samples: [synthetic(9, line: 4)], batchSize: 1, maxLength: 8, padTokenID: 0)
        }
        #expect(
            error?.localizedDescription
                == "invalid data option: s:4: sample of 9 tokens is longer than the loader's maxLength 8")
    }
}

@Suite struct ShufflingTests {
    @Test func splitMix64MatchesTheReferenceSequence() {
        // Vigna's splitmix64.c seeded with 1234567.
        var generator = SplitMix64(seed: 1_234_567)
        #expect(
            (0..<3).map { _ in generator.next() } == [
                6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            ])
    }

    @Test func permutationIsDeterministicAndComplete() {
        let a = Shuffling.permutation(count: 100, seed: 42)
        #expect(a == Shuffling.permutation(count: 100, seed: 42))
        #expect(a != Shuffling.permutation(count: 100, seed: 43))
        #expect(a.sorted() == Array(0..<100))
        #expect(a != Array(0..<100))
        #expect(Shuffling.permutation(count: 0, seed: 1) == [])
        #expect(Shuffling.permutation(count: 1, seed: 1) == [0])
    }

    @Test func boundedValuesStayInRange() {
        var generator = SplitMix64(seed: 9)
        var counts = [0, 0, 0]
        for _ in 0..<3000 { counts[generator.next(below: 3)] += 1 }
        #expect(counts.allSatisfy { (900...1100).contains($0) }, "\(counts)")
    }

    @Test(arguments: [(100, 0.1, 10), (10, 0.001, 1), (10, 0.0, 0), (3, 0.9, 2), (1, 0.5, 0), (7, 0.5, 4)])
    func evalSplitSizes(count: Int, fraction: Double, evalCount: Int) throws {
        let items = Array(0..<count)
        let (train, eval) = try Shuffling.split(items, evalFraction: fraction, seed: 5)
        #expect(eval.count == evalCount)
        #expect(train.count == count - evalCount)
        #expect((train + eval).sorted() == items)
        #expect(train == train.sorted() && eval == eval.sorted())
        let again = try Shuffling.split(items, evalFraction: fraction, seed: 5)
        #expect(again.train == train && again.eval == eval)
    }

    @Test func evalFractionOutOfRangeThrows() {
        let error = #expect(throws: DataError.self) { try Shuffling.split([1, 2], evalFraction: 1, seed: 0) }
        #expect(error?.localizedDescription == "invalid data option: evalFraction must be in [0, 1), got 1.0")
    }
}

@Suite struct LoaderTests {
    /// 53 samples of 3…30 tokens.
    let samples = (0..<53).map { synthetic(3 + ($0 * 7) % 28, base: 1000 * $0, line: $0 + 1) }

    func loader(_ packing: Packing, seed: UInt64 = 42, cursor: DataCursor = DataCursor()) throws -> DataLoader {
        try DataLoader(samples: samples, batchSize: 3, maxLength: 40, packing: packing, seed: seed, padTokenID: 0, cursor: cursor)
    }

    @Test(arguments: Packing.allCases)
    func sameSeedSameBatchesOtherSeedOthers(packing: Packing) throws {
        var a = try loader(packing)
        var b = try loader(packing)
        var c = try loader(packing, seed: 7)
        let fromA = (0..<6).compactMap { _ in a.next() }
        #expect(fromA == (0..<6).compactMap { _ in b.next() })
        #expect(fromA != (0..<6).compactMap { _ in c.next() })
    }

    @Test(arguments: Packing.allCases)
    func resumingFromACursorContinuesExactly(packing: Packing) throws {
        var original = try loader(packing)
        for _ in 0..<5 { _ = original.next() }
        let saved = original.cursor
        let encoded = try JSONEncoder().encode(saved)
        let restored = try JSONDecoder().decode(DataCursor.self, from: encoded)
        var resumed = try loader(packing, cursor: restored)
        // Enough batches to cross into the next epochs.
        let batchesPerEpoch = original.batchesPerEpoch
        let count = 2 * batchesPerEpoch + 1
        let continued = (0..<count).compactMap { _ in original.next() }
        #expect(continued.count == count)
        #expect((0..<count).compactMap { _ in resumed.next() } == continued)
        #expect(resumed.cursor == original.cursor)
        #expect(original.cursor.epoch >= 2)
    }

    @Test(arguments: Packing.allCases)
    func everyEpochVisitsEverySampleOnce(packing: Packing) throws {
        var loader = try DataLoader(
            samples: samples, batchSize: 4, maxLength: 40, packing: packing, seed: 3, padTokenID: 0, epochs: 2)
        var seen: [Int: [Int]] = [:]
        var epochOrders: [[Int]] = []
        while true {
            let epoch = loader.cursor.epoch
            guard let batch = loader.next() else { break }
            let indices = batch.sampleIndices.flatMap { $0 }
            seen[epoch, default: []] += indices
            if packing != .none { #expect(batch.length == 40) }
            #expect(batch.tokenCount == indices.reduce(0) { $0 + samples[$1].count })
        }
        for epoch in 0..<2 {
            let order = try #require(seen[epoch])
            #expect(order.sorted() == Array(samples.indices))
            epochOrders.append(order)
        }
        #expect(epochOrders[0] != epochOrders[1])
        #expect(loader.cursor == DataCursor(epoch: 2, index: 0))
    }

    @Test func packingUsesFewerRows() throws {
        let unpacked = try loader(.none).rows(epoch: 0).count
        let sequential = try loader(.sequential).rows(epoch: 0).count
        let ffd = try loader(.firstFitDecreasing).rows(epoch: 0).count
        #expect(unpacked == 53)
        #expect(ffd <= sequential && sequential < unpacked)
        let total = samples.reduce(0) { $0 + $1.count }
        #expect(ffd >= (total + 39) / 40)
    }

    @Test func dropLastPartialBatch() throws {
        var loader = try DataLoader(
            samples: Array(samples.prefix(7)), batchSize: 3, maxLength: 40, packing: .none, seed: 1, padTokenID: 0,
            epochs: 2, dropLastPartialBatch: true)
        #expect(loader.batchesPerEpoch == 2)
        var rows: [Int] = []
        while let batch = loader.next() { rows.append(batch.rowCount) }
        #expect(rows == [3, 3, 3, 3])
    }
}

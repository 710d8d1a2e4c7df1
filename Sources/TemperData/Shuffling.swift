import Foundation

/// SplitMix64 (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators"; the
/// constants of Vigna's reference `splitmix64.c`). The data order depends only on the seed, on every
/// platform and Swift version, which `SystemRandomNumberGenerator` and the standard library's
/// `shuffle(using:)` algorithm do not promise.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound`, by rejection so that no value is favoured.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive, got \(bound)")
        let limit = UInt64(bound)
        let threshold = (0 &- limit) % limit  // 2^64 mod bound: values below it would bias the modulo
        while true {
            let value = next()
            if value >= threshold { return Int(value % limit) }
        }
    }
}

/// Deterministic permutations and splits.
public enum Shuffling {
    /// A Fisher–Yates permutation of `0..<count` from `seed` (Durstenfeld's in-place form, from the
    /// back).
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<count)
        var index = count - 1
        while index > 0 {
            order.swapAt(index, generator.next(below: index + 1))
            index -= 1
        }
        return order
    }

    /// The seed of one epoch's order: distinct epochs give unrelated permutations.
    public static func epochSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        var generator = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        return generator.next()
    }

    /// Splits items into train and eval sets. The eval set has `round(fraction · count)` items
    /// (at least one when the fraction is positive and there are two or more items, and never all
    /// of them), chosen by `seed`; both sets keep the input order.
    /// - Throws: `DataError.invalidOption` when the fraction is outside [0, 1).
    public static func split<Item>(_ items: [Item], evalFraction: Double, seed: UInt64) throws -> (
        train: [Item], eval: [Item]
    ) {
        guard evalFraction >= 0, evalFraction < 1 else {
            throw DataError.invalidOption("evalFraction must be in [0, 1), got \(evalFraction)")
        }
        var evalCount = Int((evalFraction * Double(items.count)).rounded())
        if evalFraction > 0, items.count >= 2 { evalCount = max(evalCount, 1) }
        evalCount = min(evalCount, max(items.count - 1, 0))
        let chosen = Set(permutation(count: items.count, seed: seed).prefix(evalCount))
        var train: [Item] = []
        var eval: [Item] = []
        for (index, item) in items.enumerated() {
            if chosen.contains(index) { eval.append(item) } else { train.append(item) }
        }
        return (train, eval)
    }
}

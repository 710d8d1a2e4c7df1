import Foundation
import TemperCore

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

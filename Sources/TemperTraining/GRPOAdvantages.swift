import Foundation

/// How each group's rewards are scaled after the group mean is subtracted (TRL's `scale_rewards`).
public enum RewardScaling: String, Codable, CaseIterable, Sendable {
    /// By the group's standard deviation (GRPO).
    case group
    /// By the whole generation batch's standard deviation, the mean still the group's.
    case batch
    /// Not at all (Dr. GRPO).
    case none
}

/// How several reward functions become one advantage (TRL's `multi_objective_aggregation`).
public enum RewardAggregation: String, Codable, CaseIterable, Sendable {
    /// Weighted sum of the raw rewards, then normalised per group.
    case sumThenNormalize = "sum_then_normalize"
    /// Each function normalised per group, then the weighted sum normalised over the batch (GDPO).
    case normalizeThenSum = "normalize_then_sum"
}

/// GRPO's advantages and the reward metrics of one generation batch, exactly as TRL 1.16 computes them
/// (docs/grpo-trl-arithmetic.md §4, §9). Rows are grouped prompt-major: rows gG ..< (g+1)G share a prompt.
/// A nil reward is TRL's None (NaN): skipped in sums and means; a row with no reward at all is
/// unscorable and gets advantage 0.
public struct GRPOAdvantages: Sendable {
    public var advantages: [Double]
    /// `rewards/<name>/mean|std`, `reward`, `reward_std`, `frac_reward_zero_std`.
    public var metrics: [String: Double]

    /// Added to every standard deviation (outside the square root): an all-equal group gets 0.
    static let stdEpsilon: Float = 1e-4

    /// Computed in float32 in torch's order of operations, so that an advantage that is float noise
    /// (a group whose normalised rewards cancel) has TRL's sign too: the clip metrics count by sign.
    public init(
        rewards: [[Double?]], names: [String], weights: [Double]? = nil, groupSize: Int,
        scaling: RewardScaling = .group, aggregation: RewardAggregation = .sumThenNormalize
    ) {
        let rows = rewards.count
        let weights = (weights ?? Array(repeating: 1, count: names.count)).map(Float.init)
        precondition(groupSize > 0 && rows % groupSize == 0, "GRPOAdvantages: \(rows) rows are not groups of \(groupSize)")
        precondition(weights.count == names.count && rewards.allSatisfy { $0.count == names.count })
        let values: [[Float]] = rewards.map { $0.map { $0.map(Float.init) ?? .nan } }
        func group(of row: Int) -> Range<Int> { (row / groupSize * groupSize)..<(row / groupSize * groupSize + groupSize) }
        /// The weighted sum of each row's non-NaN terms, NaN when the row has none.
        func weightedSums(_ matrix: [[Float]]) -> [Float] {
            matrix.map { row in
                guard row.contains(where: { !$0.isNaN }) else { return .nan }
                return zip(row, weights).reduce(Float(0)) { $1.0.isNaN ? $0 : $0 + $1.0 * $1.1 }
            }
        }
        let summed = weightedSums(values)
        var advantages = [Float](repeating: .nan, count: rows)
        // The std each row's zero-spread check looks at (TRL's `std_rewards`).
        var spread = [Float](repeating: .nan, count: rows)
        switch aggregation {
        case .sumThenNormalize:
            let batchStd = Self.nanStd(summed)
            for row in 0..<rows {
                let members = group(of: row).map { summed[$0] }
                advantages[row] = summed[row] - Self.nanMean(members)
                spread[row] = scaling == .batch ? batchStd : Self.nanStd(members)
                if scaling != .none { advantages[row] /= spread[row] + Self.stdEpsilon }
            }
        case .normalizeThenSum:
            var normalised = values
            for function in names.indices {
                for row in 0..<rows {
                    let members = group(of: row).map { values[$0][function] }
                    normalised[row][function] = (values[row][function] - Self.nanMean(members)) / (Self.nanStd(members) + Self.stdEpsilon)
                }
            }
            let combined = weightedSums(normalised).enumerated().map { summed[$0.offset].isNaN ? Float.nan : $0.element }
            let (mean, std) = (Self.nanMean(combined), Self.nanStd(combined))
            for row in 0..<rows {
                advantages[row] = (combined[row] - mean) / (std + Self.stdEpsilon)
                spread[row] = std
            }
        }
        self.advantages = advantages.map { $0.isNaN ? 0 : Double($0) }

        var metrics: [String: Double] = [:]
        for (function, name) in names.enumerated() {
            let column = values.map { $0[function] }
            metrics["rewards/\(name)/mean"] = Double(Self.nanMean(column))
            metrics["rewards/\(name)/std"] = Double(Self.nanStd(column))
        }
        metrics["reward"] = Double(Self.nanMean(summed))
        metrics["reward_std"] = Double(Self.nanStd(summed))
        // torch.isclose(std, 0): |std| ≤ 1e-8 (a NaN std is not close).
        metrics["frac_reward_zero_std"] = Double(spread.filter { Swift.abs($0) <= 1e-8 }.count) / Double(max(rows, 1))
        self.metrics = metrics
    }

    /// torch.nanmean: NaN counted as 0 in the sum (in torch's CPU order: four interleaved partial
    /// sums), divided by the number of non-NaN values (NaN if none).
    static func nanMean(_ values: [Float]) -> Float {
        let count = values.filter { !$0.isNaN }.count
        guard count > 0 else { return .nan }
        var lanes: [Float] = [0, 0, 0, 0]
        for (index, value) in values.enumerated() where !value.isNaN { lanes[index % 4] += value }
        return (((lanes[0] + lanes[1]) + lanes[2]) + lanes[3]) / Float(count)
    }

    /// TRL's `nanstd`: the Bessel-corrected standard deviation of the non-NaN values (NaN with fewer than two).
    static func nanStd(_ values: [Float]) -> Float {
        let count = values.filter { !$0.isNaN }.count
        guard count > 1 else { return .nan }
        let mean = nanMean(values)
        let variance = nanMean(values.map { ($0 - mean) * ($0 - mean) })
        return (variance * (Float(count) / Float(count - 1))).squareRoot()
    }
}

/// TRL's `completions/*` metrics over one generation batch: lengths (EOS counted) of every
/// completion and of those that ended before the length limit.
public func completionLengthMetrics(lengths: [Int], truncated: [Bool]) -> [String: Double] {
    func stats(_ values: [Int]) -> (mean: Double, min: Double, max: Double) {
        guard let low = values.min(), let high = values.max() else { return (0, 0, 0) }
        return (Double(values.reduce(0, +)) / Double(values.count), Double(low), Double(high))
    }
    let all = stats(lengths)
    let terminated = stats(zip(lengths, truncated).filter { !$0.1 }.map(\.0))
    return [
        "completions/mean_length": all.mean, "completions/min_length": all.min, "completions/max_length": all.max,
        "completions/clipped_ratio": Double(truncated.filter { $0 }.count) / Double(max(1, lengths.count)),
        "completions/mean_terminated_length": terminated.mean, "completions/min_terminated_length": terminated.min,
        "completions/max_terminated_length": terminated.max,
    ]
}

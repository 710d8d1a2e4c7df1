import Foundation
import TemperCore
import TemperModels
import TemperNN

/// Which projections get adapters and how they are shaped.
public struct LoRAConfiguration: Codable, Sendable, Equatable {
    public var rank: Int = 16
    public var alpha: Float = 32
    public var dropout: Float = 0.05
    /// Projection names (`q_proj`, `v_proj`, …) or `all-linear` (every projection in the blocks).
    public var targetModules: [String] = ["all-linear"]
    /// alpha/√rank instead of alpha/rank (rsLoRA).
    public var rankStabilized: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case rank, alpha, dropout
        case targetModules = "target_modules"
        case rankStabilized = "use_rslora"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? rank
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? alpha
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? dropout
        targetModules = try c.decodeIfPresent([String].self, forKey: .targetModules) ?? targetModules
        rankStabilized = try c.decodeIfPresent(Bool.self, forKey: .rankStabilized) ?? rankStabilized
    }

    public static let allLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// The projection names the targets resolve to, checked against the known ones.
    public func resolvedTargets() throws -> [String] {
        if targetModules == ["all-linear"] { return Self.allLinear }
        let unknown = targetModules.filter { !Self.allLinear.contains($0) }
        guard unknown.isEmpty, !targetModules.isEmpty else {
            throw LoRAError.unknownTargetModules(
                reason: "unknown module(s) \(unknown.joined(separator: ", ")); use names from \(Self.allLinear.joined(separator: ", ")) or all-linear")
        }
        return targetModules
    }
}

/// Why adapters could not be configured or applied.
public enum LoRAError: Error, LocalizedError, Equatable {
    case unknownTargetModules(reason: String)

    public var errorDescription: String? {
        switch self {
        case .unknownTargetModules(let reason): "lora.target_modules: \(reason)"
        }
    }
}

import Foundation
import TemperCore

/// An optimizer over named tensors whose state can be checkpointed and restored exactly.
public protocol Optimizer {
    /// Steps taken so far.
    var step: Int { get }
    /// New parameter values after one step at `learningRate` (only names that have a gradient).
    mutating func update(
        parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Float
    ) -> [String: Tensor]
    /// The state as a flat tensor dictionary for a checkpoint.
    var state: [String: Tensor] { get }
    /// Restores what `state` and `step` saved.
    mutating func restore(state: [String: Tensor], step: Int)
}

/// AdamW over named tensors with one fused update for all of them (Loshchilov & Hutter 2019),
/// PyTorch's arithmetic. Moments are kept by name so they can be checkpointed and restored.
public struct AdamW: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Steps taken so far (bias correction uses step + 1 for the next one).
    public private(set) var step = 0
    public private(set) var firstMoments: [String: Tensor] = [:]
    public private(set) var secondMoments: [String: Tensor] = [:]

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// No decay on norms and biases (1-D tensors), as transformers' Trainer groups them.
    public static func decays(_ name: String, _ tensor: Tensor) -> Bool {
        tensor.ndim >= 2 && !name.hasSuffix(".bias") && !name.contains("norm")
    }

    /// New parameter values after one step at `learningRate`.
    public mutating func update(
        parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Float
    ) -> [String: Tensor] {
        let names = parameters.keys.filter { gradients[$0] != nil }.sorted()
        step += 1
        let result = Kernels.adamWUpdate(
            parameters: names.map { parameters[$0]! }, gradients: names.map { gradients[$0]! },
            firstMoments: names.map { firstMoments[$0] ?? Tensor.zeros(like: parameters[$0]!) },
            secondMoments: names.map { secondMoments[$0] ?? Tensor.zeros(like: parameters[$0]!) },
            weightDecays: names.map { Self.decays($0, parameters[$0]!) ? weightDecay : 0 },
            step: AdamWStep(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, step: step))
        for (index, name) in names.enumerated() {
            firstMoments[name] = result.firstMoments[index]
            secondMoments[name] = result.secondMoments[index]
        }
        return Dictionary(uniqueKeysWithValues: zip(names, result.parameters))
    }

    /// Moments as a flat tensor dictionary (`m.NAME`, `v.NAME`) for a checkpoint.
    public var state: [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, m) in firstMoments { result["m." + name] = m }
        for (name, v) in secondMoments { result["v." + name] = v }
        return result
    }

    /// Restores what `state` and `step` saved.
    public mutating func restore(state: [String: Tensor], step: Int) {
        firstMoments = [:]
        secondMoments = [:]
        for (key, tensor) in state {
            if key.hasPrefix("m.") { firstMoments[String(key.dropFirst(2))] = tensor }
            if key.hasPrefix("v.") { secondMoments[String(key.dropFirst(2))] = tensor }
        }
        self.step = step
    }
}

/// Learning rate as a function of the optimizer step, with linear warmup.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case constant
        case linear
        case cosine
    }

    public var kind: Kind
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, peak: Float, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The rate for 0-based step `step`, as transformers' get_{constant,linear,cosine}_schedule_with_warmup.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step) / Float(max(1, warmupSteps)) }
        let decaySteps = max(1, totalSteps - warmupSteps)
        let progress = min(1, Float(step - warmupSteps) / Float(decaySteps))
        switch kind {
        case .constant: return peak
        case .linear: return peak * (1 - progress)
        case .cosine: return peak * 0.5 * (1 + Float(Foundation.cos(Double.pi * Double(progress))))
        }
    }
}

/// Scales gradients so their global L2 norm is at most `maxNorm`; returns them and the norm
/// before clipping.
public func clipGlobalNorm(_ gradients: [String: Tensor], maxNorm: Float) -> ([String: Tensor], Tensor) {
    let squares = gradients.keys.sorted().map { gradients[$0]!.square().sum() }
    let norm = Tensor.stacked(squares).sum().sqrt()
    guard maxNorm > 0 else { return (gradients, norm) }
    let factor = minimum(Tensor(Float(1)), Tensor(maxNorm) / (norm + 1e-6))
    return (gradients.mapValues { $0 * factor }, norm)
}

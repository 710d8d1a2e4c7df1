import TemperCore

/// Loss functions over logits and targets.
public enum Losses {
    /// Mean of (prediction − target)².
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        (prediction - target).square().mean()
    }

    /// Mean over rows of −log softmax(logits)[target]. logits: [N, V], targets: [N] integer.
    public static func crossEntropy(logits: Tensor, targets: Tensor) -> Tensor {
        let logProbabilities = Kernels.logSoftmax(logits)                             // [N, V]
        let picked = logProbabilities.takeAlong(targets.expandedDimensions(axis: -1), axis: -1)  // [N, 1]
        return -picked.mean()
    }
}

/// Plain stochastic gradient descent: p ← p − lr · (g + wd · p), torch.optim.SGD without momentum.
public struct SGD: Optimizer {
    /// The rate ``update(_:gradients:)`` uses; ``update(parameters:gradients:learningRate:)`` takes the schedule's.
    public var learningRate: Float
    public var weightDecay: Float
    public private(set) var step = 0

    public init(learningRate: Float, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    public func update(_ module: some Module, gradients: [String: Tensor]) throws {
        var copy = self
        try module.update(parameters: copy.update(parameters: module.parameters(), gradients: gradients, learningRate: learningRate))
    }

    public mutating func update(
        parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Float
    ) -> [String: Tensor] {
        step += 1
        var updated: [String: Tensor] = [:]
        for (name, gradient) in gradients {
            guard let value = parameters[name] else { continue }
            let decayed = weightDecay > 0 && AdamW.decays(name, value) ? gradient + value * Double(weightDecay) : gradient
            updated[name] = value - decayed * Double(learningRate)
        }
        return updated
    }

    /// SGD without momentum keeps no state.
    public var state: [String: Tensor] { [:] }

    public mutating func restore(state: [String: Tensor], step: Int) { self.step = step }
}

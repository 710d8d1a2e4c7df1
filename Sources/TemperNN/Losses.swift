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

/// Plain stochastic gradient descent: p ← p − lr · g.
public struct SGD {
    public var learningRate: Float

    public init(learningRate: Float) { self.learningRate = learningRate }

    public func update(_ module: some Module, gradients: [String: Tensor]) throws {
        let parameters = module.parameters()
        var updated: [String: Tensor] = [:]
        for (name, gradient) in gradients {
            guard let value = parameters[name] else { continue }
            updated[name] = value - gradient * Double(learningRate)
        }
        try module.update(parameters: updated)
    }
}

import TemperCore

/// y = x · Wᵀ + b with W: [out, in], the `torch.nn.Linear` layout.
public final class Linear: Module {
    public var weight: Tensor
    public var bias: Tensor?

    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// Initialized as PyTorch does: uniform(±1/√in) for weight and bias.
    public init(inputSize: Int, outputSize: Int, bias: Bool = true, key: Tensor) {
        let keys = Random.split(key)
        let bound = 1 / Float(inputSize).squareRoot()
        weight = Random.uniform([outputSize, inputSize], low: -bound, high: bound, key: keys[0])
        self.bias = bias ? Random.uniform([outputSize], low: -bound, high: bound, key: keys[1]) : nil
    }

    public var ownParameters: [String: Tensor] {
        var result = ["weight": weight]
        if let bias { result["bias"] = bias }
        return result
    }

    public func setOwnParameter(_ name: String, _ value: Tensor) {
        if name == "weight" { weight = value } else { bias = value }
    }

    /// x: [..., in] → [..., out].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let bias { return bias.addmm(x.reshaped(-1, x.dim(-1)), weight.mT).reshaped(x.shape.dropLast() + [weight.dim(0)]) }
        return x.matmul(weight.mT)
    }
}

/// Looks up rows of a [vocabulary, dimension] table.
public final class Embedding: Module {
    public var weight: Tensor

    public init(weight: Tensor) { self.weight = weight }

    public init(count: Int, dimensions: Int, key: Tensor) {
        weight = Random.normal([count, dimensions], key: key)
    }

    public var ownParameters: [String: Tensor] { ["weight": weight] }
    public func setOwnParameter(_ name: String, _ value: Tensor) { weight = value }

    /// ids: [...] integer → [..., dimension].
    public func callAsFunction(_ ids: Tensor) -> Tensor { weight.take(ids, axis: 0) }
}

/// Root-mean-square normalization over the last axis (Zhang & Sennrich 2019), as Llama/Qwen use.
public final class RMSNorm: Module {
    public var weight: Tensor
    public let eps: Float

    public init(dimensions: Int, eps: Float = 1e-6) {
        weight = Tensor.ones([dimensions])
        self.eps = eps
    }

    public var ownParameters: [String: Tensor] { ["weight": weight] }
    public func setOwnParameter(_ name: String, _ value: Tensor) { weight = value }

    public func callAsFunction(_ x: Tensor) -> Tensor { Fast.rmsNorm(x, weight: weight, eps: eps) }
}

/// A stack of linear layers with SiLU between them.
public final class MLP: Module {
    public let layers: [Linear]

    /// - Parameter sizes: input size, hidden sizes…, output size.
    public init(sizes: [Int], key: Tensor) {
        let keys = Random.split(key, count: Swift.max(sizes.count - 1, 1))
        layers = (0..<(sizes.count - 1)).map {
            Linear(inputSize: sizes[$0], outputSize: sizes[$0 + 1], key: keys[$0])
        }
    }

    public var ownParameters: [String: Tensor] { [:] }
    public var children: [String: any Module] {
        Dictionary(uniqueKeysWithValues: layers.enumerated().map { ("layers.\($0.offset)", $0.element as any Module) })
    }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (index, layer) in layers.enumerated() {
            h = layer(h)
            if index < layers.count - 1 { h = Kernels.silu(h) }
        }
        return h
    }
}

import TemperCore

/// y = x · Wᵀ + b with W: [out, in], the `torch.nn.Linear` layout, plus an optional low-rank
/// adapter (LoRA) whose output is added.
public final class Linear: Module {
    public var weight: Tensor
    public var bias: Tensor?
    /// Trained while `weight` stays frozen; its tensors are the children `lora_A` and `lora_B`,
    /// the names PEFT uses.
    public var lora: LoRAAdapter?
    /// A frozen base stored quantized (QLoRA): it replaces `weight`, is dequantized on every
    /// call and is not a parameter.
    public var quantizedWeight: BlockQuantizedWeight?
    /// A frozen weight stored weight-only quantized for inference (`--quantize`): it replaces
    /// `weight`, is not a parameter, and the product reads its codes directly.
    public var inferenceWeight: WeightOnlyQuantizedMatrix?
    /// Frozen adapters by name for serving, added only to the rows ``AdapterRouting/current``
    /// routes to them; not parameters. Without a routing the layer ignores them.
    public var servedAdapters: [String: ServedLoRA] = [:]

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
        var result = quantizedWeight == nil && inferenceWeight == nil ? ["weight": weight] : [:]
        if let bias { result["bias"] = bias }
        return result
    }

    /// Stores the weight as NF4 or int8 blocks and drops the float copy.
    public func quantizeWeight(_ format: BlockQuantizedWeight.Format, blockSize: Int = 64, doubleQuantization: Bool = false) {
        quantizedWeight = BlockQuantizedWeight(
            quantizing: weight, format: format, blockSize: blockSize, doubleQuantization: doubleQuantization)
        weight = Tensor.zeros([0])
    }

    public var children: [String: any Module] {
        guard let lora else { return [:] }
        return ["lora_A": lora.a, "lora_B": lora.b]
    }

    public func setOwnParameter(_ name: String, _ value: Tensor) {
        if name == "weight" { weight = value } else { bias = value }
    }

    /// Stores the weight for inference as int8 or q4 groups, or as bfloat16 or float32 for the
    /// decode-shaped fused product, and drops the float copy (`.float32` keeps a float32 weight's
    /// own tensor); false (and nothing changes) when the input size is not a multiple of the group size.
    @discardableResult
    public func quantizeForInference(_ format: WeightOnlyQuantizedMatrix.Format) -> Bool {
        guard quantizedWeight == nil, inferenceWeight == nil, weight.dim(1) % WeightOnlyQuantizedMatrix.groupSize == 0 else {
            return false
        }
        let quantized = WeightOnlyQuantizedMatrix(quantizing: weight, format: format)
        eval(quantized.tensors)
        inferenceWeight = quantized
        weight = Tensor.zeros([0])
        return true
    }

    public var inputSize: Int { inferenceWeight?.shape[1] ?? quantizedWeight?.shape[1] ?? weight.dim(1) }
    public var outputSize: Int { inferenceWeight?.shape[0] ?? quantizedWeight?.shape[0] ?? weight.dim(0) }

    /// x: [..., in] → [..., out], plus the served adapters the current ``AdapterRouting`` names.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard !servedAdapters.isEmpty, let routing = AdapterRouting.current else { return baseOutput(x) }
        return addingServedAdapters(baseOutput(x), input: x, routing: routing)
    }

    /// The product with the base weight (and the training adapter, if any).
    func baseOutput(_ x: Tensor) -> Tensor {
        // Frozen weights may be stored quantized or in bfloat16; compute is float32 (the LoRA
        // kernel widens a bfloat16 weight itself).
        if let inferenceWeight, lora == nil {
            return Kernels.quantizedLinear(x, weights: inferenceWeight, bias: bias)
        }
        let stored = inferenceWeight?.dequantized() ?? quantizedWeight?.dequantized() ?? self.weight
        let weight = stored.dtype == .bfloat16 && lora == nil ? stored.asType(.float32) : stored
        let outputShape = Array(x.shape.dropLast()) + [weight.dim(0)]
        let rows = x.reshaped(-1, x.dim(-1))
        if let lora {
            return Kernels.loraLinear(
                rows, weight: weight, bias: bias, a: lora.a.weight, b: lora.b.weight, scale: lora.scale,
                dropout: lora.drawnDropout, dropoutOffset: lora.dropoutOffset(of: x)
            ).reshaped(outputShape)
        }
        return Kernels.linear(rows, weight: weight, bias: bias).reshaped(outputShape)
    }

    /// W + scale · B·A: the weight with the adapter folded in (for merging).
    public var mergedWeight: Tensor {
        let base = inferenceWeight?.dequantized() ?? quantizedWeight?.dequantized() ?? weight
        guard let lora else { return base }
        return base + lora.b.weight.matmul(lora.a.weight) * Double(lora.scale)
    }
}

/// A low-rank update scale · B(A(dropout(x))) (Hu et al. 2021, "LoRA"), initialized as PEFT:
/// A Kaiming-uniform (bound 1/√in), B zeros, so the adapted layer starts equal to the base.
public final class LoRAAdapter {
    /// [rank, in].
    public let a: Linear
    /// [out, rank].
    public let b: Linear
    public let rank: Int
    public let alpha: Float
    /// alpha / rank, or alpha / √rank with rank-stabilized scaling (rsLoRA, Kalajdzievski 2023).
    public let scale: Float
    public let dropout: Float
    /// Set per micro-batch to draw a fresh dropout mask; nil (evaluation) applies no dropout.
    public var dropoutSeed: UInt64?
    /// The row of the whole batch that the input's first row is (a data-parallel rank's share):
    /// the mask is drawn for the whole batch, so N ranks drop what one process would.
    public var dropoutRowOffset = 0

    public init(inputSize: Int, outputSize: Int, rank: Int, alpha: Float, dropout: Float = 0,
                rankStabilized: Bool = false, key: Tensor) {
        let bound = 1 / Float(inputSize).squareRoot()
        a = Linear(weight: Random.uniform([rank, inputSize], low: -bound, high: bound, key: key))
        b = Linear(weight: Tensor.zeros([outputSize, rank]))
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        scale = rankStabilized ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
    }

    /// The dropout drawn this step, or nil when none is (evaluation, or dropout 0) and the adapter
    /// sees its input itself.
    public var drawnDropout: (probability: Float, seed: UInt64)? {
        guard dropout > 0, let dropoutSeed else { return nil }
        return (dropout, dropoutSeed)
    }

    /// x with dropout applied (inverted scaling, as torch.nn.Dropout), or nil when no dropout is
    /// drawn this step.
    public func droppedInput(_ x: Tensor) -> Tensor? {
        drawnDropout.map { Kernels.dropout(x, probability: $0.probability, seed: $0.seed, offset: dropoutOffset(of: x)) }
    }

    /// The index of x's first element in the whole batch's input ([rows, …] with rows of the batch).
    func dropoutOffset(of x: Tensor) -> Int {
        dropoutRowOffset == 0 || x.ndim == 0 ? 0 : dropoutRowOffset * (x.size / max(x.dim(0), 1))
    }

    /// scale · B(A(dropout(x))).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        (droppedInput(x) ?? x).matmul(a.weight.mT).matmul(b.weight.mT) * Double(scale)
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

    public func callAsFunction(_ x: Tensor) -> Tensor { Kernels.rmsNorm(x, weight: weight, eps: eps) }
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

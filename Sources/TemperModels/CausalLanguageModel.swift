import TemperCore
import TemperNN

/// Where each token of a forward pass sits: its rotary position and, for padded or packed
/// batches, which sample it belongs to (attention stays within a sample; padding is -1).
public struct TokenLayout {
    /// [B, T] integer positions.
    public var positions: Tensor
    /// [B, T] integer sample ids of the new tokens, or nil when every row is one whole sample.
    public var segments: Tensor?
    /// Set when every row's positions are offset..<offset+T, so RoPE can take MLX's fused kernel.
    public var sharedOffset: Int?

    public init(positions: Tensor, segments: Tensor? = nil, sharedOffset: Int? = nil) {
        self.positions = positions
        self.segments = segments
        self.sharedOffset = sharedOffset
    }

    /// Positions offset..<offset+T for every row, no padding.
    public static func contiguous(batch: Int, length: Int, offset: Int = 0) -> TokenLayout {
        let row = Tensor.arange(Double(offset), Double(offset + length), dtype: .int32)
        return TokenLayout(
            positions: row.reshaped(1, length).broadcast(to: [batch, length]), sharedOffset: offset)
    }
}

/// Grouped-query self-attention with RoPE, optional q/k/v bias and optional per-head q/k RMSNorm.
public final class Attention: Module {
    public let qProj, kProj, vProj, oProj: Linear
    public let qNorm, kNorm: RMSNorm?
    let headCount, keyValueHeadCount, headDimension: Int

    init(_ config: ModelConfiguration) {
        let (hidden, dh) = (config.hiddenSize, config.headDimension)
        func linear(_ input: Int, _ output: Int, bias: Bool) -> Linear {
            Linear(weight: Tensor.zeros([output, input]), bias: bias ? Tensor.zeros([output]) : nil)
        }
        qProj = linear(hidden, config.headCount * dh, bias: config.attentionBias)
        kProj = linear(hidden, config.keyValueHeadCount * dh, bias: config.attentionBias)
        vProj = linear(hidden, config.keyValueHeadCount * dh, bias: config.attentionBias)
        oProj = linear(config.headCount * dh, hidden, bias: config.outputProjectionBias)
        qNorm = config.queryKeyNorm ? RMSNorm(dimensions: dh, eps: config.rmsNormEps) : nil
        kNorm = config.queryKeyNorm ? RMSNorm(dimensions: dh, eps: config.rmsNormEps) : nil
        headCount = config.headCount
        keyValueHeadCount = config.keyValueHeadCount
        headDimension = dh
    }

    public var ownParameters: [String: Tensor] { [:] }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}
    public var children: [String: any Module] {
        var result: [String: any Module] = ["q_proj": qProj, "k_proj": kProj, "v_proj": vProj, "o_proj": oProj]
        if let qNorm, let kNorm {
            result["q_norm"] = qNorm
            result["k_norm"] = kNorm
        }
        return result
    }

    public func callAsFunction(
        _ x: Tensor, rope: RotaryEmbedding, angles: RotaryEmbedding.Angles,
        layout: TokenLayout, cache: (any AttentionCache)?
    ) -> Tensor {
        let (batch, length) = (x.dim(0), x.dim(1))
        func heads(_ t: Tensor, _ count: Int) -> Tensor {
            t.reshaped(batch, length, count, headDimension)
        }
        var q = heads(qProj(x), headCount)
        var k = heads(kProj(x), keyValueHeadCount)
        let v = heads(vProj(x), keyValueHeadCount).transposed(0, 2, 1, 3)
        if let qNorm, let kNorm {
            q = qNorm(q)
            k = kNorm(k)
        }
        q = rope.applyToHeads(q, angles: angles, sharedOffset: layout.sharedOffset)
        k = rope.applyToHeads(k, angles: angles, sharedOffset: layout.sharedOffset)

        let scale = 1 / Float(headDimension).squareRoot()
        let out: Tensor
        if let cache {
            out = cache.attend(queries: q, keys: k, values: v, scale: scale, layout: layout)
        } else {
            out = Kernels.attention(
                queries: q, keys: k, values: v, scale: scale, causal: true, segments: layout.segments.map(Kernels.Segments.init))
        }
        return oProj(out.transposed(0, 2, 1, 3).reshaped(batch, length, headCount * headDimension))
    }
}

/// The gated feed-forward block: down(silu(gate(x)) · up(x)).
public final class FeedForward: Module {
    public let gateProj, upProj, downProj: Linear

    init(_ config: ModelConfiguration) {
        let (hidden, inner) = (config.hiddenSize, config.intermediateSize)
        let bias = config.mlpBias
        gateProj = Linear(weight: Tensor.zeros([inner, hidden]), bias: bias ? Tensor.zeros([inner]) : nil)
        upProj = Linear(weight: Tensor.zeros([inner, hidden]), bias: bias ? Tensor.zeros([inner]) : nil)
        downProj = Linear(weight: Tensor.zeros([hidden, inner]), bias: bias ? Tensor.zeros([hidden]) : nil)
    }

    public var ownParameters: [String: Tensor] { [:] }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}
    public var children: [String: any Module] {
        ["gate_proj": gateProj, "up_proj": upProj, "down_proj": downProj]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        downProj(Kernels.swiGLU(gate: gateProj(x), up: upProj(x)))
    }
}

/// One pre-norm transformer block.
public final class DecoderLayer: Module {
    public let selfAttention: Attention
    public let mlp: FeedForward
    public let inputNorm, postAttentionNorm: RMSNorm

    init(_ config: ModelConfiguration) {
        selfAttention = Attention(config)
        mlp = FeedForward(config)
        inputNorm = RMSNorm(dimensions: config.hiddenSize, eps: config.rmsNormEps)
        postAttentionNorm = RMSNorm(dimensions: config.hiddenSize, eps: config.rmsNormEps)
    }

    public var ownParameters: [String: Tensor] { [:] }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}
    public var children: [String: any Module] {
        ["self_attn": selfAttention, "mlp": mlp, "input_layernorm": inputNorm,
         "post_attention_layernorm": postAttentionNorm]
    }

    public func callAsFunction(
        _ x: Tensor, rope: RotaryEmbedding, angles: RotaryEmbedding.Angles,
        layout: TokenLayout, cache: (any AttentionCache)?
    ) -> Tensor {
        let h = x + selfAttention(inputNorm(x), rope: rope, angles: angles, layout: layout, cache: cache)
        return h + mlp(postAttentionNorm(h))
    }
}

/// The decoder stack (`model.*` in checkpoints).
public final class DecoderStack: Module {
    public let embedTokens: Embedding
    public let layers: [DecoderLayer]
    public let norm: RMSNorm

    init(_ config: ModelConfiguration) {
        embedTokens = Embedding(weight: Tensor.zeros([config.vocabularySize, config.hiddenSize]))
        layers = (0..<config.layerCount).map { _ in DecoderLayer(config) }
        norm = RMSNorm(dimensions: config.hiddenSize, eps: config.rmsNormEps)
    }

    public var ownParameters: [String: Tensor] { [:] }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}
    public var children: [String: any Module] {
        var result: [String: any Module] = ["embed_tokens": embedTokens, "norm": norm]
        for (index, layer) in layers.enumerated() { result["layers.\(index)"] = layer }
        return result
    }
}

/// A decoder-only language model of the Llama / Qwen2 / Qwen3 families, with Hugging Face
/// parameter names (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`).
public final class CausalLanguageModel: Module {
    public let configuration: ModelConfiguration
    public let model: DecoderStack
    /// nil when the output projection is tied to the token embedding.
    public let lmHead: Linear?
    public let rope: RotaryEmbedding
    /// Recompute each block's activations in the backward pass instead of keeping them (less
    /// memory, about a third more compute); applies to passes without a KV cache.
    public var gradientCheckpointing = false

    /// A model with zero weights (lazy; nothing is allocated until used), to be loaded into.
    public init(configuration: ModelConfiguration) {
        self.configuration = configuration
        model = DecoderStack(configuration)
        lmHead = configuration.tieWordEmbeddings
            ? nil
            : Linear(weight: Tensor.zeros([configuration.vocabularySize, configuration.hiddenSize]))
        rope = RotaryEmbedding(
            headDimension: configuration.headDimension, base: configuration.ropeTheta,
            scaling: configuration.ropeScaling)
    }

    public var ownParameters: [String: Tensor] { [:] }
    public func setOwnParameter(_ name: String, _ value: Tensor) {}
    public var children: [String: any Module] {
        var result: [String: any Module] = ["model": model]
        if let lmHead { result["lm_head"] = lmHead }
        return result
    }

    /// The [V, D] matrix that maps hidden states to logits (the embedding when tied).
    public var outputWeight: Tensor { lmHead?.weight ?? model.embedTokens.weight }
    /// The parameter name of ``outputWeight``.
    public var outputWeightName: String { lmHead == nil ? "model.embed_tokens.weight" : "lm_head.weight" }

    /// Final-norm hidden states [B, T, D] for token ids [B, T]; the input of the LM head (and of
    /// the fused cross-entropy in training).
    public func hiddenStates(_ ids: Tensor, layout: TokenLayout? = nil, cache: (any ModelCache)? = nil) -> Tensor {
        let (batch, length) = (ids.dim(0), ids.dim(1))
        let layout = layout ?? .contiguous(batch: batch, length: length, offset: cache?.length ?? 0)
        let angles = RotaryEmbedding.Angles(rope: rope, layout: layout)
        var h = model.embedTokens(ids)
        for (index, layer) in model.layers.enumerated() {
            if gradientCheckpointing && cache == nil {
                h = checkpointed(layer, h, angles: angles, layout: layout)
            } else {
                h = layer(h, rope: rope, angles: angles, layout: layout, cache: cache?.layer(index))
            }
        }
        return model.norm(h)
    }

    /// One block under gradient checkpointing: its parameters go in as inputs so that gradients
    /// reach the ones being trained.
    func checkpointed(_ layer: DecoderLayer, _ x: Tensor, angles: RotaryEmbedding.Angles, layout: TokenLayout) -> Tensor {
        let parameters = layer.parameters()
        let names = parameters.keys.sorted()
        let rope = self.rope
        let block = checkpoint { inputs in
            try? layer.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, inputs.dropFirst())))
            return [layer(inputs[0], rope: rope, angles: angles, layout: layout, cache: nil)]
        }
        let output = block([x] + names.map { parameters[$0]! })[0]
        try? layer.update(parameters: parameters)
        return output
    }

    /// Logits [B, T, V] for token ids [B, T].
    public func callAsFunction(_ ids: Tensor, layout: TokenLayout? = nil, cache: (any ModelCache)? = nil) -> Tensor {
        logits(hiddenStates(ids, layout: layout, cache: cache))
    }

    /// Logits for hidden states [..., D].
    public func logits(_ hidden: Tensor) -> Tensor {
        if let lmHead { return lmHead(hidden) }
        if let inferenceHead { return Kernels.quantizedLinear(hidden, weights: inferenceHead) }
        return hidden.matmul(model.embedTokens.weight.mT)
    }

    /// With tied embeddings and `--quantize`, the LM head's quantized copy of the embedding (the
    /// lookup keeps the float table).
    public var inferenceHead: WeightOnlyQuantizedMatrix?

    /// Stores every projection and the LM head weight-only quantized for generation (int8 or q4 in
    /// groups of 64, or bfloat16 or float32 for the decode-shaped fused product; layers whose input
    /// size is not a multiple of 64 stay as they are); returns the weight bytes before and after.
    /// With q4 the LM head is int8, as llama.cpp keeps its output matrix at higher precision: on
    /// SmolLM2 a q4 head alone doubles the next-token KL; the other formats' head is in the same
    /// format (a tied float32 head shares the embedding table, counted in `after` again).
    /// Inference only: quantized weights are not parameters.
    @discardableResult
    public func quantizeForInference(_ format: WeightOnlyQuantizedMatrix.Format) -> (before: Int, after: Int) {
        var before = 0, after = 0
        var layers: [Linear] = model.layers.flatMap { layer -> [Linear] in
            let a = layer.selfAttention, m = layer.mlp
            return [a.qProj, a.kProj, a.vProj, a.oProj, m.gateProj, m.upProj, m.downProj]
        }
        for layer in layers {
            before += layer.weight.byteCount
            layer.quantizeForInference(format)
            after += layer.inferenceWeight?.byteCount ?? layer.weight.byteCount
        }
        let headFormat: WeightOnlyQuantizedMatrix.Format = format == .q4 ? .int8 : format
        if let lmHead {
            before += lmHead.weight.byteCount
            lmHead.quantizeForInference(headFormat)
            after += lmHead.inferenceWeight?.byteCount ?? lmHead.weight.byteCount
        } else if outputWeight.dim(1) % WeightOnlyQuantizedMatrix.groupSize == 0 {
            let head = WeightOnlyQuantizedMatrix(quantizing: outputWeight, format: headFormat)
            eval(head.tensors)
            inferenceHead = head
            before += outputWeight.byteCount
            after += head.byteCount
        }
        return (before, after)
    }
}

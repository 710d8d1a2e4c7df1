import CMLXShim

/// What ``Kernels/linearCrossEntropy(hidden:weight:targets:tokenWeights:ignoreIndex:entropy:tokenChunk:vocabularyChunk:gradientsInForward:)`` returns.
public struct CrossEntropyOutput {
    /// Σ −w·log p(target) over the rows that count: a scalar.
    public var lossSum: Tensor
    /// Σ w over the rows that count (their number when no weights are given): a scalar.
    public var weightSum: Tensor
    /// log p(target) per row, 0 for ignored rows: [N]. Differentiable (DPO and GRPO need it).
    public var logProbabilities: Tensor
    /// log Σ exp(logits) per row, 0 for ignored rows: [N]. No gradient.
    public var logSumExp: Tensor
    /// −Σ p log p per row when asked for, else zeros: [N]. No gradient.
    public var entropy: Tensor

    /// lossSum / weightSum, the usual mean token loss.
    public var meanLoss: Tensor { lossSum / maximum(weightSum, Tensor(Float(1e-12))) }
}

/// Which gradients ``Kernels/linearCrossEntropy(hidden:weight:targets:tokenWeights:ignoreIndex:entropy:tokenChunk:vocabularyChunk:gradientsInForward:)``
/// computes during its forward.
public enum CrossEntropyGradients: Int32, Sendable {
    /// All in the backward, which recomputes the logits.
    case none = 0
    /// The hidden states' (the weight is frozen, as with LoRA).
    case hidden
    /// The hidden states' and the weight's (full fine-tuning).
    case hiddenAndWeight
}

extension Kernels {
    /// Cross-entropy of the LM head `hidden · weightᵀ` against `targets`, computed in chunks of
    /// `tokenChunk` rows and `vocabularyChunk` columns so the [N, V] logits never exist whole (after
    /// Liger-Kernel's fused linear cross-entropy). Rows whose target is `ignoreIndex` cost nothing.
    ///
    /// - Parameters:
    ///   - hidden: [N, D] final hidden states.
    ///   - weight: [V, D] LM-head (or tied embedding) weight; gets a gradient only when differentiated.
    ///   - targets: [N] integer token ids; a target outside [0, V) gives log-prob −inf.
    ///   - tokenWeights: optional [N] weights on each row's loss.
    ///   - gradientsInForward: for a training step that differentiates the loss sum only: the
    ///     forward also computes its gradient for `hidden` (`.hidden`) or for both (`.hiddenAndWeight`),
    ///     so the logits are computed once instead of again in the backward. The log-probs then
    ///     carry no gradient, and an evaluation-only call pays for a gradient it does not use.
    /// On a GPU or for non-float32 inputs this falls back to the materialized MLX composition.
    public static func linearCrossEntropy(
        hidden: Tensor, weight: Tensor, targets: Tensor, tokenWeights: Tensor? = nil,
        ignoreIndex: Int32 = -100, entropy: Bool = false, tokenChunk: Int = 512,
        vocabularyChunk: Int = 8192, gradientsInForward: CrossEntropyGradients = .none
    ) -> CrossEntropyOutput {
        guard fused(hidden, weight) else {
            return referenceCrossEntropy(
                hidden: hidden, weight: weight, targets: targets, tokenWeights: tokenWeights,
                ignoreIndex: ignoreIndex, entropy: entropy)
        }
        let parts = withTensorVector { out in
            if tmx_kernel_linear_cross_entropy(
                out, hidden.handle, weight.handle, targets.handle, tokenWeights?.handle,
                ignoreIndex, entropy, Int32(tokenChunk), Int32(vocabularyChunk), gradientsInForward.rawValue) != 0
            {
                opFailed("Kernels.linearCrossEntropy")
                return [Tensor](repeating: Tensor.placeholder(), count: 5)
            }
            return tensors(in: out)
        }
        return CrossEntropyOutput(
            lossSum: parts[0], weightSum: parts[1], logProbabilities: parts[2], logSumExp: parts[3],
            entropy: parts[4])
    }

    /// The same quantities from materialized logits, with MLX's ops.
    public static func referenceCrossEntropy(
        hidden: Tensor, weight: Tensor, targets: Tensor, tokenWeights: Tensor? = nil,
        ignoreIndex: Int32 = -100, entropy: Bool = false
    ) -> CrossEntropyOutput {
        let logits = hidden.matmul(weight.mT)                                     // [N, V]
        let active = targets .!= Tensor(ignoreIndex).asType(targets.dtype)        // [N]
        let safeTargets = which(active, targets, Tensor.zeros(like: targets))
        let logSumExp = logits.logSumExp(axis: -1)                                // [N]
        let picked = logits.takeAlong(safeTargets.expandedDimensions(axis: -1), axis: -1)
            .squeezed(axis: -1)                                                   // [N]
        let zeros = Tensor.zeros(like: logSumExp)
        let logProbabilities = which(active, picked - logSumExp, zeros)
        let weights = which(active, tokenWeights ?? Tensor.ones(like: logSumExp), zeros)
        let entropyValues = entropy
            ? which(active, logSumExp - (logits.softmax(axis: -1) * logits).sum(axis: -1), zeros)
            : zeros
        return CrossEntropyOutput(
            lossSum: -(weights * logProbabilities).sum(), weightSum: weights.sum(),
            logProbabilities: logProbabilities, logSumExp: which(active, logSumExp, zeros).stoppedGradient(),
            entropy: entropyValues.stoppedGradient())
    }
}

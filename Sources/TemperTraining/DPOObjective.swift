import Foundation
import TemperCore
import TemperData
import TemperModels

/// A micro-batch of P preference pairs as tensors: 2P rows (the P prompt + chosen rows, then the P
/// prompt + rejected rows), targets on completion tokens only, and the reference's log-probs.
public struct DPOBatch {
    public var tokens: TokenBatch
    public var pairCount: Int
    /// Indices of the pairs in their dataset (for the precomputed reference).
    public var pairIndices: [Int]
    /// Completion tokens of each row: [2P].
    public var completionTokens: [Int]
    /// LD-DPO weights of each target (1 up to the pair's shorter completion, ld_alpha after): [2P·T].
    public var tokenWeights: Tensor?
    /// Σ log p under the reference: [P] each; set before the step.
    public var referenceChosen: Tensor?
    public var referenceRejected: Tensor?

    /// `batch` as ``PreferenceLoader`` lays it out.
    public init(_ batch: Batch, ldAlpha: Float?) {
        tokens = TokenBatch(batch)
        pairCount = batch.rowCount / 2
        pairIndices = batch.sampleIndices.prefix(pairCount).map { $0[0] }
        // Targets are the labels shifted left: the completion tokens each row predicts.
        let targets = batch.labels.map { Array($0.dropFirst()) + [Int32(ignoredLabel)] }
        completionTokens = targets.map { $0.reduce(0) { $0 + ($1 == Int32(ignoredLabel) ? 0 : 1) } }
        if let ldAlpha {
            var weights: [Float] = []
            for (row, rowTargets) in targets.enumerated() {
                let pair = row % pairCount
                let shared = min(completionTokens[pair], completionTokens[pair + pairCount])
                var seen = 0
                for target in rowTargets {
                    if target == Int32(ignoredLabel) {
                        weights.append(0)
                    } else {
                        seen += 1
                        weights.append(seen <= shared ? 1 : ldAlpha)
                    }
                }
            }
            tokenWeights = Tensor(weights, shape: [weights.count])
        }
    }
}

/// The policy's per-token and per-sequence log-probs of a batch's completions.
struct CompletionLogProbs {
    /// log p of each target, 0 off the completions: [2P, T].
    var perToken: Tensor
    /// Σ over each row's completion (LD-weighted with ld_alpha): [2P].
    var sequence: Tensor
    /// The final hidden states: [2P·T, D].
    var hidden: Tensor

    init(_ model: CausalLanguageModel, _ batch: DPOBatch) {
        let rows = batch.tokens.ids.dim(0), length = batch.tokens.ids.dim(1)
        let states = model.hiddenStates(batch.tokens.ids, layout: batch.tokens.layout)
        hidden = states.reshaped(-1, states.dim(-1))
        let output = Kernels.linearCrossEntropy(
            hidden: hidden, weight: model.outputWeight, targets: batch.tokens.targets, ignoreIndex: Int32(ignoredLabel))
        perToken = output.logProbabilities.reshaped(rows, length)
        let weighted = batch.tokenWeights.map { output.logProbabilities * $0 } ?? output.logProbabilities
        sequence = weighted.reshaped(rows, length).sum(axis: 1)
    }
}

/// Direct preference optimisation with every TRL 1.16 loss (and MPO's weighted combinations), over
/// the reference log-probs each batch carries. Metrics are named as TRL names them.
public struct DPOObjective: Objective {
    public var settings: DPOLossSettings

    public init(settings: DPOLossSettings) { self.settings = settings }

    public func weight(of batch: DPOBatch) -> Int { batch.pairCount }

    public func loss(model: CausalLanguageModel, batch: DPOBatch, stepWeight: Int) -> ObjectiveOutput {
        let (loss, metrics) = evaluate(model: model, batch: batch)
        // Each micro-batch's mean over its pairs, weighted by its share of the step's pairs.
        let share = Double(batch.pairCount) / Double(stepWeight)
        return ObjectiveOutput(loss: loss * share, metrics: metrics.mapValues { $0 * share })
    }

    /// The batch's loss (mean over its pairs) and metrics.
    public func evaluate(model: CausalLanguageModel, batch: DPOBatch) -> (loss: Tensor, metrics: [String: Tensor]) {
        precondition(batch.referenceChosen != nil, "DPOObjective: the batch carries no reference log-probs")
        let p = batch.pairCount
        let outputs = CompletionLogProbs(model, batch)
        let chosen = outputs.sequence[0..<p], rejected = outputs.sequence[p...]
        let counts = Tensor(batch.completionTokens.map(Float.init), shape: [2 * p])
        let chosenTokens = counts[0..<p], rejectedTokens = counts[p...]
        let chosenCount = Double(max(1, batch.completionTokens.prefix(p).reduce(0, +)))
        let rejectedCount = Double(max(1, batch.completionTokens.suffix(p).reduce(0, +)))
        let chosenNLL = -outputs.perToken[0..<p].sum() / chosenCount
        // 1 on each row's completion targets: [2P, T].
        let mask = (batch.tokens.targets .!= Double(ignoredLabel)).asType(.float32).reshaped(2 * p, -1)
        var pairWeights: Tensor?
        if settings.useWeighting {
            let logSumSquares = Self.logSumSquaredProbabilities(outputs.hidden, model.outputWeight)
                .reshaped(2 * p, -1)
            let aligned = ((outputs.perToken.stoppedGradient() - logSumSquares) * mask).sum(axis: 1)
            let rowWeights = (aligned / maximum(counts, Tensor(Float(1)))).exp()
            pairWeights = rowWeights[0..<p] * rowWeights[p...]
        }
        let inputs = PreferenceLogProbs(
            chosen: chosen, rejected: rejected, referenceChosen: batch.referenceChosen!,
            referenceRejected: batch.referenceRejected!, chosenTokens: chosenTokens, rejectedTokens: rejectedTokens,
            chosenNLL: chosenNLL, pairWeights: pairWeights)
        let loss = DPOLoss.loss(inputs, settings)

        let beta = Double(settings.beta)
        let chosenRewards = (chosen - batch.referenceChosen!).stoppedGradient() * beta
        let rejectedRewards = (rejected - batch.referenceRejected!).stoppedGradient() * beta
        // logits/*: the mean over the vocabulary of each completion position's logits, averaged over
        // the positions: hidden · mean of the LM head's rows, with no [N, V] logits built.
        let meanLogits = outputs.hidden.stoppedGradient().matmul(model.outputWeight.stoppedGradient().mean(axis: 0))
            .reshaped(2 * p, -1)
        let positionLogits = meanLogits * mask
        let metrics: [String: Tensor] = [
            "rewards/chosen": chosenRewards.mean(),
            "rewards/rejected": rejectedRewards.mean(),
            "rewards/accuracies": (chosenRewards .> rejectedRewards).asType(.float32).mean(),
            "rewards/margins": (chosenRewards - rejectedRewards).mean(),
            "logps/chosen": chosen.stoppedGradient().mean(),
            "logps/rejected": rejected.stoppedGradient().mean(),
            "logits/chosen": positionLogits[0..<p].sum() / chosenCount,
            "logits/rejected": positionLogits[p...].sum() / rejectedCount,
        ]
        return (loss, metrics)
    }

    /// log Σ_v p_v² at each row (WPO's alignment term), in chunks of rows so the [N, V] logits never
    /// exist whole; no gradient.
    static func logSumSquaredProbabilities(_ hidden: Tensor, _ weight: Tensor, chunk: Int = 256) -> Tensor {
        let rows = hidden.dim(0)
        var parts: [Tensor] = []
        var start = 0
        while start < rows {
            let end = min(rows, start + chunk)
            let logits = hidden[start..<end].stoppedGradient().matmul(weight.stoppedGradient().mT)
            let logSumExp = logits.logSumExp(axis: -1)
            parts.append((logits * 2).logSumExp(axis: -1) - logSumExp * 2)
            eval(parts.last!)
            start = end
        }
        return Tensor.concatenated(parts, axis: 0)
    }

    /// Σ log p of each pair's chosen and rejected completion under `model` as it is (no gradient):
    /// the reference's log-probs when called with the reference in place. [P] each, evaluated.
    public static func sequenceLogProbs(_ model: CausalLanguageModel, _ batch: DPOBatch) -> (chosen: Tensor, rejected: Tensor) {
        let sequence = CompletionLogProbs(model, batch).sequence.stoppedGradient()
        let p = batch.pairCount
        let chosen = sequence[0..<p], rejected = sequence[p...]
        eval(chosen, rejected)
        return (chosen, rejected)
    }
}

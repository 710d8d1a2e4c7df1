import Foundation
import TemperCore
import TemperData
import TemperModels

/// The policy losses of TRL 1.16's GRPOTrainer (`loss_type`).
public enum GRPOLossType: String, Codable, CaseIterable, Sendable {
    case grpo, dapo, bnpo, cispo, sapo, luspo, vespo
    case drGRPO = "dr_grpo"

    /// The losses that clip the ratio PPO's way (and log `clip_ratio/*`).
    var clipsRatio: Bool { [.grpo, .drGRPO, .dapo, .bnpo, .luspo].contains(self) }
}

/// Where the importance ratio lives: one per token (GRPO) or one per sequence (GSPO).
public enum ImportanceSamplingLevel: String, Codable, CaseIterable, Sendable {
    case token, sequence
}

/// Everything the GRPO loss reads, with TRL 1.16's defaults (docs/grpo-trl-arithmetic.md §10).
public struct GRPOLossSettings: Equatable, Sendable {
    public var lossType: GRPOLossType = .dapo
    public var importanceSamplingLevel: ImportanceSamplingLevel = .token
    /// The KL coefficient; 0 computes no reference log-probs at all.
    public var beta: Float = 0
    public var epsilon: Float = 0.2
    /// The upper clip (cispo's cap itself); nil means `epsilon`.
    public var epsilonHigh: Float?
    /// Two-sided clipping: the ratio is also capped at delta.
    public var delta: Float?
    public var useBiasCorrectionKL = true
    /// The fraction of tokens (highest entropy first) that carry the policy loss.
    public var topEntropyQuantile: Float = 1
    /// Rows with negative advantage whose mean old-minus-new log-ratio exceeds this are dropped.
    public var offPolicyMaskThreshold: Float?
    /// Entropy bonus coefficient.
    public var entropyCoefficient: Float = 0
    public var sapoTemperaturePositive: Float = 1
    public var sapoTemperatureNegative: Float = 1.05
    public var vespoKPositive: Float = 2
    public var vespoLambdaPositive: Float = 3
    public var vespoKNegative: Float = 3
    public var vespoLambdaNegative: Float = 2
    /// The sampling temperature, which divides the training logits too.
    public var temperature: Float = 1
    /// dr_grpo's constant denominator.
    public var maxCompletionLength: Int = 256

    public init() {}

    public var upperEpsilon: Float { epsilonHigh ?? epsilon }
}

/// One micro-batch of GRPO rows as TRL lays them out: each row is its prompt, left-padded to the
/// batch's longest, then its completion (EOS included when sampled), right-padded; positions run
/// 0 ..< L over the padding too, which is masked out of attention.
public struct GRPOBatch {
    public var ids: Tensor
    public var layout: TokenLayout
    public var promptWidth: Int
    public var completionWidth: Int
    /// [R, Tc] completion ids (pad where masked).
    public var completionIDs: Tensor
    /// [R, Tc] 1 on each completion's tokens (0 for a truncated row under `mask_truncated_completions`).
    public var completionMask: Tensor
    public var completionMaskRows: [[Float]]
    /// [R] each row's advantage.
    public var advantages: Tensor
    /// [R, Tc] log-probs of the policy that sampled the rows, when they differ from the current one's.
    public var oldLogProbs: Tensor?
    /// [R, Tc] the reference's log-probs (beta > 0).
    public var referenceLogProbs: Tensor?
    /// Unmasked completion tokens in the whole generation batch this micro-batch came from (dapo's N),
    /// every rank's under data parallelism.
    public var generationTokens: Int
    /// The ranks sharing the generation batch (data parallel), each training on its own rows; the
    /// step's weight counts every rank's micro-batches.
    public var ranks = 1
    /// Micro-batches per generation batch.
    public var stepsPerGeneration: Int
    /// The generation batch's metrics (rewards, lengths, timings), reported with each of its steps.
    public var generationMetrics: [String: Double]
    /// Prompt and completion tokens (unpadded), for throughput.
    public var tokenCount: Int
    public var rowCount: Int { completionMaskRows.count }

    /// - Parameters:
    ///   - masked: rows whose completion is dropped from the loss and from attention (truncated rows
    ///     under `mask_truncated_completions`).
    public init(
        prompts: [[Int]], completions: [[Int]], advantages: [Double], padTokenID: Int, masked: [Bool]? = nil,
        generationTokens: Int? = nil, stepsPerGeneration: Int = 1, generationMetrics: [String: Double] = [:]
    ) {
        precondition(prompts.count == completions.count && advantages.count == prompts.count && !prompts.isEmpty)
        let rows = prompts.count
        let masked = masked ?? Array(repeating: false, count: rows)
        promptWidth = prompts.map(\.count).max()!
        completionWidth = max(1, completions.map(\.count).max()!)
        let length = promptWidth + completionWidth
        var ids: [Int32] = [], segments: [Int32] = [], maskRows: [[Float]] = [], completionIDs: [Int32] = []
        for row in 0..<rows {
            let (prompt, completion) = (prompts[row], completions[row])
            let promptPad = promptWidth - prompt.count, completionPad = completionWidth - completion.count
            ids += Array(repeating: Int32(padTokenID), count: promptPad) + prompt.map(Int32.init)
                + completion.map(Int32.init) + Array(repeating: Int32(padTokenID), count: completionPad)
            let live: Int32 = masked[row] ? -1 : 0
            segments += Array(repeating: -1, count: promptPad) + Array(repeating: 0, count: prompt.count)
                + Array(repeating: live, count: completion.count) + Array(repeating: -1, count: completionPad)
            maskRows.append(Array(repeating: masked[row] ? 0 : 1, count: completion.count) + Array(repeating: 0, count: completionPad))
            completionIDs += completion.map(Int32.init) + Array(repeating: Int32(padTokenID), count: completionPad)
        }
        self.ids = Tensor(ids, shape: [rows, length])
        let positions = Tensor.arange(Double(length), dtype: .int32).reshaped(1, length).broadcast(to: [rows, length])
        let padded = segments.contains { $0 < 0 }
        layout = TokenLayout(
            positions: positions, segments: padded ? Tensor(segments, shape: [rows, length]) : nil,
            sharedOffset: padded ? nil : 0)
        self.completionIDs = Tensor(completionIDs, shape: [rows, completionWidth])
        completionMaskRows = maskRows
        completionMask = Tensor(maskRows.flatMap { $0 }, shape: [rows, completionWidth])
        self.advantages = Tensor(advantages.map(Float.init), shape: [rows])
        self.generationTokens = generationTokens ?? Int(maskRows.flatMap { $0 }.reduce(0, +))
        self.stepsPerGeneration = stepsPerGeneration
        self.generationMetrics = generationMetrics
        tokenCount = prompts.reduce(0) { $0 + $1.count } + completions.reduce(0) { $0 + $1.count }
    }

    /// Completion tokens that carry loss.
    public var trainedTokenCount: Int { Int(completionMaskRows.flatMap { $0 }.reduce(0, +)) }
}

/// Per-token log-probs and entropies of a batch's completions under a model, at a temperature.
public struct CompletionTokenStatistics {
    /// [R, Tc] log p(token), 0 off the mask.
    public var logProbs: Tensor
    /// [R, Tc] entropy of each position's distribution, 0 off the mask.
    public var entropies: Tensor

    /// `differentiableEntropy` materialises the logits so the entropy carries a gradient (the entropy
    /// bonus needs it); otherwise the fused kernel gives it without one.
    public init(_ model: CausalLanguageModel, _ batch: GRPOBatch, temperature: Float, differentiableEntropy: Bool = false) {
        let rows = batch.rowCount, width = batch.completionWidth
        let states = model.hiddenStates(batch.ids, layout: batch.layout)
        // The position before each completion token predicts it.
        var hidden = states[0..., (batch.promptWidth - 1)..<(batch.promptWidth - 1 + width)].reshaped(rows * width, -1)
        if temperature != 1 { hidden = hidden / Double(temperature) }
        let targets = which(
            batch.completionMask.reshaped(-1) .> 0, batch.completionIDs.reshaped(-1),
            Tensor(Int32(ignoredLabel)).asType(.int32))
        if differentiableEntropy {
            let output = Kernels.referenceCrossEntropy(hidden: hidden, weight: model.outputWeight, targets: targets)
            let logits = hidden.matmul(model.outputWeight.mT)
            let entropy = logits.logSumExp(axis: -1) - (logits.softmax(axis: -1) * logits).sum(axis: -1)
            logProbs = output.logProbabilities.reshaped(rows, width)
            entropies = (entropy * batch.completionMask.reshaped(-1)).reshaped(rows, width)
        } else {
            let output = Kernels.linearCrossEntropy(
                hidden: hidden, weight: model.outputWeight, targets: targets, ignoreIndex: Int32(ignoredLabel), entropy: true)
            logProbs = output.logProbabilities.reshaped(rows, width)
            entropies = output.entropy.reshaped(rows, width)
        }
    }

    /// Without gradients, evaluated: the old policy's or the reference's log-probs.
    public static func logProbs(_ model: CausalLanguageModel, _ batch: GRPOBatch, temperature: Float) -> Tensor {
        let values = CompletionTokenStatistics(model, batch, temperature: temperature).logProbs.stoppedGradient()
        eval(values)
        return values
    }
}

/// GRPO's objective, TRL 1.16's `_compute_loss` (docs/grpo-trl-arithmetic.md §5–9): every loss type,
/// token or sequence importance sampling, k3 KL, entropy masking and bonus, off-policy masking.
/// Each micro-batch weighs 1, so a step's weight is its micro-batch count (TRL's
/// `current_gradient_accumulation_steps`).
public struct GRPOObjective: Objective {
    public var settings: GRPOLossSettings

    public init(settings: GRPOLossSettings) { self.settings = settings }

    public func weight(of batch: GRPOBatch) -> Int { 1 }

    public func loss(model: CausalLanguageModel, batch: GRPOBatch, stepWeight: Int) -> ObjectiveOutput {
        let terms = evaluate(model: model, batch: batch, accumulationSteps: stepWeight)
        // TRL logs each micro-batch's values and averages them over the step.
        var metrics = terms.metrics.mapValues { $0 / Double(stepWeight) }
        for (name, value) in batch.generationMetrics { metrics[name] = Tensor(Float(value / Double(stepWeight))) }
        return ObjectiveOutput(loss: terms.loss, metrics: metrics)
    }

    /// The micro-batch's loss (already divided as TRL divides for `accumulationSteps` micro-batches),
    /// its per-token loss [R, Tc] before masking, and TRL's loss metrics.
    public func evaluate(model: CausalLanguageModel, batch: GRPOBatch, accumulationSteps: Int = 1) -> (
        loss: Tensor, perTokenLoss: Tensor, metrics: [String: Tensor]
    ) {
        let s = settings
        let bonus = s.entropyCoefficient != 0
        let statistics = CompletionTokenStatistics(model, batch, temperature: s.temperature, differentiableEntropy: bonus)
        let logProbs = statistics.logProbs
        let entropies = bonus ? statistics.entropies : statistics.entropies.stoppedGradient()
        let mask = batch.completionMask
        let rows = batch.rowCount
        let tokensPerRow = mask.sum(axis: 1, keepDims: true)                               // [R, 1]
        let rowDenominator = maximum(tokensPerRow, Tensor(Float(1)))
        let advantages = batch.advantages.reshaped(rows, 1)
        let old = batch.oldLogProbs ?? logProbs.stoppedGradient()
        let logRatio = logProbs - old
        let ratioLog = s.importanceSamplingLevel == .token ? logRatio : (logRatio * mask).sum(axis: 1, keepDims: true) / rowDenominator
        let ratio = ratioLog.exp()                                                          // [R, Tc] or [R, 1]

        var kl: Tensor?
        if s.beta != 0 {
            precondition(batch.referenceLogProbs != nil, "GRPOObjective: beta > 0 needs the batch's reference log-probs")
            let d = batch.referenceLogProbs! - logProbs
            let k3 = d.exp() - d - 1
            kl = s.useBiasCorrectionKL ? k3 * ratio : k3
        }

        let epsilonLow = Double(s.epsilon), epsilonHigh = Double(s.upperEpsilon)
        var clippedRatio = ratio
        var policyLoss: Tensor
        var metrics: [String: Tensor] = [:]
        switch s.lossType {
        case .grpo, .drGRPO, .dapo, .bnpo, .luspo:
            let clipped = ratio.clipped(min: 1 - epsilonLow, max: 1 + epsilonHigh)
            if let delta = s.delta { clippedRatio = minimum(ratio, Tensor(delta)) }
            policyLoss = -minimum(clippedRatio * advantages, clipped * advantages)
        case .cispo:
            let capped = minimum(ratio, Tensor(s.upperEpsilon)).stoppedGradient()
            policyLoss = -(capped * advantages * logProbs)
            let indicator = ((ratio .> epsilonHigh) .& (advantages .> 0)).asType(.float32)
            metrics["cispo_clip_ratio"] = Self.maskedMean(indicator, mask)
        case .sapo:
            let temperatures = which(
                advantages .> 0, Tensor(s.sapoTemperaturePositive), Tensor(s.sapoTemperatureNegative))
            policyLoss = -((temperatures * (ratio - 1)).sigmoid() * 4 / temperatures * advantages)
        case .vespo:
            let phi = vespoWeights(logRatio: logRatio, mask: mask, advantages: advantages)
            policyLoss = -(phi * advantages * logProbs)
            metrics["vespo/phi_seq_mean"] = phi.mean()
        }

        if let threshold = s.offPolicyMaskThreshold {
            let drift = ((old - logProbs.stoppedGradient()) * mask).sum(axis: 1, keepDims: true) / rowDenominator
            let keep = (advantages .>= 0) .| (drift .<= Double(threshold))
            policyLoss = policyLoss * keep.asType(.float32)
        }
        var entropyMask = mask
        if s.topEntropyQuantile < 1 {
            let threshold = Self.quantile(
                of: entropies.stoppedGradient(), where: batch.completionMaskRows, level: Double(1 - s.topEntropyQuantile))
            entropyMask = ((entropies.stoppedGradient() * mask .>= Double(threshold)).asType(.float32)) * mask
            policyLoss = policyLoss * entropyMask
        }
        var perTokenLoss = policyLoss
        if let kl { perTokenLoss = perTokenLoss + kl * Double(s.beta) }
        // A sequence-level loss is one value per row; every token of the row carries it.
        perTokenLoss = perTokenLoss * Tensor.ones(like: mask)

        let steps = Double(accumulationSteps)
        let maskedLoss = perTokenLoss * mask
        var loss: Tensor
        switch s.lossType {
        case .grpo, .sapo:
            loss = (maskedLoss.sum(axis: 1, keepDims: true) / rowDenominator).mean() / steps
        case .bnpo:
            loss = maskedLoss.sum() / maximum(mask.sum(), Tensor(Float(1))) / steps
        case .drGRPO:
            loss = maskedLoss.sum() / Double(rows * s.maxCompletionLength) / steps
        case .dapo, .cispo, .vespo:
            loss = maskedLoss.sum() / (Double(max(batch.generationTokens, 1)) * steps / Double(batch.stepsPerGeneration * batch.ranks))
        case .luspo:
            loss = maskedLoss.sum(axis: 1).mean() / steps
        }
        if bonus {
            metrics["policy_loss"] = loss.stoppedGradient()
            let bonusMask = s.topEntropyQuantile < 1 ? entropyMask : mask
            let meanEntropy = (entropies * bonusMask).sum() / maximum(bonusMask.sum(), Tensor(Float(1)))
            loss = loss - meanEntropy * Double(s.entropyCoefficient) / steps
            metrics["entropy_coef"] = Tensor(s.entropyCoefficient)
        }

        metrics["entropy"] = Self.maskedMean(entropies.stoppedGradient(), mask)
        if let kl { metrics["kl"] = Self.maskedMean(kl.stoppedGradient(), mask) }
        if s.lossType.clipsRatio {
            let r = clippedRatio.stoppedGradient()
            let low = ((r .< 1 - epsilonLow) .& (advantages .< 0)).asType(.float32)
            let high = ((r .> 1 + epsilonHigh) .& (advantages .> 0)).asType(.float32)
            let region = maximum(low, high)
            metrics["clip_ratio/low_mean"] = Self.maskedMean(low, mask)
            metrics["clip_ratio/high_mean"] = Self.maskedMean(high, mask)
            metrics["clip_ratio/region_mean"] = Self.maskedMean(region, mask)
            metrics["clip_ratio/low_min"] = Self.rowMeans(low, mask).min
            metrics["clip_ratio/high_max"] = Self.rowMeans(high, mask).max
        }
        return (loss, perTokenLoss, metrics)
    }

    /// vespo's per-row weight φ (no gradient) from the summed clamped log-ratio.
    func vespoWeights(logRatio: Tensor, mask: Tensor, advantages: Tensor) -> Tensor {
        let s = settings
        let total = (logRatio.stoppedGradient().clipped(min: -20, max: 20) * mask).sum(axis: 1, keepDims: true)
        let logWeight = total.clipped(min: Foundation.log(1e-8), max: 20)
        let weight = logWeight.exp()
        let positive = advantages .>= 0
        let k = which(positive, Tensor(s.vespoKPositive), Tensor(s.vespoKNegative))
        let lambda = maximum(which(positive, Tensor(s.vespoLambdaPositive), Tensor(s.vespoLambdaNegative)), Tensor(Float(1e-4)))
        let phi = (lambda + k * logWeight - lambda * weight).exp()
        let finite = (phi .== phi) .& (phi.abs() .< Double(Float.infinity))
        return which(finite, phi, Tensor.zeros(like: phi)).stoppedGradient()
    }

    /// Σ x·m / Σ m for a per-token x; the plain mean over rows for a per-row x [R, 1].
    static func maskedMean(_ x: Tensor, _ mask: Tensor) -> Tensor {
        if x.dim(1) == 1 && mask.dim(1) != 1 { return x.mean() }
        return (x * mask).sum() / maximum(mask.sum(), Tensor(Float(1)))
    }

    /// The min and max over rows of each row's masked mean (rows without tokens skipped); a per-row
    /// x [R, 1] is its own row mean.
    static func rowMeans(_ x: Tensor, _ mask: Tensor) -> (min: Tensor, max: Tensor) {
        if x.dim(1) == 1 && mask.dim(1) != 1 {
            let values = x.reshaped(-1)
            return (values.min(), values.max())
        }
        let counts = mask.sum(axis: 1)
        let means = (x * mask).sum(axis: 1) / maximum(counts, Tensor(Float(1)))
        let present = counts .> 0
        return (which(present, means, Tensor(Float.infinity)).min(), which(present, means, Tensor(-Float.infinity)).max())
    }

    /// torch.quantile (linear interpolation) at `level` of the values where the mask rows are 1.
    static func quantile(of values: Tensor, where maskRows: [[Float]], level: Double) -> Float {
        let flat = values.toArray(Float.self), mask = maskRows.flatMap { $0 }
        let kept = zip(flat, mask).filter { $0.1 > 0 }.map(\.0).sorted()
        guard !kept.isEmpty else { return .infinity }
        let position = level * Double(kept.count - 1)
        let below = Int(position.rounded(.down)), above = min(kept.count - 1, below + 1)
        let fraction = Float(position - Double(below))
        return kept[below] + (kept[above] - kept[below]) * fraction
    }
}

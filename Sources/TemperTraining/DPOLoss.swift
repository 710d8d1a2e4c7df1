import Foundation
import TemperCore

/// TRL 1.16's `loss_type` values (docs/dpo-trl-arithmetic.md has each formula).
public enum DPOLossType: String, RecipeChoice {
    case sigmoid, hinge, ipo
    case exoPair = "exo_pair"
    case ncaPair = "nca_pair"
    case robust
    case bcoPair = "bco_pair"
    case sppoHard = "sppo_hard"
    case aot
    case aotUnpaired = "aot_unpaired"
    case apoZero = "apo_zero"
    case apoDown = "apo_down"
    case discopop, sft
    case sigmoidNorm = "sigmoid_norm"

    /// The losses built on the f-divergence scores; the others use plain log-ratios, and TRL refuses
    /// a non-reverse-KL divergence with them.
    var allowsFDivergence: Bool {
        [.sigmoid, .sigmoidNorm, .hinge, .ipo, .exoPair, .robust, .discopop, .sft].contains(self)
    }
}

/// f-DPO's divergence (Wang et al. 2023): the score of a log-ratio u is f′(e^u).
public enum FDivergence: String, RecipeChoice {
    case reverseKL = "reverse_kl"
    case forwardKL = "forward_kl"
    case jsDivergence = "js_divergence"
    case alphaDivergence = "alpha_divergence"
}

/// The settings of TRL's preference losses.
public struct DPOLossSettings: Sendable, Equatable {
    public var beta: Float = 0.1
    public var lossTypes: [DPOLossType] = [.sigmoid]
    /// One per loss type (MPO); nil weighs each 1.
    public var lossWeights: [Float]?
    public var labelSmoothing: Float = 0
    public var discopopTau: Float = 0.05
    /// LD-DPO: completion tokens past the shorter completion of the pair count ld_alpha times.
    public var ldAlpha: Float?
    /// WPO: each pair's loss weighted by both completions' length-normalised probability under the policy.
    public var useWeighting = false
    public var fDivergence: FDivergence = .reverseKL
    public var fAlphaDivergenceCoefficient: Float = 0.5

    public init() {}

    /// TRL's checks, with the field named.
    public func validate(file: String? = nil) throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalidRecipe(field: field, reason: reason, file: file) }
        }
        try check(beta > 0, "beta", "must be positive, got \(beta)")
        try check(!lossTypes.isEmpty, "loss_type", "give at least one of \(DPOLossType.allowed)")
        if let lossWeights {
            try check(lossWeights.count == lossTypes.count, "loss_weights",
                      "must have one weight per loss type: \(lossWeights.count) weights for \(lossTypes.count) loss types")
        }
        let refused = lossTypes.filter { !$0.allowsFDivergence }
        try check(fDivergence == .reverseKL || refused.isEmpty, "f_divergence_type",
                  "\(fDivergence.rawValue) applies only to sigmoid, sigmoid_norm, hinge, ipo, exo_pair, robust, discopop and sft, not \(refused.map(\.rawValue).joined(separator: ", "))")
        try check(!lossTypes.contains(.exoPair) || labelSmoothing > 0, "label_smoothing",
                  "must be greater than 0 for exo_pair (the EXO paper suggests 1e-3)")
        try check(!lossTypes.contains(.robust) || (labelSmoothing >= 0 && labelSmoothing < 0.5), "label_smoothing",
                  "must be in [0, 0.5) for robust, got \(labelSmoothing)")
        try check(labelSmoothing >= 0 && labelSmoothing < 1, "label_smoothing", "must be in [0, 1), got \(labelSmoothing)")
        try check(!useWeighting || !lossTypes.contains(where: { $0 == .aot || $0 == .aotUnpaired }), "use_weighting",
                  "WPO weighting cannot be combined with aot or aot_unpaired (they sort pairs)")
        if let ldAlpha { try check(ldAlpha >= 0 && ldAlpha <= 1, "ld_alpha", "must be in [0, 1], got \(ldAlpha)") }
        try check(discopopTau > 0, "discopop_tau", "must be positive, got \(discopopTau)")
    }
}

/// What the preference losses are computed from, for P pairs.
public struct PreferenceLogProbs {
    /// Σ log p of each completion's tokens under the policy (LD-weighted with ld_alpha): [P].
    public var chosen: Tensor
    public var rejected: Tensor
    /// The same under the reference (no gradient): [P].
    public var referenceChosen: Tensor
    public var referenceRejected: Tensor
    /// Completion token counts: [P] float.
    public var chosenTokens: Tensor
    public var rejectedTokens: Tensor
    /// Mean −log p over all chosen completion tokens of the batch (the `sft` loss): a scalar.
    public var chosenNLL: Tensor
    /// WPO's per-pair weights (no gradient): [P], when weighting.
    public var pairWeights: Tensor?

    public init(
        chosen: Tensor, rejected: Tensor, referenceChosen: Tensor, referenceRejected: Tensor, chosenTokens: Tensor,
        rejectedTokens: Tensor, chosenNLL: Tensor, pairWeights: Tensor? = nil
    ) {
        self.chosen = chosen
        self.rejected = rejected
        self.referenceChosen = referenceChosen
        self.referenceRejected = referenceRejected
        self.chosenTokens = chosenTokens
        self.rejectedTokens = rejectedTokens
        self.chosenNLL = chosenNLL
        self.pairWeights = pairWeights
    }
}

/// TRL 1.16's DPO loss arithmetic over a batch of pairs.
public enum DPOLoss {
    static func logSigmoid(_ x: Tensor) -> Tensor { -Kernels.softplus(-x) }

    /// f′(e^u) of each log-ratio u.
    static func scores(_ logRatios: Tensor, _ settings: DPOLossSettings) -> Tensor {
        switch settings.fDivergence {
        case .reverseKL:
            return logRatios
        case .forwardKL:
            return 1 - (-logRatios).exp()
        case .jsDivergence:
            return Foundation.log(2.0) + logSigmoid(logRatios)
        case .alphaDivergence:
            let alpha = Double(settings.fAlphaDivergenceCoefficient)
            if Swift.abs(alpha - 1) < 1e-6 { return logRatios }
            // Clamped so exp stays finite, as TRL does for float32.
            return ((logRatios * (alpha - 1)).clipped(max: 80).exp() - 1) * (1 / (alpha - 1))
        }
    }

    /// Per-pair loss of one loss type: [P] (the `sft` loss repeated per pair).
    public static func perPair(_ type: DPOLossType, _ x: PreferenceLogProbs, _ settings: DPOLossSettings) -> Tensor {
        let beta = Double(settings.beta)
        let smoothing = Double(settings.labelSmoothing)
        let chosenRatios = x.chosen - x.referenceChosen
        let rejectedRatios = x.rejected - x.referenceRejected
        let chosenScores = scores(chosenRatios, settings)
        let rejectedScores = scores(rejectedRatios, settings)
        let delta = chosenScores - rejectedScores
        switch type {
        case .sigmoid:
            // label_smoothing (cDPO) is folded into robust/aot in TRL 1.16; sigmoid ignores it.
            return -logSigmoid(delta * beta)
        case .hinge:
            return maximum(1 - delta * beta, Tensor.zeros(like: delta))
        case .ipo:
            let averaged = chosenScores / maximum(x.chosenTokens, Tensor(Float(1)))
                - rejectedScores / maximum(x.rejectedTokens, Tensor(Float(1)))
            return (averaged - 1 / (2 * beta)).square()
        case .exoPair:
            let z = delta * beta
            let logPW = Foundation.log1p(-smoothing), logPL = Foundation.log(smoothing)
            return z.sigmoid() * (logSigmoid(z) - logPW) + (-z).sigmoid() * (logSigmoid(-z) - logPL)
        case .ncaPair:
            let chosen = chosenRatios * beta, rejected = rejectedRatios * beta
            return -logSigmoid(chosen) - 0.5 * logSigmoid(-chosen) - 0.5 * logSigmoid(-rejected)
        case .robust:
            let clean = -(1 - smoothing) * logSigmoid(delta * beta)
            let flipped = -smoothing * logSigmoid(-delta * beta)
            return (clean - flipped) / (1 - 2 * smoothing)
        case .bcoPair:
            return -logSigmoid(chosenRatios * beta) - logSigmoid(-(rejectedRatios * beta))
        case .sppoHard:
            return (chosenRatios - 0.5 / beta).square() + (rejectedRatios + 0.5 / beta).square()
        case .aot:
            let sorted = sortedValues(x.chosen - x.rejected) - sortedValues(x.referenceChosen - x.referenceRejected)
            return -logSigmoid(sorted * beta) * (1 - smoothing) - logSigmoid(-sorted * beta) * smoothing
        case .aotUnpaired:
            let sorted = sortedValues(chosenRatios) - sortedValues(rejectedRatios)
            return -logSigmoid(sorted * beta) * (1 - smoothing) - logSigmoid(-sorted * beta) * smoothing
        case .apoZero:
            return (1 - (chosenRatios * beta).sigmoid()) + (rejectedRatios * beta).sigmoid()
        case .apoDown:
            return (chosenRatios * beta).sigmoid() + (1 - ((chosenRatios - rejectedRatios) * beta).sigmoid())
        case .discopop:
            let logits = delta * beta
            let modulation = (logits / Double(settings.discopopTau)).sigmoid()
            return -logSigmoid(logits) * (1 - modulation) + (-logits).exp() * modulation
        case .sft:
            return x.chosenNLL * Tensor.ones(like: x.chosen)
        case .sigmoidNorm:
            let averaged = chosenScores / maximum(x.chosenTokens, Tensor(Float(1)))
                - rejectedScores / maximum(x.rejectedTokens, Tensor(Float(1)))
            return -logSigmoid(averaged * beta)
        }
    }

    /// Σ over loss types of weight · mean over pairs (of the WPO-weighted per-pair loss).
    public static func loss(_ x: PreferenceLogProbs, _ settings: DPOLossSettings) -> Tensor {
        var total = Tensor(Float(0))
        for (index, type) in settings.lossTypes.enumerated() {
            var perPair = perPair(type, x, settings)
            if let weights = x.pairWeights { perPair = perPair * weights }
            total = total + perPair.mean() * Double(settings.lossWeights?[index] ?? 1)
        }
        return total
    }

    /// A differentiable sort along the only axis: the order is a constant, the values gathered.
    static func sortedValues(_ x: Tensor) -> Tensor {
        x.take(x.stoppedGradient().argSort(axis: 0), axis: 0)
    }
}

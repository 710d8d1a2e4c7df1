import Foundation
import TemperData
import TemperNN

/// Group relative policy optimisation's recipe: the shared core plus TRL 1.16's GRPO fields (same
/// names and defaults, docs/grpo-trl-arithmetic.md §10) and Temper's generation settings.
/// `batch_size` counts completions per micro-batch, as TRL's `per_device_train_batch_size` does.
@dynamicMemberLookup
public struct GRPORecipe: MethodRecipe, Equatable {
    public var core = TrainingRecipe()
    /// Reward functions by name: math, format, length, or `cmd:PROGRAM ARGS` (see ``RewardSpec``).
    public var rewards: [String] = []
    public var rewardWeights: [Double]?
    /// Seconds an external reward command may take per batch.
    public var rewardTimeout: Double = 60
    public var numGenerations = 8
    public var maxPromptLength: Int?
    public var maxCompletionLength = 256
    public var temperature: Float = 1
    public var topP: Float = 1
    public var topK = 0
    public var minP: Float = 0
    public var repetitionPenalty: Float = 1
    /// Micro-batches per generation batch; nil: `grad_accum` (one generation per optimizer step).
    public var stepsPerGeneration: Int?
    /// μ: optimizer passes over each generation batch.
    public var numIterations = 1
    public var beta: Float = 0
    public var lossType: GRPOLossType = .dapo
    public var epsilon: Float = 0.2
    public var epsilonHigh: Float?
    public var delta: Float?
    public var importanceSamplingLevel: ImportanceSamplingLevel = .token
    public var scaleRewards: RewardScaling = .group
    public var multiObjectiveAggregation: RewardAggregation = .sumThenNormalize
    public var maskTruncatedCompletions = false
    public var topEntropyQuantile: Float = 1
    public var useBiasCorrectionKL = true
    public var offPolicyMaskThreshold: Float?
    public var entropyCoef: Float = 0
    /// Memory for the rollouts' KV cache, in MB.
    public var kvCacheMB = 512
    /// With full fine-tuning and beta > 0, how the frozen reference copy is stored.
    public var referenceDType: FrozenDType = .float32
    /// The dataset column holding the prompt.
    public var promptColumn = "prompt"
    /// Off: every completion runs to `max_completion_length` (benchmarks compare equal work so).
    public var stopAtEndOfSequence = true

    public init() {
        core.learningRate = 1e-6
        core.batchSize = 8
        // TRL's default too: a generation batch's rows are long (prompt + completion), and
        // recomputing each block in the backward keeps the rollouts' and training's memory in one budget.
        core.gradientCheckpointing = true
    }

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<TrainingRecipe, T>) -> T {
        get { core[keyPath: keyPath] }
        set { core[keyPath: keyPath] = newValue }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rewards, temperature, beta, epsilon, delta
        case rewardWeights = "reward_weights", rewardTimeout = "reward_timeout", numGenerations = "num_generations"
        case maxPromptLength = "max_prompt_length", maxCompletionLength = "max_completion_length"
        case topP = "top_p", topK = "top_k", minP = "min_p", repetitionPenalty = "repetition_penalty"
        case stepsPerGeneration = "steps_per_generation", numIterations = "num_iterations", lossType = "loss_type"
        case epsilonHigh = "epsilon_high", importanceSamplingLevel = "importance_sampling_level"
        case scaleRewards = "scale_rewards", multiObjectiveAggregation = "multi_objective_aggregation"
        case maskTruncatedCompletions = "mask_truncated_completions", topEntropyQuantile = "top_entropy_quantile"
        case useBiasCorrectionKL = "use_bias_correction_kl", offPolicyMaskThreshold = "off_policy_mask_threshold"
        case entropyCoef = "entropy_coef", kvCacheMB = "kv_cache_mb", referenceDType = "reference_dtype"
        case promptColumn = "prompt_column", stopAtEndOfSequence = "stop_at_eos"
    }

    public static var methodFieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        self.init()
        let defaults = self
        core = try TrainingRecipe(from: decoder)
        let top = try decoder.container(keyedBy: TrainingRecipe.CodingKeys.self)
        if !top.contains(.learningRate) { core.learningRate = defaults.core.learningRate }
        if !top.contains(.batchSize) { core.batchSize = defaults.core.batchSize }
        if !top.contains(.gradientCheckpointing) { core.gradientCheckpointing = defaults.core.gradientCheckpointing }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // A list of names or one comma-separated string.
        if let names = try? c.decode(String.self, forKey: .rewards) {
            rewards = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        } else {
            rewards = try c.decodeIfPresent([String].self, forKey: .rewards) ?? rewards
        }
        rewardWeights = try c.decodeIfPresent([Double].self, forKey: .rewardWeights)
        rewardTimeout = try c.decodeIfPresent(Double.self, forKey: .rewardTimeout) ?? rewardTimeout
        numGenerations = try c.decodeIfPresent(Int.self, forKey: .numGenerations) ?? numGenerations
        maxPromptLength = try c.decodeIfPresent(Int.self, forKey: .maxPromptLength)
        maxCompletionLength = try c.decodeIfPresent(Int.self, forKey: .maxCompletionLength) ?? maxCompletionLength
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? temperature
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? topP
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? topK
        minP = try c.decodeIfPresent(Float.self, forKey: .minP) ?? minP
        repetitionPenalty = try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty) ?? repetitionPenalty
        stepsPerGeneration = try c.decodeIfPresent(Int.self, forKey: .stepsPerGeneration)
        numIterations = try c.decodeIfPresent(Int.self, forKey: .numIterations) ?? numIterations
        beta = try c.decodeIfPresent(Float.self, forKey: .beta) ?? beta
        lossType = try c.decodeChoice(.lossType, lossType)
        epsilon = try c.decodeIfPresent(Float.self, forKey: .epsilon) ?? epsilon
        epsilonHigh = try c.decodeIfPresent(Float.self, forKey: .epsilonHigh)
        delta = try c.decodeIfPresent(Float.self, forKey: .delta)
        importanceSamplingLevel = try c.decodeChoice(.importanceSamplingLevel, importanceSamplingLevel)
        // TRL also takes booleans: true is "group", false "none".
        if let flag = try? c.decode(Bool.self, forKey: .scaleRewards) {
            scaleRewards = flag ? .group : .none
        } else {
            scaleRewards = try c.decodeChoice(.scaleRewards, scaleRewards)
        }
        multiObjectiveAggregation = try c.decodeChoice(.multiObjectiveAggregation, multiObjectiveAggregation)
        maskTruncatedCompletions = try c.decodeIfPresent(Bool.self, forKey: .maskTruncatedCompletions) ?? maskTruncatedCompletions
        topEntropyQuantile = try c.decodeIfPresent(Float.self, forKey: .topEntropyQuantile) ?? topEntropyQuantile
        useBiasCorrectionKL = try c.decodeIfPresent(Bool.self, forKey: .useBiasCorrectionKL) ?? useBiasCorrectionKL
        offPolicyMaskThreshold = try c.decodeIfPresent(Float.self, forKey: .offPolicyMaskThreshold)
        entropyCoef = try c.decodeIfPresent(Float.self, forKey: .entropyCoef) ?? entropyCoef
        kvCacheMB = try c.decodeIfPresent(Int.self, forKey: .kvCacheMB) ?? kvCacheMB
        referenceDType = try c.decodeChoice(.referenceDType, referenceDType)
        promptColumn = try c.decodeIfPresent(String.self, forKey: .promptColumn) ?? promptColumn
        stopAtEndOfSequence = try c.decodeIfPresent(Bool.self, forKey: .stopAtEndOfSequence) ?? stopAtEndOfSequence
    }

    public func encode(to encoder: any Encoder) throws {
        try core.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rewards, forKey: .rewards)
        try c.encodeIfPresent(rewardWeights, forKey: .rewardWeights)
        try c.encode(rewardTimeout, forKey: .rewardTimeout)
        try c.encode(numGenerations, forKey: .numGenerations)
        try c.encodeIfPresent(maxPromptLength, forKey: .maxPromptLength)
        try c.encode(maxCompletionLength, forKey: .maxCompletionLength)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topP, forKey: .topP)
        try c.encode(topK, forKey: .topK)
        try c.encode(minP, forKey: .minP)
        try c.encode(repetitionPenalty, forKey: .repetitionPenalty)
        try c.encodeIfPresent(stepsPerGeneration, forKey: .stepsPerGeneration)
        try c.encode(numIterations, forKey: .numIterations)
        try c.encode(beta, forKey: .beta)
        try c.encode(lossType, forKey: .lossType)
        try c.encode(epsilon, forKey: .epsilon)
        try c.encodeIfPresent(epsilonHigh, forKey: .epsilonHigh)
        try c.encodeIfPresent(delta, forKey: .delta)
        try c.encode(importanceSamplingLevel, forKey: .importanceSamplingLevel)
        try c.encode(scaleRewards, forKey: .scaleRewards)
        try c.encode(multiObjectiveAggregation, forKey: .multiObjectiveAggregation)
        try c.encode(maskTruncatedCompletions, forKey: .maskTruncatedCompletions)
        try c.encode(topEntropyQuantile, forKey: .topEntropyQuantile)
        try c.encode(useBiasCorrectionKL, forKey: .useBiasCorrectionKL)
        try c.encodeIfPresent(offPolicyMaskThreshold, forKey: .offPolicyMaskThreshold)
        try c.encode(entropyCoef, forKey: .entropyCoef)
        try c.encode(kvCacheMB, forKey: .kvCacheMB)
        try c.encode(referenceDType, forKey: .referenceDType)
        try c.encode(promptColumn, forKey: .promptColumn)
        try c.encode(stopAtEndOfSequence, forKey: .stopAtEndOfSequence)
    }

    /// Micro-batches per generation batch.
    public var resolvedStepsPerGeneration: Int { stepsPerGeneration ?? core.gradAccum }
    /// Prompts sampled per generation batch (each gives `num_generations` completions).
    public var promptsPerGeneration: Int { core.batchSize * resolvedStepsPerGeneration / numGenerations }

    public var lossSettings: GRPOLossSettings {
        var s = GRPOLossSettings()
        s.lossType = lossType
        s.importanceSamplingLevel = importanceSamplingLevel
        s.beta = beta
        s.epsilon = epsilon
        s.epsilonHigh = epsilonHigh
        s.delta = delta
        s.useBiasCorrectionKL = useBiasCorrectionKL
        s.topEntropyQuantile = topEntropyQuantile
        s.offPolicyMaskThreshold = offPolicyMaskThreshold
        s.entropyCoefficient = entropyCoef
        s.temperature = temperature
        s.maxCompletionLength = maxCompletionLength
        return s
    }

    public func validate() throws {
        try core.validate()
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalidRecipe(field: field, reason: reason, file: core.sourceFile) }
        }
        try check(numGenerations >= 2, "num_generations", "must be at least 2 (a group needs a spread), got \(numGenerations)")
        let generation = core.batchSize * resolvedStepsPerGeneration
        try check(
            generation % numGenerations == 0, "num_generations",
            "must divide batch_size × steps_per_generation = \(generation) (completions per generation batch), got \(numGenerations)")
        try check(maxCompletionLength > 0, "max_completion_length", "must be positive")
        try check((maxPromptLength ?? 1) > 0, "max_prompt_length", "must be positive")
        try check(temperature > 0, "temperature", "must be positive (GRPO samples), got \(temperature)")
        try check(topP > 0 && topP <= 1, "top_p", "must be in (0, 1], got \(topP)")
        try check(numIterations >= 1, "num_iterations", "must be at least 1")
        try check((stepsPerGeneration ?? 1) >= 1, "steps_per_generation", "must be at least 1")
        try check(beta >= 0, "beta", "must be at least 0")
        try check(topEntropyQuantile > 0 && topEntropyQuantile <= 1, "top_entropy_quantile", "must be in (0, 1]")
        try check(rewardTimeout > 0, "reward_timeout", "must be positive")
        try check(kvCacheMB > 0, "kv_cache_mb", "must be positive")
        try check(referenceDType == .float32 || core.method == .full, "reference_dtype", "applies to method full only")
    }
}

extension GRPOLossType: RecipeChoice {}
extension ImportanceSamplingLevel: RecipeChoice {}
extension RewardScaling: RecipeChoice {}
extension RewardAggregation: RecipeChoice {}

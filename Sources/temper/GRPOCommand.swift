import ArgumentParser
import Foundation
import TemperCore
import TemperData
import TemperTraining

struct GRPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "Group relative policy optimisation with verifiable rewards (every TRL 1.16 loss): full, LoRA or QLoRA.",
        discussion: """
            Data: JSON/JSONL prompts in TRL's prompt-only format (`prompt` as a string or a list of \
            messages) plus any fields the rewards read (e.g. `answer`). For each prompt the run samples \
            --num-generations completions on Temper's inference engine in the same process, scores them \
            with the rewards (math: the last \\boxed{} or number equals `answer`; format: a regex, by \
            default <think>…</think><answer>…</answer>; length: DAPO's soft overlong penalty; \
            cmd:PROGRAM ARGS: an external program reading one JSON line per completion on stdin and \
            writing one reward per line), and trains on the group-normalised rewards. The loss starts \
            near 0 (on-policy ratios are 1 and advantages average to 0 in each group): watch reward, \
            reward_std, frac_reward_zero_std and the held-out rewards instead. The output folder receives a \
            PEFT adapter (lora/qlora) or a model folder (full), recipe.json, metrics.jsonl (TRL's metric \
            names) and checkpoints/.
            """)

    @OptionGroup var training: TrainingOptions
    @Option(help: "Comma-separated rewards: math, format, length, cmd:PROGRAM ARGS.") var reward: String?
    @Option(help: "Comma-separated weights, one per reward.") var rewardWeights: String?
    @Option(help: "Seconds an external reward command may take per batch.") var rewardTimeout: Double?
    @Option(help: "Completions per prompt (G).") var numGenerations: Int?
    @Option(help: "New tokens per completion at most.") var maxCompletionLength: Int?
    @Option(help: "Prompt tokens kept (its end).") var maxPromptLength: Int?
    @Option(help: "Sampling temperature (also divides the training logits).") var temperature: Float?
    @Option(help: "Nucleus sampling.") var topP: Float?
    @Option(help: "Top-k sampling (0: off).") var topK: Int?
    @Option(help: "Min-p sampling.") var minP: Float?
    @Option(help: "Repetition penalty of the sampler.") var repetitionPenalty: Float?
    @Option(help: "Micro-batches per generation batch (default: --grad-accum).") var stepsPerGeneration: Int?
    @Option(help: "Optimizer passes over each generation batch (mu).") var numIterations: Int?
    @Option(help: "KL coefficient (0: no reference model).") var beta: Float?
    @Option(help: "Loss: \(GRPOLossType.allowed).") var loss: String?
    @Option(help: "Lower clip (and upper, unless --epsilon-high).") var epsilon: Float?
    @Option(help: "Upper clip (cispo: the cap).") var epsilonHigh: Float?
    @Option(help: "Two-sided clipping: cap on the ratio.") var delta: Float?
    @Option(help: "token or sequence (GSPO).") var importanceSamplingLevel: String?
    @Option(help: "group, batch or none.") var scaleRewards: String?
    @Option(help: "sum_then_normalize or normalize_then_sum.") var multiObjectiveAggregation: String?
    @Flag(help: "Drop completions that hit the length limit from the loss.") var maskTruncatedCompletions = false
    @Option(help: "Fraction of tokens (highest entropy) that carry the policy loss.") var topEntropyQuantile: Float?
    @Option(help: "Entropy bonus coefficient.") var entropyCoef: Float?
    @Option(help: "Memory for the rollouts' KV cache, in MB.") var kvCacheMb: Int?

    func resolvedRecipe() throws -> GRPORecipe {
        try training.resolve(GRPORecipe.self) { r in
            if let reward { r.rewards = RewardSpec.split(reward) }
            if let rewardWeights {
                r.rewardWeights = try rewardWeights.split(separator: ",").map {
                    guard let value = Double($0.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("--reward-weights: '\($0)' is not a number")
                    }
                    return value
                }
            }
            if let rewardTimeout { r.rewardTimeout = rewardTimeout }
            if let numGenerations { r.numGenerations = numGenerations }
            if let maxCompletionLength { r.maxCompletionLength = maxCompletionLength }
            if let maxPromptLength { r.maxPromptLength = maxPromptLength }
            if let temperature { r.temperature = temperature }
            if let topP { r.topP = topP }
            if let topK { r.topK = topK }
            if let minP { r.minP = minP }
            if let repetitionPenalty { r.repetitionPenalty = repetitionPenalty }
            if let stepsPerGeneration { r.stepsPerGeneration = stepsPerGeneration }
            if let numIterations { r.numIterations = numIterations }
            if let beta { r.beta = beta }
            if let loss { r.lossType = try .parse(loss, flag: "--loss") }
            if let epsilon { r.epsilon = epsilon }
            if let epsilonHigh { r.epsilonHigh = epsilonHigh }
            if let delta { r.delta = delta }
            if let importanceSamplingLevel { r.importanceSamplingLevel = try .parse(importanceSamplingLevel, flag: "--importance-sampling-level") }
            if let scaleRewards { r.scaleRewards = try .parse(scaleRewards, flag: "--scale-rewards") }
            if let multiObjectiveAggregation {
                r.multiObjectiveAggregation = try .parse(multiObjectiveAggregation, flag: "--multi-objective-aggregation")
            }
            if maskTruncatedCompletions { r.maskTruncatedCompletions = true }
            if let topEntropyQuantile { r.topEntropyQuantile = topEntropyQuantile }
            if let entropyCoef { r.entropyCoef = entropyCoef }
            if let kvCacheMb { r.kvCacheMB = kvCacheMb }
        }
    }

    func run() throws {
        let recipe = try resolvedRecipe()
        let cancellation = TrainingProcess.prepare(gradientCheckpointing: recipe.gradientCheckpointing)
        let summary = try GRPOTrainer(recipe: recipe, log: log).run(resume: training.resume, cancellation: cancellation)
        try TrainingProcess.finish(
            summary, summary.finalEval["eval_reward"].map { String(format: ", held-out reward %.3f", $0) } ?? "")
    }
}

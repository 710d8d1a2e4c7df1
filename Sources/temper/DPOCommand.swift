import ArgumentParser
import Foundation
import TemperCore
import TemperData
import TemperTraining

struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Direct preference optimisation (every TRL 1.16 loss, MPO combinations): full, LoRA or QLoRA.",
        discussion: """
            Data: JSON/JSONL preference pairs in TRL's formats (prompt + chosen + rejected as strings or \
            message lists, or chosen/rejected whole conversations sharing their prompt). The reference is \
            the starting model: with LoRA/QLoRA the base with adapters switched off, or with --adapter the \
            model with that adapter frozen as loaded; with full fine-tuning a frozen copy. The output \
            folder receives a PEFT adapter (lora/qlora) or a model folder (full), recipe.json, \
            metrics.jsonl (TRL's metric names) and checkpoints/.
            """)

    @OptionGroup var training: TrainingOptions
    @Option(help: "Strength of the KL regularisation (TRL's beta).") var beta: Float?
    @Option(help: "Comma-separated loss types: \(DPOLossType.allowed).") var loss: String?
    @Option(help: "Comma-separated weights, one per loss type (MPO).") var lossWeights: String?
    @Option(help: "Label smoothing (robust, exo_pair, aot).") var labelSmoothing: Float?
    @Option(help: "DiscoPOP's temperature.") var discopopTau: Float?
    @Option(help: "LD-DPO: weight of completion tokens past the shorter completion of a pair.") var ldAlpha: Float?
    @Flag(help: "WPO: weight each pair by its completions' probability under the policy.") var useWeighting = false
    @Option(help: "reverse_kl, forward_kl, js_divergence or alpha_divergence.") var fDivergenceType: String?
    @Option(help: "Prompt tokens kept (its end).") var maxPromptLength: Int?
    @Option(help: "Completion tokens kept (their start).") var maxCompletionLength: Int?
    @Option(help: "How --max-length cuts a row: keep_start or keep_end.") var truncationMode: String?
    @Flag(help: "Compute the reference's log-probs in one pass first, cached beside the output.") var precomputeRefLogps = false
    @Option(help: "Full fine-tuning: storage of the frozen reference copy, float32 or bfloat16.") var referenceDtype: String?

    func resolvedRecipe() throws -> DPORecipe {
        try training.resolve(DPORecipe.self) { r in
            if let beta { r.beta = beta }
            if let loss {
                r.lossType = try loss.split(separator: ",").map {
                    try DPOLossType.parse($0.trimmingCharacters(in: .whitespaces), flag: "--loss")
                }
            }
            if let lossWeights {
                r.lossWeights = try lossWeights.split(separator: ",").map {
                    guard let value = Float($0.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("--loss-weights: '\($0)' is not a number")
                    }
                    return value
                }
            }
            if let labelSmoothing { r.labelSmoothing = labelSmoothing }
            if let discopopTau { r.discopopTau = discopopTau }
            if let ldAlpha { r.ldAlpha = ldAlpha }
            if useWeighting { r.useWeighting = true }
            if let fDivergenceType { r.fDivergenceType = try .parse(fDivergenceType, flag: "--f-divergence-type") }
            if let maxPromptLength { r.maxPromptLength = maxPromptLength }
            if let maxCompletionLength { r.maxCompletionLength = maxCompletionLength }
            if let truncationMode { r.truncationMode = try .parse(truncationMode, flag: "--truncation-mode") }
            if precomputeRefLogps { r.precomputeRefLogps = true }
            if let referenceDtype { r.referenceDType = try .parse(referenceDtype, flag: "--reference-dtype") }
        }
    }

    func run() throws {
        let recipe = try resolvedRecipe()
        let cancellation = TrainingProcess.prepare(gradientCheckpointing: recipe.gradientCheckpointing)
        let summary = try DPOTrainer(recipe: recipe, log: log).run(resume: training.resume, cancellation: cancellation)
        try TrainingProcess.finish(
            summary, summary.finalEval["eval_rewards/accuracies"].map { String(format: ", eval reward accuracy %.3f", $0) } ?? "")
    }
}

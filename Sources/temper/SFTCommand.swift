import ArgumentParser
import Foundation
import TemperCore
import TemperModels
import TemperPEFT
import TemperTraining

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning: full, LoRA or QLoRA, from a recipe file and/or flags.",
        discussion: """
            Flags override the recipe's fields. The output folder receives the adapter (LoRA: \
            adapter_config.json + adapter_model.safetensors, PEFT's format) or the model (full), \
            plus recipe.json, metrics.jsonl and checkpoints/.
            """)

    @OptionGroup var training: TrainingOptions
    @Flag(help: "Do not pack several samples into one row.") var noPacking = false
    @Flag(help: "Also train on prompt tokens.") var trainOnPrompt = false

    func resolvedRecipe() throws -> SFTRecipe {
        try training.resolve(SFTRecipe.self) { r in
            if noPacking { r.packing = false }
            if trainOnPrompt { r.trainOnPrompt = true }
        }
    }

    func run() throws {
        let recipe = try resolvedRecipe()
        let cancellation = TrainingProcess.prepare(gradientCheckpointing: recipe.gradientCheckpointing)
        try TrainingProcess.finish(
            try SFTTrainer(recipe: recipe, log: log).run(resume: training.resume, cancellation: cancellation))
    }
}

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA adapter (PEFT format) into its base model and write a full model folder.")

    @Option(help: "The base Hugging Face model folder.") var model: String
    @Option(help: "The adapter folder (adapter_config.json + adapter_model.safetensors).") var adapter: String
    @Option(help: "The output model folder.") var out: String
    @Option(help: "Weights dtype: the base's (default), float32, bfloat16 or float16.") var dtype: String?

    func run() throws {
        let base = URL(fileURLWithPath: model), target = URL(fileURLWithPath: out)
        let network = try CausalLanguageModel.load(directory: base)
        _ = try PEFTAdapter.load(into: network, from: URL(fileURLWithPath: adapter))
        network.mergeLoRA()
        let name = dtype ?? network.configuration.storageDType ?? "float32"
        guard let storage = DType(huggingFaceName: name) else {
            throw ValidationError("--dtype must be float32, bfloat16 or float16, got '\(name)'")
        }
        try network.save(
            to: target, dtype: storage,
            configJSON: FileManager.default.contents(atPath: base.appendingPathComponent("config.json").path))
        try copyTokenizerFiles(from: base, to: target)
        log("wrote \(target.path)")
    }
}

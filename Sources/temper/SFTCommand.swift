import ArgumentParser
import Foundation
import TemperCore
import TemperModels
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

    @Option(help: "A YAML or JSON recipe.") var recipe: String?
    @Option(help: "A Hugging Face model folder.") var model: String?
    @Option(parsing: .singleValue, help: "Training data, JSON or JSONL (repeatable).") var data: [String] = []
    @Option(parsing: .singleValue, help: "Evaluation data (repeatable).") var evalData: [String] = []
    @Option(help: "full, lora or qlora.") var method: String?
    @Option(help: "LoRA rank.") var loraRank: Int?
    @Option(help: "LoRA alpha.") var loraAlpha: Float?
    @Option(help: "LoRA dropout.") var loraDropout: Float?
    @Option(help: "Comma-separated projections (q_proj,v_proj,…) or all-linear.") var targetModules: String?
    @Flag(help: "Rank-stabilized LoRA scaling (alpha/√r).") var rsLora = false
    @Option(help: "QLoRA base quantization: 4 (NF4) or 8.") var quantBits: Int?
    @Flag(help: "QLoRA: also quantize the per-block scales (double quantization).") var doubleQuantization = false
    @Option(help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "Rows per micro-batch.") var batchSize: Int?
    @Option(help: "Micro-batches per optimizer step.") var gradAccum: Int?
    @Option(help: "Optimizer steps.") var maxSteps: Int?
    @Option(help: "Epochs (when --max-steps is not given).") var epochs: Float?
    @Option(help: "Tokens per row.") var maxLength: Int?
    @Option(help: "Seed for initialization, shuffling and dropout.") var seed: UInt64?
    @Option(help: "constant, linear or cosine.") var schedule: String?
    @Option(help: "Warmup steps.") var warmupSteps: Int?
    @Option(help: "Evaluate every N steps (0 = only at the end).") var evalEvery: Int?
    @Option(help: "Fraction of the data held out for evaluation.") var evalFraction: Float?
    @Option(help: "Checkpoint every N steps (0 = only at the end).") var saveEvery: Int?
    @Flag(help: "Do not pack several samples into one row.") var noPacking = false
    @Flag(help: "Also train on prompt tokens.") var trainOnPrompt = false
    @Flag(help: "Skip invalid records (counted) instead of stopping.") var skipInvalid = false
    @Option(help: "Storage of frozen projection weights with LoRA: float32 or bfloat16.") var frozenDtype: String?
    @Flag(help: "Recompute each block's activations in the backward pass (less memory, more compute).") var gradientCheckpointing = false
    @Option(help: "The output folder.") var output: String?
    @Flag(help: "Continue from the newest checkpoint in the output folder.") var resume = false

    func resolvedRecipe() throws -> Recipe {
        var r = try recipe.map { try Recipe.load(URL(fileURLWithPath: $0)) } ?? Recipe()
        if let model { r.model = model }
        if !data.isEmpty { r.data = data }
        if !evalData.isEmpty { r.evalData = evalData }
        if let method {
            guard let value = Recipe.Method(rawValue: method) else {
                throw ValidationError("--method must be full, lora or qlora, got '\(method)'")
            }
            r.method = value
        }
        if let loraRank { r.lora.rank = loraRank }
        if let loraAlpha { r.lora.alpha = loraAlpha }
        if let loraDropout { r.lora.dropout = loraDropout }
        if let targetModules { r.lora.targetModules = targetModules.split(separator: ",").map(String.init) }
        if rsLora { r.lora.rankStabilized = true }
        if let quantBits { r.quantBits = quantBits }
        if doubleQuantization { r.doubleQuantization = true }
        if let learningRate { r.learningRate = learningRate }
        if let batchSize { r.batchSize = batchSize }
        if let gradAccum { r.gradAccum = gradAccum }
        if let maxSteps { r.maxSteps = maxSteps; r.epochs = nil }
        if let epochs, maxSteps == nil { r.epochs = epochs; r.maxSteps = nil }
        if let maxLength { r.maxLength = maxLength }
        if let seed { r.seed = seed }
        if let schedule { r.schedule = schedule }
        if let warmupSteps { r.warmupSteps = warmupSteps }
        if let evalEvery { r.evalEvery = evalEvery }
        if let evalFraction { r.evalFraction = evalFraction }
        if let saveEvery { r.saveEvery = saveEvery }
        if noPacking { r.packing = false }
        if trainOnPrompt { r.trainOnPrompt = true }
        if skipInvalid { r.skipInvalidRecords = true }
        if gradientCheckpointing { r.gradientCheckpointing = true }
        if let frozenDtype { r.frozenDType = frozenDtype }
        if let output { r.output = output }
        return r
    }

    func run() throws {
        let recipe = try resolvedRecipe()
        do {
            try recipe.validate()
        } catch let error as TrainingError {
            throw ValidationError(error.localizedDescription)
        }
        let summary = try SFTTrainer(recipe: recipe, log: log).run(resume: resume)
        log(String(
            format: "done: %d steps in %@, loss %.4f -> %.4f, %.0f tok/s; wrote %@",
            summary.steps, formatDuration(summary.seconds), summary.firstLoss ?? .nan, summary.lastLoss ?? .nan,
            summary.tokensPerSecond, summary.output.path))
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

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
}

import ArgumentParser
import Dispatch
import Foundation
import TemperCore
import TemperTraining

/// The flags every training command shares; each overrides the recipe's field of the same name.
struct TrainingOptions: ParsableArguments {
    @Option(help: "A YAML or JSON recipe.") var recipe: String?
    @Option(help: "A Hugging Face model folder.") var model: String?
    @Option(parsing: .singleValue, help: "Training data, JSON or JSONL (repeatable).") var data: [String] = []
    @Option(parsing: .singleValue, help: "Evaluation data (repeatable).") var evalData: [String] = []
    @Option(help: "full, lora or qlora.") var method: String?
    @Option(help: "A PEFT adapter folder to train further (lora/qlora) instead of fresh adapters.") var adapter: String?
    @Option(help: "LoRA rank.") var loraRank: Int?
    @Option(help: "LoRA alpha.") var loraAlpha: Float?
    @Option(help: "LoRA dropout.") var loraDropout: Float?
    @Option(help: "Comma-separated projections (q_proj,v_proj,…) or all-linear.") var targetModules: String?
    @Flag(help: "Rank-stabilized LoRA scaling (alpha/√r).") var rsLora = false
    @Option(help: "QLoRA base quantization: 4 (NF4) or 8.") var quantBits: Int?
    @Flag(help: "QLoRA: also quantize the per-block scales (double quantization).") var doubleQuantization = false
    @Option(help: "adamw, adamw_8bit (both moments in blockwise 8-bit) or sgd.") var optimizer: String?
    @Option(help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "Weight decay (not on norms and biases).") var weightDecay: Float?
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
    @Flag(help: "Skip invalid records (counted) instead of stopping.") var skipInvalid = false
    @Option(help: "Storage of frozen projection weights with LoRA: float32 or bfloat16.") var frozenDtype: String?
    @Flag(help: "Recompute each block's activations in the backward pass (less memory, more compute).") var gradientCheckpointing = false
    @Option(help: "The output folder.") var output: String?
    @Flag(help: "Continue from the newest checkpoint in the output folder.") var resume = false

    func apply(to r: inout TrainingRecipe) throws {
        if let model { r.model = model }
        if !data.isEmpty { r.data = data }
        if !evalData.isEmpty { r.evalData = evalData }
        if let method { r.method = try .parse(method, flag: "--method") }
        if let adapter { r.adapter = adapter }
        if let loraRank { r.lora.rank = loraRank }
        if let loraAlpha { r.lora.alpha = loraAlpha }
        if let loraDropout { r.lora.dropout = loraDropout }
        if let targetModules { r.lora.targetModules = targetModules.split(separator: ",").map(String.init) }
        if rsLora { r.lora.rankStabilized = true }
        if let quantBits {
            guard quantBits == 4 || quantBits == 8 else { throw ValidationError("--quant-bits must be 4 or 8, got \(quantBits)") }
            r.quantization = quantBits == 4 ? .nf4 : .int8
        }
        if doubleQuantization { r.doubleQuantization = true }
        if let optimizer { r.optimizer = try .parse(optimizer, flag: "--optimizer") }
        if let learningRate { r.learningRate = learningRate }
        if let weightDecay { r.weightDecay = weightDecay }
        if let batchSize { r.batchSize = batchSize }
        if let gradAccum { r.gradAccum = gradAccum }
        if let maxSteps { r.maxSteps = maxSteps; r.epochs = nil }
        if let epochs, maxSteps == nil { r.epochs = epochs; r.maxSteps = nil }
        if let maxLength { r.maxLength = maxLength }
        if let seed { r.seed = seed }
        if let schedule { r.schedule = try .parse(schedule, flag: "--schedule") }
        if let warmupSteps { r.warmupSteps = warmupSteps }
        if let evalEvery { r.evalEvery = evalEvery }
        if let evalFraction { r.evalFraction = evalFraction }
        if let saveEvery { r.saveEvery = saveEvery }
        if skipInvalid { r.skipInvalidRecords = true }
        if gradientCheckpointing { r.gradientCheckpointing = true }
        if let frozenDtype { r.frozenDType = try .parse(frozenDtype, flag: "--frozen-dtype") }
        if let output { r.output = output }
    }

    /// The recipe file (if any) with these flags applied, validated; errors become usage errors.
    func resolve<R: MethodRecipe>(_ type: R.Type, extra: (inout R) throws -> Void = { _ in }) throws -> R {
        do {
            var r = try recipe.map { try R.load(URL(fileURLWithPath: $0)) } ?? R()
            try apply(to: &r.core)
            try extra(&r)
            try r.validate()
            return r
        } catch let error as TrainingError {
            throw ValidationError(error.localizedDescription)
        }
    }
}

/// Process-wide setup for a training run, done by the binary rather than the library: with
/// gradient checkpointing (a run that trades speed for memory) glibc hands freed blocks back
/// instead of keeping them mapped (kept pages fragment into ~10% more resident memory); Ctrl-C
/// or SIGTERM asks the run to checkpoint and stop (a second one ends the process).
enum TrainingProcess {
    static func prepare(gradientCheckpointing: Bool) -> CancellationFlag {
        if gradientCheckpointing { ResidentMemory.returnFreedPagesPromptly() }
        let flag = CancellationFlag()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if flag.isCancelled { exit(130) }
                FileHandle.standardError.write(Data("\nstopping after this step (writing a checkpoint); again to quit now\n".utf8))
                flag.cancel()
            }
            source.resume()
            signalSources.append(source)
        }
        return flag
    }

    /// The run's last line; a cancelled run exits with 130 (its checkpoint is written).
    static func finish(_ summary: TrainingSummary, _ detail: String = "") throws {
        guard !summary.cancelled else { throw ExitCode(130) }
        log(String(
            format: "done: %d steps in %@, loss %.4f -> %.4f, %.0f tok/s%@; wrote %@",
            summary.steps, formatDuration(summary.seconds), summary.firstLoss ?? .nan, summary.lastLoss ?? .nan,
            summary.tokensPerSecond, detail, summary.output.path))
    }

    // Written once at start, before any signal can arrive; kept so the sources stay alive.
    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []
}

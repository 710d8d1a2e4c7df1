import ArgumentParser
import Foundation
import TemperBench
import TemperModels
import TemperPEFT
import TemperTraining
import TemperCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run fixed workloads and report speed.",
        subcommands: [MatmulBench.self, KernelsBench.self, GenerateBench.self, ServeBench.self, QuantizationBench.self, SFTBench.self, DPOBench.self, GRPOBench.self, AllReduceBench.self]
    )
}

struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "f32 GFLOPS of an N×N×N matrix product (median of the timed runs after warm-up).")

    @Option(help: "Matrix size N.") var size: Int = 2048
    @Option(help: "Timed runs.") var runs: Int = 5
    @Option(help: "Untimed warm-up runs.") var warmup: Int = 2
    @Flag(help: "Print one JSON object on one line.") var json = false

    func validate() throws {
        guard size > 0 else { throw ValidationError("--size must be positive, got \(size)") }
        guard runs > 0 else { throw ValidationError("--runs must be positive, got \(runs)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
    }

    func run() throws {
        let result = MatmulBenchmark(size: size, runs: runs, warmup: warmup).run()
        print(json ? result.jsonLine() : result.summary())
    }
}

struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Fused kernels vs MLX's composition vs PyTorch at SmolLM2-135M and Qwen2.5-0.5B shapes.")

    @Option(help: "Rounds; each alternates Temper, MLX and PyTorch case by case.") var rounds: Int = 3
    @OptionGroup var peer: PeerOptions
    @Option(help: "Only ops whose name contains this.") var only: String?

    func validate() throws {
        guard rounds > 0 else { throw ValidationError("--rounds must be positive, got \(rounds)") }
    }

    func run() throws {
        let root = checkoutRoot
        let script = root.appendingPathComponent("Tools/bench/kernels_peer.py")
        if !peer.noPeer && !FileManager.default.fileExists(atPath: script.path) {
            throw ValidationError("\(script.path) not found: run from the Temper checkout this binary was built from, or pass --no-peer")
        }
        let python = peer.noPeer ? nil : try peer.python ?? Self.makeVenv(root: root)
        var cases = KernelBenchmark.defaultCases()
        if let only { cases = cases.filter { $0.op.contains(only) } }
        let benchmark = KernelBenchmark(
            rounds: rounds, python: python, peerScript: script.path,
            contentionLimit: peer.contentionLimit, cases: cases)
        let rows = try benchmark.run { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        print(KernelBenchmark.table(rows))
        if let json = peer.json { try writeJSON(rows, to: json) }
    }

    static func makeVenv(root: URL) throws -> String {
        let process = Process()
        process.executableURL = root.appendingPathComponent("Tools/bench/setup-venv.sh")
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("Tools/bench/setup-venv.sh failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The converted SmolLM2-135M-Instruct that `make demo` writes, the benchmarks' default model.
let benchmarkModel = checkoutRoot.appendingPathComponent(".deps/models/SmolLM2-135M-Instruct").path

/// The checkout this binary was built from, where the peer scripts live.
let checkoutRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

struct GenerateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and decode tokens/s of a model folder, against PyTorch + transformers.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "Batch sizes, comma separated.") var batches: String = "1,8"
    @Option(help: "Prompt tokens per row.") var promptLength: Int = 128
    @Option(help: "Generated tokens per row.") var newTokens: Int = 64
    @Option(help: "Timed rounds; each runs Temper then PyTorch.") var rounds: Int = 3
    @Option(help: "Temper's weights as int8 or q4 (weight-only, groups of 64), bf16, or f32 (float32 through the fused decode kernel); PyTorch stays float32.") var quantize: String?
    @OptionGroup var peer: PeerOptions

    func validate() throws {
        if let quantize { _ = try inferenceFormat(quantize) }
        guard rounds > 0, promptLength > 0, newTokens > 1 else {
            throw ValidationError("--rounds and --prompt-length must be positive and --new-tokens at least 2")
        }
        guard batchSizes.count > 0 && batchSizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--batches must be positive integers separated by commas, got '\(batches)'")
        }
    }

    var batchSizes: [Int] { batches.split(separator: ",").compactMap { Int($0) } }

    func run() throws {
        let script = checkoutRoot.appendingPathComponent("Tools/bench/generate_peer.py")
        let python = peer.noPeer ? nil : try peer.python ?? KernelsBench.makeVenv(root: checkoutRoot)
        var benchmark = GenerateBenchmark(
            modelDirectory: URL(fileURLWithPath: model), batches: batchSizes, promptLength: promptLength,
            newTokens: newTokens, rounds: rounds, python: python, peerScript: script.path,
            contentionLimit: peer.contentionLimit)
        benchmark.quantize = try quantize.map(inferenceFormat)
        let rows = try benchmark.run { log($0) }
        print(GenerateBenchmark.table(rows))
        if let json = peer.json { try writeJSON(rows, to: json) }
    }
}

struct SFTBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Seconds per fine-tuning step (forward, backward, AdamW) at a fixed shape: Temper, Temper on MLX's default ops, PyTorch + peft.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "lora, full or both (comma separated).") var methods: String = "lora"
    @Option(help: "Rows per step.") var batch: Int = 4
    @Option(help: "Tokens per row (all labelled).") var length: Int = 256
    @Option(help: "LoRA rank (all seven projections, alpha = 2·rank).") var rank: Int = 16
    @Option(help: "Timed rounds.") var rounds: Int = 2
    @Flag(help: "Skip the run on MLX's default ops.") var noMlxDefault = false
    @OptionGroup var peer: PeerOptions
    @Option(help: "Instead of --model, a random-init model of this shape: qwen2.5-0.5b.") var shape: String?
    @Option(help: "Real SFT instead: LoRA on this chat JSONL (loss on completions), against trl's SFTTrainer.") var dataset: String?
    @Option(help: "Optimizer steps of the real SFT run (with --dataset).") var steps: Int = 10
    @Flag(help: "Real SFT: recompute each decoder layer in the backward (trl's default does too).")
    var gradientCheckpointing = false
    @Option(help: "Real SFT: storage of the frozen weights, float32 or bfloat16.") var frozenDtype = "float32"

    func run() throws {
        if let dataset { return try realSFT(dataset: dataset) }
        var modelFolder = URL(fileURLWithPath: model)
        if let shape {
            guard shape == "qwen2.5-0.5b" else { throw ValidationError("--shape must be qwen2.5-0.5b, got '\(shape)'") }
            modelFolder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-random-\(shape)-\(getpid())")
            log("writing a random-init \(shape)-shaped model to \(modelFolder.path)")
            try RandomModel.write(RandomModel.qwen25_05B, to: modelFolder)
        }
        defer { if shape != nil { try? FileManager.default.removeItem(at: modelFolder) } }
        let script = checkoutRoot.appendingPathComponent("Tools/bench/lora_step_peer.py")
        let python = peer.noPeer ? nil : try peer.python ?? KernelsBench.makeVenv(root: checkoutRoot)
        let benchmark = TrainingStepBenchmark(
            modelDirectory: modelFolder, methods: methods.split(separator: ",").map(String.init),
            batch: batch, length: length, rank: rank, rounds: rounds, compareMLXDefault: !noMlxDefault,
            python: python, peerScript: script.path, contentionLimit: peer.contentionLimit)
        let rows = try benchmark.run { log($0) }
        print(TrainingStepBenchmark.table(rows))
        if let json = peer.json { try writeJSON(rows, to: json) }
    }
}

/// Writes benchmark rows as pretty JSON.
func writeJSON(_ rows: some Encodable, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(rows).write(to: URL(fileURLWithPath: path))
}

extension SFTBench {
    /// (b): Temper's trainer (packing, fused kernels) against trl's SFTTrainer defaults, trained
    /// tokens per second over the same number of optimizer steps of batch `batch`.
    func realSFT(dataset: String) throws {
        var recipe = SFTRecipe()
        recipe.model = model
        recipe.data = [dataset]
        recipe.method = .lora
        recipe.lora.rank = rank
        recipe.lora.alpha = Float(2 * rank)
        recipe.lora.dropout = 0.05
        recipe.learningRate = 1e-4
        recipe.batchSize = batch
        recipe.maxLength = length
        recipe.maxSteps = steps
        recipe.gradientCheckpointing = gradientCheckpointing
        recipe.frozenDType = try .parse(frozenDtype, flag: "--frozen-dtype")
        recipe.output = FileManager.default.temporaryDirectory.appendingPathComponent("temper-bench-sft-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: recipe.output) }
        let summary = try SFTTrainer(recipe: recipe, log: { _ in }).run()
        let ours = String(format: "temper: %d steps, %.0f trained tok/s, %.0f tok/s incl. padding, peak RSS %.0f MB (MLX arrays %.0f MB)",
                          summary.steps, summary.trainedTokensPerSecond, summary.tokensPerSecond,
                          Double(ResidentMemory.peakBytes) / 1_048_576, Double(Memory.peakBytes) / 1_048_576)
        log(ours)
        guard !peer.noPeer else { print(ours); return }
        let python = try peer.python ?? KernelsBench.makeVenv(root: checkoutRoot)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [checkoutRoot.appendingPathComponent("Tools/bench/sft_trl_peer.py").path, model, dataset, "\(steps)", "\(batch)", "\(length)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
            let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let seconds = answer["seconds"] as? Double, let trained = answer["trained_tokens"] as? Double
        else { throw ValidationError("the trl peer printed no result") }
        let theirs = trained / seconds
        print(ours)
        print(String(format: "trl SFTTrainer: %d steps, %.0f trained tok/s, peak RSS %.0f MB", steps, theirs, answer["peak_rss_mb"] as? Double ?? 0))
        print(String(format: "trained tokens/s: %.2fx trl", summary.trainedTokensPerSecond / theirs))
    }
}

/// The options every peer benchmark shares.
struct PeerOptions: ParsableArguments {
    @Option(help: "Python with the peer's packages (default: the venv Tools/bench/setup-venv.sh makes).") var python: String?
    @Flag(help: "Skip the PyTorch peer.") var noPeer = false
    @Option(help: "Drop a round when other processes used more than this many cores.") var contentionLimit: Double = 0.25
    @Option(help: "Also write the rows as JSON to this file.") var json: String?
}

struct DPOBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "DPO with LoRA: pairs/s and peak RSS of Temper's trainer step against TRL's DPOTrainer, alternating processes.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "Pairs per step.") var batch: Int = 2
    @Option(help: "Prompt tokens per pair.") var promptLength: Int = 128
    @Option(help: "Tokens per completion.") var completionLength: Int = 128
    @Option(help: "LoRA rank (all seven projections, alpha = 2·rank).") var rank: Int = 16
    @Option(help: "Steps per run; the first is untimed.") var steps: Int = 4
    @Option(help: "Rounds, each one Temper process then one TRL process.") var rounds: Int = 3
    @Flag(help: "Run TRL in float32 without gradient checkpointing (its defaults are bf16 autocast and checkpointing).")
    var fp32Peer = false
    @Flag(help: "Temper with bf16 frozen weights and gradient checkpointing (less memory, some speed).") var lean = false
    @OptionGroup var peer: PeerOptions
    @Option(help: ArgumentHelp("Internal: run Temper's side on this pairs file and print one JSON line.", visibility: .hidden))
    var worker: String?

    func run() throws {
        let modelFolder = URL(fileURLWithPath: model)
        if let worker {
            let pairs = try JSONDecoder().decode([DPOBenchmark.Pair].self, from: Data(contentsOf: URL(fileURLWithPath: worker)))
            if lean { ResidentMemory.returnFreedPagesPromptly() }  // as `temper dpo --gradient-checkpointing` does
            let run = try DPOBenchmark.worker(
                modelDirectory: modelFolder, pairs: pairs, steps: steps, batch: batch, rank: rank, lean: lean)
            print(String(decoding: try JSONEncoder().encode(run), as: UTF8.self))
            return
        }
        guard FileManager.default.fileExists(atPath: modelFolder.appendingPathComponent("config.json").path) else {
            throw ValidationError("\(model) has no config.json: run `make demo` once (it converts SmolLM2), or pass --model")
        }
        var benchmark = DPOBenchmark(
            modelDirectory: modelFolder, temperBinary: URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL,
            python: peer.noPeer ? nil : try peer.python ?? KernelsBench.makeVenv(root: checkoutRoot),
            peerScript: checkoutRoot.appendingPathComponent("Tools/bench/dpo_trl_peer.py"))
        benchmark.batch = batch
        benchmark.promptLength = promptLength
        benchmark.completionLength = completionLength
        benchmark.rank = rank
        benchmark.steps = steps
        benchmark.rounds = rounds
        benchmark.contentionLimit = peer.contentionLimit
        benchmark.fp32Peer = fp32Peer
        benchmark.lean = lean
        let report = try benchmark.run { log($0) }
        print(report.table)
        if let json = peer.json { try writeJSON(report, to: json) }
    }
}

struct GRPOBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "GRPO with LoRA: seconds per step (generation and training) and peak RSS of Temper's trainer against TRL's GRPOTrainer, alternating processes.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "Prompt-only JSONL.") var prompts: String = checkoutRoot.appendingPathComponent("Data/grpo-arithmetic-train.jsonl").path
    @Option(help: "Prompts per step.") var promptsPerStep: Int = 4
    @Option(help: "Completions per prompt (G).") var numGenerations: Int = 4
    @Option(help: "Tokens per completion (every completion runs to it on both sides).") var maxCompletionLength: Int = 64
    @Option(help: "Steps per run; the first is untimed.") var steps: Int = 3
    @Option(help: "Rounds, each one Temper process then one TRL process.") var rounds: Int = 2
    @OptionGroup var peer: PeerOptions
    @Option(help: ArgumentHelp("Internal: run Temper's side with this output folder and print one JSON line.", visibility: .hidden))
    var worker: String?

    func run() throws {
        let modelFolder = URL(fileURLWithPath: model)
        let recipe = GRPOBenchmark.recipe(
            model: modelFolder, prompts: URL(fileURLWithPath: prompts), output: URL(fileURLWithPath: worker ?? "/tmp"),
            promptsPerStep: promptsPerStep, generations: numGenerations, completionLength: maxCompletionLength, steps: steps)
        if worker != nil {
            print(String(decoding: try JSONEncoder().encode(try GRPOBenchmark.worker(recipe)), as: UTF8.self))
            return
        }
        guard FileManager.default.fileExists(atPath: modelFolder.appendingPathComponent("config.json").path) else {
            throw ValidationError("\(model) has no config.json: run `make demo` once (it converts SmolLM2), or pass --model")
        }
        var benchmark = GRPOBenchmark(
            modelDirectory: modelFolder, prompts: URL(fileURLWithPath: prompts),
            temperBinary: URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL,
            python: peer.noPeer ? nil : try peer.python ?? KernelsBench.makeVenv(root: checkoutRoot),
            peerScript: checkoutRoot.appendingPathComponent("Tools/bench/grpo_trl_peer.py"))
        benchmark.promptsPerStep = promptsPerStep
        benchmark.generations = numGenerations
        benchmark.completionLength = maxCompletionLength
        benchmark.steps = steps
        benchmark.rounds = rounds
        benchmark.contentionLimit = peer.contentionLimit
        let report = try benchmark.run { log($0) }
        print(report.table)
        if let json = peer.json { try writeJSON(report, to: json) }
    }
}

import Foundation
import TemperCore
import TemperTraining

/// GRPO with LoRA on a prompt file: seconds per step, split into generation and training, and peak
/// RSS of Temper's trainer (rollouts on its engine in the same process) against TRL's GRPOTrainer
/// (transformers' `generate`, no vLLM). Each side runs as its own process per round, alternating;
/// rounds where other processes used the CPU are dropped.
public struct GRPOBenchmark {
    /// One side's run: per-step seconds after the untimed first step, split into phases.
    public struct Run: Codable, Sendable {
        public var stepSeconds: [Double]
        public var generationSeconds: [Double]
        public var completionTokensPerStep: Double
        public var peakRSSMB: Double

        enum CodingKeys: String, CodingKey {
            case stepSeconds = "step_seconds_list", generationSeconds = "generation_seconds_list"
            case completionTokensPerStep = "completion_tokens_per_step", peakRSSMB = "peak_rss_mb"
        }

        public init(stepSeconds: [Double], generationSeconds: [Double], completionTokensPerStep: Double, peakRSSMB: Double) {
            self.stepSeconds = stepSeconds
            self.generationSeconds = generationSeconds
            self.completionTokensPerStep = completionTokensPerStep
            self.peakRSSMB = peakRSSMB
        }

        var step: Double { median(stepSeconds) }
        var generation: Double { median(generationSeconds) }
        var training: Double { step - generation }
    }

    public struct Round: Codable, Sendable {
        public var temper: Run
        public var trl: Run?
        public var otherCoresDuringTemper: Double
        public var otherCoresDuringTRL: Double?
        public var dropped: Bool
    }

    public struct Report: Codable, Sendable {
        public var prompts: Int
        public var generations: Int
        public var completionLength: Int
        public var steps: Int
        public var rounds: [Round]

        var kept: [Round] { rounds.filter { !$0.dropped } }

        public var table: String {
            let header = ["round", "temper s/step", "gen", "train", "RSS MB", "trl s/step", "gen", "train", "RSS MB", "×trl", "RSS ratio", "kept"]
            let rows = rounds.enumerated().map { index, r -> [String] in
                [String(index + 1), String(format: "%.2f", r.temper.step), String(format: "%.2f", r.temper.generation),
                 String(format: "%.2f", r.temper.training), String(format: "%.0f", r.temper.peakRSSMB),
                 r.trl.map { String(format: "%.2f", $0.step) } ?? "-", r.trl.map { String(format: "%.2f", $0.generation) } ?? "-",
                 r.trl.map { String(format: "%.2f", $0.training) } ?? "-", r.trl.map { String(format: "%.0f", $0.peakRSSMB) } ?? "-",
                 r.trl.map { String(format: "%.2f", $0.step / r.temper.step) } ?? "-",
                 r.trl.map { String(format: "%.2f", r.temper.peakRSSMB / $0.peakRSSMB) } ?? "-", r.dropped ? "no" : "yes"]
            }
            var text = formatTable(header: header, rows: rows)
            let paired = kept.compactMap { r in r.trl.map { $0.step / r.temper.step } }
            if !paired.isEmpty {
                let rss = kept.compactMap { r in r.trl.map { r.temper.peakRSSMB / $0.peakRSSMB } }
                let generation = kept.compactMap { r in r.trl.map { $0.generation / r.temper.generation } }
                let training = kept.compactMap { r in r.trl.map { $0.training / r.temper.training } }
                text += String(
                    format: "\npaired ×trl s/step: median %.2f (%.2f-%.2f) over %d kept rounds; generation %.2f×, training %.2f×; RSS ratio median %.2f",
                    median(paired), paired.min()!, paired.max()!, paired.count, median(generation), median(training), median(rss))
            }
            return text
        }
    }

    public var modelDirectory: URL
    public var prompts: URL
    public var temperBinary: URL
    public var python: String?
    public var peerScript: URL
    public var promptsPerStep = 4
    public var generations = 4
    public var completionLength = 64
    public var steps = 3
    public var rounds = 2
    public var contentionLimit = 0.25

    public init(modelDirectory: URL, prompts: URL, temperBinary: URL, python: String?, peerScript: URL) {
        self.modelDirectory = modelDirectory
        self.prompts = prompts
        self.temperBinary = temperBinary
        self.python = python
        self.peerScript = peerScript
    }

    /// The recipe both sides mirror (the peer's docstring states TRL's side): LoRA r 16, alpha 32, no
    /// dropout, all seven projections; dapo, beta 0; one generation of every completion per step;
    /// exactly `completionLength` tokens per completion.
    public static func recipe(
        model: URL, prompts: URL, output: URL, promptsPerStep: Int, generations: Int, completionLength: Int, steps: Int
    ) -> GRPORecipe {
        var recipe = GRPORecipe()
        recipe.model = model.path
        recipe.data = [prompts.path]
        recipe.output = output.path
        recipe.method = .lora
        (recipe.lora.rank, recipe.lora.alpha, recipe.lora.dropout) = (16, 32, 0)
        recipe.lora.targetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        recipe.rewards = ["math"]
        recipe.numGenerations = generations
        recipe.batchSize = promptsPerStep * generations
        recipe.maxCompletionLength = completionLength
        recipe.stopAtEndOfSequence = false
        recipe.maxSteps = steps
        recipe.schedule = .linear
        recipe.saveEvery = 0
        return recipe
    }

    /// Temper's side in this process: the trainer's steps, the first untimed.
    public static func worker(_ recipe: GRPORecipe) throws -> Run {
        var steps: [Double] = [], generation: [Double] = [], tokens: [Double] = []
        _ = try GRPOTrainer(recipe: recipe, log: { _ in }).run { event in
            guard case .step(let step) = event, step.step > 1 || recipe.maxSteps == 1 else { return }
            steps.append(step.seconds)
            generation.append(step.metrics["timing/generation_seconds"] ?? 0)
            tokens.append((step.metrics["completions/mean_length"] ?? 0) * Double(recipe.batchSize))
        }
        return Run(
            stepSeconds: steps, generationSeconds: generation, completionTokensPerStep: median(tokens),
            peakRSSMB: Double(ResidentMemory.peakBytes) / 1_048_576)
    }

    public func run(progress: (String) -> Void) throws -> Report {
        var report = Report(prompts: promptsPerStep, generations: generations, completionLength: completionLength, steps: steps, rounds: [])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("temper-bench-grpo-\(getpid())")
        defer { try? FileManager.default.removeItem(at: output) }
        for round in 1...rounds {
            let (temperData, temperOthers) = try runChild(
                temperBinary, ["bench", "grpo", "--worker", output.path, "--model", modelDirectory.path, "--prompts", prompts.path,
                               "--prompts-per-step", "\(promptsPerStep)", "--num-generations", "\(generations)",
                               "--max-completion-length", "\(completionLength)", "--steps", "\(steps)"])
            let temper = try JSONDecoder().decode(Run.self, from: temperData)
            var trl: Run?, trlOthers: Double?
            if let python {
                let (data, others) = try runChild(
                    URL(fileURLWithPath: python),
                    [peerScript.path, modelDirectory.path, prompts.path, "\(steps)", "--num-generations", "\(generations)",
                     "--prompts-per-step", "\(promptsPerStep)", "--max-completion-length", "\(completionLength)", "--fixed-length"])
                trl = try Self.peerRun(data)
                trlOthers = others
            }
            let dropped = temperOthers > contentionLimit || (trlOthers ?? 0) > contentionLimit
            report.rounds.append(Round(temper: temper, trl: trl, otherCoresDuringTemper: temperOthers, otherCoresDuringTRL: trlOthers, dropped: dropped))
            progress(String(
                format: "round %d: temper %.2f s/step (generation %.2f, %.0f MB)%@, others %.2f/%@ cores%@", round, temper.step,
                temper.generation, temper.peakRSSMB,
                trl.map { String(format: ", trl %.2f s/step (generation %.2f, %.0f MB)", $0.step, $0.generation, $0.peakRSSMB) } ?? "",
                temperOthers, trlOthers.map { String(format: "%.2f", $0) } ?? "-", dropped ? " (dropped)" : ""))
        }
        return report
    }

    /// The peer's JSON line: per-step lists when it gives them, else its means.
    static func peerRun(_ data: Data) throws -> Run {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BenchmarkError.peer("grpo_trl_peer.py printed no JSON object")
        }
        func list(_ key: String, _ fallback: String) -> [Double] {
            (object[key] as? [Double]) ?? (object[fallback] as? Double).map { [$0] } ?? []
        }
        return Run(
            stepSeconds: list("step_seconds_list", "step_seconds"), generationSeconds: list("generation_seconds_list", "generation_seconds"),
            completionTokensPerStep: object["completion_tokens_per_step"] as? Double ?? 0,
            peakRSSMB: object["peak_rss_mb"] as? Double ?? 0)
    }

}

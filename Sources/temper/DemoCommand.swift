import ArgumentParser
import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperPEFT
import TemperTraining

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job: LoRA fine-tune the real SmolLM2-135M-Instruct on shipped data and compare answers before and after.",
        discussion: """
            Converts the SmolLM2 GGUF (unpacked by setup into .deps/assets/smollm2/) to a Hugging Face \
            folder if needed, answers a few prompts, trains with recipes/demo-lora.yaml, answers again \
            with the adapter, and writes the loss curve as an SVG beside the adapter.
            """)

    @Option(help: "The recipe to train with.") var recipe: String = "recipes/demo-lora.yaml"
    @Option(help: "Override the recipe's optimizer steps (for a quicker look).") var maxSteps: Int?
    @Flag(help: "Run the small autodiff demo instead (fits an MLP; no model needed).") var autodiff = false
    @Flag(help: "The preference demo instead: SFT (this recipe), then DPO from that adapter (--dpo-recipe) on Data/dpo-demo.jsonl, with held-out preference accuracy and answers before and after.")
    var dpo = false
    @Option(help: "The DPO stage's recipe (with --dpo).") var dpoRecipe: String = "recipes/demo-dpo.yaml"
    @Flag(help: "The reinforcement-learning demo instead: GRPO (--grpo-recipe) on the arithmetic word problems, with held-out accuracy before and after.")
    var grpo = false
    @Option(help: "The GRPO demo's recipe (with --grpo).") var grpoRecipe: String = "recipes/demo-grpo.yaml"

    static let prompts = [
        "What is the capital of Pakistan?",
        "What is 21 + 14?",
        "Give me one tip for learning to cook.",
    ]

    func run() throws {
        if autodiff {
            print(AutodiffDemo(steps: 200, seed: 0).run())
            return
        }
        if grpo { return try runGRPO() }
        var plan = try SFTRecipe.load(URL(fileURLWithPath: recipe))
        if let maxSteps { plan.maxSteps = maxSteps; plan.epochs = nil }
        let modelFolder = URL(fileURLWithPath: plan.model)
        try Self.convertIfMissing(modelFolder)
        if dpo { return try runDPO(sft: plan, modelFolder: modelFolder) }
        let before = try answers(adapter: nil, model: modelFolder)
        log("\n== fine-tuning (\(recipe)) ==")
        let summary = try SFTTrainer(recipe: plan, log: log).run()
        let output = URL(fileURLWithPath: plan.output)
        let svg = try LossCurve.svg(
            metrics: output.appendingPathComponent("metrics.jsonl"), title: "SmolLM2-135M-Instruct LoRA on Data/sft-demo.jsonl")
        try writeFileAtomically(Data(svg.utf8), to: output.appendingPathComponent("loss.svg"))
        let after = try answers(adapter: output, model: modelFolder)

        print("\nSmolLM2-135M-Instruct, LoRA r\(plan.lora.rank) on \(plan.data.joined(separator: ", ")): "
            + String(format: "%d steps in %@, loss %.3f -> %.3f", summary.steps, formatDuration(summary.seconds), summary.firstLoss ?? .nan, summary.lastLoss ?? .nan)
            + (summary.lastEvalLoss.map { String(format: ", eval loss %.3f", $0) } ?? ""))
        for (index, prompt) in Self.prompts.enumerated() {
            print("\nQ: \(prompt)")
            print("  before: \(before[index].replacingOccurrences(of: "\n", with: "\n          "))")
            print("  after:  \(after[index].replacingOccurrences(of: "\n", with: "\n          "))")
        }
        print("\nadapter (PEFT format): \(output.path)/adapter_model.safetensors; loss curve: \(output.path)/loss.svg")
    }

    /// The SmolLM2 folder, converted from the GGUF that setup unpacks when it is not there yet.
    static func convertIfMissing(_ modelFolder: URL) throws {
        guard !FileManager.default.fileExists(atPath: modelFolder.appendingPathComponent("config.json").path) else { return }
        let gguf = URL(fileURLWithPath: ".deps/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: gguf.path) else {
            throw ValidationError("\(gguf.path) is missing: run `make deps` (Tools/setup-assets.sh) first")
        }
        log("converting \(gguf.path) to \(modelFolder.path)")
        try GGUFConversion.importModel(from: gguf, to: modelFolder)
    }

    /// Greedy answers to `prompts` (default: the demo's), with the base model or base + adapter.
    func answers(adapter: URL?, model: URL, prompts: [String] = prompts, maxTokens: Int = 48) throws -> [String] {
        let lm = try LanguageModel.load(directory: model)
        if let adapter { _ = try PEFTAdapter.load(into: lm.network, from: adapter) }
        let ids = try prompts.map { try lm.encodeChat([.init(role: "user", content: $0)]) }
        let outputs = lm.generate(prompts: ids, parameters: GenerationParameters(maxNewTokens: maxTokens))
        return outputs.map { ($0.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// SFT, then DPO from the SFT adapter, with the held-out pairs' length-normalised preference
    /// accuracy, the implicit reward accuracy and greedy answers of the SFT and the DPO model.
    func runDPO(sft: SFTRecipe, modelFolder: URL) throws {
        var sft = sft
        var preference = try DPORecipe.load(URL(fileURLWithPath: dpoRecipe))
        let root = URL(fileURLWithPath: preference.output).deletingLastPathComponent()
        sft.output = root.appendingPathComponent("sft").path
        preference.adapter = sft.output
        if let maxSteps { preference.maxSteps = maxSteps; preference.epochs = nil }
        try preference.validate()
        log("\n== 1. SFT (\(recipe)) -> \(sft.output) ==")
        let sftSummary = try SFTTrainer(recipe: sft, log: log).run()

        let lm = try LanguageModel.load(directory: modelFolder)
        let encoder = PreferenceEncoder(
            tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxLength: preference.maxLength,
            truncationMode: preference.truncationMode)
        let held = try PreferenceDataset.prepare(
            trainFiles: preference.evalData.map { URL(fileURLWithPath: $0) }, encoder: encoder).train
        let heldPrompts = try PreferenceReader.read(URL(fileURLWithPath: preference.evalData[0])).examples.prefix(12).compactMap { example -> String? in
            guard case .messages(let turns) = example.prompt else { return nil }
            return turns.last?.content
        }
        func measure(_ adapter: URL) throws -> (accuracy: Double, answers: [String]) {
            let model = try LanguageModel.load(directory: modelFolder)
            _ = try PEFTAdapter.load(into: model.network, from: adapter)
            let accuracy = try PreferenceEvaluation.lengthNormalisedAccuracy(
                model.network, pairs: held, padTokenID: DataLoader.padTokenID(for: model.tokenizer))
            return (accuracy, try answers(adapter: adapter, model: modelFolder, prompts: heldPrompts, maxTokens: 96))
        }
        let before = try measure(URL(fileURLWithPath: sft.output))
        log("\n== 2. DPO (\(dpoRecipe)) from the SFT adapter -> \(preference.output) ==")
        let dpoSummary = try DPOTrainer(recipe: preference, log: log).run()
        let after = try measure(URL(fileURLWithPath: preference.output))

        func words(_ texts: [String]) -> Double {
            Double(texts.reduce(0) { $0 + $1.split(whereSeparator: \.isWhitespace).count }) / Double(max(1, texts.count))
        }
        print("\nSmolLM2-135M-Instruct: SFT \(sftSummary.steps) steps, then DPO \(dpoSummary.steps) steps (\(preference.lossType.map(\.rawValue).joined(separator: "+")), beta \(preference.beta)) in "
            + formatDuration(sftSummary.seconds + dpoSummary.seconds))
        print(String(format: "held-out pairs (%d): concise answer preferred (mean log-prob per token)  SFT %.1f%% -> DPO %.1f%%", held.count, 100 * before.accuracy, 100 * after.accuracy))
        if let rewards = dpoSummary.finalEval["eval_rewards/accuracies"], let margin = dpoSummary.finalEval["eval_rewards/margins"] {
            print(String(format: "held-out implicit reward accuracy (DPO vs the SFT reference): %.1f%%, mean margin %.3f", 100 * rewards, margin))
        }
        print(String(format: "mean answer length over %d held-out prompts: SFT %.1f words -> DPO %.1f words", heldPrompts.count, words(before.answers), words(after.answers)))
        for index in 0..<min(3, heldPrompts.count) {
            print("\nQ: \(heldPrompts[index])")
            print("  SFT: \(before.answers[index].replacingOccurrences(of: "\n", with: "\n       "))")
            print("  DPO: \(after.answers[index].replacingOccurrences(of: "\n", with: "\n       "))")
        }
        print("\nDPO adapter (PEFT format): \(preference.output)/adapter_model.safetensors; metrics: \(preference.output)/metrics.jsonl")
    }

    /// GRPO from the instruct model on Data/grpo-arithmetic-train.jsonl; held-out accuracy is the
    /// math reward's mean over the held-out problems, answered greedily before and after.
    func runGRPO() throws {
        var plan = try GRPORecipe.load(URL(fileURLWithPath: grpoRecipe))
        if let maxSteps { plan.maxSteps = maxSteps; plan.epochs = nil }
        try Self.convertIfMissing(URL(fileURLWithPath: plan.model))
        log("\n== GRPO (\(grpoRecipe)) -> \(plan.output) ==")
        // Events arrive on this thread, before training and at each evaluation.
        var evaluations: [[String: Double]] = []
        let summary = try GRPOTrainer(recipe: plan, log: log).run { event in
            if case .eval(let e) = event { evaluations.append(e.metrics) }
        }
        let problems = try plan.evalData.reduce(0) { count, path in
            count + (try String(contentsOfFile: path, encoding: .utf8)).split(separator: "\n").count
        }
        func accuracy(_ metrics: [String: Double]?) -> String {
            guard let value = metrics?["eval_rewards/math/mean"] else { return "?" }
            return String(format: "%.1f%% (%d of %d)", value * 100, Int((value * Double(problems)).rounded()), problems)
        }
        print("\nSmolLM2-135M-Instruct, GRPO (\(plan.lossType.rawValue), \(plan.numGenerations) completions per prompt, LoRA r\(plan.lora.rank)) "
            + "on \(plan.data.joined(separator: ", ")): \(summary.steps) steps in \(formatDuration(summary.seconds)), seed \(plan.seed)")
        print("held-out accuracy on \(plan.evalData.joined(separator: ", ")) (\(problems) problems, greedy, \(plan.maxCompletionLength) tokens): "
            + "before \(accuracy(evaluations.first)) -> after \(accuracy(evaluations.count > 1 ? evaluations.last : nil))")
        print("adapter (PEFT format): \(plan.output)/adapter_model.safetensors; metrics: \(plan.output)/metrics.jsonl")
    }
}

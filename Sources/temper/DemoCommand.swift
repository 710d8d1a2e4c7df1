import ArgumentParser
import Foundation
import TemperCore
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
        var plan = try SFTRecipe.load(URL(fileURLWithPath: recipe))
        if let maxSteps { plan.maxSteps = maxSteps; plan.epochs = nil }
        let modelFolder = URL(fileURLWithPath: plan.model)
        if !FileManager.default.fileExists(atPath: modelFolder.appendingPathComponent("config.json").path) {
            let gguf = URL(fileURLWithPath: ".deps/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
            guard FileManager.default.fileExists(atPath: gguf.path) else {
                throw ValidationError("\(gguf.path) is missing: run `make deps` (Tools/setup-assets.sh) first")
            }
            log("converting \(gguf.path) to \(modelFolder.path)")
            try GGUFConversion.importModel(from: gguf, to: modelFolder)
        }
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

    /// Greedy answers to the demo prompts, with the base model or base + adapter.
    func answers(adapter: URL?, model: URL) throws -> [String] {
        let lm = try LanguageModel.load(directory: model)
        if let adapter { _ = try PEFTAdapter.load(into: lm.network, from: adapter) }
        let prompts = try Self.prompts.map { try lm.encodeChat([.init(role: "user", content: $0)]) }
        let outputs = lm.generate(prompts: prompts, parameters: GenerationParameters(maxNewTokens: 48))
        return outputs.map { ($0.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

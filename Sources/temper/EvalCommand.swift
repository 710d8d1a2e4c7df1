import ArgumentParser
import Foundation
import TemperModels
import TemperTraining

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model (and adapter) on a held-out file: loss, accuracy, preference or answers.",
        discussion: """
            --kind loss: mean token loss and perplexity on SFT data; accuracy: exact-match accuracy of greedy \
            answers on prompt data with an `answer` (GRPO's math checker); preference: how often the chosen \
            answer has the higher mean log-prob per token; answers: greedy answers to the prompts. \
            --compare-base also evaluates the base without the adapter. Prints the metrics; --json writes \
            the whole result (with every answer). A --recipe JSON file can give the same fields \
            (model, adapter, data, kind, compare_base, limit, max_new_tokens, max_length).
            """)

    @Option(help: "A JSON file with the evaluation's fields instead of the flags.") var recipe: String?
    @Option(help: "A Hugging Face model folder.") var model: String?
    @Option(help: "A LoRA adapter folder (PEFT format).") var adapter: String?
    @Option(help: "The held-out JSON/JSONL file.") var data: String?
    @Option(help: "loss, accuracy, preference or answers.") var kind: String?
    @Flag(help: "Also evaluate the base without the adapter.") var compareBase = false
    @Option(help: "Evaluate the first N records only.") var limit: Int?
    @Option(help: "New tokens per greedy answer (accuracy, answers).") var maxNewTokens = 256
    @Option(help: "Longest sequence in tokens (loss, preference).") var maxLength = 1024
    @Option(help: "Write the result as JSON to this file.") var json: String?
    @Option(help: "Write the result as evaluation.json into this folder (the gallery's jobs).") var output: String?

    func spec() throws -> EvaluationSpec {
        if let recipe { return try decodeRecipeJSON(EvaluationSpec.self, at: recipe) }
        guard let model, let data, let kind else { throw ValidationError("give --model, --data and --kind (or --recipe)") }
        guard let parsed = EvaluationKind(rawValue: kind) else {
            throw ValidationError("--kind must be one of \(EvaluationKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(kind)'")
        }
        return EvaluationSpec(
            model: model, adapter: adapter, data: data, kind: parsed, compareBase: compareBase, limit: limit,
            maxNewTokens: maxNewTokens, maxLength: maxLength)
    }

    func run() throws {
        let spec = try spec()
        let result = try ModelEvaluation.run(spec, log: { log($0) })
        for name in result.scores.metrics.keys.sorted() {
            let value = result.scores.metrics[name]!
            let base = result.base?.metrics[name].map { String(format: "   (base %.4f)", $0) } ?? ""
            print(String(format: "%@ %.4f", name, value) + base)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(result)
        if let json { try writeFileAtomically(data, to: URL(fileURLWithPath: json)) }
        if let output {
            let folder = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try writeFileAtomically(data, to: folder.appendingPathComponent("evaluation.json"))
        }
    }
}

/// A `--recipe` JSON file of a command whose recipe is not a training recipe (`eval`, `compress`);
/// errors name the file.
func decodeRecipeJSON<T: Decodable>(_ type: T.Type, at path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--recipe \(path) cannot be read") }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch {
        throw ValidationError("\(path): \(error)")
    }
}

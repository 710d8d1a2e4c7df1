import Foundation
import TemperCore
import TemperData
import TemperEngine
import TemperModels
import TemperPEFT

/// What `temper eval` measures on a held-out file.
public enum EvaluationKind: String, Codable, Sendable, CaseIterable {
    /// Mean token loss and perplexity on SFT data (the trained tokens, as SFT's eval does).
    case loss
    /// Exact-match accuracy of greedy answers on prompt data with an `answer` (the math checker).
    case accuracy
    /// Preference accuracy on chosen/rejected pairs: the chosen answer has the higher mean log-prob per token.
    case preference
    /// Greedy answers to the file's prompts, for reading side by side.
    case answers
}

/// One evaluation: a model (with an optional adapter) on a file. `compare_base` also evaluates the base
/// without the adapter, so an output is judged against where it started.
public struct EvaluationSpec: Codable, Sendable, Equatable {
    public var model: String
    public var adapter: String?
    public var data: String
    public var kind: EvaluationKind
    public var compareBase: Bool
    /// Records evaluated at most (the first ones of the file).
    public var limit: Int?
    public var maxNewTokens: Int
    public var maxLength: Int

    enum CodingKeys: String, CodingKey {
        case model, adapter, data, kind, limit
        case compareBase = "compare_base", maxNewTokens = "max_new_tokens", maxLength = "max_length"
    }

    public init(
        model: String, adapter: String? = nil, data: String, kind: EvaluationKind, compareBase: Bool = false,
        limit: Int? = nil, maxNewTokens: Int = 256, maxLength: Int = 1024
    ) {
        self.model = model
        self.adapter = adapter
        self.data = data
        self.kind = kind
        self.compareBase = compareBase
        self.limit = limit
        self.maxNewTokens = maxNewTokens
        self.maxLength = maxLength
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            model: try c.decode(String.self, forKey: .model), adapter: try c.decodeIfPresent(String.self, forKey: .adapter),
            data: try c.decode(String.self, forKey: .data), kind: try c.decode(EvaluationKind.self, forKey: .kind),
            compareBase: try c.decodeIfPresent(Bool.self, forKey: .compareBase) ?? false,
            limit: try c.decodeIfPresent(Int.self, forKey: .limit),
            maxNewTokens: try c.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? 256,
            maxLength: try c.decodeIfPresent(Int.self, forKey: .maxLength) ?? 1024)
    }

    public func validate() throws {
        if let limit, limit < 1 { throw TrainingError.invalidRecipe(field: "limit", reason: "must be at least 1, got \(limit)") }
        guard maxNewTokens >= 1 else { throw TrainingError.invalidRecipe(field: "max_new_tokens", reason: "must be at least 1") }
        guard maxLength >= 8 else { throw TrainingError.invalidRecipe(field: "max_length", reason: "must be at least 8") }
        if compareBase && adapter == nil {
            throw TrainingError.invalidRecipe(field: "compare_base", reason: "needs an adapter to compare with its base")
        }
    }
}

/// The numbers (and answers) of one model on the file.
public struct EvaluationScores: Codable, Sendable, Equatable {
    public var metrics: [String: Double]
    public var answers: [EvaluatedAnswer]
}

public struct EvaluatedAnswer: Codable, Sendable, Equatable {
    public var prompt: String
    public var answer: String
    public var expected: String?
    public var correct: Bool?
}

public struct EvaluationResult: Codable, Sendable, Equatable {
    public var spec: EvaluationSpec
    public var records: Int
    /// The model as given (with its adapter, if any).
    public var scores: EvaluationScores
    /// The base without the adapter, with `compare_base`.
    public var base: EvaluationScores?
}

/// Runs evaluations (`temper eval`, the gallery's evaluation jobs).
public enum ModelEvaluation {
    public static func run(_ spec: EvaluationSpec, log: @escaping (String) -> Void) throws -> EvaluationResult {
        try spec.validate()
        let lm = try LanguageModel.load(directory: URL(fileURLWithPath: spec.model))
        if let adapter = spec.adapter { _ = try PEFTAdapter.load(into: lm.network, from: URL(fileURLWithPath: adapter)) }
        let data = URL(fileURLWithPath: spec.data)
        var base: EvaluationScores?
        let (records, scores) = try evaluate(spec, lm: lm, data: data, log: log)
        if spec.compareBase {
            log("the base without the adapter:")
            base = try lm.network.withAdaptersDisabled { try evaluate(spec, lm: lm, data: data, log: log).1 }
        }
        return EvaluationResult(spec: spec, records: records, scores: scores, base: base)
    }

    static func evaluate(_ spec: EvaluationSpec, lm: LanguageModel, data: URL, log: @escaping (String) -> Void) throws -> (Int, EvaluationScores) {
        switch spec.kind {
        case .loss:
            var recipe = SFTRecipe()
            recipe.core.model = spec.model
            recipe.core.data = [spec.data]
            recipe.maxLength = spec.maxLength
            recipe.batchSize = 4
            recipe.packing = false
            let dataset = try PreparedDataset.prepare(
                trainFiles: [data], evalFiles: [],
                config: DataConfig(
                    maxLength: spec.maxLength, lengthPolicy: .truncate, invalidRecordPolicy: .abort, trainOnPrompt: false,
                    evalFraction: 0, seed: 0),
                tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate)
            let samples = Array(dataset.train.prefix(spec.limit ?? .max))
            let measured = try SFTTrainer(recipe: recipe, log: log).evaluate(lm.network, samples, lm: lm)
            let metrics = ["loss": measured["eval_loss"] ?? .nan, "perplexity": measured["eval_perplexity"] ?? .nan]
            log(String(format: "loss %.4f, perplexity %.3f over %d records", metrics["loss"]!, metrics["perplexity"]!, samples.count))
            return (samples.count, EvaluationScores(metrics: metrics, answers: []))
        case .preference:
            let encoder = PreferenceEncoder(tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxLength: spec.maxLength)
            let pairs = Array(try PreferenceDataset.prepare(trainFiles: [data], encoder: encoder).train.prefix(spec.limit ?? .max))
            let accuracy = try PreferenceEvaluation.lengthNormalisedAccuracy(
                lm.network, pairs: pairs, padTokenID: DataLoader.padTokenID(for: lm.tokenizer))
            log(String(format: "preference accuracy %.1f%% over %d pairs", accuracy * 100, pairs.count))
            return (pairs.count, EvaluationScores(metrics: ["preference_accuracy": accuracy], answers: []))
        case .accuracy, .answers:
            let encoder = PromptEncoder(
                tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxCompletionLength: spec.maxNewTokens,
                contextLength: lm.network.configuration.maxPositionEmbeddings)
            let prompts = Array(try encoder.prepare([data]).prompts.prefix(spec.limit ?? .max))
            let engine = InferenceEngine(model: lm)
            defer { engine.shutdownAndWait() }
            let finished = try engine.generate(all: prompts.map { EngineRequest(prompt: $0.ids, maxNewTokens: spec.maxNewTokens) })
            let texts = zip(prompts, finished).map { prompt, samples in
                (prompt, lm.tokenizer.decode(samples.first?.tokens ?? [], skipSpecialTokens: true), samples.first)
            }
            // The GRPO math checker: the last \boxed{} (or <answer>, or the last number) equals `answer`.
            let correct = spec.kind == .accuracy
                ? try MathAnswerReward().rewards(texts.map { prompt, text, sample in
                    RewardInput(
                        prompt: prompt.text, completion: text, completionTokens: sample?.tokens.count ?? 0,
                        truncated: sample?.reason == .length, fields: prompt.fields)
                }) : []
            let answers = texts.enumerated().map { index, entry in
                let (prompt, text, _) = entry
                var answer = EvaluatedAnswer(prompt: prompt.text, answer: text, expected: nil, correct: nil)
                if spec.kind == .accuracy {
                    if case .string(let expected)? = prompt.fields["answer"] { answer.expected = expected }
                    if case .number(let expected)? = prompt.fields["answer"] { answer.expected = String(expected) }
                    answer.correct = correct[index].map { $0 == 1 }
                }
                return answer
            }
            var metrics: [String: Double] = [
                "mean_answer_tokens": Double(finished.reduce(0) { $0 + ($1.first?.tokens.count ?? 0) }) / Double(max(1, finished.count))
            ]
            if spec.kind == .accuracy {
                let correct = answers.filter { $0.correct == true }.count
                metrics["accuracy"] = Double(correct) / Double(max(1, answers.count))
                log(String(format: "accuracy %.1f%% (%d of %d, greedy, %d tokens)", metrics["accuracy"]! * 100, correct, answers.count, spec.maxNewTokens))
            }
            return (answers.count, EvaluationScores(metrics: metrics, answers: answers))
        }
    }
}

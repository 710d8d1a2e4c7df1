import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperPEFT
import TemperTokenizers

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var firstLoss: Float?
    public var lastLoss: Float?
    /// The final evaluation's metrics (`eval_loss`, `eval_rewards/accuracies`, …), empty without eval data.
    public var finalEval: [String: Double]
    public var trainableParameters: Int
    public var totalParameters: Int
    public var tokensPerSecond: Double
    /// Tokens that carried loss, per second of the training loop.
    public var trainedTokensPerSecond: Double
    public var seconds: Double
    public var cancelled: Bool
    public var output: URL

    public var lastEvalLoss: Float? { finalEval["eval_loss"].map { Float($0) } }
}

/// A model made ready to train by a recipe: loaded, its frozen projections stored as asked,
/// adapters added (or loaded), checkpointing set; shared by every method's trainer.
struct PreparedModel {
    let lm: LanguageModel
    let directory: URL
    let trainableNames: [String]
    let report: TrainableReport

    var network: CausalLanguageModel { lm.network }

    init(_ recipe: TrainingRecipe, log: (String) -> Void) throws {
        directory = URL(fileURLWithPath: recipe.model)
        // Its quantized projections are not parameters: full training would leave them as they are
        // and save a model without them. A LoRA over it keeps them frozen, which is what it wants.
        if recipe.method == .full, let format = try? CausalLanguageModel.inferenceQuantization(of: directory) {
            throw TrainingError.invalidRecipe(
                field: "model",
                reason: "\(recipe.model) is quantized for inference (temper_quantization \(format)); full training needs float weights: train the model it was made from, or a LoRA over it")
        }
        lm = try LanguageModel.load(directory: directory)
        let network = lm.network
        switch recipe.method {
        case .full:
            report = network.report(trainable: Array(network.parameters().keys))
            trainableNames = network.parameters().keys.sorted()
        case .lora, .qlora:
            report = try network.prepareAdapters(
                recipe.lora, storage: recipe.frozenStorage, seed: recipe.seed,
                adapterDirectory: recipe.adapter.map { URL(fileURLWithPath: $0) })
            trainableNames = network.loraParameters.keys.sorted()
            let saved = Double(report.frozenBytesBefore - report.frozenBytesAfter) / 1e6
            switch recipe.frozenStorage {
            case .float32: break
            case .bfloat16: log(String(format: "frozen projections stored in bfloat16 (%.1f MB saved)", saved))
            case .quantized(let format, _):
                log(String(format: "QLoRA: base projections stored as %@ (%.1f MB instead of %.1f MB, %.1f MB saved)",
                           format.rawValue, Double(report.frozenBytesAfter) / 1e6, Double(report.frozenBytesBefore) / 1e6, saved))
            }
            if let adapter = recipe.adapter {
                log("continuing from the adapter in \(adapter) (\(report.adaptedLayers) projections)")
            } else {
                log("LoRA r=\(recipe.lora.rank) alpha=\(recipe.lora.alpha) on \(report.adaptedLayers) projections")
            }
        }
        network.gradientCheckpointing = recipe.gradientCheckpointing
        log(report.summary)
    }

    /// The outputs a user takes away: a PEFT adapter folder (LoRA) or a full model folder.
    func saveOutputs(_ recipe: TrainingRecipe, to output: URL) throws {
        switch recipe.method {
        case .lora, .qlora:
            let configuration = try recipe.adapter.map { try PEFTAdapter.configuration(at: URL(fileURLWithPath: $0)) } ?? recipe.lora
            try PEFTAdapter.save(model: network, configuration: configuration, baseModel: directory.path, to: output)
        case .full:
            let dtype = DType(huggingFaceName: network.configuration.storageDType ?? "float32") ?? .float32
            try network.save(
                to: output, dtype: dtype,
                configJSON: FileManager.default.contents(atPath: directory.appendingPathComponent("config.json").path))
            try copyTokenizerFiles(from: directory, to: output)
        }
    }
}

/// Supervised fine-tuning (full, LoRA, QLoRA) of a causal language model on the shared
/// training engine: ``TrainStep`` over ``SFTObjective``, ``TrainingLoop``, ``Checkpointer``.
public final class SFTTrainer {
    public let recipe: SFTRecipe
    let log: (String) -> Void
    let output: URL

    public init(recipe: SFTRecipe, log: @escaping (String) -> Void) {
        self.recipe = recipe
        self.log = log
        output = URL(fileURLWithPath: recipe.output)
    }

    /// Runs the recipe; with `resume`, continues from the newest checkpoint in the output folder.
    /// Events go to `events` besides the progress lines and `metrics.jsonl`.
    public func run(
        resume: Bool = false, cancellation: CancellationFlag? = nil, events: ((TrainingEvent) -> Void)? = nil
    ) throws -> TrainingSummary {
        try recipe.validate()
        let start = Date()
        let prepared = try PreparedModel(recipe.core, log: log)
        let lm = prepared.lm, network = prepared.network
        let dataset = try PreparedDataset.prepare(
            trainFiles: recipe.data.map { URL(fileURLWithPath: $0) },
            evalFiles: recipe.evalData.map { URL(fileURLWithPath: $0) },
            config: DataConfig(
                maxLength: recipe.maxLength, lengthPolicy: .truncate,
                invalidRecordPolicy: recipe.skipInvalidRecords ? .skip : .abort,
                trainOnPrompt: recipe.trainOnPrompt, evalFraction: Double(recipe.evalFraction),
                seed: recipe.seed),
            tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate)
        log(dataset.report.summary)

        let parallel = try DataParallel.fromEnvironment()
        let run = try TrainingRun(
            core: recipe.core, recipeJSON: try recipe.jsonData(), prepared: prepared, resume: resume, dataParallel: parallel, log: log)
        // Data parallel: every rank walks the global batches (N × the batch size, in the same order)
        // and trains on its own rows of each.
        let ranks = parallel?.group.size ?? 1, rank = parallel?.group.rank ?? 0
        var loader = try makeLoader(dataset.train, lm: lm, shuffle: true, cursor: run.cursor, batchSize: recipe.batchSize * ranks)
        let (stepsPerEpoch, totalSteps) = run.totalSteps(batchesPerEpoch: loader.batchesPerEpoch)
        log("training \(totalSteps) steps (\(stepsPerEpoch) per epoch), batch \(recipe.batchSize) × \(recipe.maxLength) tokens, grad accum \(recipe.gradAccum)"
            + (ranks > 1 ? ", rank \(rank) of \(ranks) (global batch \(recipe.batchSize * ranks))" : ""))
        return try run.train(
            SFTObjective(trainsOutputWeight: prepared.trainableNames.contains(network.outputWeightName)),
            totalSteps: totalSteps, start: start,
            nextMicroBatch: {
                loader.next().map { batch in TokenBatch(ranks > 1 ? loader.shard(of: batch, rank: rank, size: ranks) : batch) }
            },
            tokenCounts: { ($0.tokenCount, $0.trainedTokenCount) }, cursor: { loader.cursor },
            evaluate: dataset.eval.isEmpty ? nil : { [self] _ in try evaluate(network, dataset.eval, lm: lm) },
            cancellation: cancellation, events: events)
    }

    /// Batches of the recipe's shape: shuffled by the recipe's seed for training, one pass in
    /// order for evaluation.
    func makeLoader(
        _ samples: [TokenizedSample], lm: LanguageModel, shuffle: Bool, cursor: DataCursor = DataCursor(), batchSize: Int? = nil
    ) throws -> DataLoader {
        try DataLoader(
            samples: samples, batchSize: batchSize ?? recipe.batchSize, maxLength: recipe.maxLength,
            packing: recipe.packing ? .firstFitDecreasing : .none, shuffle: shuffle,
            seed: shuffle ? recipe.seed : 0, padTokenID: DataLoader.padTokenID(for: lm.tokenizer),
            epochs: shuffle ? nil : 1, cursor: cursor)
    }

    /// Mean token loss and perplexity over the eval samples (no dropout, no gradient).
    func evaluate(_ network: CausalLanguageModel, _ samples: [TokenizedSample], lm: LanguageModel) throws -> [String: Double] {
        network.setLoRADropout(seed: nil)
        var loader = try makeLoader(samples, lm: lm, shuffle: false)
        var total = 0.0, count = 0
        while let batch = loader.next() {
            total += Double(SFTObjective.lossSum(network, TokenBatch(batch)).item(Float.self))
            count += batch.trainedTokenCount
        }
        let loss = total / Double(max(count, 1))
        return ["eval_loss": loss, "eval_perplexity": Foundation.exp(loss)]
    }
}

/// Copies the files a tokenizer needs from one model folder to another.
public func copyTokenizerFiles(from source: URL, to destination: URL) throws {
    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                 "generation_config.json", "vocab.json", "merges.txt"] {
        let from = source.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: from.path) else { continue }
        try writeFileAtomically(data, to: destination.appendingPathComponent(name))
    }
}

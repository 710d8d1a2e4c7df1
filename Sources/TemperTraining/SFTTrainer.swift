import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperTokenizers

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var firstLoss: Float?
    public var lastLoss: Float?
    public var lastEvalLoss: Float?
    public var trainableParameters: Int
    public var totalParameters: Int
    public var tokensPerSecond: Double
    /// Tokens that carried loss, per second of the training loop.
    public var trainedTokensPerSecond: Double
    public var seconds: Double
    public var output: URL
}

/// Supervised fine-tuning (full, LoRA) of a causal language model: one training loop with
/// gradient accumulation, clipping, schedules, evaluation, atomic checkpoints with exact resume,
/// progress lines and `metrics.jsonl`.
public final class SFTTrainer {
    public let recipe: Recipe
    let log: (String) -> Void
    let output: URL
    var checkpoints: URL { output.appendingPathComponent("checkpoints") }

    public init(recipe: Recipe, log: @escaping (String) -> Void) {
        self.recipe = recipe
        self.log = log
        output = URL(fileURLWithPath: recipe.output)
    }

    /// Runs the recipe; with `resume`, continues from the newest checkpoint in the output folder.
    public func run(resume: Bool = false) throws -> TrainingSummary {
        try recipe.validate()
        let start = Date()
        let modelDirectory = URL(fileURLWithPath: recipe.model)
        let lm = try LanguageModel.load(directory: modelDirectory)
        let network = lm.network
        let dataset = try PreparedDataset.prepare(
            trainFiles: recipe.data.map { URL(fileURLWithPath: $0) },
            evalFiles: recipe.evalData.map { URL(fileURLWithPath: $0) },
            config: DataConfig(
                maxLength: recipe.maxLength, lengthPolicy: .truncate,
                invalidRecordPolicy: recipe.skipInvalidRecords ? .skip : .abort,
                trainOnPrompt: recipe.trainOnPrompt, evalFraction: Double(recipe.evalFraction),
                seed: recipe.seed),
            model: lm)
        log(dataset.report.summary)

        switch recipe.method {
        case .lora:
            if recipe.frozenDType == "bfloat16" {
                var saved = 0
                for (_, layer) in network.projections {
                    saved += layer.weight.byteCount / 2
                    layer.weight = layer.weight.asType(.bfloat16)
                    eval(layer.weight)  // now, one at a time: the float32 copies never all coexist
                }
                log(String(format: "frozen projections stored in bfloat16 (%.1f MB saved)", Double(saved) / 1e6))
            }
            let count = try network.addLoRA(recipe.lora, seed: recipe.seed)
            log("LoRA r=\(recipe.lora.rank) alpha=\(recipe.lora.alpha) on \(count) projections")
        case .full:
            break
        case .qlora:
            let format: BlockQuantizedWeight.Format = recipe.quantBits == 4 ? .nf4 : .int8
            var before = 0, after = 0
            for (_, layer) in network.projections {
                before += layer.weight.byteCount
                layer.quantizeWeight(format, doubleQuantization: recipe.doubleQuantization)
                after += layer.quantizedWeight!.byteCount
            }
            let count = try network.addLoRA(recipe.lora, seed: recipe.seed)
            log(String(format: "QLoRA: base projections stored as %@ (%.1f MB instead of %.1f MB, %.1f MB saved); LoRA r=%d on %d projections",
                       format.rawValue, Double(after) / 1e6, Double(before) / 1e6, Double(before - after) / 1e6, recipe.lora.rank, count))
        }
        network.gradientCheckpointing = recipe.gradientCheckpointing
        // A run that recomputes to save memory also hands freed blocks back rather than keeping
        // them mapped for speed: kept pages fragment into ~10% more resident memory.
        if recipe.gradientCheckpointing { ResidentMemory.returnFreedPagesPromptly() }
        let allParameters = network.parameters()
        let trainableNames = (recipe.method == .full ? allParameters : network.loraParameters).keys.sorted()
        let totalParameters = allParameters.values.reduce(0) { $0 + $1.size }
        let trainableCount = trainableNames.reduce(0) { $0 + allParameters[$1]!.size }
        log(String(format: "trainable parameters: %d of %d (%.2f%%)", trainableCount, totalParameters,
                   100 * Double(trainableCount) / Double(totalParameters)))

        let checkpoint = resume ? try latestCheckpoint() : nil
        let state = try checkpoint.map { try readState($0) }
        var loader = try makeLoader(dataset.train, lm: lm, shuffle: true, cursor: state?.cursor ?? DataCursor())
        let stepsPerEpoch = max(1, loader.batchesPerEpoch / recipe.gradAccum)
        let totalSteps = recipe.maxSteps ?? max(1, Int((Float(stepsPerEpoch) * (recipe.epochs ?? 1)).rounded(.up)))
        let schedule = LearningRateSchedule(
            kind: LearningRateSchedule.Kind(rawValue: recipe.schedule)!, peak: recipe.learningRate,
            warmupSteps: recipe.warmupSteps, totalSteps: totalSteps)
        var optimizer = AdamW(beta1: recipe.beta1, beta2: recipe.beta2, eps: recipe.adamEps, weightDecay: recipe.weightDecay)

        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try writeFileAtomically(try recipe.jsonData(), to: output.appendingPathComponent("recipe.json"))
        let metricsURL = output.appendingPathComponent("metrics.jsonl")
        var firstStep = 0
        if let checkpoint, let state {
            try restore(checkpoint, state: state, network: network, optimizer: &optimizer)
            firstStep = state.step
            try MetricsLog.truncate(metricsURL, afterStep: firstStep)
            log("resumed from \(checkpoint.lastPathComponent) at step \(firstStep)")
        } else {
            try? FileManager.default.removeItem(at: metricsURL)
        }
        let metrics = try MetricsLog(url: metricsURL)
        log("training \(totalSteps) steps (\(stepsPerEpoch) per epoch), batch \(recipe.batchSize) × \(recipe.maxLength) tokens, grad accum \(recipe.gradAccum)")

        let names = trainableNames
        let lossGradients: CrossEntropyGradients = names.contains(network.outputWeightName) ? .hiddenAndWeight : .hidden
        var firstLoss: Float?, lastLoss: Float?, lastEval: Float?
        var tokensSeen = 0, trainedSeen = 0
        let loopStart = Date()
        var lastCheckpoint: String? = try latestCheckpoint()?.path
        for step in firstStep..<totalSteps {
            let stepStart = Date()
            var batches: [Batch] = []
            for _ in 0..<recipe.gradAccum {
                if let batch = loader.next() { batches.append(batch) }
            }
            if batches.isEmpty { break }
            let trained = batches.reduce(0) { $0 + $1.trainedTokenCount }
            let parameters = network.parameters()
            let current = names.map { parameters[$0]! }
            var gradientSum: [Tensor]?
            var lossSum = Tensor(Float(0))
            for (microBatch, batch) in batches.enumerated() {
                // A fresh mask per micro-batch, a function of (seed, step, micro-batch) so a resumed run draws the same.
                var dropoutSeeds = SplitMix64(seed: recipe.seed ^ (UInt64(step) << 20 | UInt64(microBatch)))
                network.setLoRADropout(seed: recipe.lora.dropout > 0 ? dropoutSeeds.next() : nil)
                let inputs = BatchTensors(batch)
                let f = valueAndGrad { (trainable: [Tensor]) -> [Tensor] in
                    try? network.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, trainable)))
                    let sum = Self.lossSum(network, inputs, gradients: lossGradients)
                    return [sum / Double(max(trained, 1)), sum]
                }
                let (values, gradients) = f(current)
                gradientSum = gradientSum.map { zip($0, gradients).map { $0 + $1 } } ?? gradients
                lossSum = lossSum + values[1]
                eval([lossSum] + gradientSum!)
            }
            try network.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, current)))
            let (clipped, norm) = clipGlobalNorm(
                Dictionary(uniqueKeysWithValues: zip(names, gradientSum!)), maxNorm: recipe.maxGradNorm)
            let rate = schedule.rate(at: step)
            let updated = optimizer.update(
                parameters: Dictionary(uniqueKeysWithValues: zip(names, current)), gradients: clipped,
                learningRate: rate)
            try network.update(parameters: updated)
            eval(Array(updated.values) + Array(optimizer.state.values) + [norm])

            let loss = lossSum.item(Float.self) / Float(max(trained, 1))
            guard loss.isFinite else {
                throw TrainingError.nonFiniteLoss(step: step + 1, checkpoint: lastCheckpoint)
            }
            firstLoss = firstLoss ?? loss
            lastLoss = loss
            let tokens = batches.reduce(0) { $0 + $1.tokenCount }
            tokensSeen += tokens
            trainedSeen += trained
            let stepSeconds = Date().timeIntervalSince(stepStart)
            let elapsed = Date().timeIntervalSince(loopStart)
            let done = step + 1 - firstStep
            let eta = elapsed / Double(done) * Double(totalSteps - step - 1)
            try metrics.append([
                "step": step + 1, "loss": Double(loss), "learning_rate": Double(rate),
                "grad_norm": Double(norm.item(Float.self)), "tokens": tokens, "trained_tokens": trained,
                "tokens_per_second": Double(tokens) / stepSeconds, "epoch": Double(loader.cursor.epoch),
                "elapsed_seconds": elapsed, "peak_memory_mb": Double(Memory.peakBytes) / 1_048_576,
            ])
            if (step + 1) % max(1, recipe.logEvery) == 0 || step + 1 == totalSteps {
                log(String(format: "step %d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f tok/s  peak %.0f MB  ETA %@",
                           step + 1, totalSteps, loss, rate, norm.item(Float.self),
                           Double(tokens) / stepSeconds, Double(Memory.peakBytes) / 1_048_576, Self.duration(eta)))
            }
            if recipe.evalEvery > 0 && (step + 1) % recipe.evalEvery == 0 && !dataset.eval.isEmpty {
                lastEval = try evaluate(network, dataset.eval, lm: lm, step: step + 1, metrics: metrics, label: "step \(step + 1)")
            }
            if recipe.saveEvery > 0 && (step + 1) % recipe.saveEvery == 0 && step + 1 < totalSteps {
                lastCheckpoint = try saveCheckpoint(step: step + 1, network: network, names: names, optimizer: optimizer, cursor: loader.cursor).path
            }
        }
        let loopSeconds = Date().timeIntervalSince(loopStart)
        if !dataset.eval.isEmpty {
            lastEval = try evaluate(network, dataset.eval, lm: lm, step: totalSteps, metrics: metrics, label: "final")
        }
        try saveOutputs(lm: lm, modelDirectory: modelDirectory)
        _ = try saveCheckpoint(step: totalSteps, network: network, names: names, optimizer: optimizer, cursor: loader.cursor)
        let seconds = Date().timeIntervalSince(start)
        return TrainingSummary(
            steps: totalSteps, firstLoss: firstLoss, lastLoss: lastLoss, lastEvalLoss: lastEval,
            trainableParameters: trainableCount, totalParameters: totalParameters,
            tokensPerSecond: Double(tokensSeen) / max(loopSeconds, 1e-9),
            trainedTokensPerSecond: Double(trainedSeen) / max(loopSeconds, 1e-9),
            seconds: seconds, output: output)
    }

    /// A batch as tensors: next-token targets (labels shifted left, -100 where nothing is
    /// trained) and, when rows hold several samples or padding, positions and segment ids.
    struct BatchTensors {
        var ids: Tensor
        var targets: Tensor
        var layout: TokenLayout

        init(ids: Tensor, targets: Tensor, layout: TokenLayout) {
            self.ids = ids
            self.targets = targets
            self.layout = layout
        }

        init(_ batch: Batch) {
            let rows = batch.rowCount, length = batch.length
            ids = Tensor(batch.ids.flatMap { $0 }, shape: [rows, length])
            let targets = batch.labels.flatMap { Array($0.dropFirst()) + [Int32(ignoredLabel)] }
            self.targets = Tensor(targets, shape: [rows * length])
            let simple = batch.segments.allSatisfy { $0.allSatisfy { $0 == 0 } }
            // One sample per row (maybe padded): positions are 0..<T wherever they matter.
            let unpacked = zip(batch.segments, batch.positions).allSatisfy { segments, positions in
                positions.indices.allSatisfy { segments[$0] < 0 || (segments[$0] == 0 && positions[$0] == Int32($0)) }
            }
            layout = TokenLayout(
                positions: Tensor(batch.positions.flatMap { $0 }, shape: [rows, length]),
                segments: simple ? nil : Tensor(batch.segments.flatMap { $0 }, shape: [rows, length]),
                sharedOffset: unpacked ? 0 : nil)
        }
    }

    /// Σ −log p(target) over the batch's trained tokens, by the fused linear cross-entropy. In a
    /// training step (`gradients` not `.none`) its gradients come out of the forward.
    static func lossSum(
        _ network: CausalLanguageModel, _ inputs: BatchTensors, gradients: CrossEntropyGradients = .none
    ) -> Tensor {
        let hidden = network.hiddenStates(inputs.ids, layout: inputs.layout)
        let flat = hidden.reshaped(-1, hidden.dim(-1))
        return Kernels.linearCrossEntropy(
            hidden: flat, weight: network.outputWeight, targets: inputs.targets,
            ignoreIndex: Int32(ignoredLabel), gradientsInForward: gradients).lossSum
    }

    /// Batches of the recipe's shape: shuffled by the recipe's seed for training, one pass in
    /// order for evaluation.
    func makeLoader(
        _ samples: [TokenizedSample], lm: LanguageModel, shuffle: Bool, cursor: DataCursor = DataCursor()
    ) throws -> DataLoader {
        try DataLoader(
            samples: samples, batchSize: recipe.batchSize, maxLength: recipe.maxLength,
            packing: recipe.packing ? .firstFitDecreasing : .none, shuffle: shuffle,
            seed: shuffle ? recipe.seed : 0, padTokenID: DataLoader.padTokenID(for: lm.tokenizer),
            epochs: shuffle ? nil : 1, cursor: cursor)
    }

    /// Mean token loss over the eval samples (no dropout, no gradient), recorded in the metrics
    /// and the log.
    func evaluate(
        _ network: CausalLanguageModel, _ samples: [TokenizedSample], lm: LanguageModel, step: Int,
        metrics: MetricsLog, label: String
    ) throws -> Float {
        network.setLoRADropout(seed: nil)
        var loader = try makeLoader(samples, lm: lm, shuffle: false)
        var total = 0.0, count = 0
        while let batch = loader.next() {
            let sum = Self.lossSum(network, BatchTensors(batch))
            total += Double(sum.item(Float.self))
            count += batch.trainedTokenCount
        }
        let loss = Float(total / Double(max(count, 1)))
        let perplexity = Foundation.exp(Double(loss))
        try metrics.append(["step": step, "eval_loss": Double(loss), "eval_perplexity": perplexity])
        log(String(format: "%@ eval loss %.4f  perplexity %.2f", label, loss, perplexity))
        return loss
    }

    /// The outputs a user takes away: a PEFT adapter folder (LoRA) or a full model folder.
    func saveOutputs(lm: LanguageModel, modelDirectory: URL) throws {
        let network = lm.network
        switch recipe.method {
        case .lora, .qlora:
            try PEFTAdapter.save(model: network, configuration: recipe.lora, baseModel: modelDirectory.path, to: output)
        case .full:
            let dtype = DType(huggingFaceName: network.configuration.storageDType ?? "float32") ?? .float32
            try network.save(
                to: output, dtype: dtype,
                configJSON: FileManager.default.contents(atPath: modelDirectory.appendingPathComponent("config.json").path))
            try copyTokenizerFiles(from: modelDirectory, to: output)
        }
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s / 60 % 60)
            : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
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

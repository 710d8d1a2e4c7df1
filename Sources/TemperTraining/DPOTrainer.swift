import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperPEFT

/// Direct preference optimisation's recipe: the shared core plus TRL's DPO fields.
@dynamicMemberLookup
public struct DPORecipe: MethodRecipe, Equatable {
    public var core = TrainingRecipe()
    public var beta: Float = 0.1
    public var lossType: [DPOLossType] = [.sigmoid]
    public var lossWeights: [Float]?
    public var labelSmoothing: Float = 0
    public var discopopTau: Float = 0.05
    public var ldAlpha: Float?
    public var useWeighting = false
    public var fDivergenceType: FDivergence = .reverseKL
    public var fAlphaDivergenceCoef: Float = 0.5
    /// Temper's additions to TRL 1.16 (which has `max_length` only): the prompt keeps its end, each
    /// completion its start.
    public var maxPromptLength: Int?
    public var maxCompletionLength: Int?
    /// How `max_length` cuts each prompt + completion row.
    public var truncationMode: TruncationMode = .keepStart
    /// The reference's log-probs computed in one pass before training and cached beside the output.
    public var precomputeRefLogps = false
    /// With full fine-tuning, how the frozen reference copy is stored.
    public var referenceDType: FrozenDType = .float32
    public var columns = PreferenceColumns()

    public init() {
        core.learningRate = 5e-6
        core.maxLength = 1024
    }

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<TrainingRecipe, T>) -> T {
        get { core[keyPath: keyPath] }
        set { core[keyPath: keyPath] = newValue }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case beta, columns
        case lossType = "loss_type", lossWeights = "loss_weights", labelSmoothing = "label_smoothing"
        case discopopTau = "discopop_tau", ldAlpha = "ld_alpha", useWeighting = "use_weighting"
        case fDivergenceType = "f_divergence_type", fAlphaDivergenceCoef = "f_alpha_divergence_coef"
        case maxPromptLength = "max_prompt_length", maxCompletionLength = "max_completion_length"
        case truncationMode = "truncation_mode", precomputeRefLogps = "precompute_ref_log_probs"
        case referenceDType = "reference_dtype"
    }

    public static var methodFieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        self.init()
        let defaults = self
        core = try TrainingRecipe(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // The core's defaults are SFT's; DPO's differ where TRL's do.
        let top = try decoder.container(keyedBy: TrainingRecipe.CodingKeys.self)
        if !top.contains(.learningRate) { core.learningRate = defaults.core.learningRate }
        if !top.contains(.maxLength) { core.maxLength = defaults.core.maxLength }
        beta = try c.decodeIfPresent(Float.self, forKey: .beta) ?? beta
        // One name, a comma-separated string of names, or a list of names.
        let names = try (try? c.decode(String.self, forKey: .lossType)).map { $0.split(separator: ",").map(String.init) }
            ?? c.decodeIfPresent([String].self, forKey: .lossType)
        if let names {
            lossType = try names.map {
                try DPOLossType.decoded($0.trimmingCharacters(in: .whitespaces), codingPath: c.codingPath + [CodingKeys.lossType])
            }
        }
        lossWeights = try c.decodeIfPresent([Float].self, forKey: .lossWeights)
        labelSmoothing = try c.decodeIfPresent(Float.self, forKey: .labelSmoothing) ?? labelSmoothing
        discopopTau = try c.decodeIfPresent(Float.self, forKey: .discopopTau) ?? discopopTau
        ldAlpha = try c.decodeIfPresent(Float.self, forKey: .ldAlpha)
        useWeighting = try c.decodeIfPresent(Bool.self, forKey: .useWeighting) ?? useWeighting
        fDivergenceType = try c.decodeChoice(.fDivergenceType, fDivergenceType)
        fAlphaDivergenceCoef = try c.decodeIfPresent(Float.self, forKey: .fAlphaDivergenceCoef) ?? fAlphaDivergenceCoef
        maxPromptLength = try c.decodeIfPresent(Int.self, forKey: .maxPromptLength)
        maxCompletionLength = try c.decodeIfPresent(Int.self, forKey: .maxCompletionLength)
        truncationMode = try c.decodeChoice(.truncationMode, truncationMode)
        precomputeRefLogps = try c.decodeIfPresent(Bool.self, forKey: .precomputeRefLogps) ?? precomputeRefLogps
        referenceDType = try c.decodeChoice(.referenceDType, referenceDType)
        columns = try c.decodeIfPresent(PreferenceColumns.self, forKey: .columns) ?? columns
    }

    public func encode(to encoder: any Encoder) throws {
        try core.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(beta, forKey: .beta)
        try c.encode(lossType.map(\.rawValue), forKey: .lossType)
        try c.encodeIfPresent(lossWeights, forKey: .lossWeights)
        try c.encode(labelSmoothing, forKey: .labelSmoothing)
        try c.encode(discopopTau, forKey: .discopopTau)
        try c.encodeIfPresent(ldAlpha, forKey: .ldAlpha)
        try c.encode(useWeighting, forKey: .useWeighting)
        try c.encode(fDivergenceType, forKey: .fDivergenceType)
        try c.encode(fAlphaDivergenceCoef, forKey: .fAlphaDivergenceCoef)
        try c.encodeIfPresent(maxPromptLength, forKey: .maxPromptLength)
        try c.encodeIfPresent(maxCompletionLength, forKey: .maxCompletionLength)
        try c.encode(truncationMode, forKey: .truncationMode)
        try c.encode(precomputeRefLogps, forKey: .precomputeRefLogps)
        try c.encode(referenceDType, forKey: .referenceDType)
        try c.encode(columns, forKey: .columns)
    }

    public var lossSettings: DPOLossSettings {
        var s = DPOLossSettings()
        s.beta = beta
        s.lossTypes = lossType
        s.lossWeights = lossWeights
        s.labelSmoothing = labelSmoothing
        s.discopopTau = discopopTau
        s.ldAlpha = ldAlpha
        s.useWeighting = useWeighting
        s.fDivergence = fDivergenceType
        s.fAlphaDivergenceCoefficient = fAlphaDivergenceCoef
        return s
    }

    public func validate() throws {
        try core.validate()
        try lossSettings.validate(file: core.sourceFile)
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalidRecipe(field: field, reason: reason, file: core.sourceFile) }
        }
        try check((maxPromptLength ?? 1) > 0, "max_prompt_length", "must be positive")
        try check((maxCompletionLength ?? 1) > 0, "max_completion_length", "must be positive")
        try check(referenceDType == .float32 || core.method == .full, "reference_dtype", "applies to method full only (LoRA's reference is the base with adapters off)")
    }
}

/// Where the reference's log-probs come from.
public enum ReferencePolicy {
    /// LoRA/QLoRA from fresh adapters: the same model with its adapters switched off.
    case adaptersDisabled
    /// Continuing an adapter: the model with the adapter as it was loaded (its tensors kept aside).
    case initialAdapters([String: Tensor])
    /// Full fine-tuning: a frozen copy.
    case frozenCopy(CausalLanguageModel)

    /// The reference's Σ log p of the given pairs, each computed as a batch of its own two rows:
    /// a pair's values then do not depend on which pairs share its batch (or their padding), so a
    /// precomputed run and an on-the-fly run train on the same numbers to the last bit.
    public func logProbs(_ model: CausalLanguageModel, pairs indices: [Int], of loader: PreferenceLoader, ldAlpha: Float?) throws -> (
        chosen: Tensor, rejected: Tensor
    ) {
        var chosen: [Tensor] = [], rejected: [Tensor] = []
        for index in indices {
            let (c, r) = try logProbs(model, DPOBatch(loader.makeBatch([index]), ldAlpha: ldAlpha))
            chosen.append(c)
            rejected.append(r)
        }
        return (Tensor.concatenated(chosen, axis: 0), Tensor.concatenated(rejected, axis: 0))
    }

    /// The reference's Σ log p of each pair's completions.
    public func logProbs(_ model: CausalLanguageModel, _ batch: DPOBatch) throws -> (chosen: Tensor, rejected: Tensor) {
        try evaluating(model) { DPOObjective.sequenceLogProbs($0, batch) }
    }

    /// Runs `body` on the reference: the policy `model` with its adapters off or back at their
    /// starting values (restored afterwards), or the frozen copy.
    public func evaluating<T>(_ model: CausalLanguageModel, _ body: (CausalLanguageModel) throws -> T) throws -> T {
        switch self {
        case .adaptersDisabled:
            return try model.withAdaptersDisabled { try body(model) }
        case .initialAdapters(let initial):
            let current = model.loraParameters
            try model.update(parameters: initial)
            defer { try? model.update(parameters: current) }
            return try body(model)
        case .frozenCopy(let reference):
            return try body(reference)
        }
    }

    /// The reference of a run: with LoRA/QLoRA the base with adapters off, or (continuing an
    /// adapter) the adapter as loaded; with full fine-tuning a frozen copy of the model folder.
    static func of(_ core: TrainingRecipe, _ prepared: PreparedModel, frozenDType: FrozenDType = .float32) throws -> ReferencePolicy {
        switch core.method {
        case .full:
            let copy = try CausalLanguageModel.load(directory: prepared.directory)
            if frozenDType == .bfloat16 { copy.storeFrozenProjections(.bfloat16) }
            return .frozenCopy(copy)
        case .lora, .qlora:
            return core.adapter == nil ? .adaptersDisabled : .initialAdapters(prepared.network.loraParameters)
        }
    }

    public var summary: String {
        switch self {
        case .adaptersDisabled: "the base model (adapters switched off)"
        case .initialAdapters: "the model with the starting adapter, frozen as loaded"
        case .frozenCopy: "a frozen copy of the starting model"
        }
    }
}

/// DPO (full, LoRA, QLoRA) on the shared training engine: ``TrainStep`` over ``DPOObjective``,
/// ``TrainingLoop``, ``Checkpointer``; the output is a PEFT adapter or a model folder, as SFT's.
public final class DPOTrainer {
    public let recipe: DPORecipe
    let log: (String) -> Void
    let output: URL

    public init(recipe: DPORecipe, log: @escaping (String) -> Void) {
        self.recipe = recipe
        self.log = log
        output = URL(fileURLWithPath: recipe.output)
    }

    public func run(
        resume: Bool = false, cancellation: CancellationFlag? = nil, events: ((TrainingEvent) -> Void)? = nil
    ) throws -> TrainingSummary {
        try recipe.validate()
        let start = Date()
        let prepared = try PreparedModel(recipe.core, log: log)
        let lm = prepared.lm, network = prepared.network
        let dataset = try PreferenceDataset.prepare(
            trainFiles: recipe.data.map { URL(fileURLWithPath: $0) },
            evalFiles: recipe.evalData.map { URL(fileURLWithPath: $0) },
            encoder: encoder(lm), columns: recipe.columns,
            invalidRecordPolicy: recipe.skipInvalidRecords ? .skip : .abort,
            evalFraction: Double(recipe.evalFraction), seed: recipe.seed)
        log("preference pairs: \(dataset.train.count) train, \(dataset.eval.count) eval"
            + (dataset.skipped.isEmpty ? "" : ", \(dataset.skipped.count) skipped"))

        let reference = try makeReference(prepared)
        log("reference: \(reference.summary)")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let precomputed = try recipe.precomputeRefLogps
            ? ReferenceCache.load(or: { try computeAll(dataset, reference: reference, model: network, lm: lm) },
                                  at: output, fingerprint: fingerprint(), log: log)
            : nil

        let parallel = try DataParallel.fromEnvironment()
        let run = try TrainingRun(
            core: recipe.core, recipeJSON: try recipe.jsonData(), prepared: prepared, resume: resume, dataParallel: parallel, log: log)
        // Data parallel: every rank walks the global batches (N × the batch size, in the same order)
        // and trains on its own pairs of each.
        let ranks = parallel?.group.size ?? 1, rank = parallel?.group.rank ?? 0
        var loader = try PreferenceLoader(
            pairs: dataset.train, batchSize: recipe.batchSize * ranks, maxLength: recipe.maxLength,
            truncationMode: recipe.truncationMode, shuffle: true, seed: recipe.seed,
            padTokenID: DataLoader.padTokenID(for: lm.tokenizer), cursor: run.cursor)
        let (stepsPerEpoch, totalSteps) = run.totalSteps(batchesPerEpoch: loader.batchesPerEpoch)
        log("training \(totalSteps) steps (\(stepsPerEpoch) per epoch), \(recipe.batchSize) pairs per micro-batch, grad accum \(recipe.gradAccum), loss \(recipe.lossType.map(\.rawValue).joined(separator: "+")) beta \(recipe.beta)")

        let objective = DPOObjective(settings: recipe.lossSettings)
        let ldAlpha = recipe.ldAlpha
        let evalLoader = try pairLoader(dataset.eval, lm: lm)
        func withReference(_ batch: Batch, eval: Bool) throws -> DPOBatch {
            var dpo = DPOBatch(batch, ldAlpha: ldAlpha)
            if let precomputed {
                (dpo.referenceChosen, dpo.referenceRejected) = precomputed.logProbs(dpo.pairIndices, eval: eval)
            } else {
                (dpo.referenceChosen, dpo.referenceRejected) = try reference.logProbs(
                    network, pairs: dpo.pairIndices, of: eval ? evalLoader : loader, ldAlpha: ldAlpha)
            }
            return dpo
        }
        return try run.train(
            objective, totalSteps: totalSteps, start: start, progressMetrics: ["rewards/accuracies", "rewards/margins"],
            nextMicroBatch: {
                try loader.nextIndices().map { indices in
                    try withReference(loader.makeBatch(ranks > 1 ? try Self.share(of: indices, rank: rank, ranks: ranks) : indices), eval: false)
                }
            },
            tokenCounts: { ($0.tokens.tokenCount, $0.tokens.trainedTokenCount) }, cursor: { loader.cursor },
            evaluate: dataset.eval.isEmpty ? nil : { [self] _ in
                try evaluate(objective, network, dataset.eval, lm: lm) { try withReference($0, eval: true) }
            },
            cancellation: cancellation, events: events)
    }

    /// Rank `rank`'s pairs of a global batch: an even split (consecutive runs of the batch size when
    /// the batch is full). A batch with fewer pairs than ranks cannot be split.
    static func share(of indices: [Int], rank: Int, ranks: Int) throws -> [Int] {
        guard indices.count >= ranks else {
            throw TrainingError.invalidRecipe(
                field: "batch_size",
                reason: "a batch of \(indices.count) pairs (the end of an epoch) cannot be shared by \(ranks) ranks; use a pair count that fills the ranks, or fewer ranks")
        }
        return Array(indices[(indices.count * rank / ranks)..<(indices.count * (rank + 1) / ranks)])
    }

    func encoder(_ lm: LanguageModel) -> PreferenceEncoder {
        PreferenceEncoder(
            tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxPromptLength: recipe.maxPromptLength,
            maxCompletionLength: recipe.maxCompletionLength, maxLength: recipe.maxLength,
            truncationMode: recipe.truncationMode)
    }

    /// One pass over `pairs` in order, batched as the recipe says.
    func pairLoader(_ pairs: [TokenizedPair], lm: LanguageModel) throws -> PreferenceLoader {
        try PreferenceLoader(
            pairs: pairs, batchSize: recipe.batchSize, maxLength: recipe.maxLength, truncationMode: recipe.truncationMode,
            shuffle: false, padTokenID: DataLoader.padTokenID(for: lm.tokenizer), epochs: 1)
    }

    func makeReference(_ prepared: PreparedModel) throws -> ReferencePolicy {
        try ReferencePolicy.of(recipe.core, prepared, frozenDType: recipe.referenceDType)
    }

    /// Loss and metrics over `pairs` (no dropout, no gradient), named `eval_…`.
    func evaluate(
        _ objective: DPOObjective, _ network: CausalLanguageModel, _ pairs: [TokenizedPair], lm: LanguageModel,
        batch: (Batch) throws -> DPOBatch
    ) throws -> [String: Double] {
        network.setLoRADropout(seed: nil)
        var loader = try pairLoader(pairs, lm: lm)
        var sums: [String: Double] = [:]
        var count = 0
        while let next = loader.next() {
            let dpo = try batch(next)
            let (loss, metrics) = objective.evaluate(model: network, batch: dpo)
            for (name, value) in metrics.merging(["loss": loss], uniquingKeysWith: { a, _ in a }) {
                sums["eval_" + name, default: 0] += Double(value.item(Float.self)) * Double(dpo.pairCount)
            }
            count += dpo.pairCount
        }
        return sums.mapValues { $0 / Double(max(count, 1)) }
    }

    /// The reference's log-probs of every train and eval pair, in order.
    func computeAll(
        _ dataset: PreferenceDataset, reference: ReferencePolicy, model: CausalLanguageModel, lm: LanguageModel
    ) throws -> ReferenceCache {
        model.setLoRADropout(seed: nil)
        func pass(_ pairs: [TokenizedPair]) throws -> (chosen: [Float], rejected: [Float]) {
            guard !pairs.isEmpty else { return ([], []) }
            let (c, r) = try reference.logProbs(
                model, pairs: Array(pairs.indices), of: try pairLoader(pairs, lm: lm), ldAlpha: recipe.ldAlpha)
            return (c.toArray(Float.self), r.toArray(Float.self))
        }
        let start = Date()
        let train = try pass(dataset.train), eval = try pass(dataset.eval)
        log(String(format: "reference log-probs of %d pairs computed in %.1f s", dataset.train.count + dataset.eval.count,
                   Date().timeIntervalSince(start)))
        return ReferenceCache(trainChosen: train.chosen, trainRejected: train.rejected, evalChosen: eval.chosen, evalRejected: eval.rejected)
    }

    /// What the cached reference log-probs depend on: the model (config and weight files), the
    /// starting adapter, the data files' bytes and every setting that changes the tokens or the sums.
    func fingerprint() throws -> String {
        var hash = FNV1a()
        let model = URL(fileURLWithPath: recipe.model)
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: model.path)) ?? []).sorted()
        for name in files where name.hasSuffix(".json") || name.hasSuffix(".safetensors") {
            let url = model.appendingPathComponent(name)
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            hash.add("\(name):\(attributes[.size] ?? 0):\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
            if name.hasSuffix(".json") { hash.add(FileManager.default.contents(atPath: url.path) ?? Data()) }
        }
        if let adapter = recipe.adapter {
            for name in ["adapter_config.json", "adapter_model.safetensors"] {
                hash.add(FileManager.default.contents(atPath: URL(fileURLWithPath: adapter).appendingPathComponent(name).path) ?? Data())
            }
        }
        for file in recipe.data + ["--eval--"] + recipe.evalData {
            hash.add(file)
            hash.add(FileManager.default.contents(atPath: file) ?? Data())
        }
        hash.add("\(recipe.maxLength) \(recipe.maxPromptLength ?? -1) \(recipe.maxCompletionLength ?? -1) \(recipe.truncationMode.rawValue) \(recipe.ldAlpha ?? -1) \(recipe.evalFraction) \(recipe.seed) \(recipe.method.rawValue) \(recipe.referenceDType.rawValue) \(recipe.quantization.rawValue) \(recipe.doubleQuantization)")
        return String(format: "%016llx", hash.value)
    }
}

/// The reference's log-probs of every pair, cached in `<output>/reference-logps.safetensors` with
/// the fingerprint of what they were computed from; a different fingerprint recomputes them.
struct ReferenceCache {
    var trainChosen: [Float], trainRejected: [Float], evalChosen: [Float], evalRejected: [Float]

    func logProbs(_ indices: [Int], eval: Bool) -> (Tensor, Tensor) {
        let (chosen, rejected) = eval ? (evalChosen, evalRejected) : (trainChosen, trainRejected)
        return (Tensor(indices.map { chosen[$0] }, shape: [indices.count]), Tensor(indices.map { rejected[$0] }, shape: [indices.count]))
    }

    static func load(or compute: () throws -> ReferenceCache, at output: URL, fingerprint: String, log: (String) -> Void) throws -> ReferenceCache {
        let url = output.appendingPathComponent("reference-logps.safetensors")
        if let file = try? Safetensors.load(url), file.metadata["fingerprint"] == fingerprint {
            let t = file.tensors
            if let a = t["train.chosen"], let b = t["train.rejected"], let c = t["eval.chosen"], let d = t["eval.rejected"] {
                log("reference log-probs: cached in \(url.lastPathComponent) (fingerprint \(fingerprint))")
                return ReferenceCache(
                    trainChosen: a.toArray(Float.self), trainRejected: b.toArray(Float.self),
                    evalChosen: c.toArray(Float.self), evalRejected: d.toArray(Float.self))
            }
        }
        let cache = try compute()
        func tensor(_ values: [Float]) -> Tensor { Tensor(values, shape: [values.count]) }
        try Safetensors.save(
            ["train.chosen": tensor(cache.trainChosen), "train.rejected": tensor(cache.trainRejected),
             "eval.chosen": tensor(cache.evalChosen), "eval.rejected": tensor(cache.evalRejected)],
            metadata: ["fingerprint": fingerprint], to: url)
        log("reference log-probs: written to \(url.lastPathComponent) (fingerprint \(fingerprint))")
        return cache
    }
}

/// 64-bit FNV-1a: a fast fingerprint for cache invalidation (not a security hash).
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ data: Data) {
        for byte in data { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        value = (value ^ 0xFF) &* 0x0000_0100_0000_01B3  // a separator, so "ab"+"c" ≠ "a"+"bc"
    }

    mutating func add(_ text: String) { add(Data(text.utf8)) }
}

/// How a model itself ranks held-out pairs, for before/after comparisons.
public enum PreferenceEvaluation {
    /// The share of `pairs` whose chosen completion has the higher mean per-token log-prob under
    /// `model` (the length-normalised preference: summed log-probs would favour short answers
    /// whatever the model learned).
    public static func lengthNormalisedAccuracy(_ model: CausalLanguageModel, pairs: [TokenizedPair], padTokenID: Int) throws -> Double {
        model.setLoRADropout(seed: nil)
        var loader = try PreferenceLoader(pairs: pairs, batchSize: 4, maxLength: nil, shuffle: false, padTokenID: padTokenID, epochs: 1)
        var wins = 0
        while let batch = loader.next() {
            let dpo = DPOBatch(batch, ldAlpha: nil)
            let (chosen, rejected) = DPOObjective.sequenceLogProbs(model, dpo)
            let p = dpo.pairCount
            for (index, (c, r)) in zip(chosen.toArray(Float.self), rejected.toArray(Float.self)).enumerated() {
                let chosenMean = c / Float(max(1, dpo.completionTokens[index]))
                let rejectedMean = r / Float(max(1, dpo.completionTokens[index + p]))
                if chosenMean > rejectedMean { wins += 1 }
            }
        }
        return Double(wins) / Double(max(1, pairs.count))
    }
}

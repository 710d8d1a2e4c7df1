import Foundation
import TemperCore
import TemperData
import TemperEngine
import TemperModels
import TemperNN
import TemperTokenizers

/// GRPO (full, LoRA, QLoRA) on the shared training engine, with rollouts on the project's own
/// inference engine in the same process: each generation batch samples `num_generations`
/// completions per prompt (the prompt prefilled once per group), scores them with the reward
/// functions, turns the group-normalised rewards into advantages and feeds `steps_per_generation`
/// micro-batches (reused `num_iterations` times) to ``TrainStep`` over ``GRPOObjective``. The engine
/// reads the very tensors the optimizer updates, so new weights need no reload.
public final class GRPOTrainer {
    public let recipe: GRPORecipe
    /// Reward functions besides the recipe's named ones (Swift closures, …), scored after them.
    public let extraRewards: [any RewardFunction]
    let log: (String) -> Void

    public init(recipe: GRPORecipe, rewards: [any RewardFunction] = [], log: @escaping (String) -> Void) {
        self.recipe = recipe
        extraRewards = rewards
        self.log = log
    }

    public func run(
        resume: Bool = false, cancellation: CancellationFlag? = nil, events: ((TrainingEvent) -> Void)? = nil
    ) throws -> TrainingSummary {
        try recipe.validate()
        let start = Date()
        let rewards = try RewardSpec.parse(
            recipe.rewards, maxCompletionLength: recipe.maxCompletionLength, timeout: recipe.rewardTimeout) + extraRewards
        guard !rewards.isEmpty else {
            throw TrainingError.invalidRecipe(field: "rewards", reason: "name at least one reward function (\(RewardSpec.knownNames))")
        }
        if let weights = recipe.rewardWeights, weights.count != rewards.count {
            throw TrainingError.invalidRecipe(
                field: "reward_weights", reason: "needs one weight per reward function (\(rewards.count)), got \(weights.count)")
        }
        let prepared = try PreparedModel(recipe.core, log: log)
        let lm = prepared.lm
        let encoder = PromptEncoder(
            tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, maxPromptLength: recipe.maxPromptLength,
            maxCompletionLength: recipe.maxCompletionLength, contextLength: lm.network.configuration.maxPositionEmbeddings)
        let policy: InvalidRecordPolicy = recipe.skipInvalidRecords ? .skip : .abort
        let train = try encoder.prepare(recipe.data.map { URL(fileURLWithPath: $0) }, column: recipe.promptColumn, invalidRecordPolicy: policy)
        let eval = recipe.evalData.isEmpty ? [] : try encoder.prepare(
            recipe.evalData.map { URL(fileURLWithPath: $0) }, column: recipe.promptColumn, invalidRecordPolicy: policy).prompts
        log("prompts: \(train.prompts.count) train, \(eval.count) eval" + (train.skipped.isEmpty ? "" : ", \(train.skipped.count) skipped")
            + "; rewards: " + rewards.map(\.name).joined(separator: ", "))
        let reference = recipe.beta != 0 ? try ReferencePolicy.of(recipe.core, prepared, frozenDType: recipe.referenceDType) : nil
        if let reference { log("reference: \(reference.summary)") }

        let parallel = try DataParallel.fromEnvironment()
        let run = try TrainingRun(
            core: recipe.core, recipeJSON: try recipe.jsonData(), prepared: prepared, resume: resume, dataParallel: parallel, log: log)
        let ranks = parallel?.group.size ?? 1
        let engine = InferenceEngine(model: lm, configuration: .init(
            kvCacheBytes: recipe.kvCacheMB << 20, maxRunningSequences: max(recipe.promptsPerGeneration * recipe.numGenerations, 64),
            prefixCaching: false))
        defer { engine.shutdownAndWait() }
        let rollouts = GRPORollouts(
            recipe: recipe, prompts: train.prompts, engine: engine, network: prepared.network, rewards: rewards,
            reference: reference, padTokenID: DataLoader.padTokenID(for: lm.tokenizer), cursor: run.cursor, dataParallel: parallel)
        let spg = recipe.resolvedStepsPerGeneration
        let generationsPerEpoch = max(1, train.prompts.count / (recipe.promptsPerGeneration * ranks))
        let (_, totalSteps) = run.totalSteps(batchesPerEpoch: generationsPerEpoch * spg * recipe.numIterations)
        log("training \(totalSteps) steps: \(recipe.promptsPerGeneration) prompts × \(recipe.numGenerations) completions per generation, "
            + "\(spg) micro-batches of \(recipe.batchSize) per generation, grad accum \(recipe.gradAccum), loss \(recipe.lossType.rawValue)"
            + " beta \(recipe.beta)"
            + (ranks > 1 ? ", rank \(parallel!.group.rank) of \(ranks) (\(recipe.promptsPerGeneration * ranks) prompts per generation in all)" : ""))
        let evaluate: ((Int) throws -> [String: Double])? = eval.isEmpty ? nil : { _ in try rollouts.evaluate(eval) }
        if let evaluate, run.resumed == nil {
            let before = try evaluate(0)
            log("before training " + before.keys.sorted().map { String(format: "%@ %.4f", $0, before[$0]!) }.joined(separator: "  "))
            events?(.eval(EvalEvent(step: 0, label: "before training", metrics: before)))
        }
        return try run.train(
            GRPOObjective(settings: recipe.lossSettings), totalSteps: totalSteps, start: start,
            progressMetrics: ["reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "kl", "timing/generation_seconds"],
            nextMicroBatch: { try rollouts.next() }, tokenCounts: { ($0.tokenCount, $0.trainedTokenCount) },
            cursor: { rollouts.cursor }, evaluate: evaluate, cancellation: cancellation, events: events)
    }
}

/// The rollouts of a GRPO run: prompts in a seeded order per epoch (resumable from a cursor),
/// generation batches sampled on the engine, scored, and split into micro-batches.
///
/// Data parallel: every rank walks the same prompt order, N × `promptsPerGeneration` prompts a
/// generation, and samples only its own consecutive share (each prompt with the seed of its place
/// in the order, as one process would). The rewards are gathered, so the advantages (batch-wide
/// scaling included) and the reward metrics are the whole generation batch's; each rank shuffles
/// and trains on its own rows. An optimizer step that covers whole generation batches
/// (`grad_accum` a multiple of `steps_per_generation`) is then one process's with N × the batch.
final class GRPORollouts {
    let recipe: GRPORecipe
    let prompts: [TokenizedPrompt]
    let engine: InferenceEngine
    let network: CausalLanguageModel
    let rewards: [any RewardFunction]
    let reference: ReferencePolicy?
    let padTokenID: Int
    let dataParallel: DataParallel?
    var ranks: Int { dataParallel?.group.size ?? 1 }
    var rank: Int { dataParallel?.group.rank ?? 0 }
    /// The next prompt to sample: epoch and position in that epoch's order.
    private(set) var cursor: DataCursor
    private var order: [Int]
    private var buffer: [GRPOBatch] = []
    private var served = 0
    /// Prompt and completion tokens sampled so far (TRL's `num_tokens`).
    private var tokensSeen = 0

    init(
        recipe: GRPORecipe, prompts: [TokenizedPrompt], engine: InferenceEngine, network: CausalLanguageModel,
        rewards: [any RewardFunction], reference: ReferencePolicy?, padTokenID: Int, cursor: DataCursor,
        dataParallel: DataParallel? = nil
    ) {
        self.dataParallel = dataParallel
        self.recipe = recipe
        self.prompts = prompts
        self.engine = engine
        self.network = network
        self.rewards = rewards
        self.reference = reference
        self.padTokenID = padTokenID
        self.cursor = cursor
        order = Shuffling.permutation(count: prompts.count, seed: Shuffling.epochSeed(recipe.seed, epoch: cursor.epoch))
    }

    /// The next micro-batch, sampling a new generation batch once the current one has been used
    /// `num_iterations` times.
    func next() throws -> GRPOBatch? {
        if served == buffer.count * recipe.numIterations {
            buffer = try generate()
            served = 0
        }
        var batch = buffer[served % buffer.count]
        // A reused generation batch reports no generation metrics again (as TRL).
        if served >= buffer.count { batch.generationMetrics = [:] }
        served += 1
        return batch
    }

    /// One sampled group per prompt: each sample's tokens (its stop id included), their log-probs
    /// under the sampling distribution, and whether it hit the length limit.
    struct Group {
        var tokens: [[Int]] = []
        var logProbs: [[Float]] = []
        var truncated: [Bool] = []
    }

    /// Runs `requests` together on the engine (continuous batching) and collects each one's group.
    func sample(_ requests: [EngineRequest]) throws -> [Group] {
        let logProbs = LockedBox(requests.map { [[Float]](repeating: [], count: $0.sampleCount) })
        let finished = try engine.generate(all: requests) { index, event in
            if case .token(let token) = event { logProbs.mutate { $0[index][token.sample].append(token.logProb) } }
        }
        let collected = logProbs.value
        return zip(finished, collected).map { samples, logProbs in
            Group(
                tokens: samples.map(\.tokens), logProbs: samples.map { logProbs[$0.sample] },
                truncated: samples.map { $0.reason == .length })
        }
    }

    /// Samples, scores and splits one generation batch.
    func generate() throws -> [GRPOBatch] {
        let g = recipe.numGenerations
        var picked: [(prompt: TokenizedPrompt, seed: UInt64)] = []
        let share = (recipe.promptsPerGeneration * rank)..<(recipe.promptsPerGeneration * (rank + 1))
        for position in 0..<(recipe.promptsPerGeneration * ranks) {
            if cursor.index >= order.count {
                cursor = DataCursor(epoch: cursor.epoch + 1, index: 0)
                order = Shuffling.permutation(count: prompts.count, seed: Shuffling.epochSeed(recipe.seed, epoch: cursor.epoch))
            }
            // Each visit of a prompt has its own seed, so a resumed run samples what it would have.
            var mixer = SplitMix64(seed: Shuffling.epochSeed(recipe.seed &+ 0x9e37, epoch: cursor.epoch) ^ UInt64(cursor.index))
            if share.contains(position) { picked.append((prompts[order[cursor.index]], mixer.next())) }
            cursor.index += 1
        }
        let sampling = RequestSamplingParameters(
            temperature: recipe.temperature, topK: recipe.topK, topP: recipe.topP, minP: recipe.minP,
            repetitionPenalty: recipe.repetitionPenalty)
        let generationStart = Date()
        let groups = try sample(picked.map {
            EngineRequest(
                prompt: $0.prompt.ids, sampling: sampling, maxNewTokens: recipe.maxCompletionLength, sampleCount: g, seed: $0.seed,
                stopAtEndOfSequence: recipe.stopAtEndOfSequence)
        })
        let generationSeconds = Date().timeIntervalSince(generationStart)

        // Rows prompt-major: row r is sample r % G of prompt r / G.
        var rowPrompts: [TokenizedPrompt] = [], completions: [[Int]] = [], logProbs: [[Float]] = [], truncated: [Bool] = []
        for (pick, group) in zip(picked, groups) {
            precondition(group.tokens.count == g, "the engine returned \(group.tokens.count) samples for a group of \(g)")
            rowPrompts += Array(repeating: pick.prompt, count: g)
            completions += group.tokens
            logProbs += group.logProbs
            truncated += group.truncated
        }
        let rewardStart = Date()
        let tokenizer = engine.model.tokenizer
        let inputs = zip(rowPrompts, zip(completions, truncated)).map { prompt, completion in
            RewardInput(
                prompt: prompt.text, completion: tokenizer.decode(completion.0, skipSpecialTokens: true),
                completionTokens: completion.0.count, truncated: completion.1, fields: prompt.fields)
        }
        var scores = [[Double?]](repeating: [], count: inputs.count)
        for function in rewards {
            let values: [Double?]
            do {
                values = try function.rewards(inputs)
            } catch {
                // The error names the reward; the path names the batch's prompts.
                let sources = rowPrompts.map(\.source.description).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                throw TrainingError.invalidData(path: sources.joined(separator: ", "), reason: error.localizedDescription)
            }
            guard values.count == inputs.count else {
                throw TrainingError.invalidData(
                    path: "reward '\(function.name)'", reason: "returned \(values.count) rewards for \(inputs.count) completions")
            }
            for (row, value) in values.enumerated() { scores[row].append(value) }
        }
        let rewardSeconds = Date().timeIntervalSince(rewardStart)

        // The whole generation batch's rewards, lengths and truncations (every rank's, in rank order:
        // one process's row order); this rank's rows are `localRows` of them.
        let localRows = (completions.count * rank)..<(completions.count * (rank + 1))
        var whole = GenerationRecord(
            scores: scores, lengths: completions.map(\.count), truncated: truncated,
            tokens: rowPrompts.reduce(0) { $0 + $1.ids.count } + completions.reduce(0) { $0 + $1.count })
        if let dataParallel { whole = whole.gathered(by: dataParallel) }
        let advantages = GRPOAdvantages(
            rewards: whole.scores, names: rewards.map(\.name), weights: recipe.rewardWeights, groupSize: g,
            scaling: recipe.scaleRewards, aggregation: recipe.multiObjectiveAggregation)
        let rowAdvantages = Array(advantages.advantages[localRows])
        tokensSeen += whole.tokens
        let completionTokens = whole.lengths.reduce(0, +)
        var metrics = advantages.metrics.merging(completionLengthMetrics(lengths: whole.lengths, truncated: whole.truncated)) { a, _ in a }
        metrics["num_tokens"] = Double(tokensSeen)
        metrics["timing/generation_seconds"] = generationSeconds
        metrics["timing/reward_seconds"] = rewardSeconds
        metrics["generation/tokens_per_second"] = Double(completionTokens) / max(generationSeconds, 1e-9)

        // TRL shuffles the rows before splitting them into micro-batches.
        var rows = Array(0..<completions.count)
        // (Each rank its own shuffle of its own rows; rank 0's is one process's.)
        var shuffler = SplitMix64(seed: Shuffling.epochSeed(recipe.seed &+ 0x5eed, epoch: cursor.epoch) ^ UInt64(cursor.index) ^ UInt64(rank) << 48)
        rows.shuffle(using: &shuffler)
        let masked = truncated.map { $0 && recipe.maskTruncatedCompletions }
        let generationTokens = zip(whole.lengths, whole.truncated).reduce(0) { $0 + ($1.1 && recipe.maskTruncatedCompletions ? 0 : $1.0) }
        let spg = recipe.resolvedStepsPerGeneration
        // TRL compares against stored old log-probs only when the policy moves within a generation batch.
        let needsOld = recipe.gradAccum % (spg * recipe.numIterations) != 0
        let samplerIsExact = recipe.topK == 0 && recipe.topP >= 1 && recipe.minP == 0 && recipe.repetitionPenalty == 1
        let referenceStart = Date()
        var batches: [GRPOBatch] = []
        for chunk in 0..<spg {
            let slice = Array(rows[(chunk * recipe.batchSize)..<((chunk + 1) * recipe.batchSize)])
            var batch = GRPOBatch(
                prompts: slice.map { rowPrompts[$0].ids }, completions: slice.map { completions[$0] },
                advantages: slice.map { rowAdvantages[$0] }, padTokenID: padTokenID, masked: slice.map { masked[$0] },
                generationTokens: generationTokens, stepsPerGeneration: spg, generationMetrics: metrics)
            batch.ranks = ranks
            if needsOld {
                if samplerIsExact {
                    // The sampler's log-probs are the tempered, untruncated distribution's: exactly π_old.
                    let width = batch.completionWidth
                    let values = slice.flatMap { logProbs[$0] + Array(repeating: 0, count: width - logProbs[$0].count) }
                    batch.oldLogProbs = Tensor(values, shape: [slice.count, width]) * batch.completionMask
                } else {
                    batch.oldLogProbs = CompletionTokenStatistics.logProbs(network, batch, temperature: recipe.temperature)
                }
            }
            if let reference {
                let current = batch
                batch.referenceLogProbs = try reference.evaluating(network) {
                    CompletionTokenStatistics.logProbs($0, current, temperature: recipe.temperature)
                }
            }
            batches.append(batch)
        }
        if reference != nil || (needsOld && !samplerIsExact) {
            let seconds = Date().timeIntervalSince(referenceStart)
            for index in batches.indices { batches[index].generationMetrics["timing/log_prob_seconds"] = seconds }
        }
        return batches
    }

    /// What a generation batch's rewards and advantages are computed from: each row's rewards (one
    /// per function), completion length and truncation, and the batch's prompt and completion tokens.
    struct GenerationRecord {
        var scores: [[Double?]]
        var lengths: [Int]
        var truncated: [Bool]
        var tokens: Int

        /// Every rank's record, concatenated in rank order (each rank holds as many rows); a nil
        /// reward travels as NaN, which the advantages read as nil anyway.
        func gathered(by dataParallel: DataParallel) -> GenerationRecord {
            let width = scores.first?.count ?? 0, rows = lengths.count
            let flatScores = dataParallel.gather(scores.flatMap { row in row.map { $0 ?? Double.nan } })
            let counts = dataParallel.gather(lengths + truncated.map { $0 ? 1 : 0 } + [tokens])
            var whole = GenerationRecord(
                scores: stride(from: 0, to: flatScores.count, by: max(width, 1)).map { start in
                    flatScores[start..<(start + width)].map { $0.isNaN ? nil : $0 }
                },
                lengths: [], truncated: [], tokens: 0)
            for start in stride(from: 0, to: counts.count, by: 2 * rows + 1) {
                whole.lengths += counts[start..<(start + rows)]
                whole.truncated += counts[(start + rows)..<(start + 2 * rows)].map { $0 == 1 }
                whole.tokens += counts[start + 2 * rows]
            }
            return whole
        }
    }

    /// Greedy answers to the held-out prompts, scored: `eval_reward`, `eval_rewards/<name>/mean`,
    /// `eval_completions/mean_length`.
    func evaluate(_ prompts: [TokenizedPrompt]) throws -> [String: Double] {
        let groups = try sample(prompts.map {
            EngineRequest(prompt: $0.ids, sampling: .greedy, maxNewTokens: recipe.maxCompletionLength)
        })
        let tokenizer = engine.model.tokenizer
        let inputs = zip(prompts, groups).map { prompt, group in
            RewardInput(
                prompt: prompt.text, completion: tokenizer.decode(group.tokens[0], skipSpecialTokens: true),
                completionTokens: group.tokens[0].count, truncated: group.truncated[0], fields: prompt.fields)
        }
        var metrics: [String: Double] = [:]
        var total = [Double](repeating: 0, count: inputs.count)
        for (index, function) in rewards.enumerated() {
            let values = try function.rewards(inputs)
            let present = values.compactMap { $0 }
            metrics["eval_rewards/\(function.name)/mean"] = present.isEmpty ? .nan : present.reduce(0, +) / Double(present.count)
            let weight = recipe.rewardWeights?[index] ?? 1
            for (row, value) in values.enumerated() { total[row] += (value ?? 0) * weight }
        }
        metrics["eval_reward"] = total.reduce(0, +) / Double(max(1, total.count))
        metrics["eval_completions/mean_length"] = Double(inputs.reduce(0) { $0 + $1.completionTokens }) / Double(max(1, inputs.count))
        return metrics
    }
}

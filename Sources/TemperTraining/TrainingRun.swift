import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN

/// What every method's trainer does around its objective: resume from the newest checkpoint, the
/// ``TrainStep`` with the recipe's optimizer, `recipe.json`, the event log, the ``TrainingLoop``,
/// the outputs and the summary.
struct TrainingRun {
    let core: TrainingRecipe
    let prepared: PreparedModel
    let output: URL
    let checkpointer: Checkpointer
    let identity: [String: String]
    /// The checkpoint resumed from, if any.
    let resumed: CheckpointState?
    let trainStep: TrainStep
    let log: (String) -> Void
    /// The ranks of a data-parallel run (`temper launch`); only rank 0 writes files.
    let dataParallel: DataParallel?
    var writesFiles: Bool { dataParallel?.group.isMain ?? true }

    /// Where the data's order starts: the resumed checkpoint's cursor, or the beginning.
    var cursor: DataCursor { resumed?.cursor ?? DataCursor() }
    var firstStep: Int { resumed?.step ?? 0 }

    init(
        core: TrainingRecipe, recipeJSON: Data, prepared: PreparedModel, resume: Bool, dataParallel: DataParallel? = nil,
        log: @escaping (String) -> Void
    ) throws {
        self.core = core
        self.dataParallel = dataParallel
        self.prepared = prepared
        self.log = log
        output = URL(fileURLWithPath: core.output)
        checkpointer = Checkpointer(output: output, keep: core.keepCheckpoints)
        identity = core.checkpointIdentity
        let checkpoint = resume ? checkpointer.latest : nil
        let (checkpointer, identity) = (checkpointer, identity)
        resumed = try checkpoint.map { try checkpointer.state(of: $0, identity: identity) }
        trainStep = TrainStep(
            model: prepared.network, trainableNames: prepared.trainableNames, optimizer: core.makeOptimizer(),
            maxGradientNorm: core.maxGradNorm, dropoutSeed: core.lora.dropout > 0 ? core.seed : nil)
        trainStep.dataParallel = dataParallel
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        if dataParallel?.group.isMain ?? true { try writeFileAtomically(recipeJSON, to: output.appendingPathComponent("recipe.json")) }
        if let checkpoint, let resumed {
            try checkpointer.restore(checkpoint, state: resumed, model: prepared.network, optimizer: &trainStep.optimizer)
            log("resumed from \(checkpoint.lastPathComponent) at step \(resumed.step)")
        }
    }

    /// The steps per epoch and the run's total, from `max_steps` or `epochs`.
    func totalSteps(batchesPerEpoch: Int) -> (perEpoch: Int, total: Int) {
        let perEpoch = max(1, batchesPerEpoch / core.gradAccum)
        return (perEpoch, core.maxSteps ?? max(1, Int((Float(perEpoch) * (core.epochs ?? 1)).rounded(.up))))
    }

    /// Runs the loop to `totalSteps`, then writes the outputs (unless cancelled) and sums up.
    func train<O: Objective>(
        _ objective: O, totalSteps: Int, start: Date, progressMetrics: [String] = [],
        nextMicroBatch: @escaping () throws -> O.Batch?, tokenCounts: @escaping (O.Batch) -> (tokens: Int, trained: Int),
        cursor: @escaping () -> DataCursor, evaluate: ((_ step: Int) throws -> [String: Double])?,
        cancellation: CancellationFlag?, events: ((TrainingEvent) -> Void)?
    ) throws -> TrainingSummary {
        let eventLog = try TrainingEventLog(
            output: output, resumedStep: resumed?.step, logEvery: core.logEvery, progressMetrics: progressMetrics,
            writesMetrics: writesFiles, log: log)
        let (checkpointer, identity, trainStep, network, names, writesFiles) =
            (checkpointer, identity, trainStep, prepared.network, prepared.trainableNames, writesFiles)
        var loop = TrainingLoop(
            trainStep: trainStep, objective: objective,
            schedule: LearningRateSchedule(kind: core.schedule, peak: core.learningRate, warmupSteps: core.warmupSteps, totalSteps: totalSteps),
            gradientAccumulation: core.gradAccum, evalEvery: core.evalEvery, saveEvery: core.saveEvery,
            nextMicroBatch: nextMicroBatch, tokenCounts: tokenCounts, epoch: { cursor().epoch }, evaluate: evaluate,
            saveCheckpoint: { step, _ in
                // The other ranks hold the same state; rank 0 alone writes it.
                guard writesFiles else { return checkpointer.folder(step: step) }
                return try checkpointer.save(
                    CheckpointState(step: step, cursor: cursor(), optimizerStep: trainStep.optimizer.step, identity: identity),
                    model: network, trainableNames: names, optimizer: trainStep.optimizer)
            },
            cancellation: cancellation)
        let finished = try loop.run(from: firstStep) { event in
            try eventLog.handle(event)
            events?(event)
        }
        if !finished.cancelled, writesFiles { try prepared.saveOutputs(core, to: output) }
        return TrainingSummary(
            steps: finished.steps, firstLoss: eventLog.firstLoss, lastLoss: eventLog.lastLoss, finalEval: eventLog.lastEval,
            trainableParameters: prepared.report.trainableParameters, totalParameters: prepared.report.totalParameters,
            tokensPerSecond: Double(eventLog.tokens) / max(finished.seconds, 1e-9),
            trainedTokensPerSecond: Double(eventLog.trainedTokens) / max(finished.seconds, 1e-9),
            seconds: Date().timeIntervalSince(start), cancelled: finished.cancelled, output: output)
    }
}

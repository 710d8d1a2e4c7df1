import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN

/// What a training run reports as it goes; the CLI prints these and `metrics.jsonl` records them.
public enum TrainingEvent: Sendable {
    case step(StepEvent)
    case eval(EvalEvent)
    case checkpoint(step: Int, folder: URL)
    case finished(FinishedEvent)
}

public struct StepEvent: Sendable {
    /// 1-based number of the step just taken.
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    public var learningRate: Float
    public var gradientNorm: Float
    /// Tokens the step's samples hold, and those that carried loss.
    public var tokens: Int
    public var trainedTokens: Int
    public var seconds: Double
    public var elapsedSeconds: Double
    public var etaSeconds: Double
    public var epoch: Int
    public var peakMemoryMB: Double
    /// The objective's metrics, TRL's names (`rewards/chosen`, …).
    public var metrics: [String: Double]
}

public struct EvalEvent: Sendable {
    public var step: Int
    /// "step N" or "final".
    public var label: String
    /// `eval_loss`, `eval_perplexity`, `eval_rewards/accuracies`, …
    public var metrics: [String: Double]
}

public struct FinishedEvent: Sendable {
    public var steps: Int
    public var seconds: Double
    /// Stopped early by a cancellation (after a checkpoint).
    public var cancelled: Bool
}

/// A flag another thread (a signal handler, the gallery's worker) sets to stop a run; the loop
/// checks it between steps, writes a checkpoint and returns.
public final class CancellationFlag: @unchecked Sendable {
    // Safe: the one stored value is read and written under `lock` only.
    private let lock = NSLock()
    private var value = false

    public init() {}

    public var isCancelled: Bool { lock.withLock { value } }

    public func cancel() { lock.withLock { value = true } }
}

/// The loop every method shares: the schedule, one ``TrainStep`` per optimizer step over
/// `gradientAccumulation` micro-batches, evaluation and checkpoint timing, progress (ETA),
/// cancellation and the non-finite-loss stop, reported as ``TrainingEvent``s.
public struct TrainingLoop<O: Objective> {
    public var trainStep: TrainStep
    public var objective: O
    public var schedule: LearningRateSchedule
    public var gradientAccumulation: Int
    /// 0: only at the end.
    public var evalEvery: Int
    /// 0: only at the end.
    public var saveEvery: Int
    /// The next micro-batch, nil when the data is exhausted.
    public var nextMicroBatch: () throws -> O.Batch?
    /// (tokens, trained tokens) of a micro-batch, for throughput.
    public var tokenCounts: (O.Batch) -> (tokens: Int, trained: Int)
    /// The data's current epoch.
    public var epoch: () -> Int
    /// Evaluation at a step: metrics named `eval_…`.
    public var evaluate: ((_ step: Int) throws -> [String: Double])?
    /// Writes a checkpoint after `step` steps (the objective's state given), returns its folder.
    public var saveCheckpoint: (_ step: Int, _ objective: O) throws -> URL
    public var cancellation: CancellationFlag?

    public init(
        trainStep: TrainStep, objective: O, schedule: LearningRateSchedule, gradientAccumulation: Int,
        evalEvery: Int, saveEvery: Int, nextMicroBatch: @escaping () throws -> O.Batch?,
        tokenCounts: @escaping (O.Batch) -> (tokens: Int, trained: Int), epoch: @escaping () -> Int,
        evaluate: ((_ step: Int) throws -> [String: Double])?,
        saveCheckpoint: @escaping (_ step: Int, _ objective: O) throws -> URL, cancellation: CancellationFlag? = nil
    ) {
        self.trainStep = trainStep
        self.objective = objective
        self.schedule = schedule
        self.gradientAccumulation = gradientAccumulation
        self.evalEvery = evalEvery
        self.saveEvery = saveEvery
        self.nextMicroBatch = nextMicroBatch
        self.tokenCounts = tokenCounts
        self.epoch = epoch
        self.evaluate = evaluate
        self.saveCheckpoint = saveCheckpoint
        self.cancellation = cancellation
    }

    /// Runs steps `firstStep..<schedule.totalSteps`, then the final evaluation and checkpoint.
    public mutating func run(from firstStep: Int, emit: (TrainingEvent) throws -> Void) throws -> FinishedEvent {
        let totalSteps = schedule.totalSteps
        let loopStart = Date()
        var lastCheckpoint: URL?
        var step = firstStep
        while step < totalSteps {
            // Data parallel: the ranks stop together, at the same step (any rank's cancel stops all).
            var cancelled = cancellation?.isCancelled ?? false
            if let dataParallel = trainStep.dataParallel { cancelled = dataParallel.sum(cancelled ? 1 : 0) > 0 }
            if cancelled {
                let folder = try saveCheckpoint(step, objective)
                try emit(.checkpoint(step: step, folder: folder))
                let finished = FinishedEvent(steps: step, seconds: Date().timeIntervalSince(loopStart), cancelled: true)
                try emit(.finished(finished))
                return finished
            }
            let stepStart = Date()
            var batches: [O.Batch] = []
            for _ in 0..<gradientAccumulation {
                if let batch = try nextMicroBatch() { batches.append(batch) }
            }
            if batches.isEmpty { break }
            let rate = schedule.rate(at: step)
            let result = try trainStep(objective, microBatches: batches, step: step, learningRate: rate)
            guard result.loss.isFinite else {
                throw TrainingError.nonFiniteLoss(step: step + 1, checkpoint: lastCheckpoint?.path)
            }
            objective.stepTaken(metrics: result.metrics)
            step += 1
            let counts = batches.map(tokenCounts)
            var tokens = [counts.reduce(0) { $0 + $1.tokens }, counts.reduce(0) { $0 + $1.trained }]
            // Data parallel: the whole step's tokens, every rank's.
            if let dataParallel = trainStep.dataParallel { tokens = dataParallel.sum(tokens) }
            let elapsed = Date().timeIntervalSince(loopStart)
            try emit(.step(StepEvent(
                step: step, totalSteps: totalSteps, loss: result.loss, learningRate: rate,
                gradientNorm: result.gradientNorm, tokens: tokens[0],
                trainedTokens: tokens[1], seconds: Date().timeIntervalSince(stepStart),
                elapsedSeconds: elapsed, etaSeconds: elapsed / Double(step - firstStep) * Double(totalSteps - step),
                epoch: epoch(), peakMemoryMB: Double(Memory.peakBytes) / 1_048_576, metrics: result.metrics)))
            if let evaluate, evalEvery > 0, step % evalEvery == 0, step < totalSteps {
                try emit(.eval(EvalEvent(step: step, label: "step \(step)", metrics: try evaluate(step))))
            }
            if saveEvery > 0, step % saveEvery == 0, step < totalSteps {
                let folder = try saveCheckpoint(step, objective)
                lastCheckpoint = folder
                try emit(.checkpoint(step: step, folder: folder))
            }
        }
        let seconds = Date().timeIntervalSince(loopStart)
        if let evaluate {
            try emit(.eval(EvalEvent(step: totalSteps, label: "final", metrics: try evaluate(totalSteps))))
        }
        let folder = try saveCheckpoint(totalSteps, objective)
        try emit(.checkpoint(step: totalSteps, folder: folder))
        let finished = FinishedEvent(steps: totalSteps, seconds: seconds, cancelled: false)
        try emit(.finished(finished))
        return finished
    }
}

/// Turns training events into progress lines and `metrics.jsonl` records (one JSON object per
/// line, flushed as the run goes, which the gallery plots), and keeps what a summary needs.
public final class TrainingEventLog {
    let metrics: FileHandle
    let log: (String) -> Void
    let logEvery: Int
    /// Metric names printed on the progress line after the loss, when present.
    let progressMetrics: [String]
    public private(set) var firstLoss: Float?
    public private(set) var lastLoss: Float?
    public private(set) var lastEval: [String: Double] = [:]
    public private(set) var tokens = 0
    public private(set) var trainedTokens = 0
    public private(set) var lastStepMetrics: [String: Double] = [:]

    /// Opens `metrics.jsonl` in `output`: a resumed run keeps the records up to `resumedStep`
    /// and rewrites what follows; a fresh run starts it empty.
    /// `writesMetrics` false (a data-parallel rank other than 0): progress lines only.
    public init(
        output: URL, resumedStep: Int?, logEvery: Int = 1, progressMetrics: [String] = [], writesMetrics: Bool = true,
        log: @escaping (String) -> Void
    ) throws {
        self.log = log
        self.logEvery = max(1, logEvery)
        self.progressMetrics = progressMetrics
        guard writesMetrics else {
            metrics = FileHandle.nullDevice
            return
        }
        let url = output.appendingPathComponent("metrics.jsonl")
        if let resumedStep {
            try Self.truncate(url, afterStep: resumedStep)
        } else {
            try? FileManager.default.removeItem(at: url)
        }
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw TrainingError.unreadableFile(path: url.path, reason: "cannot open for writing")
        }
        handle.seekToEndOfFile()
        metrics = handle
    }

    deinit { try? metrics.close() }

    public func handle(_ event: TrainingEvent) throws {
        switch event {
        case .step(let e):
            firstLoss = firstLoss ?? e.loss
            lastLoss = e.loss
            tokens += e.tokens
            trainedTokens += e.trainedTokens
            lastStepMetrics = e.metrics
            var record: [String: Any] = [
                "step": e.step, "loss": Double(e.loss), "learning_rate": Double(e.learningRate),
                "grad_norm": Double(e.gradientNorm), "tokens": e.tokens, "trained_tokens": e.trainedTokens,
                "tokens_per_second": Double(e.tokens) / e.seconds, "epoch": Double(e.epoch),
                "elapsed_seconds": e.elapsedSeconds, "peak_memory_mb": e.peakMemoryMB,
            ]
            for (name, value) in e.metrics { record[name] = value }
            try append(record)
            if e.step % logEvery == 0 || e.step == e.totalSteps {
                let extra = progressMetrics.compactMap { name in
                    e.metrics[name].map { String(format: "  %@ %.4f", name, $0) }
                }.joined()
                log(String(format: "step %d/%d  loss %.4f%@  lr %.2e  grad norm %.3f  %.0f tok/s  peak %.0f MB  ETA %@",
                           e.step, e.totalSteps, e.loss, extra, e.learningRate, e.gradientNorm,
                           Double(e.tokens) / e.seconds, e.peakMemoryMB, formatDuration(e.etaSeconds)))
            }
        case .eval(let e):
            lastEval = e.metrics
            var record: [String: Any] = ["step": e.step]
            for (name, value) in e.metrics { record[name] = value }
            try append(record)
            log("\(e.label) " + e.metrics.keys.sorted().map { String(format: "%@ %.4f", $0, e.metrics[$0]!) }
                .joined(separator: "  "))
        case .checkpoint:
            break
        case .finished(let e):
            if e.cancelled { log("stopped at step \(e.steps) (cancelled); resume with --resume") }
        }
    }

    func append(_ record: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        line.append(0x0A)
        metrics.write(line)
    }

    /// Keeps only the records of steps ≤ `step` (a resumed run rewrites what follows).
    static func truncate(_ url: URL, afterStep step: Int) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { return }
        let kept = data.split(separator: 0x0A).filter { line in
            let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            return (record?["step"] as? Int ?? 0) <= step
        }
        var out = Data()
        for line in kept { out.append(contentsOf: line); out.append(0x0A) }
        try writeFileAtomically(out, to: url)
    }
}

/// "42s", "3m05s", "1h02m".
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s / 60 % 60)
        : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
}

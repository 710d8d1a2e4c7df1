import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperNN
import TemperPEFT
import TemperTraining

/// DPO with LoRA at a fixed shape (pairs of random prompt and completion ids): Temper's trainer
/// step (the reference with adapters off, then ``TrainStep`` over ``DPOObjective``) against TRL's
/// DPOTrainer. Each side runs as its own process per round, alternating, so each one's peak RSS
/// is its own; rounds where other processes used the CPU are dropped.
public struct DPOBenchmark {
    public struct Pair: Codable, Sendable {
        public var promptIDs: [Int]
        public var chosenIDs: [Int]
        public var rejectedIDs: [Int]

        enum CodingKeys: String, CodingKey {
            case promptIDs = "prompt_ids", chosenIDs = "chosen_ids", rejectedIDs = "rejected_ids"
        }
    }

    /// One side's run: per-step seconds after the untimed first step, and the process's peak RSS.
    public struct Run: Codable, Sendable {
        public var stepSeconds: [Double]
        public var pairsPerSecond: Double
        public var peakRSSMB: Double

        enum CodingKeys: String, CodingKey {
            case stepSeconds = "step_seconds", pairsPerSecond = "pairs_per_second", peakRSSMB = "peak_rss_mb"
        }
    }

    public struct Round: Codable, Sendable {
        public var temper: Run
        public var trl: Run?
        public var otherCoresDuringTemper: Double
        public var otherCoresDuringTRL: Double?
        public var dropped: Bool
    }

    public struct Report: Codable, Sendable {
        public var batch: Int
        public var promptLength: Int
        public var completionLength: Int
        public var rank: Int
        public var steps: Int
        /// Temper's run: bf16 frozen weights and gradient checkpointing.
        public var lean: Bool
        /// TRL's run: float32 without checkpointing instead of its defaults (bf16 autocast, checkpointing).
        public var fp32Peer: Bool
        public var rounds: [Round]

        var kept: [Round] { rounds.filter { !$0.dropped } }

        /// TRL's step time over ours within each kept round (medians of each side's steps).
        public var pairedSpeedups: [Double] {
            kept.compactMap { round in round.trl.map { median($0.stepSeconds) / median(round.temper.stepSeconds) } }
        }

        public var table: String {
            let header = ["round", "temper s/step", "temper pairs/s", "temper RSS MB", "trl s/step", "trl pairs/s", "trl RSS MB", "×trl pairs/s", "RSS ratio", "other cores (temper/trl)", "kept"]
            let body = rounds.enumerated().map { index, r -> [String] in
                [String(index + 1), String(format: "%.2f", median(r.temper.stepSeconds)), String(format: "%.2f", r.temper.pairsPerSecond),
                 String(format: "%.0f", r.temper.peakRSSMB),
                 r.trl.map { String(format: "%.2f", median($0.stepSeconds)) } ?? "-",
                 r.trl.map { String(format: "%.2f", $0.pairsPerSecond) } ?? "-",
                 r.trl.map { String(format: "%.0f", $0.peakRSSMB) } ?? "-",
                 r.trl.map { String(format: "%.2f", r.temper.pairsPerSecond / $0.pairsPerSecond) } ?? "-",
                 r.trl.map { String(format: "%.2f", r.temper.peakRSSMB / $0.peakRSSMB) } ?? "-",
                 String(format: "%.2f/%@", r.otherCoresDuringTemper, r.otherCoresDuringTRL.map { String(format: "%.2f", $0) } ?? "-"),
                 r.dropped ? "dropped" : "yes"]
            }
            var text = formatTable(header: header, rows: body)
            if !pairedSpeedups.isEmpty {
                let rss = kept.compactMap { r in r.trl.map { r.temper.peakRSSMB / $0.peakRSSMB } }
                text += String(format: "\npaired ×trl pairs/s: median %.2f (%.2f-%.2f) over %d kept rounds; RSS ratio median %.2f",
                               median(pairedSpeedups), pairedSpeedups.min()!, pairedSpeedups.max()!, pairedSpeedups.count, median(rss))
            }
            return text
        }
    }

    /// Random pairs: ids drawn from [300, vocabulary) so no special token appears.
    public static func pairs(count: Int, promptLength: Int, completionLength: Int, vocabulary: Int, seed: UInt64 = 7) -> [Pair] {
        var generator = SplitMix64(seed: seed)
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in 300 + generator.next(below: vocabulary - 300) } }
        return (0..<count).map { _ in Pair(promptIDs: ids(promptLength), chosenIDs: ids(completionLength), rejectedIDs: ids(completionLength)) }
    }

    /// Temper's side in this process: `steps` trainer steps of `batch` pairs (the first untimed).
    public static func worker(
        modelDirectory: URL, pairs: [Pair], steps: Int, batch: Int, rank: Int, lean: Bool
    ) throws -> Run {
        let model = try CausalLanguageModel.load(directory: modelDirectory)
        var lora = LoRAConfiguration()
        (lora.rank, lora.alpha, lora.dropout) = (rank, Float(2 * rank), 0.05)
        _ = try model.prepareAdapters(lora, storage: lean ? .bfloat16 : .float32, seed: 0)
        model.gradientCheckpointing = lean
        let location = SourceLocation(file: "bench", line: 0)
        let tokenized = pairs.map { TokenizedPair(prompt: $0.promptIDs, chosen: $0.chosenIDs, rejected: $0.rejectedIDs, source: location) }
        var loader = try PreferenceLoader(pairs: tokenized, batchSize: batch, maxLength: nil, shuffle: false, padTokenID: 0)
        let trainStep = TrainStep(
            model: model, trainableNames: model.loraParameters.keys.sorted(), optimizer: AdamW(), maxGradientNorm: 1, dropoutSeed: 0)
        let objective = DPOObjective(settings: DPOLossSettings())
        var seconds: [Double] = []
        for step in 0..<steps {
            let start = Date()
            guard let next = loader.next() else { break }
            var dpo = DPOBatch(next, ldAlpha: nil)
            (dpo.referenceChosen, dpo.referenceRejected) = try ReferencePolicy.adaptersDisabled.logProbs(
                model, pairs: dpo.pairIndices, of: loader, ldAlpha: nil)
            _ = try trainStep(objective, microBatches: [dpo], step: step, learningRate: 5e-6)
            if step > 0 || steps == 1 { seconds.append(Date().timeIntervalSince(start)) }
        }
        let total = seconds.reduce(0, +)
        return Run(
            stepSeconds: seconds, pairsPerSecond: Double(seconds.count * batch) / total,
            peakRSSMB: Double(ResidentMemory.peakBytes) / 1_048_576)
    }

    public var modelDirectory: URL
    public var temperBinary: URL
    public var python: String?
    public var peerScript: URL
    public var batch = 2
    public var promptLength = 128
    public var completionLength = 128
    public var rank = 16
    public var steps = 4
    public var rounds = 3
    public var contentionLimit = 0.25
    public var fp32Peer = false
    /// Temper with bf16 frozen weights and gradient checkpointing (TRL's defaults checkpoint too).
    public var lean = false

    public init(modelDirectory: URL, temperBinary: URL, python: String?, peerScript: URL) {
        self.modelDirectory = modelDirectory
        self.temperBinary = temperBinary
        self.python = python
        self.peerScript = peerScript
    }

    /// Runs `executable arguments` as a child and parses its last stdout line as a ``Run``.
    static func child(_ executable: URL, _ arguments: [String]) throws -> (Run, otherCores: Double) {
        let (line, others) = try runChild(executable, arguments)
        return (try JSONDecoder().decode(Run.self, from: line), others)
    }

    public func run(progress: (String) -> Void) throws -> Report {
        let configuration = try ModelConfiguration.load(modelDirectory.appendingPathComponent("config.json"))
        let pairs = Self.pairs(
            count: batch * steps, promptLength: promptLength, completionLength: completionLength,
            vocabulary: configuration.vocabularySize)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("temper-bench-dpo-\(getpid()).json")
        try JSONEncoder().encode(pairs).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var report = Report(
            batch: batch, promptLength: promptLength, completionLength: completionLength, rank: rank, steps: steps,
            lean: lean, fp32Peer: fp32Peer, rounds: [])
        for round in 1...rounds {
            let (temper, temperOthers) = try Self.child(
                temperBinary, ["bench", "dpo", "--worker", file.path, "--model", modelDirectory.path, "--steps", "\(steps)",
                               "--batch", "\(batch)", "--rank", "\(rank)"] + (lean ? ["--lean"] : []))
            var trl: Run?, trlOthers: Double?
            if let python {
                let (run, others) = try Self.child(
                    URL(fileURLWithPath: python),
                    [peerScript.path, modelDirectory.path, file.path, "\(steps)", "\(batch)"] + (fp32Peer ? ["fp32"] : []))
                (trl, trlOthers) = (run, others)
            }
            let dropped = temperOthers > contentionLimit || (trlOthers ?? 0) > contentionLimit
            report.rounds.append(Round(temper: temper, trl: trl, otherCoresDuringTemper: temperOthers, otherCoresDuringTRL: trlOthers, dropped: dropped))
            progress(String(format: "round %d: temper %.2f s/step (%.0f MB)%@, others %.2f/%@ cores%@", round, median(temper.stepSeconds), temper.peakRSSMB,
                            trl.map { String(format: ", trl %.2f s/step (%.0f MB)", median($0.stepSeconds), $0.peakRSSMB) } ?? "",
                            temperOthers, trlOthers.map { String(format: "%.2f", $0) } ?? "-", dropped ? " (dropped)" : ""))
        }
        return report
    }
}

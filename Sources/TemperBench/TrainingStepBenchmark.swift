import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTraining

/// One optimizer step of fine-tuning (forward, backward, AdamW) on a real model at a fixed
/// shape with every token labelled: Temper with its fused kernels, Temper on MLX's default ops,
/// and PyTorch + transformers + peft (a peer script), alternating in each round.
public struct TrainingStepBenchmark {
    public struct Row: Codable, Sendable {
        public var method: String
        public var batch: Int
        public var length: Int
        public var temperSeconds: Double
        public var mlxDefaultSeconds: Double?
        public var torchSeconds: Double?
        public var temperTokensPerSecond: Double
        public var torchTokensPerSecond: Double?
        /// MLX's peak allocated memory during the step.
        public var temperPeakMB: Double
        /// The process's peak resident set during the step (the peer's is measured the same way).
        public var temperPeakRSSMB: Double?
        public var torchPeakRSSMB: Double?
        /// Matmul FLOPs of the step ÷ the measured matmul rate: the step's floor on this machine.
        public var matmulSeconds: Double
        public var matmulGFLOPS: Double
        public var roundsKept: Int
        public var roundsDropped: Int
        /// Each kept round's step time, in round order, so the two sides pair up.
        public var temperRoundSeconds: [Double] = []
        public var torchRoundSeconds: [Double] = []

        /// The step's matmul work done per second by a stack taking `seconds`, as a share of the
        /// measured matmul peak (1 = the step is nothing but matmuls at full speed).
        public func peakShare(seconds: Double) -> Double { matmulSeconds / seconds }

        /// The peer's time over Temper's within each round: on a noisy host a slow minute slows
        /// both sides of a round, so the median of these is steadier than a ratio of medians.
        public var pairedSpeedups: [Double] {
            torchRoundSeconds.count == temperRoundSeconds.count ? zip(torchRoundSeconds, temperRoundSeconds).map { $0 / $1 } : []
        }

        /// Temper's peak RSS over the peer's (the target is at most 0.5).
        public var rssRatio: Double? {
            guard let ours = temperPeakRSSMB, let theirs = torchPeakRSSMB, theirs > 0 else { return nil }
            return ours / theirs
        }
    }

    public var modelDirectory: URL
    public var methods: [String]
    public var batch: Int
    public var length: Int
    public var rank: Int
    public var rounds: Int
    public var compareMLXDefault: Bool
    public var python: String?
    public var peerScript: String
    public var contentionLimit: Double

    public init(
        modelDirectory: URL, methods: [String] = ["lora"], batch: Int = 4, length: Int = 256, rank: Int = 16,
        rounds: Int = 2, compareMLXDefault: Bool = true, python: String?, peerScript: String,
        contentionLimit: Double = 0.25
    ) {
        self.modelDirectory = modelDirectory
        self.methods = methods
        self.batch = batch
        self.length = length
        self.rank = rank
        self.rounds = rounds
        self.compareMLXDefault = compareMLXDefault
        self.python = python
        self.peerScript = peerScript
        self.contentionLimit = contentionLimit
    }

    struct PeerRequest: Encodable {
        var method: String
        var rank: Int
        var ids: [[Int]]
        var steps: Int
    }

    /// Seconds of each of `steps` optimizer steps (after one untimed) of the trainer's own
    /// ``TrainStep``: SFT's objective, global-norm clipping at 1, AdamW.
    static func timeSteps(model: CausalLanguageModel, names: [String], ids: Tensor, steps: Int) -> [Double] {
        let (rows, length) = (ids.dim(0), ids.dim(1))
        let targets = Tensor.concatenated([ids[0..., 1...], Tensor.full([rows, 1], value: -100, dtype: .int32)], axis: 1)
        let batch = TokenBatch(
            ids: ids, targets: targets.reshaped(-1), layout: .contiguous(batch: rows, length: length),
            trainedTokenCount: rows * (length - 1))
        let trainStep = TrainStep(model: model, trainableNames: names, optimizer: AdamW(), maxGradientNorm: 1)
        let objective = SFTObjective(trainsOutputWeight: names.contains(model.outputWeightName))
        var seconds: [Double] = []
        for step in 0...steps {
            let start = Date()
            _ = try? trainStep(objective, microBatches: [batch], step: step, learningRate: 1e-4)
            if step > 0 { seconds.append(Date().timeIntervalSince(start)) }
        }
        return seconds
    }

    /// Matmul FLOPs of one step: projections and LM head forward (2·N·P) and backward into the
    /// inputs (2·N·P), weight gradients (2·N·P) when trained, attention's four T² products ×3.
    static func matmulFLOPs(_ c: ModelConfiguration, tokens: Int, batch: Int, length: Int, full: Bool) -> Double {
        let (d, kv) = (Double(c.hiddenSize), Double(c.keyValueHeadCount * c.headDimension))
        let q = Double(c.headCount * c.headDimension)
        let perLayer = d * q * 2 + d * kv * 2 + 3 * d * Double(c.intermediateSize)
        let projections = Double(c.layerCount) * perLayer + Double(c.vocabularySize) * d
        let n = Double(tokens)
        let linear = (full ? 6 : 4) * n * projections
        let attention = Double(c.layerCount) * 3 * 4 * Double(batch * c.headCount * length * length * c.headDimension) / 2
        return linear + attention
    }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let peer = try python.map { try PeerProcess(python: $0, script: peerScript, arguments: [modelDirectory.path]) }
        var meter = ContentionMeter(peerProcess: peer?.processIdentifier)
        // The matmul peak is re-measured in every kept round and the best taken: a momentary
        // neighbour would otherwise lower the floor for the whole table.
        var matmulGFLOPS = 0.0
        var generator = SplitMix64(seed: 5)
        var rows: [Row] = []
        for method in methods {
            let model = try CausalLanguageModel.load(directory: modelDirectory)
            let vocabulary = model.configuration.vocabularySize
            let idRows = (0..<batch).map { _ in (0..<length).map { _ in Int.random(in: 300..<vocabulary, using: &generator) } }
            let ids = Tensor(idRows.flatMap { $0.map { Int32($0) } }, shape: [batch, length])
            if method == "lora" {
                var lora = LoRAConfiguration()
                lora.rank = rank
                lora.alpha = Float(2 * rank)
                lora.dropout = 0
                try model.addLoRA(lora, seed: 1)
            }
            let names = (method == "lora" ? model.loraParameters : model.parameters()).keys.sorted()
            var ours: [Double] = [], plain: [Double] = [], theirs: [Double] = []
            var dropped = 0
            var peak = 0.0, peakRSS = 0.0, torchPeak: Double?
            for round in 1...rounds {
                meter.begin()
                let roundMatmul = MatmulBenchmark(size: 2048, runs: 3, warmup: 1).run().gflops
                Memory.resetPeak()
                ResidentMemory.resetPeak()
                let t = Self.timeSteps(model: model, names: names, ids: ids, steps: 1)
                peak = max(peak, Double(Memory.peakBytes) / 1_048_576)
                peakRSS = max(peakRSS, Double(ResidentMemory.peakBytes) / 1_048_576)
                var m: [Double] = []
                if compareMLXDefault {
                    m = Kernels.$useFusedKernels.withValue(false) {
                        Self.timeSteps(model: model, names: names, ids: ids, steps: 1)
                    }
                }
                ResidentMemory.returnFreedPages()  // the peer's turn: its model needs the memory
                let answer = try peer?.request(PeerRequest(method: method, rank: rank, ids: idRows, steps: 1))
                let others = meter.otherCores()
                if others > contentionLimit {
                    dropped += 1
                    progress(String(format: "%@ round %d: dropped, other processes used %.2f cores", method, round, others))
                    continue
                }
                matmulGFLOPS = max(matmulGFLOPS, roundMatmul)
                ours += t
                plain += m
                if let s = answer?["seconds"] as? [Double] { theirs += s }
                torchPeak = answer?["peak_rss_mb"] as? Double ?? torchPeak
                progress(String(format: "%@ round %d: temper %.2f s%@%@ (others %.2f cores)", method, round, t.last ?? 0,
                                m.last.map { String(format: ", MLX default ops %.2f s", $0) } ?? "",
                                theirs.last.map { String(format: ", torch+peft %.2f s", $0) } ?? "", others))
            }
            guard !ours.isEmpty else { continue }
            let tokens = Double(batch * length)
            let flops = Self.matmulFLOPs(model.configuration, tokens: batch * length, batch: batch, length: length, full: method == "full")
            rows.append(Row(
                method: method, batch: batch, length: length, temperSeconds: median(ours),
                mlxDefaultSeconds: plain.isEmpty ? nil : median(plain), torchSeconds: theirs.isEmpty ? nil : median(theirs),
                temperTokensPerSecond: tokens / median(ours), torchTokensPerSecond: theirs.isEmpty ? nil : tokens / median(theirs),
                temperPeakMB: peak, temperPeakRSSMB: peakRSS > 0 ? peakRSS : nil, torchPeakRSSMB: torchPeak, matmulSeconds: flops / (matmulGFLOPS * 1e9),
                matmulGFLOPS: matmulGFLOPS, roundsKept: ours.count, roundsDropped: dropped,
                temperRoundSeconds: ours, torchRoundSeconds: theirs))
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        let header = ["method", "shape", "temper s/step", "MLX default s", "torch+peft s", "temper tok/s", "torch tok/s", "×torch", "paired ×torch", "matmul floor s", "rest s", "temper eff. GFLOPS", "torch eff. GFLOPS", "temper MLX MB", "temper RSS MB", "torch RSS MB", "RSS ratio", "rounds"]
        let body = rows.map { r -> [String] in
            [r.method, "\(r.batch)x\(r.length)", String(format: "%.2f", r.temperSeconds),
             r.mlxDefaultSeconds.map { String(format: "%.2f", $0) } ?? "-",
             r.torchSeconds.map { String(format: "%.2f", $0) } ?? "-",
             String(format: "%.0f", r.temperTokensPerSecond),
             r.torchTokensPerSecond.map { String(format: "%.0f", $0) } ?? "-",
             r.torchSeconds.map { String(format: "%.2f", $0 / r.temperSeconds) } ?? "-",
             r.pairedSpeedups.isEmpty ? "-" : String(format: "%.2f (%.2f-%.2f)", median(r.pairedSpeedups),
                                                     r.pairedSpeedups.min()!, r.pairedSpeedups.max()!),
             String(format: "%.2f", r.matmulSeconds), String(format: "%.2f", r.temperSeconds - r.matmulSeconds),
             effective(r, r.temperSeconds), r.torchSeconds.map { effective(r, $0) } ?? "-",
             String(format: "%.0f", r.temperPeakMB), r.temperPeakRSSMB.map { String(format: "%.0f", $0) } ?? "-",
             r.torchPeakRSSMB.map { String(format: "%.0f", $0) } ?? "-",
             r.rssRatio.map { String(format: "%.2f", $0) } ?? "-",
             "\(r.roundsKept)/\(r.roundsKept + r.roundsDropped)"]
        }
        return formatTable(header: header, rows: body)
    }

    /// "GFLOPS (share of the matmul peak)" of a step taking `seconds`.
    static func effective(_ r: Row, _ seconds: Double) -> String {
        String(format: "%.0f (%.0f%%)", r.peakShare(seconds: seconds) * r.matmulGFLOPS, r.peakShare(seconds: seconds) * 100)
    }
}

/// Random-initialized model folders with the shapes of models not shipped here, for benchmarks.
public enum RandomModel {
    /// Qwen2.5-0.5B's shape: hidden 896, 24 layers, 14 heads, 2 KV heads, MLP 4864, vocab 151936,
    /// tied embeddings.
    public static let qwen25_05B = ModelConfiguration(
        modelType: "qwen2", vocabularySize: 151_936, hiddenSize: 896, intermediateSize: 4864, layerCount: 24,
        headCount: 14, keyValueHeadCount: 2, rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true,
        attentionBias: true, maxPositionEmbeddings: 32768, bosTokenID: 151_643, eosTokenIDs: [151_645])

    /// Writes a folder with normal(0, 0.02) weights (norms 1, biases 0).
    public static func write(_ configuration: ModelConfiguration, to folder: URL, seed: UInt64 = 0) throws {
        let model = CausalLanguageModel(configuration: configuration)
        let shapes = model.parameters().mapValues(\.shape)
        let keys = Random.split(Random.key(seed), count: shapes.count)
        var values: [String: Tensor] = [:]
        for (index, name) in shapes.keys.sorted().enumerated() {
            let shape = shapes[name]!
            values[name] = name.hasSuffix("norm.weight") ? Tensor.ones(shape)
                : name.hasSuffix(".bias") ? Tensor.zeros(shape)
                : Random.normal(shape, standardDeviation: 0.02, key: keys[index])
        }
        try model.update(parameters: values)
        try model.save(to: folder)
    }
}

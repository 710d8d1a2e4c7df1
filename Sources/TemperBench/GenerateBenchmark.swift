import Foundation
import TemperCore
import TemperEngine
import TemperModels
import TemperTokenizers

/// Prefill and decode speed of a model folder at several batch sizes, Temper's engine against
/// PyTorch + transformers (a peer script) on identical prompts, alternating in each round.
///
/// Temper's B prompts are submitted together; prefill is the engine's prompt-chunk time and decode
/// the time of its decode steps, which produce all B × N tokens (the first token of each prompt
/// comes from the first decode step, whose input is the prompt's last token).
public struct GenerateBenchmark {
    public struct Row: Codable, Sendable {
        public var batch: Int
        public var promptLength: Int
        public var newTokens: Int
        public var temperPrefillTokensPerSecond: Double
        public var temperDecodeTokensPerSecond: Double
        public var torchPrefillTokensPerSecond: Double?
        public var torchDecodeTokensPerSecond: Double?
        public var roundsKept: Int
        public var roundsDropped: Int
    }

    public var modelDirectory: URL
    public var batches: [Int]
    public var promptLength: Int
    public var newTokens: Int
    public var rounds: Int
    public var python: String?
    public var peerScript: String
    public var contentionLimit: Double
    /// Temper's weights stored weight-only quantized for the run (`--quantize`); PyTorch stays float32.
    public var quantize: WeightOnlyQuantizedMatrix.Format?

    public init(
        modelDirectory: URL, batches: [Int] = [1, 8], promptLength: Int = 128, newTokens: Int = 64,
        rounds: Int = 3, python: String?, peerScript: String, contentionLimit: Double = 0.25
    ) {
        self.modelDirectory = modelDirectory
        self.batches = batches
        self.promptLength = promptLength
        self.newTokens = newTokens
        self.rounds = rounds
        self.python = python
        self.peerScript = peerScript
        self.contentionLimit = contentionLimit
    }

    struct PeerRequest: Encodable {
        var batch: Int
        var prompt_length: Int
        var new_tokens: Int
        var prompts: [[Int]]
    }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let lm = try LanguageModel.load(directory: modelDirectory)
        let model = lm.network
        if let quantize { model.quantizeForInference(quantize) }
        let peer = try python.map { try PeerProcess(python: $0, script: peerScript, arguments: [modelDirectory.path]) }
        var meter = ContentionMeter(peerProcess: peer?.processIdentifier)
        var generator = SplitMix64(seed: 7)
        // Ordinary token ids (avoiding the first few hundred, where special tokens live).
        let vocabulary = model.configuration.vocabularySize
        var rows: [Row] = []
        for batch in batches {
            let prompts = (0..<batch).map { _ in
                (0..<promptLength).map { _ in Int.random(in: 300..<vocabulary, using: &generator) }
            }
            var ours: [(Double, Double)] = [], theirs: [(Double, Double)] = []
            var dropped = 0
            let blockSize = 16
            let engine = InferenceEngine(model: lm, configuration: .init(
                kvCacheBytes: InferenceEngine.bytesPerBlock(model.configuration, blockSize: blockSize)
                    * batch * ((promptLength + newTokens) / blockSize + 2),
                blockSize: blockSize, maxRunningSequences: batch, prefillChunk: 512, prefixCaching: false))
            func generate(_ count: Int) throws -> (prefill: Double, decode: Double) {
                let before = engine.metrics()
                _ = try engine.generate(all: prompts.map {
                    EngineRequest(prompt: $0, maxNewTokens: count, stopAtEndOfSequence: false)
                })
                let after = engine.metrics()
                return (after.prefillSeconds - before.prefillSeconds, after.decodeSeconds - before.decodeSeconds)
            }
            // One untimed warm-up of each side.
            _ = try generate(2)
            for round in 0...rounds {
                meter.begin()
                let (stats, peerDuringOurs) = try meter.peerCores { try generate(newTokens) }
                let answer = try peer?.request(PeerRequest(
                    batch: batch, prompt_length: promptLength, new_tokens: newTokens, prompts: prompts))
                let others = meter.otherCores() + peerDuringOurs
                if round == 0 { continue }  // the peer's warm-up
                if others > contentionLimit {
                    dropped += 1
                    progress(String(format: "batch %d round %d: dropped, other processes used %.2f cores", batch, round, others))
                    continue
                }
                let tokens = Double(batch * promptLength), steps = Double(batch * (newTokens - 1))
                ours.append((tokens / stats.prefill, Double(batch * newTokens) / stats.decode))
                if let answer, let prefill = answer["prefill_seconds"] as? Double,
                    let decode = answer["decode_seconds"] as? Double {
                    theirs.append((tokens / prefill, steps / decode))
                }
                progress(String(
                    format: "batch %d round %d: temper prefill %.0f tok/s decode %.1f tok/s%@ (others %.2f cores)",
                    batch, round, ours.last!.0, ours.last!.1,
                    theirs.last.map { String(format: "; torch prefill %.0f decode %.1f", $0.0, $0.1) } ?? "", others))
            }
            guard !ours.isEmpty else { continue }
            rows.append(Row(
                batch: batch, promptLength: promptLength, newTokens: newTokens,
                temperPrefillTokensPerSecond: median(ours.map(\.0)), temperDecodeTokensPerSecond: median(ours.map(\.1)),
                torchPrefillTokensPerSecond: theirs.isEmpty ? nil : median(theirs.map(\.0)),
                torchDecodeTokensPerSecond: theirs.isEmpty ? nil : median(theirs.map(\.1)),
                roundsKept: ours.count, roundsDropped: dropped))
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        let header = ["batch", "prompt", "new", "temper prefill tok/s", "torch prefill tok/s", "×", "temper decode tok/s", "torch decode tok/s", "×", "rounds"]
        let body = rows.map { row -> [String] in
            func ratio(_ a: Double, _ b: Double?) -> String { b.map { String(format: "%.2f", a / $0) } ?? "-" }
            return ["\(row.batch)", "\(row.promptLength)", "\(row.newTokens)",
                    String(format: "%.0f", row.temperPrefillTokensPerSecond),
                    row.torchPrefillTokensPerSecond.map { String(format: "%.0f", $0) } ?? "-",
                    ratio(row.temperPrefillTokensPerSecond, row.torchPrefillTokensPerSecond),
                    String(format: "%.1f", row.temperDecodeTokensPerSecond),
                    row.torchDecodeTokensPerSecond.map { String(format: "%.1f", $0) } ?? "-",
                    ratio(row.temperDecodeTokensPerSecond, row.torchDecodeTokensPerSecond),
                    "\(row.roundsKept)/\(row.roundsKept + row.roundsDropped)"]
        }
        return formatTable(header: header, rows: body)
    }
}

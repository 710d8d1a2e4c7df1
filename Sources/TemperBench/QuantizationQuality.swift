import Foundation
import TemperCore
import TemperModels
import TemperTokenizers

/// What weight-only quantization costs in quality on a text: perplexity, and, position by position
/// under teacher forcing, how often the most likely next token is float32's and the KL divergence
/// from float32's next-token distribution.
public struct QuantizationQuality {
    public struct Row: Codable, Sendable {
        public var format: String
        public var weightMegabytes: Double
        public var perplexity: Double
        /// perplexity / float32's perplexity − 1.
        public var perplexityChange: Double
        /// Fraction of positions whose argmax equals float32's.
        public var greedyAgreement: Double
        /// Mean KL(float32 ‖ this) over positions, in nats.
        public var meanKL: Double
    }

    public var modelDirectory: URL
    public var textFile: URL
    /// Tokens per forward pass (the text is cut into consecutive windows).
    public var window: Int

    public init(modelDirectory: URL, textFile: URL, window: Int = 512) {
        self.modelDirectory = modelDirectory
        self.textFile = textFile
        self.window = window
    }

    /// A model to compare with float32: the reference with its weights quantized at load, or another
    /// folder (a quantized file converted back, say).
    public enum Candidate {
        case format(WeightOnlyQuantizedMatrix.Format)
        case folder(URL)
    }

    /// Rows for float32 and then each format, by name.
    public func run(formats: [(name: String, format: WeightOnlyQuantizedMatrix.Format)], progress: (String) -> Void) throws -> [Row] {
        try run(candidates: formats.map { ($0.name, .format($0.format)) }, progress: progress)
    }

    /// Rows for float32 and then each candidate, by name.
    public func run(candidates: [(name: String, candidate: Candidate)], progress: (String) -> Void) throws -> [Row] {
        let tokenizer = try Tokenizer.load(directory: modelDirectory)
        let ids = tokenizer.encode(try String(contentsOf: textFile, encoding: .utf8))
        guard ids.count > 1 else { throw BenchmarkError.peer("\(textFile.path) encodes to fewer than 2 tokens") }
        progress("\(textFile.lastPathComponent): \(ids.count) tokens in windows of \(window)")
        let windows = stride(from: 0, to: ids.count - 1, by: window).map { Array(ids[$0..<min($0 + window + 1, ids.count)]) }

        // log-softmax rows of every predicted position, per window.
        func logProbs(_ candidate: Candidate?) throws -> (rows: [Tensor], megabytes: Double) {
            var directory = modelDirectory
            if case .folder(let folder) = candidate { directory = folder }
            let model = try CausalLanguageModel.load(directory: directory)
            var bytes = model.parameters().values.reduce(0) { $0 + $1.byteCount } + model.quantizedInferenceBytes
            if case .format(let format) = candidate {
                let (before, after) = model.quantizeForInference(format)
                bytes += after - before
            }
            let rows = windows.map { piece -> Tensor in
                let input = Tensor(piece.dropLast().map(Int32.init), shape: [1, piece.count - 1])
                let logits = model(input)[0]
                let result = logits - logits.logSumExp(axes: [-1], keepDims: true)
                eval([result])
                return result
            }
            return (rows, Double(bytes) / 1e6)
        }

        let reference = try logProbs(nil)
        let targets = windows.map { Tensor($0.dropFirst().map(Int32.init), shape: [$0.count - 1, 1]) }
        func row(_ name: String, _ measured: (rows: [Tensor], megabytes: Double), baseline: Double?) -> Row {
            var negativeLogLikelihood = 0.0, agreements = 0.0, divergence = 0.0, count = 0.0
            for (index, rows) in measured.rows.enumerated() {
                let reference = reference.rows[index]
                negativeLogLikelihood -= Double(rows.takeAlong(targets[index], axis: -1).sum().item(Float.self))
                agreements += Double((rows.argMax(axis: -1) .== reference.argMax(axis: -1)).asType(.float32).sum().item(Float.self))
                divergence += Double((reference.exp() * (reference - rows)).sum().item(Float.self))
                count += Double(rows.dim(0))
            }
            let perplexity = Foundation.exp(negativeLogLikelihood / count)
            return Row(
                format: name, weightMegabytes: measured.megabytes, perplexity: perplexity,
                perplexityChange: baseline.map { perplexity / $0 - 1 } ?? 0, greedyAgreement: agreements / count,
                meanKL: divergence / count)
        }
        var rows = [row("float32", reference, baseline: nil)]
        progress(String(format: "float32: perplexity %.3f", rows[0].perplexity))
        for (name, candidate) in candidates {
            rows.append(row(name, try logProbs(candidate), baseline: rows[0].perplexity))
            progress(String(format: "%@: perplexity %.3f", name, rows.last!.perplexity))
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        formatTable(
            header: ["weights", "MB", "perplexity", "change", "greedy agreement", "mean KL (nats)"],
            rows: rows.map {
                [$0.format, String(format: "%.0f", $0.weightMegabytes), String(format: "%.3f", $0.perplexity),
                 String(format: "%+.2f%%", $0.perplexityChange * 100), String(format: "%.1f%%", $0.greedyAgreement * 100),
                 String(format: "%.4f", $0.meanKL)]
            })
    }
}

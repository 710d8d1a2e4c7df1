import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperPEFT
import TemperTraining

/// `temper compress`: a model (an adapter merged into its base first) written as a quantized GGUF for
/// llama.cpp and Ollama, with what it costs: size before and after, and the quality of the GGUF read
/// back against the float32 model on a held-out text (perplexity change, greedy agreement, KL).
public enum ModelCompression {
    public struct Spec: Codable, Sendable {
        public var model: String
        public var adapter: String?
        /// `q8_0` or `q4_0`.
        public var format: String
        /// Plain text, or JSON lines whose `text` fields are joined.
        public var text: String

        public init(model: String, adapter: String? = nil, format: String, text: String) {
            self.model = model
            self.adapter = adapter
            self.format = format
            self.text = text
        }
    }

    public struct Report: Codable, Sendable {
        public var format: String
        public var file: String
        public var bytesBefore: Int
        public var bytesAfter: Int
        public var quality: [QuantizationQuality.Row]

        enum CodingKeys: String, CodingKey {
            case format, file, quality
            case bytesBefore = "bytes_before", bytesAfter = "bytes_after"
        }
    }

    public static func exportType(_ format: String) throws -> GGUFConversion.ExportType {
        guard let type = GGUFConversion.ExportType(rawValue: format), type != .f16 else {
            throw TrainingError.invalidRecipe(field: "format", reason: "must be q8_0 or q4_0, got '\(format)'")
        }
        return type
    }

    /// Writes `output/model-<format>.gguf` and `output/compression.json`.
    public static func run(_ spec: Spec, output: URL, log: (String) -> Void) throws -> Report {
        let type = try exportType(spec.format)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let scratch = output.appendingPathComponent(".scratch")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try? FileManager.default.removeItem(at: scratch)
        var source = URL(fileURLWithPath: spec.model)
        if let adapter = spec.adapter {
            let merged = scratch.appendingPathComponent("merged")
            let network = try CausalLanguageModel.load(directory: source)
            _ = try PEFTAdapter.load(into: network, from: URL(fileURLWithPath: adapter))
            network.mergeLoRA()
            try network.save(
                to: merged, dtype: .float32,
                configJSON: FileManager.default.contents(atPath: source.appendingPathComponent("config.json").path))
            try copyTokenizerFiles(from: source, to: merged)
            log("merged \(adapter) into \(source.lastPathComponent)")
            source = merged
        }
        let file = output.appendingPathComponent("model-\(spec.format).gguf")
        try GGUFConversion.exportModel(directory: source, to: file, type: type)
        let readBack = scratch.appendingPathComponent("read-back")
        try GGUFConversion.importModel(from: file, to: readBack)
        let text = scratch.appendingPathComponent("text.txt")
        try Data(try plainText(URL(fileURLWithPath: spec.text)).utf8).write(to: text)
        let quality = try QuantizationQuality(modelDirectory: source, textFile: text)
            .run(candidates: [(spec.format, .folder(readBack))], progress: log)
        let bytesBefore = try FileManager.default.contentsOfDirectory(atPath: source.path)
            .filter { $0.hasSuffix(".safetensors") }
            .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: source.appendingPathComponent($1).path)[.size] as? Int) ?? 0) }
        let bytesAfter = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        let report = Report(format: spec.format, file: file.lastPathComponent, bytesBefore: bytesBefore, bytesAfter: bytesAfter, quality: quality)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(try encoder.encode(report), to: output.appendingPathComponent("compression.json"))
        return report
    }

    /// The file's text: as it is, or the `text` records of a JSON/JSONL dataset (read as `temper sft`
    /// reads text data) joined by blank lines.
    static func plainText(_ url: URL) throws -> String {
        guard ["jsonl", "json"].contains(url.pathExtension.lowercased()) else { return try String(contentsOf: url, encoding: .utf8) }
        let file = try DatasetReader.read(url, format: .text)
        if !file.issues.isEmpty { throw DataError.invalidRecords(file.issues) }
        let texts = file.examples.compactMap { example -> String? in
            if case .text(let text) = example.content { return text }
            return nil
        }
        guard !texts.isEmpty else {
            throw TrainingError.invalidRecipe(field: "text", reason: "\(url.path) has no records with a `text` field")
        }
        return texts.joined(separator: "\n\n")
    }
}

import Foundation
import TemperCore
import TemperData
import TemperModels
import TemperPEFT
import TemperTraining

/// `temper compress`: a model (an adapter merged into its base first) written quantized, with what it
/// costs: size before and after, and the quality of the written weights read back against the float32
/// model on a held-out text (perplexity change, greedy agreement, KL). Two kinds of output:
/// - `q8_0`, `q4_0`: a GGUF for llama.cpp and Ollama (`model-<format>.gguf`);
/// - `int8`, `q4`: a model folder in the engine's own formats (`temper serve` loads it as it is, with
///   no quantizing at load): config.json, model.safetensors and the tokenizer files.
public enum ModelCompression {
    public struct Spec: Codable, Sendable {
        public var model: String
        public var adapter: String?
        /// `q8_0` or `q4_0` (GGUF), or `int8` or `q4` (the engine's folder).
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

    /// The formats `format` may name.
    public static let formats = ["q8_0", "q4_0", "int8", "q4"]

    /// A GGUF export type, or an engine format.
    enum Target {
        case gguf(GGUFConversion.ExportType)
        case engine(WeightOnlyQuantizedMatrix.Format)
    }

    static func target(_ format: String) throws -> Target {
        switch format {
        case "int8": return .engine(.int8)
        case "q4": return .engine(.q4)
        default:
            guard let type = GGUFConversion.ExportType(rawValue: format), type != .f16 else {
                throw TrainingError.invalidRecipe(field: "format", reason: "must be one of \(formats.joined(separator: ", ")), got '\(format)'")
            }
            return .gguf(type)
        }
    }

    /// Checks `format` names a supported format.
    public static func validate(format: String) throws { _ = try target(format) }

    /// Writes the quantized model (`output/model-<format>.gguf`, or the engine's folder files in
    /// `output`) and `output/compression.json`.
    public static func run(_ spec: Spec, output: URL, log: (String) -> Void) throws -> Report {
        let target = try target(spec.format)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let scratch = output.appendingPathComponent(".scratch")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
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
        let file: URL, readBack: URL
        switch target {
        case .gguf(let type):
            file = output.appendingPathComponent("model-\(spec.format).gguf")
            try GGUFConversion.exportModel(directory: source, to: file, type: type)
            readBack = scratch.appendingPathComponent("read-back")
            try GGUFConversion.importModel(from: file, to: readBack)
        case .engine(let format):
            // The folder is what is measured: loaded back as `temper serve` loads it.
            let network = try CausalLanguageModel.load(directory: source)
            try network.saveQuantizedForInference(
                to: output, format: format, configJSON: FileManager.default.contents(atPath: source.appendingPathComponent("config.json").path))
            try copyTokenizerFiles(from: URL(fileURLWithPath: spec.model), to: output)
            file = output.appendingPathComponent("model.safetensors")
            readBack = output
        }
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

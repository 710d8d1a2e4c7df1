import ArgumentParser
import Foundation
import TemperCore
import TemperModels

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a GGUF model to a Hugging Face folder, or a Hugging Face folder to GGUF.",
        discussion: """
            The direction follows the paths: `--from model.gguf --to DIR` writes config.json, \
            model.safetensors (dequantized), generation_config.json, tokenizer.json and \
            tokenizer_config.json; `--from DIR --to model.gguf` writes a GGUF file (--type f16, q8_0 or q4_0).
            """)

    @Option(help: "A .gguf file or a Hugging Face model folder.") var from: String
    @Option(help: "The output folder or .gguf file.") var to: String
    @Option(help: "Weights dtype of an output folder: float32, bfloat16 or float16.") var dtype: String = "float32"
    @Option(help: "Tensor type of an output GGUF: f16, q8_0 or q4_0.") var type: String = "f16"

    func validate() throws {
        guard DType(huggingFaceName: dtype) != nil else {
            throw ValidationError("--dtype must be float32, bfloat16 or float16, got '\(dtype)'")
        }
        guard GGUFConversion.ExportType(rawValue: type) != nil else {
            throw ValidationError("--type must be f16, q8_0 or q4_0, got '\(type)'")
        }
        guard from.hasSuffix(".gguf") != to.hasSuffix(".gguf") else {
            throw ValidationError("exactly one of --from and --to must be a .gguf file")
        }
    }

    func run() throws {
        let source = URL(fileURLWithPath: from), target = URL(fileURLWithPath: to)
        let start = Date()
        if from.hasSuffix(".gguf") {
            let report = try GGUFConversion.importModel(
                from: source, to: target, dtype: DType(huggingFaceName: dtype)!)
            let types = report.tensorTypes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            log("""
                wrote \(target.path): \(report.configuration.modelType), \
                \(report.parameterCount / 1_000_000)M parameters in \(dtype) \
                (from \(types.joined(separator: ", ")) tensors) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s
                """)
        } else {
            try GGUFConversion.exportModel(directory: source, to: target, type: .init(rawValue: type)!)
            log("wrote \(target.path) (\(type)) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }
}

/// Progress and statistics go to stderr so that stdout carries only a command's output.
func log(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

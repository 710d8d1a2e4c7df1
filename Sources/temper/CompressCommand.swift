import ArgumentParser
import Foundation
import TemperBench

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Write a model (or base + adapter, merged) quantized, as a GGUF or in the engine's formats, and measure what it costs.",
        discussion: """
            q8_0 and q4_0 write OUTPUT/model-<format>.gguf (for llama.cpp and Ollama); int8 and q4 write a \
            model folder in the engine's own formats into OUTPUT (config.json with "temper_quantization", \
            model.safetensors with each projection's codes, scales and mins, the tokenizer files), which \
            `temper serve`, `generate` and `eval` load as it is. Either way OUTPUT/compression.json holds the \
            size before and after, and the written weights read back against the float32 model on --text \
            (perplexity and its change, greedy agreement, mean KL). --text is plain text or JSON lines with \
            `text` fields. A --recipe JSON file can give model, adapter, format and text instead.
            """)

    @Option(help: "A JSON file with model, adapter, format and text.") var recipe: String?
    @Option(help: "A Hugging Face model folder.") var model: String?
    @Option(help: "A LoRA adapter folder to merge first.") var adapter: String?
    @Option(help: "q8_0 or q4_0 (GGUF), or int8 or q4 (the engine's folder).") var format: String = "q8_0"
    @Option(help: "Held-out text for the quality measurement.") var text: String = "Data/perplexity-text.txt"
    @Option(help: "The output folder.") var output: String

    func run() throws {
        let spec: ModelCompression.Spec
        if let recipe {
            spec = try decodeRecipeJSON(ModelCompression.Spec.self, at: recipe)
        } else {
            guard let model else { throw ValidationError("give --model (or --recipe)") }
            spec = ModelCompression.Spec(model: model, adapter: adapter, format: format, text: text)
        }
        let report = try ModelCompression.run(spec, output: URL(fileURLWithPath: output), log: { log($0) })
        print(String(format: "%@: %.1f MB -> %.1f MB", report.file, Double(report.bytesBefore) / 1e6, Double(report.bytesAfter) / 1e6))
        print(QuantizationQuality.table(report.quality))
    }
}

import ArgumentParser
import Foundation
import TemperCore
import TemperEngine
import TemperModels
import TemperTokenizers
import TemperPEFT

/// The flags `generate` and `chat` share: the model's adapter and quantization, and sampling.
struct SamplingOptions: ParsableArguments {
    @Option(help: "New tokens at most.") var maxTokens: Int = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(help: "Keep the k most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling threshold (1 = off).") var topP: Float = 1
    @Option(help: "Drop tokens below min-p × the top probability (0 = off).") var minP: Float = 0
    @Option(help: "Repetition penalty (1 = off).") var repetitionPenalty: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Option(help: "A LoRA adapter folder (PEFT format) to apply.") var adapter: String?
    @Option(help: """
        Store the weights for inference as int8 (symmetric) or q4 (affine 4-bit), groups of 64; bf16 \
        (bfloat16 weights, half float32's bytes) or f32 (float32 weights through the fused decode kernel).
        """) var quantize: String?
    @Option(parsing: .singleValue, help: "Stop when this text appears (repeatable).") var stop: [String] = []

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive, got \(maxTokens)") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be 0 or more, got \(temperature)") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 or more, got \(topK)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0 && minP < 1 else { throw ValidationError("--min-p must be in [0, 1), got \(minP)") }
        guard repetitionPenalty > 0 else { throw ValidationError("--repetition-penalty must be positive") }
    }

    /// The model folder with the adapter, if one was given, applied.
    func load(_ model: String) throws -> LanguageModel {
        try loadLanguageModel(model, adapter: adapter, quantize: quantize)
    }

    /// The engine request for a tokenized prompt.
    func request(_ prompt: [Int]) -> EngineRequest {
        EngineRequest(
            prompt: prompt,
            sampling: RequestSamplingParameters(
                temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty),
            maxNewTokens: maxTokens, seed: seed, stopStrings: stop)
    }

    /// An engine for one conversation: KV blocks for `tokens` tokens (a prompt and its answer).
    static func engine(_ lm: LanguageModel, tokens: Int) -> InferenceEngine {
        let blockSize = 16
        let blocks = (tokens + blockSize - 1) / blockSize + 1
        return InferenceEngine(
            model: lm,
            configuration: .init(
                kvCacheBytes: blocks * InferenceEngine.bytesPerBlock(lm.network.configuration, blockSize: blockSize),
                blockSize: blockSize, maxRunningSequences: 1, prefillChunk: 512))
    }
}

/// Streams one answer to stdout through the engine; returns its text and prints statistics to stderr.
func streamAnswer(_ engine: InferenceEngine, _ request: EngineRequest) throws -> String {
    let stdout = FileHandle.standardOutput
    let before = engine.metrics()
    let text = LockedBox("")
    let samples = try engine.generate(request) { event in
        let piece: String
        switch event {
        case .token(let token): piece = token.text
        case .finished(let sample): piece = sample.text
        case .started: piece = ""
        }
        guard !piece.isEmpty else { return }
        text.mutate { $0 += piece }
        stdout.write(Data(piece.utf8))
    }
    stdout.write(Data("\n".utf8))
    let after = engine.metrics()
    let prompt = after.promptTokens - before.promptTokens
    let generated = after.generatedTokens - before.generatedTokens
    let prefill = after.prefillSeconds - before.prefillSeconds
    let decode = after.decodeSeconds - before.decodeSeconds
    log(String(
        format: "[%d prompt tokens, %.1f tok/s prefill; %d generated, %.1f tok/s decode; finish: %@]",
        // A prompt's last token runs in the first decode step, so prefill is counted with one step.
        prompt, Double(prompt) / max(prefill + decode / Double(max(generated, 1)), 1e-9), generated,
        Double(generated) / max(decode, 1e-9), samples.first?.reason.rawValue ?? "none"))
    return text.value
}

/// The weight format a `--quantize` value names.
func inferenceFormat(_ name: String) throws -> WeightOnlyQuantizedMatrix.Format {
    let formats: [String: WeightOnlyQuantizedMatrix.Format] = ["int8": .int8, "q4": .q4, "bf16": .bfloat16, "f32": .float32]
    guard let format = formats[name] else {
        throw ValidationError("--quantize must be int8, q4, bf16 or f32, got '\(name)'")
    }
    return format
}

/// Loads a model folder, applies a PEFT adapter to it if one is given, and stores the weights as
/// int8, q4, bf16 or f32 if `quantize` says so (`generate`, `chat` and `serve` share this).
func loadLanguageModel(_ model: String, adapter: String? = nil, quantize: String? = nil) throws -> LanguageModel {
    let lm = try LanguageModel.load(directory: URL(fileURLWithPath: model))
    if let adapter { _ = try PEFTAdapter.load(into: lm.network, from: URL(fileURLWithPath: adapter)) }
    if let quantize {
        let format = try inferenceFormat(quantize)
        // An adapter stays a float side path; merge it first (`temper merge`) to quantize it too.
        let (before, after) = lm.network.quantizeForInference(format)
        log(String(format: "weights quantized to %@: %.0f MB -> %.0f MB", quantize, Double(before) / 1e6, Double(after) / 1e6))
    }
    return lm
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt; only the generated text goes to stdout (statistics to stderr).")

    @Option(help: "A Hugging Face model folder.") var model: String
    @Option(help: "The prompt.") var prompt: String
    @Flag(help: "Apply the model's chat template (a user turn plus the generation prompt).") var chat = false
    @Option(help: "A system message (with --chat).") var system: String?
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        let lm = try sampling.load(model)
        let ids: [Int]
        if chat {
            var messages: [LanguageModel.Message] = []
            if let system { messages.append(.init(role: "system", content: system)) }
            messages.append(.init(role: "user", content: prompt))
            ids = try lm.encodeChat(messages)
        } else {
            guard system == nil else { throw ValidationError("--system needs --chat") }
            ids = lm.tokenizer.encode(prompt)
        }
        guard !ids.isEmpty else { throw ValidationError("the prompt encodes to no tokens") }
        let context = lm.network.configuration.maxPositionEmbeddings
        guard ids.count < context else {
            throw ValidationError("the prompt has \(ids.count) tokens; \(model) allows \(context)")
        }
        let engine = SamplingOptions.engine(lm, tokens: min(ids.count + sampling.maxTokens, context))
        _ = try streamAnswer(engine, sampling.request(ids))
    }
}

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text as one JSON array (as transformers' tokenizer(text)[\"input_ids\"]).")

    @Option(help: "A folder with tokenizer.json (or vocab.json + merges.txt).") var tokenizer: String
    @Option(help: "The text to encode.") var text: String
    @Flag(help: "Do not add BOS/EOS tokens.") var noSpecialTokens = false

    func run() throws {
        let loaded = try Tokenizer.load(directory: URL(fileURLWithPath: tokenizer))
        let ids = loaded.encode(text, addSpecialTokens: !noSpecialTokens)
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
    }
}

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model interactively; replies stream as they are generated.",
        discussion: "Type a message and press return. /reset starts over, /quit (or end of input) leaves.")

    @Option(help: "A Hugging Face model folder.") var model: String
    @Option(help: "A system message.") var system: String?
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        let lm = try sampling.load(model)
        guard lm.chatTemplate != nil else {
            throw ValidationError("\(model) has no chat template (tokenizer_config.json chat_template or chat_template.jinja)")
        }
        var messages: [LanguageModel.Message] = system.map { [.init(role: "system", content: $0)] } ?? []
        let stdout = FileHandle.standardOutput
        let engine = InferenceEngine(
            model: lm, configuration: .init(kvCacheBytes: 256 << 20, maxRunningSequences: 1, prefillChunk: 512))
        log("chatting with \(lm.directory.lastPathComponent); /reset, /quit")
        while true {
            stdout.write(Data("> ".utf8))
            guard let line = readLine(strippingNewline: true) else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/quit" { break }
            if input == "/reset" {
                messages = system.map { [.init(role: "system", content: $0)] } ?? []
                continue
            }
            messages.append(.init(role: "user", content: input))
            let ids = try lm.encodeChat(messages)
            guard ids.count < engine.contextLength else {
                log("the conversation has \(ids.count) tokens, the model's context \(engine.contextLength): /reset to start over")
                messages.removeLast()
                continue
            }
            // The prefix cache keeps earlier turns, so each turn computes only its new tokens.
            let answer = try streamAnswer(engine, sampling.request(ids))
            messages.append(.init(role: "assistant", content: answer))
        }
    }
}

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Write the logits of a text (and its token ids) to a safetensors file, to compare with another stack.")

    @Option(help: "A Hugging Face model folder.") var model: String
    @Option(help: "A LoRA adapter folder (PEFT format) to apply.") var adapter: String?
    @Option(help: "The text to score (encoded as `temper tokenize` does).") var text: String
    @Option(help: "The output .safetensors file (tensors input_ids [1, T] and logits [1, T, V]).") var out: String

    func run() throws {
        let lm = try LanguageModel.load(directory: URL(fileURLWithPath: model))
        if let adapter { _ = try PEFTAdapter.load(into: lm.network, from: URL(fileURLWithPath: adapter)) }
        let ids = lm.tokenizer.encode(text)
        let input = Tensor(ids.map { Int32($0) }, shape: [1, ids.count])
        try Safetensors.save(["input_ids": input, "logits": lm.network(input)], to: URL(fileURLWithPath: out))
        log("wrote \(out): \(ids.count) tokens")
    }
}

import Foundation
import TemperCore

extension GGUFConversion {
    /// Tensor storage of an exported GGUF.
    public enum ExportType: String, CaseIterable, Sendable {
        case f16
        case q8_0
        case q4_0

        /// llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_F16 / _Q8_0 / _Q4_0).
        var fileType: UInt32 {
            switch self {
            case .f16: 1
            case .q8_0: 7
            case .q4_0: 2
            }
        }

        /// How a matrix whose rows have `columns` values is stored (F16 where blocks of 32 do not fit).
        func storage(columns: Int) -> GGUFTensorType {
            switch self {
            case .f16: .f16
            case .q8_0: columns % 32 == 0 ? .q8_0 : .f16
            case .q4_0: columns % 32 == 0 ? .q4_0 : .f16
            }
        }
    }

    /// Writes a Hugging Face model folder as a GGUF file for llama.cpp-based tools: the weights
    /// (norms in F32, matrices in F16, Q8_0 or Q4_0, q/k rows permuted back for llama.cpp's RoPE),
    /// the architecture metadata, and the tokenizer and chat template from `tokenizer.json` and
    /// `tokenizer_config.json` when the folder has them.
    public static func exportModel(directory: URL, to url: URL, type: ExportType) throws {
        let model = try CausalLanguageModel.load(directory: directory)
        let configuration = model.configuration
        let architecture = configuration.modelType
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(architecture))
        writer.set("general.name", .string(directory.lastPathComponent))
        writer.set("general.file_type", .uint32(type.fileType))
        writer.set("general.quantization_version", .uint32(2))
        let prefix = architecture + "."
        writer.set(prefix + "block_count", .uint32(UInt32(configuration.layerCount)))
        writer.set(prefix + "context_length", .uint32(UInt32(configuration.maxPositionEmbeddings)))
        writer.set(prefix + "embedding_length", .uint32(UInt32(configuration.hiddenSize)))
        writer.set(prefix + "feed_forward_length", .uint32(UInt32(configuration.intermediateSize)))
        writer.set(prefix + "attention.head_count", .uint32(UInt32(configuration.headCount)))
        writer.set(prefix + "attention.head_count_kv", .uint32(UInt32(configuration.keyValueHeadCount)))
        writer.set(prefix + "attention.key_length", .uint32(UInt32(configuration.headDimension)))
        writer.set(prefix + "attention.value_length", .uint32(UInt32(configuration.headDimension)))
        writer.set(prefix + "attention.layer_norm_rms_epsilon", .float32(configuration.rmsNormEps))
        writer.set(prefix + "rope.freq_base", .float32(configuration.ropeTheta))
        writer.set(prefix + "rope.dimension_count", .uint32(UInt32(configuration.headDimension)))
        writer.set(prefix + "vocab_size", .uint32(UInt32(configuration.vocabularySize)))
        if case .linear(let factor) = configuration.ropeScaling {
            writer.set(prefix + "rope.scaling.type", .string("linear"))
            writer.set(prefix + "rope.scaling.factor", .float32(factor))
        }
        try addTokenizer(from: directory, vocabularySize: configuration.vocabularySize, to: &writer)

        for (name, tensor) in model.checkpointTensors().sorted(by: { $0.key < $1.key }) {
            guard let ggufName = ggufName(name) else {
                throw ModelError.unsupported(path: directory.path, reason: "no GGUF name for tensor '\(name)'")
            }
            var value = tensor
            if configuration.family == .llama && name.hasSuffix("self_attn.q_proj.weight") {
                value = permuteRotary(value, heads: configuration.headCount)
            } else if configuration.family == .llama && name.hasSuffix("self_attn.k_proj.weight") {
                value = permuteRotary(value, heads: configuration.keyValueHeadCount)
            }
            let storage: GGUFTensorType = value.ndim < 2 ? .f32 : type.storage(columns: value.dim(-1))
            writer.add(ggufName, value, type: storage)
        }
        // llama.cpp applies Llama 3.1 scaling through per-frequency divisors.
        if case .llama3 = configuration.ropeScaling {
            let plain = RotaryEmbedding(
                headDimension: configuration.headDimension, base: configuration.ropeTheta, scaling: .none)
            let factors = zip(plain.inverseFrequencies, model.rope.inverseFrequencies).map { $0 / $1 }
            writer.add("rope_freqs.weight", Tensor(factors), type: .f32)
        }
        try writer.write(to: url)
    }

    /// The `tokenizer.ggml.*` metadata from a folder's `tokenizer.json` (byte-level BPE).
    static func addTokenizer(from directory: URL, vocabularySize: Int, to writer: inout GGUFWriter) throws {
        let path = directory.appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: path.path) else { return }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let model = json["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Int]
        else { throw ModelError.invalidJSON(path: path.path, reason: "no model.vocab object") }
        guard (model["type"] as? String) == "BPE" else {
            throw ModelError.unsupported(path: path.path, reason: "only BPE tokenizers can be exported to GGUF")
        }
        var tokens = Array(repeating: "", count: max(vocabularySize, (vocab.values.max() ?? -1) + 1))
        var types = Array(repeating: Int32(5), count: tokens.count)  // UNUSED until filled
        for (token, id) in vocab {
            tokens[id] = token
            types[id] = 1  // NORMAL
        }
        var specialIDs: [String: Int] = [:]
        for added in json["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = added["id"] as? Int, let content = added["content"] as? String, id < tokens.count else { continue }
            tokens[id] = content
            let special = added["special"] as? Bool ?? false
            types[id] = special ? 3 : 4  // CONTROL or USER_DEFINED
            specialIDs[content] = id
        }
        for id in tokens.indices where tokens[id].isEmpty { tokens[id] = "[PAD\(id)]" }
        let merges: [String] = (model["merges"] as? [Any] ?? []).compactMap { merge in
            if let string = merge as? String { return string }
            if let pair = merge as? [String], pair.count == 2 { return pair.joined(separator: " ") }
            return nil
        }
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.pre", .string("default"))
        writer.set("tokenizer.ggml.tokens", .strings(tokens))
        writer.set("tokenizer.ggml.token_type", .int32s(types))
        writer.set("tokenizer.ggml.merges", .strings(merges))

        let configPath = directory.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.contents(atPath: configPath.path)
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        func tokenID(_ key: String) -> Int? {
            if let content = config[key] as? String { return specialIDs[content] ?? vocab[content] }
            if let object = config[key] as? [String: Any], let content = object["content"] as? String {
                return specialIDs[content] ?? vocab[content]
            }
            return nil
        }
        if let id = tokenID("bos_token") { writer.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(id))) }
        if let id = tokenID("eos_token") { writer.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(id))) }
        if let id = tokenID("pad_token") { writer.set("tokenizer.ggml.padding_token_id", .uint32(UInt32(id))) }
        if let id = tokenID("unk_token") { writer.set("tokenizer.ggml.unknown_token_id", .uint32(UInt32(id))) }
        writer.set("tokenizer.ggml.add_bos_token", .bool(config["add_bos_token"] as? Bool ?? false))
        var template = config["chat_template"] as? String
        let templateFile = directory.appendingPathComponent("chat_template.jinja")
        if template == nil, let text = try? String(contentsOf: templateFile, encoding: .utf8) { template = text }
        if let template { writer.set("tokenizer.chat_template", .string(template)) }
    }
}

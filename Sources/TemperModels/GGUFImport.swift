import Foundation
import TemperCore

/// Converts between llama.cpp's GGUF files and Hugging Face model folders.
public enum GGUFConversion {
    /// What an import produced.
    public struct ImportReport: Sendable {
        public var configuration: ModelConfiguration
        public var tensorTypes: [String: Int]
        public var parameterCount: Int
    }

    /// The GGUF architectures Temper reads, by `general.architecture`.
    static let families: [String: ModelFamily] = ["llama": .llama, "qwen2": .qwen2, "qwen3": .qwen3]

    /// Reads a GGUF model of a supported family and returns its configuration and Hugging Face
    /// named float32 tensors: quantized tensors (Q4_0, Q4_1, Q8_0) are dequantized, and the
    /// q/k projection rows that llama.cpp permutes for its RoPE layout are put back in
    /// transformers' order.
    public static func readModel(_ url: URL) throws -> (ModelConfiguration, [String: Tensor], GGUF.File) {
        try validateHeader(url)
        let file = try GGUF.load(url)
        let meta = GGUFFields(file: file, path: url.path)
        let architecture = try meta.string("general.architecture")
        guard let family = families[architecture] else {
            throw ModelError.unknownModelType(
                path: url.path, modelType: architecture, supported: families.keys.sorted())
        }
        if file.tensors["rope_freqs.weight"] != nil {
            throw ModelError.unsupported(
                path: url.path, reason: "the rope_freqs tensor (Llama 3.1 rope scaling baked into the GGUF) is not supported yet")
        }
        let prefix = architecture + "."
        let heads = try meta.int(prefix + "attention.head_count")
        let keyValueHeads = meta.optionalInt(prefix + "attention.head_count_kv") ?? heads
        let hidden = try meta.int(prefix + "embedding_length")
        let vocabulary = meta.optionalInt(prefix + "vocab_size") ?? meta.stringCount("tokenizer.ggml.tokens")
        guard let vocabulary else { throw ModelError.missingField(path: url.path, field: prefix + "vocab_size") }
        var eos: [Int] = []
        if let id = meta.optionalInt("tokenizer.ggml.eos_token_id") { eos = [id] }
        let configuration = ModelConfiguration(
            modelType: family.rawValue, vocabularySize: vocabulary, hiddenSize: hidden,
            intermediateSize: try meta.int(prefix + "feed_forward_length"),
            layerCount: try meta.int(prefix + "block_count"), headCount: heads,
            keyValueHeadCount: keyValueHeads,
            headDimension: meta.optionalInt(prefix + "attention.key_length") ?? hidden / heads,
            rmsNormEps: meta.optionalFloat(prefix + "attention.layer_norm_rms_epsilon") ?? 1e-6,
            ropeTheta: meta.optionalFloat(prefix + "rope.freq_base") ?? 10000,
            tieWordEmbeddings: file.tensors["output.weight"] == nil,
            attentionBias: family == .qwen2, queryKeyNorm: family == .qwen3,
            maxPositionEmbeddings: meta.optionalInt(prefix + "context_length") ?? 2048,
            bosTokenID: meta.optionalInt("tokenizer.ggml.bos_token_id"), eosTokenIDs: eos,
            storageDType: "float32")

        var tensors: [String: Tensor] = [:]
        for name in file.tensors.keys where name.hasSuffix(".weight") || name.hasSuffix(".bias") {
            guard let target = huggingFaceName(name) else {
                throw ModelError.unexpectedWeights(folder: url.path, names: [name])
            }
            var tensor = try dequantized(file.tensors, name: name, path: url.path)
            if family == .llama && target.hasSuffix("self_attn.q_proj.weight") {
                tensor = unpermuteRotary(tensor, heads: heads)
            } else if family == .llama && target.hasSuffix("self_attn.k_proj.weight") {
                tensor = unpermuteRotary(tensor, heads: keyValueHeads)
            }
            tensors[target] = tensor
        }
        return (configuration, tensors, file)
    }

    /// A float32 tensor for `name` (`….weight`), dequantizing MLX's affine triplet when present.
    static func dequantized(_ tensors: [String: Tensor], name: String, path: String) throws -> Tensor {
        let stem = String(name.dropLast(".weight".count))
        guard name.hasSuffix(".weight"), let scales = tensors[stem + ".scales"], let biases = tensors[stem + ".biases"] else {
            return tensors[name]!.asType(.float32)
        }
        let packed = tensors[name]!
        // GGUF's quantized blocks hold 32 values: columns = scale groups × 32, and each uint32 of
        // the packed weight holds 32 / bits of them.
        let columns = scales.dim(-1) * 32
        let bits = packed.dim(-1) * 32 / max(columns, 1)
        guard [4, 8].contains(bits), packed.dim(-1) * 32 == bits * columns else {
            throw ModelError.unsupported(path: path, reason: "tensor '\(name)' has a quantization layout Temper cannot dequantize")
        }
        // Scales and offsets in float32 so the products round as gguf-py's dequantization does.
        return QuantizedMatrix(
            weight: packed, scales: scales.asType(.float32), biases: biases.asType(.float32),
            groupSize: 32, bits: bits
        ).dequantized().asType(.float32)
    }

    /// Undoes llama.cpp's permutation of q/k rows (it interleaves the two rotary halves of each
    /// head): rows (head, half, i) → (head, i, half) are swapped back.
    static func unpermuteRotary(_ w: Tensor, heads: Int) -> Tensor {
        let rows = w.dim(0)
        let rest = Array(w.shape.dropFirst())
        return w.reshaped([heads, rows / heads / 2, 2] + rest).transposed(swapAxes1And2(rank: 3 + rest.count)).reshaped(w.shape)
    }

    /// The inverse, for export.
    static func permuteRotary(_ w: Tensor, heads: Int) -> Tensor {
        let rows = w.dim(0)
        let rest = Array(w.shape.dropFirst())
        return w.reshaped([heads, 2, rows / heads / 2] + rest).transposed(swapAxes1And2(rank: 3 + rest.count)).reshaped(w.shape)
    }

    static func swapAxes1And2(rank: Int) -> [Int] { [0, 2, 1] + Array(3..<rank) }

    static let layerNames: [(gguf: String, hf: String)] = [
        ("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
        ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"), ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ]
    static let globalNames: [(gguf: String, hf: String)] = [
        ("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head"),
    ]

    /// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`.
    static func huggingFaceName(_ name: String) -> String? {
        let parts = name.split(separator: ".").map(String.init)
        guard let suffix = parts.last, parts.count >= 2 else { return nil }
        if parts[0] == "blk", parts.count == 4, let layer = Int(parts[1]),
            let match = layerNames.first(where: { $0.gguf == parts[2] }) {
            return "model.layers.\(layer).\(match.hf).\(suffix)"
        }
        if parts.count == 2, let match = globalNames.first(where: { $0.gguf == parts[0] }) {
            return "\(match.hf).\(suffix)"
        }
        return nil
    }

    /// The inverse of `huggingFaceName`.
    static func ggufName(_ name: String) -> String? {
        let parts = name.split(separator: ".").map(String.init)
        guard let suffix = parts.last else { return nil }
        if parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) {
            let inner = parts[3..<(parts.count - 1)].joined(separator: ".")
            if let match = layerNames.first(where: { $0.hf == inner }) { return "blk.\(layer).\(match.gguf).\(suffix)" }
        }
        let stem = parts.dropLast().joined(separator: ".")
        return globalNames.first { $0.hf == stem }.map { "\($0.gguf).\(suffix)" }
    }
}

/// Typed reads of GGUF metadata (MLX returns numbers as scalar tensors).
struct GGUFFields {
    let file: GGUF.File
    let path: String

    func string(_ key: String) throws -> String {
        guard case .string(let value) = file.metadata[key] else { throw ModelError.missingField(path: path, field: key) }
        return value
    }

    func optionalString(_ key: String) -> String? {
        if case .string(let value) = file.metadata[key] { return value }
        return nil
    }

    func int(_ key: String) throws -> Int {
        guard let value = optionalInt(key) else { throw ModelError.missingField(path: path, field: key) }
        return value
    }

    func optionalInt(_ key: String) -> Int? {
        guard case .tensor(let tensor) = file.metadata[key], tensor.size == 1 else { return nil }
        return Int(tensor.asType(.int64).item(Int64.self))
    }

    func optionalFloat(_ key: String) -> Float? {
        guard case .tensor(let tensor) = file.metadata[key], tensor.size == 1 else { return nil }
        return tensor.asType(.float32).item(Float.self)
    }

    func stringCount(_ key: String) -> Int? {
        if case .strings(let values) = file.metadata[key] { return values.count }
        return nil
    }
}

extension GGUFConversion {
    /// Writes a Hugging Face folder from a GGUF model: `config.json`, `generation_config.json`,
    /// `model.safetensors` (dequantized, in `dtype`), and the tokenizer files built from the
    /// GGUF's `tokenizer.ggml.*` metadata.
    @discardableResult
    public static func importModel(from url: URL, to directory: URL, dtype: DType = .float32) throws -> ImportReport {
        let (configuration, tensors, file) = try readModel(url)
        let model = CausalLanguageModel(configuration: configuration)
        try model.loadWeights(tensors, source: url.path)
        var saved = configuration
        saved.storageDType = dtype.huggingFaceName
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try model.save(to: directory, dtype: dtype, configJSON: try saved.jsonData(dtype: dtype))
        var generation: [String: Any] = ["do_sample": false]
        if let bos = configuration.bosTokenID { generation["bos_token_id"] = bos }
        if let eos = configuration.eosTokenIDs.first { generation["eos_token_id"] = eos }
        try writeFileAtomically(
            try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys]),
            to: directory.appendingPathComponent("generation_config.json"))
        try writeTokenizerFiles(from: url, to: directory)
        var types: [String: Int] = [:]
        for name in file.tensors.keys where name.hasSuffix(".weight") {
            let stem = String(name.dropLast(".weight".count))
            types[file.tensors[stem + ".scales"] != nil ? "quantized" : "\(file.tensors[name]!.dtype)", default: 0] += 1
        }
        return ImportReport(
            configuration: saved, tensorTypes: types,
            parameterCount: model.parameterCount)
    }
}

import Foundation
import TemperCore
import TemperNN

extension CausalLanguageModel {
    /// Checkpoint entries that carry no parameters (older transformers saved RoPE buffers).
    static func isIgnorable(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors` or a sharded set
    /// with `model.safetensors.index.json`. Weights are converted to float32 for compute.
    ///
    /// Missing or unexpected weights and wrong shapes are errors that list the names.
    public static func load(directory: URL) throws -> CausalLanguageModel {
        let configuration = try ModelConfiguration.load(directory.appendingPathComponent("config.json"))
        let model = CausalLanguageModel(configuration: configuration)
        let file = try Safetensors.loadDirectory(directory)
        try model.loadWeights(file.tensors, source: directory.path)
        return model
    }

    /// Applies checkpoint tensors by Hugging Face name, converting them to float32. A tied model
    /// accepts (and ignores) an `lm_head.weight` equal in shape to the embedding.
    public func loadWeights(_ tensors: [String: Tensor], source: String) throws {
        let expected = parameters()
        var given = tensors.filter { !Self.isIgnorable($0.key) }
        if configuration.tieWordEmbeddings { given["lm_head.weight"] = nil }
        let unexpected = given.keys.filter { expected[$0] == nil }.sorted()
        guard unexpected.isEmpty else { throw ModelError.unexpectedWeights(folder: source, names: unexpected) }
        let missing = expected.keys.filter { given[$0] == nil }.sorted()
        guard missing.isEmpty else { throw ModelError.missingWeights(folder: source, names: missing) }
        for (name, tensor) in given.sorted(by: { $0.key < $1.key }) {
            let shape = expected[name]!.shape
            guard tensor.shape == shape else {
                throw ModelError.wrongShape(folder: source, name: name, expected: shape, got: tensor.shape)
            }
        }
        try update(parameters: given.mapValues { $0.dtype == .float32 ? $0 : $0.asType(.float32) })
    }

    /// The parameters as a checkpoint holds them: Hugging Face names, in `dtype`.
    public func checkpointTensors(dtype: DType = .float32) -> [String: Tensor] {
        parameters().mapValues { $0.dtype == dtype ? $0 : $0.asType(dtype) }
    }

    /// Writes the model as a Hugging Face folder: `config.json` (the given one, or one made from
    /// the configuration) and the weights in `dtype`, one file or shards of at most `maxShardBytes`.
    public func save(
        to directory: URL, dtype: DType = .float32, configJSON: Data? = nil,
        maxShardBytes: Int = 5_000_000_000
    ) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tensors = checkpointTensors(dtype: dtype)
        let total = tensors.values.reduce(0) { $0 + $1.byteCount }
        let metadata = ["format": "pt"]
        if total > maxShardBytes {
            try Safetensors.saveSharded(tensors, metadata: metadata, to: directory, maxShardBytes: maxShardBytes)
        } else {
            try Safetensors.save(tensors, metadata: metadata, to: directory.appendingPathComponent("model.safetensors"))
        }
        let config = try configJSON ?? configuration.jsonData(dtype: dtype)
        try writeFileAtomically(config, to: directory.appendingPathComponent("config.json"))
    }
}

/// Writes data to a temporary name beside `url`, then renames it into place.
public func writeFileAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(to: url) { try data.write(to: $0) }
}

extension ModelConfiguration {
    /// A transformers 5 style `config.json` for this configuration.
    public func jsonData(dtype: DType = .float32) throws -> Data {
        var json: [String: Any] = [
            "architectures": [family.architecture],
            "model_type": modelType,
            "vocab_size": vocabularySize,
            "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize,
            "num_hidden_layers": layerCount,
            "num_attention_heads": headCount,
            "num_key_value_heads": keyValueHeadCount,
            "head_dim": headDimension,
            "rms_norm_eps": Double(rmsNormEps),
            "tie_word_embeddings": tieWordEmbeddings,
            "max_position_embeddings": maxPositionEmbeddings,
            "hidden_act": "silu",
            "dtype": dtype.huggingFaceName,
        ]
        if family == .llama {
            json["attention_bias"] = outputProjectionBias
            json["mlp_bias"] = mlpBias
        } else if family == .qwen3 {
            json["attention_bias"] = attentionBias
        }
        var rope: [String: Any] = ["rope_theta": Double(ropeTheta), "rope_type": "default"]
        switch ropeScaling {
        case .none: break
        case .linear(let factor):
            rope["rope_type"] = "linear"
            rope["factor"] = Double(factor)
        case .llama3(let factor, let low, let high, let original):
            rope.merge([
                "rope_type": "llama3", "factor": Double(factor), "low_freq_factor": Double(low),
                "high_freq_factor": Double(high), "original_max_position_embeddings": original,
            ]) { _, new in new }
        }
        json["rope_parameters"] = rope
        if let bosTokenID { json["bos_token_id"] = bosTokenID }
        if eosTokenIDs.count == 1 { json["eos_token_id"] = eosTokenIDs[0] }
        if eosTokenIDs.count > 1 { json["eos_token_id"] = eosTokenIDs }
        return try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    }
}

extension DType {
    /// transformers' name for the dtype in config.json.
    public var huggingFaceName: String {
        switch self {
        case .bfloat16: "bfloat16"
        case .float16: "float16"
        default: "float32"
        }
    }

    /// The dtype for a config.json `dtype`/`torch_dtype` value.
    public init?(huggingFaceName name: String) {
        switch name {
        case "bfloat16": self = .bfloat16
        case "float16": self = .float16
        case "float32": self = .float32
        default: return nil
        }
    }
}

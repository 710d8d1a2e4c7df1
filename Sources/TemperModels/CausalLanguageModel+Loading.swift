import Foundation
import TemperCore
import TemperNN

extension CausalLanguageModel {
    /// Checkpoint entries that carry no parameters (older transformers saved RoPE buffers).
    static func isIgnorable(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors` or a sharded set
    /// with `model.safetensors.index.json`. Weights are converted to float32 for compute, except in a
    /// folder quantized for the engine (``saveQuantizedForInference(to:format:configJSON:)``), whose
    /// projections stay int8 or q4.
    ///
    /// Missing or unexpected weights and wrong shapes are errors that list the names.
    public static func load(directory: URL) throws -> CausalLanguageModel {
        let configuration = try ModelConfiguration.load(directory.appendingPathComponent("config.json"))
        let model = CausalLanguageModel(configuration: configuration)
        var tensors = try Safetensors.loadDirectory(directory).tensors
        // A folder quantized for the engine: its matrices go into the layers as they are.
        if try inferenceQuantization(of: directory) != nil { try model.loadQuantizedMatrices(&tensors, source: directory.path) }
        try model.loadWeights(tensors, source: directory.path)
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

// MARK: Folders quantized for the engine

extension CausalLanguageModel {
    /// The config.json key that marks a folder written by ``saveQuantizedForInference(to:format:configJSON:)``.
    public static let quantizationKey = "temper_quantization"

    /// Every projection that ``quantizeForInference(_:)`` quantizes, with its Hugging Face name
    /// (without `.weight`); the tied LM head is ``inferenceHead``, named `lm_head`.
    var inferenceLinears: [(name: String, layer: Linear)] {
        var result: [(String, Linear)] = []
        for (index, layer) in model.layers.enumerated() {
            let a = layer.selfAttention, m = layer.mlp, prefix = "model.layers.\(index)"
            result += [
                ("\(prefix).self_attn.q_proj", a.qProj), ("\(prefix).self_attn.k_proj", a.kProj), ("\(prefix).self_attn.v_proj", a.vProj),
                ("\(prefix).self_attn.o_proj", a.oProj), ("\(prefix).mlp.gate_proj", m.gateProj), ("\(prefix).mlp.up_proj", m.upProj),
                ("\(prefix).mlp.down_proj", m.downProj),
            ]
        }
        if let lmHead { result.append(("lm_head", lmHead)) }
        return result
    }

    /// Writes the model with its projections and LM head in the engine's int8 or q4 format (as
    /// `temper serve --quantize` would make them at load): a Hugging Face style folder whose
    /// config.json has `"temper_quantization": {"format": …, "group_size": 64}` and whose
    /// model.safetensors holds, for each quantized matrix `NAME.weight`, `NAME.weight.codes` (int8,
    /// or uint8 with two q4 codes a byte), `NAME.weight.scales` and, for q4, `NAME.weight.mins`.
    /// Embeddings and norms stay float32. `temper serve`, `generate` and `eval` load it as it is.
    public func saveQuantizedForInference(to directory: URL, format: WeightOnlyQuantizedMatrix.Format, configJSON: Data? = nil) throws {
        precondition(format == .int8 || format == .q4, "the engine's quantized folders are int8 or q4")
        quantizeForInference(format)
        var tensors = checkpointTensors()
        func add(_ name: String, _ matrix: WeightOnlyQuantizedMatrix) {
            tensors["\(name).weight.codes"] = matrix.codes
            tensors["\(name).weight.scales"] = matrix.scales
            if let mins = matrix.mins { tensors["\(name).weight.mins"] = mins }
        }
        for (name, layer) in inferenceLinears { if let matrix = layer.inferenceWeight { add(name, matrix) } }
        if let inferenceHead { add("lm_head", inferenceHead) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Safetensors.save(
            tensors, metadata: ["format": "pt", Self.quantizationKey: format == .int8 ? "int8" : "q4"],
            to: directory.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: try configJSON ?? configuration.jsonData()) as? [String: Any] ?? [:]
        config[Self.quantizationKey] = ["format": format == .int8 ? "int8" : "q4", "group_size": WeightOnlyQuantizedMatrix.groupSize]
        try writeFileAtomically(
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]), to: directory.appendingPathComponent("config.json"))
    }

    /// Bytes of the matrices stored quantized for inference (not parameters, so not in ``parameters()``).
    public var quantizedInferenceBytes: Int {
        inferenceLinears.reduce(inferenceHead?.byteCount ?? 0) { $0 + ($1.layer.inferenceWeight?.byteCount ?? 0) }
    }

    /// The `temper_quantization` format a model folder's config.json names, if any.
    public static func inferenceQuantization(of directory: URL) throws -> String? {
        let data = try Data(contentsOf: directory.appendingPathComponent("config.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return (object?[quantizationKey] as? [String: Any])?["format"] as? String
    }

    /// Takes the quantized matrices out of `tensors` into the projections (and the tied head), leaving
    /// the float parameters for ``loadWeights(_:source:)``. A matrix's codes, scales and mins must all
    /// be there, with the shapes its layer needs.
    func loadQuantizedMatrices(_ tensors: inout [String: Tensor], source: String) throws {
        func take(_ name: String, shape: [Int]) throws -> WeightOnlyQuantizedMatrix {
            let prefix = "\(name).weight"
            guard let codes = tensors.removeValue(forKey: "\(prefix).codes"), let scales = tensors.removeValue(forKey: "\(prefix).scales") else {
                throw ModelError.missingWeights(folder: source, names: ["\(prefix).codes", "\(prefix).scales"])
            }
            let mins = tensors.removeValue(forKey: "\(prefix).mins")
            let format: WeightOnlyQuantizedMatrix.Format = codes.dtype == .int8 ? .int8 : .q4
            let groups = shape[1] / WeightOnlyQuantizedMatrix.groupSize
            let codeShape = format == .int8 ? shape : [shape[0], shape[1] / 2]
            guard codes.dtype == .int8 || codes.dtype == .uint8, codes.shape == codeShape else {
                throw ModelError.wrongShape(folder: source, name: "\(prefix).codes", expected: codeShape, got: codes.shape)
            }
            guard scales.shape == [shape[0], groups] else {
                throw ModelError.wrongShape(folder: source, name: "\(prefix).scales", expected: [shape[0], groups], got: scales.shape)
            }
            guard (mins == nil) == (format == .int8), mins.map({ $0.shape == [shape[0], groups] }) ?? true else {
                throw ModelError.wrongShape(folder: source, name: "\(prefix).mins", expected: format == .q4 ? [shape[0], groups] : [], got: mins?.shape ?? [])
            }
            let matrix = WeightOnlyQuantizedMatrix(
                format: format, codes: codes, scales: scales.asType(.float32), mins: mins?.asType(.float32), shape: shape)
            eval(matrix.tensors)
            return matrix
        }
        for (name, layer) in inferenceLinears where tensors["\(name).weight.codes"] != nil {
            layer.inferenceWeight = try take(name, shape: [layer.outputSize, layer.inputSize])
            layer.weight = Tensor.zeros([0])
        }
        if lmHead == nil, tensors["lm_head.weight.codes"] != nil {
            inferenceHead = try take("lm_head", shape: [configuration.vocabularySize, configuration.hiddenSize])
        }
    }
}

import Foundation

/// Why a model folder could not be read, written or converted; each case names the file or field.
public enum ModelError: Error, LocalizedError, Equatable {
    case missingFile(path: String)
    case invalidJSON(path: String, reason: String)
    case missingField(path: String, field: String)
    case invalidField(path: String, field: String, reason: String)
    case unknownModelType(path: String, modelType: String, supported: [String])
    case missingWeights(folder: String, names: [String])
    case unexpectedWeights(folder: String, names: [String])
    case wrongShape(folder: String, name: String, expected: [Int], got: [Int])
    case unsupported(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .missingFile(let path):
            "\(path): no such file"
        case .invalidJSON(let path, let reason):
            "\(path): not valid JSON: \(reason)"
        case .missingField(let path, let field):
            "\(path): missing field '\(field)'"
        case .invalidField(let path, let field, let reason):
            "\(path): field '\(field)' \(reason)"
        case .unknownModelType(let path, let type, let supported):
            "\(path): unknown model_type '\(type)'; supported: \(supported.joined(separator: ", "))"
        case .missingWeights(let folder, let names):
            "\(folder): missing weights (\(names.count)): \(Self.list(names))"
        case .unexpectedWeights(let folder, let names):
            "\(folder): unexpected weights (\(names.count)): \(Self.list(names))"
        case .wrongShape(let folder, let name, let expected, let got):
            "\(folder): weight '\(name)' has shape \(got), expected \(expected)"
        case .unsupported(let path, let reason):
            "\(path): \(reason)"
        }
    }

    private static func list(_ names: [String]) -> String {
        names.count <= 12 ? names.joined(separator: ", ")
            : names.prefix(12).joined(separator: ", ") + ", …"
    }
}

/// How rotary position frequencies are scaled beyond the trained context.
public enum RopeScaling: Equatable, Sendable {
    case none
    /// Positions divided by `factor` (transformers' "linear").
    case linear(factor: Float)
    /// Llama 3.1's frequency-dependent scaling (transformers' "llama3").
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
}

/// The fields of a Hugging Face `config.json` that the supported decoder families use.
///
/// Both config styles are read: transformers 4 (`rope_theta`, `rope_scaling`) and transformers 5
/// (`rope_parameters`).
public struct ModelConfiguration: Equatable, Sendable {
    public var modelType: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var headDimension: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling
    public var tieWordEmbeddings: Bool
    /// Bias on the q/k/v projections (always for Qwen2, `attention_bias` otherwise).
    public var attentionBias: Bool
    /// Bias on the output projection (Llama's `attention_bias` covers it too).
    public var outputProjectionBias: Bool
    public var mlpBias: Bool
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3).
    public var queryKeyNorm: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    /// The dtype the weights were stored in (`torch_dtype` or `dtype`), e.g. "bfloat16".
    public var storageDType: String?

    public init(
        modelType: String, vocabularySize: Int, hiddenSize: Int, intermediateSize: Int,
        layerCount: Int, headCount: Int, keyValueHeadCount: Int, headDimension: Int? = nil,
        rmsNormEps: Float = 1e-6, ropeTheta: Float = 10000, ropeScaling: RopeScaling = .none,
        tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
        outputProjectionBias: Bool = false, mlpBias: Bool = false, queryKeyNorm: Bool = false,
        maxPositionEmbeddings: Int = 2048, bosTokenID: Int? = nil, eosTokenIDs: [Int] = [],
        storageDType: String? = nil
    ) {
        self.modelType = modelType
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headDimension = headDimension ?? hiddenSize / headCount
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.outputProjectionBias = outputProjectionBias
        self.mlpBias = mlpBias
        self.queryKeyNorm = queryKeyNorm
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.storageDType = storageDType
    }

    /// Reads `config.json`, checking that the model type is one of the registry's.
    public static func load(_ url: URL) throws -> ModelConfiguration {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError.missingFile(path: url.path)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ModelError.invalidJSON(path: url.path, reason: "\(error.localizedDescription)")
        }
        guard let json = object as? [String: Any] else {
            throw ModelError.invalidJSON(path: url.path, reason: "the top level is not an object")
        }
        return try ModelConfiguration(json: json, path: url.path)
    }

    public init(json: [String: Any], path: String) throws {
        let fields = ConfigFields(json: json, path: path)
        let type: String = try fields.required("model_type")
        guard let family = ModelFamily(rawValue: type) else {
            throw ModelError.unknownModelType(
                path: path, modelType: type, supported: ModelFamily.allCases.map(\.rawValue))
        }
        let hidden: Int = try fields.required("hidden_size")
        let heads: Int = try fields.required("num_attention_heads")
        let attentionBias: Bool = fields.optional("attention_bias") ?? false

        // transformers 5 keeps rope settings in rope_parameters; 4 in rope_theta + rope_scaling.
        let ropeParameters: [String: Any]? = fields.optional("rope_parameters")
        let ropeSource = ropeParameters ?? fields.optional("rope_scaling") ?? [:]
        let ropeField = ropeParameters != nil ? "rope_parameters" : "rope_scaling"
        let theta: Double = (ropeParameters?["rope_theta"] as? NSNumber)?.doubleValue
            ?? fields.optional("rope_theta") ?? 10000
        let scaling = try Self.ropeScaling(ropeSource, field: ropeField, path: path)

        let eos = fields.tokenIDs("eos_token_id")
        self.init(
            modelType: type,
            vocabularySize: try fields.required("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try fields.required("intermediate_size"),
            layerCount: try fields.required("num_hidden_layers"),
            headCount: heads,
            keyValueHeadCount: fields.optional("num_key_value_heads") ?? heads,
            headDimension: fields.optional("head_dim"),
            rmsNormEps: Float(fields.optional("rms_norm_eps") ?? 1e-6),
            ropeTheta: Float(theta),
            ropeScaling: scaling,
            tieWordEmbeddings: fields.optional("tie_word_embeddings") ?? (family == .qwen3),
            attentionBias: family == .qwen2 || attentionBias,
            outputProjectionBias: family == .llama && attentionBias,
            mlpBias: fields.optional("mlp_bias") ?? false,
            queryKeyNorm: family == .qwen3,
            maxPositionEmbeddings: fields.optional("max_position_embeddings") ?? 2048,
            bosTokenID: fields.optional("bos_token_id"),
            eosTokenIDs: eos,
            storageDType: fields.optional("dtype") ?? fields.optional("torch_dtype"))
        guard headCount > 0, keyValueHeadCount > 0, headCount % keyValueHeadCount == 0 else {
            throw ModelError.invalidField(
                path: path, field: "num_key_value_heads",
                reason: "(\(keyValueHeadCount)) must divide num_attention_heads (\(headCount))")
        }
        guard headDimension % 2 == 0 else {
            throw ModelError.invalidField(path: path, field: "head_dim", reason: "(\(headDimension)) must be even for RoPE")
        }
    }

    private static func ropeScaling(_ source: [String: Any], field: String, path: String) throws -> RopeScaling {
        let type = (source["rope_type"] ?? source["type"]) as? String ?? "default"
        func number(_ key: String) throws -> Float {
            guard let value = source[key] as? NSNumber else {
                throw ModelError.missingField(path: path, field: "\(field).\(key)")
            }
            return value.floatValue
        }
        switch type {
        case "default":
            return .none
        case "linear":
            return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(
                factor: try number("factor"), lowFrequencyFactor: try number("low_freq_factor"),
                highFrequencyFactor: try number("high_freq_factor"),
                originalContext: Int(try number("original_max_position_embeddings")))
        default:
            throw ModelError.invalidField(
                path: path, field: "\(field).rope_type",
                reason: "'\(type)' is not supported (default, linear, llama3)")
        }
    }

    /// The families Temper implements, keyed by `model_type`.
    public var family: ModelFamily { ModelFamily(rawValue: modelType) ?? .llama }
}

/// The registry of supported decoder families, keyed by config.json's `model_type`.
public enum ModelFamily: String, CaseIterable, Sendable {
    case llama
    case qwen2
    case qwen3

    /// The `architectures` entry transformers expects.
    public var architecture: String {
        switch self {
        case .llama: "LlamaForCausalLM"
        case .qwen2: "Qwen2ForCausalLM"
        case .qwen3: "Qwen3ForCausalLM"
        }
    }
}

/// Typed access to config.json fields with errors that name the field.
struct ConfigFields {
    let json: [String: Any]
    let path: String

    func required<T>(_ key: String) throws -> T {
        guard let raw = json[key], !(raw is NSNull) else {
            throw ModelError.missingField(path: path, field: key)
        }
        guard let value: T = Self.cast(raw) else {
            throw ModelError.invalidField(path: path, field: key, reason: "has the wrong type (\(type(of: raw)))")
        }
        return value
    }

    /// A field holding one token id or a list of them (`eos_token_id`), as a list.
    func tokenIDs(_ key: String) -> [Int] {
        if let list: [Int] = optional(key) { return list }
        if let single: Int = optional(key) { return [single] }
        return []
    }

    func optional<T>(_ key: String) -> T? {
        guard let raw = json[key], !(raw is NSNull) else { return nil }
        return Self.cast(raw)
    }

    private static func cast<T>(_ raw: Any) -> T? {
        if T.self == Int.self, let number = raw as? NSNumber, !(raw is Bool) {
            return number.intValue as? T
        }
        if T.self == Double.self, let number = raw as? NSNumber { return number.doubleValue as? T }
        if T.self == [Int].self, let list = raw as? [NSNumber] { return list.map(\.intValue) as? T }
        return raw as? T
    }
}

import Foundation
import TemperData
import TemperNN
import TemperPEFT
import Yams

/// Why a training run could not start or had to stop.
public enum TrainingError: Error, LocalizedError, Equatable {
    /// A recipe value is wrong; `file` is the recipe it came from, when one did.
    case invalidRecipe(field: String, reason: String, file: String? = nil)
    case unreadableFile(path: String, reason: String)
    case nonFiniteLoss(step: Int, checkpoint: String?)
    case resume(path: String, reason: String)
    case invalidData(path: String, reason: String)
    /// Started as a rank (`temper launch`, `mpirun`) but the process group could not be joined.
    case cannotJoin(reason: String)

    public var errorDescription: String? {
        switch self {
        case .invalidRecipe(let field, let reason, let file):
            (file.map { "\($0): " } ?? "") + "recipe field '\(field)': \(reason)"
        case .unreadableFile(let path, let reason): "\(path): \(reason)"
        case .nonFiniteLoss(let step, let checkpoint):
            "the loss became NaN or infinite at step \(step); stopped. "
                + (checkpoint.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was written yet.")
        case .resume(let path, let reason): "cannot resume from \(path): \(reason)"
        case .invalidData(let path, let reason): "\(path): \(reason)"
        case .cannotJoin(let reason): "cannot join the data-parallel ranks: \(reason)"
        }
    }
}

/// A closed set of recipe values: decoding an unknown one fails with the allowed values named.
public protocol RecipeChoice: RawRepresentable<String>, CaseIterable, Codable, Sendable {}

extension RecipeChoice {
    public static var allowed: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The value named `raw` in a recipe file; the error names the allowed values.
    static func decoded(_ raw: String, codingPath: [any CodingKey]) throws -> Self {
        guard let value = Self(rawValue: raw) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath, debugDescription: "must be one of \(allowed); got '\(raw)'"))
        }
        return value
    }

    /// Parses a flag's value; the error names the flag and the allowed values.
    public static func parse(_ raw: String, flag: String) throws -> Self {
        guard let value = Self(rawValue: raw) else {
            throw TrainingError.invalidRecipe(field: flag, reason: "must be one of \(allowed); got '\(raw)'")
        }
        return value
    }
}

public enum TrainingMethod: String, RecipeChoice {
    case full, lora, qlora
}

public enum FrozenDType: String, RecipeChoice {
    case float32, bfloat16
}

/// QLoRA's storage of the frozen base.
public enum BaseQuantization: String, RecipeChoice {
    case nf4, int8
}

public enum OptimizerKind: String, RecipeChoice {
    case adamw
    /// Both moments in blockwise 8-bit (bitsandbytes' dynamic map, blocks of 256).
    case adamw8bit = "adamw_8bit"
    case sgd
}

extension LearningRateSchedule.Kind: RecipeChoice {}
extension TruncationMode: RecipeChoice {}

extension KeyedDecodingContainer {
    /// An enum field by its raw value (absent: `fallback`); the error lists the allowed values.
    func decodeChoice<T: RecipeChoice>(_ key: Key, _ fallback: T) throws -> T {
        guard let raw = try decodeIfPresent(String.self, forKey: key) else { return fallback }
        return try T.decoded(raw, codingPath: codingPath + [key])
    }
}

/// What every method's recipe shares: model, data, output, method and adapters, optimizer,
/// schedule, batch, checkpointing, seed. Field names are snake_case in files; a method's recipe
/// (``SFTRecipe``, ``DPORecipe``) adds its own fields beside these at the top level.
public struct TrainingRecipe: Codable, Sendable, Equatable {
    public var model: String = ""
    public var data: [String] = []
    public var evalData: [String] = []
    public var output: String = ""
    public var method: TrainingMethod = .lora
    public var lora = LoRAConfiguration()
    /// A PEFT adapter folder to start from (trained further) instead of fresh adapters.
    public var adapter: String?
    public var quantization: BaseQuantization = .nf4
    /// QLoRA: also quantize the per-block scales (int8, blocks of 256).
    public var doubleQuantization: Bool = false
    /// Storage of frozen projection weights with LoRA (bfloat16: half the memory, widened to
    /// float32 per call).
    public var frozenDType: FrozenDType = .float32
    public var optimizer: OptimizerKind = .adamw
    public var learningRate: Float = 2e-4
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var adamEps: Float = 1e-8
    public var weightDecay: Float = 0
    public var maxGradNorm: Float = 1.0
    public var schedule: LearningRateSchedule.Kind = .cosine
    public var warmupSteps: Int = 0
    public var batchSize: Int = 4
    public var gradAccum: Int = 1
    public var maxSteps: Int?
    public var epochs: Float?
    public var maxLength: Int = 512
    public var seed: UInt64 = 0
    public var evalFraction: Float = 0
    public var evalEvery: Int = 0
    public var saveEvery: Int = 0
    public var keepCheckpoints: Int = 2
    public var logEvery: Int = 1
    public var gradientCheckpointing: Bool = false
    public var skipInvalidRecords: Bool = false
    /// The recipe file this came from (not saved): errors name it.
    public var sourceFile: String?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, data, output, method, lora, adapter, seed, schedule, epochs, quantization, optimizer
        case evalData = "eval_data", learningRate = "learning_rate", quantBits = "quant_bits"
        case batchSize = "batch_size", gradAccum = "grad_accum", maxSteps = "max_steps"
        case maxLength = "max_length", warmupSteps = "warmup_steps", weightDecay = "weight_decay"
        case beta1 = "adam_beta1", beta2 = "adam_beta2", adamEps = "adam_eps", maxGradNorm = "max_grad_norm"
        case evalFraction = "eval_fraction", evalEvery = "eval_every"
        case saveEvery = "save_every", keepCheckpoints = "keep_checkpoints", logEvery = "log_every"
        case gradientCheckpointing = "gradient_checkpointing", skipInvalidRecords = "skip_invalid_records"
        case frozenDType = "frozen_dtype", doubleQuantization = "double_quantization"
    }

    static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingRecipe()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        func list(_ key: CodingKeys) throws -> [String] {
            if let single = try? c.decode(String.self, forKey: key) { return [single] }
            return try value(key, [String]())
        }
        model = try value(.model, d.model)
        data = try list(.data)
        evalData = try list(.evalData)
        output = try value(.output, d.output)
        method = try c.decodeChoice(.method, d.method)
        lora = try value(.lora, d.lora)
        adapter = try c.decodeIfPresent(String.self, forKey: .adapter)
        quantization = try c.decodeChoice(.quantization, d.quantization)
        // quant_bits: 4 | 8, the older spelling of quantization.
        if let bits = try c.decodeIfPresent(Int.self, forKey: .quantBits) {
            guard bits == 4 || bits == 8 else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: c.codingPath + [CodingKeys.quantBits], debugDescription: "must be 4 or 8, got \(bits)"))
            }
            quantization = bits == 4 ? .nf4 : .int8
        }
        doubleQuantization = try value(.doubleQuantization, d.doubleQuantization)
        frozenDType = try c.decodeChoice(.frozenDType, d.frozenDType)
        optimizer = try c.decodeChoice(.optimizer, d.optimizer)
        learningRate = try value(.learningRate, d.learningRate)
        beta1 = try value(.beta1, d.beta1)
        beta2 = try value(.beta2, d.beta2)
        adamEps = try value(.adamEps, d.adamEps)
        weightDecay = try value(.weightDecay, d.weightDecay)
        maxGradNorm = try value(.maxGradNorm, d.maxGradNorm)
        schedule = try c.decodeChoice(.schedule, d.schedule)
        warmupSteps = try value(.warmupSteps, d.warmupSteps)
        batchSize = try value(.batchSize, d.batchSize)
        gradAccum = try value(.gradAccum, d.gradAccum)
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
        epochs = try c.decodeIfPresent(Float.self, forKey: .epochs)
        maxLength = try value(.maxLength, d.maxLength)
        seed = try value(.seed, d.seed)
        evalFraction = try value(.evalFraction, d.evalFraction)
        evalEvery = try value(.evalEvery, d.evalEvery)
        saveEvery = try value(.saveEvery, d.saveEvery)
        keepCheckpoints = try value(.keepCheckpoints, d.keepCheckpoints)
        logEvery = try value(.logEvery, d.logEvery)
        gradientCheckpointing = try value(.gradientCheckpointing, d.gradientCheckpointing)
        skipInvalidRecords = try value(.skipInvalidRecords, d.skipInvalidRecords)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(data, forKey: .data)
        try c.encode(evalData, forKey: .evalData)
        try c.encode(output, forKey: .output)
        try c.encode(method, forKey: .method)
        try c.encode(lora, forKey: .lora)
        try c.encodeIfPresent(adapter, forKey: .adapter)
        try c.encode(quantization, forKey: .quantization)
        try c.encode(doubleQuantization, forKey: .doubleQuantization)
        try c.encode(frozenDType, forKey: .frozenDType)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(beta1, forKey: .beta1)
        try c.encode(beta2, forKey: .beta2)
        try c.encode(adamEps, forKey: .adamEps)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(maxGradNorm, forKey: .maxGradNorm)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(gradAccum, forKey: .gradAccum)
        try c.encodeIfPresent(maxSteps, forKey: .maxSteps)
        try c.encodeIfPresent(epochs, forKey: .epochs)
        try c.encode(maxLength, forKey: .maxLength)
        try c.encode(seed, forKey: .seed)
        try c.encode(evalFraction, forKey: .evalFraction)
        try c.encode(evalEvery, forKey: .evalEvery)
        try c.encode(saveEvery, forKey: .saveEvery)
        try c.encode(keepCheckpoints, forKey: .keepCheckpoints)
        try c.encode(logEvery, forKey: .logEvery)
        try c.encode(gradientCheckpointing, forKey: .gradientCheckpointing)
        try c.encode(skipInvalidRecords, forKey: .skipInvalidRecords)
    }

    /// Checks values before any work starts; errors name the field (and the recipe file).
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalidRecipe(field: field, reason: reason, file: sourceFile) }
        }
        try check(!model.isEmpty, "model", "is required (a Hugging Face model folder)")
        try check(!data.isEmpty, "data", "is required (one or more JSON/JSONL files)")
        try check(!output.isEmpty, "output", "is required (the output folder)")
        try check(learningRate > 0, "learning_rate", "must be positive, got \(learningRate)")
        try check(batchSize > 0, "batch_size", "must be positive, got \(batchSize)")
        try check(gradAccum > 0, "grad_accum", "must be positive, got \(gradAccum)")
        try check(maxSteps != nil || epochs != nil, "max_steps", "give max_steps or epochs")
        try check((maxSteps ?? 1) > 0, "max_steps", "must be positive")
        try check((epochs ?? 1) > 0, "epochs", "must be positive")
        try check(maxLength >= 8, "max_length", "must be at least 8, got \(maxLength)")
        try check(warmupSteps >= 0, "warmup_steps", "must be 0 or more")
        try check(lora.rank > 0, "lora.rank", "must be positive, got \(lora.rank)")
        try check(lora.dropout >= 0 && lora.dropout < 1, "lora.dropout", "must be in [0, 1), got \(lora.dropout)")
        try check(evalFraction >= 0 && evalFraction < 1, "eval_fraction", "must be in [0, 1)")
        try check(keepCheckpoints >= 1, "keep_checkpoints", "must be at least 1")
        try check(frozenDType == .float32 || method == .lora, "frozen_dtype", "bfloat16 storage applies to method lora only")
        try check(adapter == nil || method != .full, "adapter", "continuing from an adapter needs method lora or qlora")
        if method != .full {
            do {
                _ = try lora.resolvedTargets()
            } catch LoRAError.unknownTargetModules(let reason) {
                try check(false, "lora.target_modules", reason)
            }
        }
    }

    /// How the frozen projections are stored for this method.
    public var frozenStorage: FrozenStorage {
        switch method {
        case .full: .float32
        case .lora: frozenDType == .bfloat16 ? .bfloat16 : .float32
        case .qlora: .quantized(quantization == .nf4 ? .nf4 : .int8, doubleQuantization: doubleQuantization)
        }
    }

    /// The fields a resumed run must share with the checkpoint it resumes.
    public var checkpointIdentity: [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let loraJSON = (try? encoder.encode(lora)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
        return [
            "method": method.rawValue, "lora": method == .full ? "" : loraJSON, "seed": String(seed),
            "data": data.joined(separator: "\n"), "optimizer": optimizer.rawValue, "adapter": adapter ?? "",
        ]
    }

    /// A fresh optimizer of the recipe's kind.
    public func makeOptimizer() -> any Optimizer {
        switch optimizer {
        case .adamw: AdamW(beta1: beta1, beta2: beta2, eps: adamEps, weightDecay: weightDecay)
        case .adamw8bit: AdamW8bit(beta1: beta1, beta2: beta2, eps: adamEps, weightDecay: weightDecay)
        case .sgd: SGD(learningRate: learningRate, weightDecay: weightDecay)
        }
    }
}

/// A method's recipe: the shared core plus the method's own fields, all at the top level of the
/// file. `recipe.learningRate` reads and writes the core's field.
public protocol MethodRecipe: Codable, Sendable {
    var core: TrainingRecipe { get set }
    /// The method's own field names (snake_case), for the unknown-field check.
    static var methodFieldNames: Set<String> { get }
    init()
    func validate() throws
}

extension MethodRecipe {
    /// Reads a recipe file (YAML for .yaml/.yml, JSON otherwise); errors name the file and the field,
    /// and a field no recipe of this method has is an error (a typo would otherwise be ignored).
    public static func load(_ url: URL) throws -> Self {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TrainingError.unreadableFile(path: url.path, reason: "no such file")
        }
        let yaml = ["yaml", "yml"].contains(url.pathExtension.lowercased())
        var recipe: Self
        do {
            recipe = yaml ? try YAMLDecoder().decode(Self.self, from: data) : try JSONDecoder().decode(Self.self, from: data)
        } catch let error as DecodingError {
            throw TrainingError.unreadableFile(path: url.path, reason: describe(error))
        } catch {
            throw TrainingError.unreadableFile(path: url.path, reason: "\(error)")
        }
        let topLevel: [String]
        if yaml {
            topLevel = ((try? Yams.load(yaml: String(decoding: data, as: UTF8.self))) as? [String: Any]).map { Array($0.keys) } ?? []
        } else {
            topLevel = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any]).map { Array($0.keys) } ?? []
        }
        let known = TrainingRecipe.fieldNames.union(methodFieldNames)
        if let unknown = topLevel.filter({ !known.contains($0) }).sorted().first {
            throw TrainingError.unreadableFile(
                path: url.path, reason: "unknown field '\(unknown)'; known fields: \(known.sorted().joined(separator: ", "))")
        }
        recipe.core.sourceFile = url.path
        return recipe
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "field '\(path(context))': \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing field '\(path(context) + (path(context).isEmpty ? "" : ".") + key.stringValue)'"
        @unknown default:
            return "\(error)"
        }
    }

    /// The recipe as pretty JSON (saved as `recipe.json` in the output folder).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// Supervised fine-tuning's recipe.
@dynamicMemberLookup
public struct SFTRecipe: MethodRecipe, Equatable {
    public var core = TrainingRecipe()
    /// Several samples per row (first-fit decreasing), each attending only to itself.
    public var packing: Bool = true
    /// Loss on prompt tokens too (default: completions only).
    public var trainOnPrompt: Bool = false

    public init() {}

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<TrainingRecipe, T>) -> T {
        get { core[keyPath: keyPath] }
        set { core[keyPath: keyPath] = newValue }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case packing
        case trainOnPrompt = "train_on_prompt"
    }

    public static var methodFieldNames: Set<String> { Set(CodingKeys.allCases.map(\.rawValue)) }

    public init(from decoder: any Decoder) throws {
        core = try TrainingRecipe(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        packing = try c.decodeIfPresent(Bool.self, forKey: .packing) ?? packing
        trainOnPrompt = try c.decodeIfPresent(Bool.self, forKey: .trainOnPrompt) ?? trainOnPrompt
    }

    public func encode(to encoder: any Encoder) throws {
        try core.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(packing, forKey: .packing)
        try c.encode(trainOnPrompt, forKey: .trainOnPrompt)
    }

    public func validate() throws { try core.validate() }
}

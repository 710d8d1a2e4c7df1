import Foundation
import TemperData
import TemperNN
import Yams

/// Why a training run could not start or had to stop.
public enum TrainingError: Error, LocalizedError, Equatable {
    case invalidRecipe(field: String, reason: String)
    case unreadableFile(path: String, reason: String)
    case nonFiniteLoss(step: Int, checkpoint: String?)
    case resume(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .invalidRecipe(let field, let reason): "recipe field '\(field)': \(reason)"
        case .unreadableFile(let path, let reason): "\(path): \(reason)"
        case .nonFiniteLoss(let step, let checkpoint):
            "the loss became NaN or infinite at step \(step); stopped. "
                + (checkpoint.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was written yet.")
        case .resume(let path, let reason): "cannot resume from \(path): \(reason)"
        }
    }
}

/// Everything that describes an SFT run; read from YAML or JSON and saved, resolved, beside the
/// outputs. Field names are snake_case in files.
public struct Recipe: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        case full, lora, qlora
    }

    public var model: String = ""
    public var data: [String] = []
    public var evalData: [String] = []
    public var output: String = ""
    public var method: Method = .lora
    public var lora = LoRAConfiguration()
    public var quantBits: Int = 4
    public var learningRate: Float = 2e-4
    public var batchSize: Int = 4
    public var gradAccum: Int = 1
    public var maxSteps: Int?
    public var epochs: Float?
    public var maxLength: Int = 512
    public var seed: UInt64 = 0
    public var schedule: String = "cosine"
    public var warmupSteps: Int = 0
    public var weightDecay: Float = 0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var adamEps: Float = 1e-8
    public var maxGradNorm: Float = 1.0
    public var packing: Bool = true
    public var trainOnPrompt: Bool = false
    public var evalFraction: Float = 0
    public var evalEvery: Int = 0
    public var saveEvery: Int = 0
    public var keepCheckpoints: Int = 2
    public var logEvery: Int = 1
    public var gradientCheckpointing: Bool = false
    public var skipInvalidRecords: Bool = false
    /// Storage of frozen projection weights with LoRA: float32, or bfloat16 (half the memory,
    /// converted to float32 per layer for the matmul).
    public var frozenDType: String = "float32"
    /// QLoRA: also quantize the per-block scales (int8, blocks of 256).
    public var doubleQuantization: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case model, data, output, method, lora, seed, schedule, packing, epochs
        case evalData = "eval_data", quantBits = "quant_bits", learningRate = "learning_rate"
        case batchSize = "batch_size", gradAccum = "grad_accum", maxSteps = "max_steps"
        case maxLength = "max_length", warmupSteps = "warmup_steps", weightDecay = "weight_decay"
        case beta1 = "adam_beta1", beta2 = "adam_beta2", adamEps = "adam_eps", maxGradNorm = "max_grad_norm"
        case trainOnPrompt = "train_on_prompt", evalFraction = "eval_fraction", evalEvery = "eval_every"
        case saveEvery = "save_every", keepCheckpoints = "keep_checkpoints", logEvery = "log_every"
        case gradientCheckpointing = "gradient_checkpointing", skipInvalidRecords = "skip_invalid_records"
        case frozenDType = "frozen_dtype", doubleQuantization = "double_quantization"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Recipe()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        model = try value(.model, d.model)
        if let single = try? c.decode(String.self, forKey: .data) { data = [single] } else { data = try value(.data, d.data) }
        if let single = try? c.decode(String.self, forKey: .evalData) { evalData = [single] } else { evalData = try value(.evalData, d.evalData) }
        output = try value(.output, d.output)
        method = try value(.method, d.method)
        lora = try value(.lora, d.lora)
        quantBits = try value(.quantBits, d.quantBits)
        learningRate = try value(.learningRate, d.learningRate)
        batchSize = try value(.batchSize, d.batchSize)
        gradAccum = try value(.gradAccum, d.gradAccum)
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
        epochs = try c.decodeIfPresent(Float.self, forKey: .epochs)
        maxLength = try value(.maxLength, d.maxLength)
        seed = try value(.seed, d.seed)
        schedule = try value(.schedule, d.schedule)
        warmupSteps = try value(.warmupSteps, d.warmupSteps)
        weightDecay = try value(.weightDecay, d.weightDecay)
        beta1 = try value(.beta1, d.beta1)
        beta2 = try value(.beta2, d.beta2)
        adamEps = try value(.adamEps, d.adamEps)
        maxGradNorm = try value(.maxGradNorm, d.maxGradNorm)
        packing = try value(.packing, d.packing)
        trainOnPrompt = try value(.trainOnPrompt, d.trainOnPrompt)
        evalFraction = try value(.evalFraction, d.evalFraction)
        evalEvery = try value(.evalEvery, d.evalEvery)
        saveEvery = try value(.saveEvery, d.saveEvery)
        keepCheckpoints = try value(.keepCheckpoints, d.keepCheckpoints)
        logEvery = try value(.logEvery, d.logEvery)
        gradientCheckpointing = try value(.gradientCheckpointing, d.gradientCheckpointing)
        skipInvalidRecords = try value(.skipInvalidRecords, d.skipInvalidRecords)
        frozenDType = try value(.frozenDType, d.frozenDType)
        doubleQuantization = try value(.doubleQuantization, d.doubleQuantization)
    }

    /// Reads a recipe file: YAML for .yaml/.yml, JSON otherwise.
    public static func load(_ url: URL) throws -> Recipe {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TrainingError.unreadableFile(path: url.path, reason: "no such file")
        }
        do {
            if ["yaml", "yml"].contains(url.pathExtension.lowercased()) {
                return try YAMLDecoder().decode(Recipe.self, from: data)
            }
            return try JSONDecoder().decode(Recipe.self, from: data)
        } catch let error as DecodingError {
            throw TrainingError.unreadableFile(path: url.path, reason: Self.describe(error))
        } catch {
            throw TrainingError.unreadableFile(path: url.path, reason: "\(error)")
        }
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

    /// Checks values before any work starts; errors name the field.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalidRecipe(field: field, reason: reason) }
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
        try check(LearningRateSchedule.Kind(rawValue: schedule) != nil, "schedule", "must be constant, linear or cosine, got '\(schedule)'")
        try check(warmupSteps >= 0, "warmup_steps", "must be 0 or more")
        try check([4, 8].contains(quantBits), "quant_bits", "must be 4 or 8, got \(quantBits)")
        try check(lora.rank > 0, "lora.rank", "must be positive, got \(lora.rank)")
        try check(lora.dropout >= 0 && lora.dropout < 1, "lora.dropout", "must be in [0, 1), got \(lora.dropout)")
        try check(evalFraction >= 0 && evalFraction < 1, "eval_fraction", "must be in [0, 1)")
        try check(keepCheckpoints >= 1, "keep_checkpoints", "must be at least 1")
        try check(["float32", "bfloat16"].contains(frozenDType), "frozen_dtype", "must be float32 or bfloat16, got '\(frozenDType)'")
        try check(frozenDType == "float32" || method == .lora, "frozen_dtype", "bfloat16 storage applies to method lora only")
        if method != .full { _ = try lora.resolvedTargets() }
    }

    /// The recipe as pretty JSON (saved as `recipe.json` in the output folder).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

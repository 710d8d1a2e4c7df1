import Foundation
import TemperCore
import TemperModels
import TemperNN

/// LoRA adapters in PEFT's on-disk format, so `PeftModel.from_pretrained` loads ours and we
/// load PEFT's: `adapter_config.json` + `adapter_model.safetensors` with tensors named
/// `base_model.model.<module>.lora_A.weight`.
public enum PEFTAdapter {
    static let prefix = "base_model.model."

    /// The Double that prints as the Float does (0.05, not 0.05000000074505806, in the JSON).
    static func shortestDecimal(_ value: Float) -> Double { Double(value.description) ?? Double(value) }

    public static func save(
        model: CausalLanguageModel, configuration: LoRAConfiguration, baseModel: String, to directory: URL
    ) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tensors = Dictionary(uniqueKeysWithValues: model.loraParameters.map { (prefix + $0.key, $0.value) })
        try Safetensors.save(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("adapter_model.safetensors"))
        let adapted = Set(model.projections.filter { $0.layer.lora != nil }.map { String($0.name.split(separator: ".").last!) })
        let config: [String: Any] = [
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": baseModel,
            "r": configuration.rank,
            "lora_alpha": shortestDecimal(configuration.alpha),
            "lora_dropout": shortestDecimal(configuration.dropout),
            "target_modules": adapted.sorted(),
            "use_rslora": configuration.rankStabilized,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "modules_to_save": NSNull(),
            "use_dora": false,
            "layers_to_transform": NSNull(),
            "layers_pattern": NSNull(),
            "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](),
            "revision": NSNull(),
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try writeFileAtomically(data, to: directory.appendingPathComponent("adapter_config.json"))
    }

    /// Reads `adapter_config.json` into a LoRA configuration.
    public static func configuration(at directory: URL) throws -> LoRAConfiguration {
        let url = directory.appendingPathComponent("adapter_config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError.missingFile(path: url.path)
        }
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.invalidJSON(path: url.path, reason: "the top level is not an object")
        }
        guard (json["peft_type"] as? String) == "LORA" else {
            throw ModelError.invalidField(path: url.path, field: "peft_type", reason: "must be LORA")
        }
        guard (json["use_dora"] as? Bool ?? false) == false else {
            throw ModelError.unsupported(path: url.path, reason: "DoRA adapters are not supported yet")
        }
        var configuration = LoRAConfiguration()
        guard let rank = json["r"] as? Int else { throw ModelError.missingField(path: url.path, field: "r") }
        configuration.rank = rank
        configuration.alpha = (json["lora_alpha"] as? NSNumber)?.floatValue ?? Float(rank)
        configuration.dropout = (json["lora_dropout"] as? NSNumber)?.floatValue ?? 0
        configuration.rankStabilized = json["use_rslora"] as? Bool ?? false
        if let list = json["target_modules"] as? [String] {
            configuration.targetModules = list
        } else if let single = json["target_modules"] as? String {
            configuration.targetModules = single == "all-linear" ? ["all-linear"] : [single]
        }
        return configuration
    }

    /// One projection's adapter as read from disk: A [rank, in], B [out, rank], float32.
    struct ProjectionAdapter {
        let a: Tensor
        let b: Tensor
    }

    /// Reads the adapter in `directory` and checks it against `model`'s projections: every tensor
    /// is a `lora_A`/`lora_B` weight of a known projection, each adapted projection has both, with
    /// shapes [rank, in] and [out, rank]. Returns the tensors (evaluated, float32) by projection name.
    static func read(
        from directory: URL, for model: CausalLanguageModel
    ) throws -> (configuration: LoRAConfiguration, adapters: [String: ProjectionAdapter]) {
        let configuration = try configuration(at: directory)
        let url = directory.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.missingFile(path: url.path) }
        let tensors = try Safetensors.load(url).tensors
        let byName = Dictionary(uniqueKeysWithValues: model.projections.map { ($0.name, $0.layer) })
        var parts: [String: (a: Tensor?, b: Tensor?)] = [:]
        var unexpected: [String] = []
        for (key, tensor) in tensors {
            guard key.hasPrefix(prefix), let range = key.range(of: ".lora_") else {
                unexpected.append(key)
                continue
            }
            let name = String(key[key.index(key.startIndex, offsetBy: prefix.count)..<range.lowerBound])
            let suffix = key[range.upperBound...]
            guard byName[name] != nil, suffix == "A.weight" || suffix == "B.weight" else {
                unexpected.append(key)
                continue
            }
            if suffix == "A.weight" { parts[name, default: (nil, nil)].a = tensor } else { parts[name, default: (nil, nil)].b = tensor }
        }
        guard unexpected.isEmpty else { throw ModelError.unexpectedWeights(folder: url.path, names: unexpected.sorted()) }
        let missing = parts.flatMap { name, part in
            [part.a == nil ? name + ".lora_A.weight" : nil, part.b == nil ? name + ".lora_B.weight" : nil].compactMap { $0 }
        }
        guard missing.isEmpty else { throw ModelError.missingWeights(folder: url.path, names: missing.sorted()) }
        var adapters: [String: ProjectionAdapter] = [:]
        for (name, part) in parts.sorted(by: { $0.key < $1.key }) {
            let layer = byName[name]!
            let (a, b) = (part.a!, part.b!)
            let expectedA = [configuration.rank, layer.inputSize], expectedB = [layer.outputSize, configuration.rank]
            guard a.shape == expectedA else {
                throw ModelError.wrongShape(folder: url.path, name: name + ".lora_A.weight", expected: expectedA, got: a.shape)
            }
            guard b.shape == expectedB else {
                throw ModelError.wrongShape(folder: url.path, name: name + ".lora_B.weight", expected: expectedB, got: b.shape)
            }
            adapters[name] = ProjectionAdapter(a: a.asType(.float32), b: b.asType(.float32))
        }
        eval(adapters.values.flatMap { [$0.a, $0.b] })
        return (configuration, adapters)
    }

    /// Adds the adapter in `directory` to `model` (which must have no adapters yet) as trainable
    /// `lora` adapters.
    public static func load(into model: CausalLanguageModel, from directory: URL) throws -> LoRAConfiguration {
        let (configuration, adapters) = try read(from: directory, for: model)
        for (name, layer) in model.projections {
            guard let tensors = adapters[name] else { continue }
            let adapter = LoRAAdapter(
                inputSize: layer.inputSize, outputSize: layer.outputSize, rank: configuration.rank,
                alpha: configuration.alpha, dropout: configuration.dropout,
                rankStabilized: configuration.rankStabilized, key: Random.key(0))
            adapter.a.weight = tensors.a
            adapter.b.weight = tensors.b
            layer.lora = adapter
        }
        return configuration
    }

    /// Adds the adapter in `directory` to `model` as the served adapter `name` of each projection
    /// it adapts (replacing an adapter already served under that name), leaving the base weights,
    /// float or quantized, and any training adapter untouched. It applies to the rows
    /// ``AdapterRouting`` sends to `name`. Nothing changes when the files do not fit the model.
    @discardableResult
    public static func loadServed(named name: String, into model: CausalLanguageModel, from directory: URL) throws -> LoRAConfiguration {
        let (configuration, adapters) = try read(from: directory, for: model)
        let scale = configuration.rankStabilized
            ? configuration.alpha / Float(configuration.rank).squareRoot()
            : configuration.alpha / Float(configuration.rank)
        for (projection, layer) in model.projections {
            layer.servedAdapters[name] = adapters[projection].map { ServedLoRA(a: $0.a, b: $0.b, scale: scale) }
        }
        return configuration
    }

    /// Drops the served adapter `name` from every projection.
    public static func removeServed(named name: String, from model: CausalLanguageModel) {
        for (_, layer) in model.projections { layer.servedAdapters[name] = nil }
    }
}

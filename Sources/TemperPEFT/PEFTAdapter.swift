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

    /// Adds the adapter in `directory` to `model` (which must have no adapters yet).
    public static func load(into model: CausalLanguageModel, from directory: URL) throws -> LoRAConfiguration {
        let configuration = try configuration(at: directory)
        let url = directory.appendingPathComponent("adapter_model.safetensors")
        let tensors = try Safetensors.load(url).tensors
        var names: Set<String> = []
        for key in tensors.keys {
            guard key.hasPrefix(prefix), let range = key.range(of: ".lora_") else {
                throw ModelError.unexpectedWeights(folder: url.path, names: [key])
            }
            names.insert(String(key[key.index(key.startIndex, offsetBy: prefix.count)..<range.lowerBound]))
        }
        let byName = Dictionary(uniqueKeysWithValues: model.projections.map { ($0.name, $0.layer) })
        let unknown = names.filter { byName[$0] == nil }.sorted()
        guard unknown.isEmpty else { throw ModelError.unexpectedWeights(folder: url.path, names: unknown) }
        for name in names {
            let layer = byName[name]!
            layer.lora = LoRAAdapter(
                inputSize: layer.inputSize, outputSize: layer.outputSize, rank: configuration.rank,
                alpha: configuration.alpha, dropout: configuration.dropout,
                rankStabilized: configuration.rankStabilized, key: Random.key(0))
        }
        let renamed = Dictionary(uniqueKeysWithValues: tensors.map {
            (String($0.key.dropFirst(prefix.count)), $0.value.asType(.float32))
        })
        let expected = model.loraParameters
        let missing = expected.keys.filter { renamed[$0] == nil }.sorted()
        guard missing.isEmpty else { throw ModelError.missingWeights(folder: url.path, names: missing) }
        for (name, tensor) in renamed where expected[name]?.shape != tensor.shape {
            throw ModelError.wrongShape(folder: url.path, name: name, expected: expected[name]?.shape ?? [], got: tensor.shape)
        }
        try model.update(parameters: renamed)
        return configuration
    }
}

import Foundation
import TemperCore
import TemperModels
import TemperNN

extension CausalLanguageModel {
    /// Every projection of the decoder blocks by its dotted name (`model.layers.0.self_attn.q_proj`).
    public var projections: [(name: String, layer: Linear)] {
        model.layers.enumerated().flatMap { index, layer -> [(String, Linear)] in
            let prefix = "model.layers.\(index)."
            let a = layer.selfAttention, m = layer.mlp
            return [
                (prefix + "self_attn.q_proj", a.qProj), (prefix + "self_attn.k_proj", a.kProj),
                (prefix + "self_attn.v_proj", a.vProj), (prefix + "self_attn.o_proj", a.oProj),
                (prefix + "mlp.gate_proj", m.gateProj), (prefix + "mlp.up_proj", m.upProj),
                (prefix + "mlp.down_proj", m.downProj),
            ]
        }
    }

    /// Adds fresh adapters to the targeted projections (keys derived from `seed`, so the same
    /// seed gives the same initialization); returns the number of adapted layers.
    @discardableResult
    public func addLoRA(_ configuration: LoRAConfiguration, seed: UInt64) throws -> Int {
        let targets = Set(try configuration.resolvedTargets())
        let chosen = projections.filter { targets.contains(String($0.name.split(separator: ".").last!)) }
        let keys = Random.split(Random.key(seed), count: max(chosen.count, 2))
        for (index, (_, layer)) in chosen.enumerated() {
            layer.lora = LoRAAdapter(
                inputSize: layer.inputSize, outputSize: layer.outputSize, rank: configuration.rank,
                alpha: configuration.alpha, dropout: configuration.dropout,
                rankStabilized: configuration.rankStabilized, key: keys[index])
        }
        return chosen.count
    }

    /// The adapter tensors by model parameter name (`….q_proj.lora_A.weight`).
    public var loraParameters: [String: Tensor] {
        parameters().filter { $0.key.contains(".lora_A.") || $0.key.contains(".lora_B.") }
    }

    /// Draws new dropout masks for every adapter, each from its own seed derived from `seed` (nil
    /// turns dropout off, for evaluation). `rowOffset`: the whole batch's row that this batch's
    /// first row is, when it is a data-parallel rank's share.
    public func setLoRADropout(seed: UInt64?, rowOffset: Int = 0) {
        var seeds = seed.map { SplitMix64(seed: $0) }
        for adapter in projections.compactMap(\.layer.lora) {
            adapter.dropoutSeed = seeds?.next()
            adapter.dropoutRowOffset = rowOffset
        }
    }

    /// Folds every adapter into its base weight and removes it.
    public func mergeLoRA() {
        for (_, layer) in projections where layer.lora != nil {
            layer.weight = layer.mergedWeight
            layer.lora = nil
        }
    }
}

/// How the frozen base projections under adapters are kept in memory.
public enum FrozenStorage: Sendable, Equatable {
    case float32
    /// Half the memory; the LoRA kernel widens each weight per call.
    case bfloat16
    /// QLoRA: NF4 or int8 blocks, dequantized per call.
    case quantized(BlockQuantizedWeight.Format, doubleQuantization: Bool)
}

/// What adapter setup did to a model, for the run's log.
public struct TrainableReport: Sendable, Equatable {
    public var trainableParameters: Int
    public var totalParameters: Int
    /// Projections that received an adapter (0 for full fine-tuning).
    public var adaptedLayers: Int
    /// Bytes of the frozen projections before and after their storage changed.
    public var frozenBytesBefore: Int
    public var frozenBytesAfter: Int

    public var trainableShare: Double { Double(trainableParameters) / Double(max(totalParameters, 1)) }

    public var summary: String {
        String(format: "trainable parameters: %d of %d (%.2f%%)", trainableParameters, totalParameters, 100 * trainableShare)
    }
}

extension CausalLanguageModel {
    /// Stores every projection's frozen weight as `storage`, one projection at a time so the
    /// float32 copies never all coexist; returns the bytes before and after.
    @discardableResult
    public func storeFrozenProjections(_ storage: FrozenStorage) -> (before: Int, after: Int) {
        var before = 0, after = 0
        for (_, layer) in projections {
            before += layer.quantizedWeight?.byteCount ?? layer.weight.byteCount
            switch storage {
            case .float32:
                break
            case .bfloat16:
                layer.weight = layer.weight.asType(.bfloat16)
                eval(layer.weight)
            case .quantized(let format, let doubleQuantization):
                layer.quantizeWeight(format, doubleQuantization: doubleQuantization)
            }
            after += layer.quantizedWeight?.byteCount ?? layer.weight.byteCount
        }
        return (before, after)
    }

    /// Frozen storage, then fresh adapters (or, with `adapterDirectory`, a saved PEFT adapter to
    /// train further); returns what is trainable. The adapter names are ``loraParameters``' keys.
    public func prepareAdapters(
        _ configuration: LoRAConfiguration, storage: FrozenStorage, seed: UInt64, adapterDirectory: URL? = nil
    ) throws -> TrainableReport {
        let (before, after) = storeFrozenProjections(storage)
        let adapted: Int
        if let adapterDirectory {
            _ = try PEFTAdapter.load(into: self, from: adapterDirectory)
            adapted = projections.filter { $0.layer.lora != nil }.count
        } else {
            adapted = try addLoRA(configuration, seed: seed)
        }
        return report(trainable: Array(loraParameters.keys), adaptedLayers: adapted, frozenBefore: before, frozenAfter: after)
    }

    /// The trainable/total count for the named trainable tensors.
    public func report(trainable names: [String], adaptedLayers: Int = 0, frozenBefore: Int = 0, frozenAfter: Int = 0) -> TrainableReport {
        let all = parameters()
        return TrainableReport(
            trainableParameters: names.reduce(0) { $0 + (all[$1]?.size ?? 0) },
            totalParameters: all.values.reduce(0) { $0 + $1.size }, adaptedLayers: adaptedLayers,
            frozenBytesBefore: frozenBefore, frozenBytesAfter: frozenAfter)
    }

    /// Runs `body` with every adapter switched off (the base model: DPO's and GRPO's reference),
    /// then switches them back on. Build and evaluate the graph inside `body`.
    public func withAdaptersDisabled<T>(_ body: () throws -> T) rethrows -> T {
        let stashed = projections.map { ($0.layer, $0.layer.lora) }
        for (layer, _) in stashed { layer.lora = nil }
        defer { for (layer, adapter) in stashed { layer.lora = adapter } }
        return try body()
    }

    /// Whether any projection carries an adapter.
    public var hasAdapters: Bool { projections.contains { $0.layer.lora != nil } }
}

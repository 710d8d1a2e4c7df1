import Foundation
import TemperCore

/// AdamW with blockwise 8-bit moments (`adamw_8bit`), as bitsandbytes' 8-bit optimizers (Dettmers
/// et al. 2022, "8-bit Optimizers via Block-wise Quantization"): each moment of a large tensor is
/// kept as uint8 codes (the first moment into bitsandbytes' signed dynamic map, the second into
/// its unsigned one) with one float32 absmax per block of 256 elements, about a quarter of
/// float32 AdamW's moment memory. Every step dequantizes, takes `AdamW`'s float32 step and
/// requantizes each block with its new absmax (`Kernels.adamW8bitUpdate`).
///
/// Tensors with fewer than `minimum8bitSize` elements (4096 by default, bitsandbytes'
/// `min_8bit_size`) keep float32 moments and take `AdamW`'s exact step: for norms and biases 8
/// bits would save almost nothing. The decay grouping is `AdamW.decays`.
public struct AdamW8bit: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Tensors with fewer elements keep float32 moments.
    public var minimum8bitSize: Int
    /// Steps taken so far (bias correction uses step + 1 for the next one).
    public private(set) var step = 0
    /// The 8-bit moments by parameter name.
    public private(set) var quantizedFirstMoments: [String: BlockwiseCodes] = [:]
    public private(set) var quantizedSecondMoments: [String: BlockwiseCodes] = [:]
    /// The float32 moments of tensors under `minimum8bitSize` by parameter name.
    public private(set) var firstMoments: [String: Tensor] = [:]
    public private(set) var secondMoments: [String: Tensor] = [:]

    public init(
        beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0,
        minimum8bitSize: Int = 4096
    ) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.minimum8bitSize = minimum8bitSize
    }

    /// New parameter values after one step at `learningRate`.
    public mutating func update(
        parameters: [String: Tensor], gradients: [String: Tensor], learningRate: Float
    ) -> [String: Tensor] {
        let names = parameters.keys.filter { gradients[$0] != nil }.sorted()
        step += 1
        let settings = AdamWStep(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, step: step)
        let decay = { (name: String) in Self.decays(name, parameters[name]!) ? weightDecay : 0 }
        let large = names.filter { isQuantized(parameters[$0]!) }
        let small = names.filter { !isQuantized(parameters[$0]!) }
        var updated: [String: Tensor] = [:]
        if !small.isEmpty {
            let result = Kernels.adamWUpdate(
                parameters: small.map { parameters[$0]! }, gradients: small.map { gradients[$0]! },
                firstMoments: small.map { firstMoments[$0] ?? Tensor.zeros(like: parameters[$0]!) },
                secondMoments: small.map { secondMoments[$0] ?? Tensor.zeros(like: parameters[$0]!) },
                weightDecays: small.map(decay), step: settings)
            for (index, name) in small.enumerated() {
                firstMoments[name] = result.firstMoments[index]
                secondMoments[name] = result.secondMoments[index]
                updated[name] = result.parameters[index]
            }
        }
        if !large.isEmpty {
            let result = Kernels.adamW8bitUpdate(
                parameters: large.map { parameters[$0]! }, gradients: large.map { gradients[$0]! },
                firstMoments: large.map { quantizedMoment(name: $0, parameters[$0]!, first: true) },
                secondMoments: large.map { quantizedMoment(name: $0, parameters[$0]!, first: false) },
                weightDecays: large.map(decay), step: settings)
            for (index, name) in large.enumerated() {
                quantizedFirstMoments[name] = result.firstMoments[index]
                quantizedSecondMoments[name] = result.secondMoments[index]
                firstMoments[name] = nil
                secondMoments[name] = nil
                updated[name] = result.parameters[index]
            }
        }
        return updated
    }

    /// Same grouping as `AdamW`: no decay on norms and biases.
    public static func decays(_ name: String, _ tensor: Tensor) -> Bool { AdamW.decays(name, tensor) }

    func isQuantized(_ parameter: Tensor) -> Bool { parameter.size >= minimum8bitSize }

    /// The stored 8-bit moment, else a float32 one (from an `AdamW` checkpoint) quantized, else zero.
    func quantizedMoment(name: String, _ parameter: Tensor, first: Bool) -> BlockwiseCodes {
        let map = first ? Kernels.signedDynamicMap : Kernels.unsignedDynamicMap
        if let stored = (first ? quantizedFirstMoments : quantizedSecondMoments)[name] { return stored }
        if let float = (first ? firstMoments : secondMoments)[name] {
            return Kernels.quantizeBlockwise(float.reshaped(parameter.shape), map: map)
        }
        return Kernels.zeroBlockwiseCodes(parameter.shape, map: map)
    }

    /// The moments as a flat tensor dictionary for a checkpoint: `m.NAME`, `v.NAME` (float32) for
    /// small tensors; `m_codes.NAME`, `v_codes.NAME` (uint8, the parameter's shape) and
    /// `m_absmax.NAME`, `v_absmax.NAME` (float32, one per block of 256) for the rest. Restoring it
    /// resumes bit for bit.
    public var state: [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, m) in firstMoments { result["m." + name] = m }
        for (name, v) in secondMoments { result["v." + name] = v }
        for (name, m) in quantizedFirstMoments {
            result["m_codes." + name] = m.codes
            result["m_absmax." + name] = m.absmax
        }
        for (name, v) in quantizedSecondMoments {
            result["v_codes." + name] = v.codes
            result["v_absmax." + name] = v.absmax
        }
        return result
    }

    /// Bytes of moment state held (codes, absmax and float32 moments).
    public var stateByteCount: Int { state.values.reduce(0) { $0 + $1.size * $1.dtype.size } }

    /// Restores what `state` and `step` saved (also float32 `m.`/`v.` moments from `AdamW`, which
    /// large tensors quantize on their next step).
    public mutating func restore(state: [String: Tensor], step: Int) {
        firstMoments = [:]
        secondMoments = [:]
        quantizedFirstMoments = [:]
        quantizedSecondMoments = [:]
        for (key, tensor) in state {
            if key.hasPrefix("m.") { firstMoments[String(key.dropFirst(2))] = tensor }
            if key.hasPrefix("v.") { secondMoments[String(key.dropFirst(2))] = tensor }
            let name = String(key.dropFirst(8))
            if key.hasPrefix("m_codes."), let absmax = state["m_absmax." + name] {
                quantizedFirstMoments[name] = BlockwiseCodes(codes: tensor, absmax: absmax)
            }
            if key.hasPrefix("v_codes."), let absmax = state["v_absmax." + name] {
                quantizedSecondMoments[name] = BlockwiseCodes(codes: tensor, absmax: absmax)
            }
        }
        self.step = step
    }
}

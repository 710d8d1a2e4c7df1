import Foundation
import TemperCore

/// Rotary position embedding (Su et al. 2021) in the "rotate half" layout of transformers' Llama
/// and Qwen, at explicit per-token positions so that left-padded batches, KV-cache decoding and
/// packed sequences (positions restarting per sample) all go through one path.
public struct RotaryEmbedding: Sendable {
    /// θᵢ for i in 0..<headDimension/2, after any context-extension scaling, in float32 as
    /// transformers computes them.
    public let inverseFrequencies: [Float]
    let base: Float
    let scaling: RopeScaling

    public init(headDimension: Int, base: Float, scaling: RopeScaling) {
        self.base = base
        self.scaling = scaling
        let half = headDimension / 2
        let base = Double(base)
        // transformers: 1 / base^(arange(0, d, 2).float() / d), in float32.
        var frequencies = (0..<half).map { i -> Float in
            let exponent = Float(2 * i) / Float(headDimension)
            return 1 / Float(Foundation.pow(base, Double(exponent)))
        }
        switch scaling {
        case .none:
            break
        case .linear(let factor):
            frequencies = frequencies.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let lowFrequencyWavelength = Float(original) / low
            let highFrequencyWavelength = Float(original) / high
            frequencies = frequencies.map { frequency in
                let wavelength = 2 * Float.pi / frequency
                if wavelength < highFrequencyWavelength { return frequency }
                if wavelength > lowFrequencyWavelength { return frequency / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * frequency / factor + smooth * frequency
            }
        }
        inverseFrequencies = frequencies
    }

    /// cos and sin of position × θ for positions [B, T] (integer), each [B, T, D/2].
    public func angles(positions: Tensor) -> (cos: Tensor, sin: Tensor) {
        let theta = Tensor(inverseFrequencies).reshaped(1, 1, inverseFrequencies.count)
        let angles = positions.asType(.float32).reshaped(positions.dim(0), positions.dim(1), 1) * theta
        return (angles.cos(), angles.sin())
    }

    /// The angles of one forward pass, computed once for all layers (a lazy graph: MLX's fast
    /// RoPE, on a GPU, never evaluates them). Rows sharing their positions share one table.
    public final class Angles {
        let rope: RotaryEmbedding
        let positions: Tensor
        /// [1 or B, T, D/2].
        lazy var tables: (cos: Tensor, sin: Tensor) = rope.angles(positions: positions)

        public init(rope: RotaryEmbedding, layout: TokenLayout) {
            self.rope = rope
            // A shared offset promises offset..<offset+T wherever a position matters; row 0 itself may
            // be padded (positions 0 there), so its positions are no table for a longer row.
            if let offset = layout.sharedOffset {
                let length = layout.positions.dim(1)
                positions = Tensor.arange(Double(offset), Double(offset + length), dtype: .int32).reshaped(1, length)
            } else {
                positions = layout.positions
            }
        }
    }

    /// Whether MLX's fused RoPE computes these frequencies (no context-extension scaling).
    var fusedBase: Float? { scaling == .none ? base : nil }

    /// Rotates the heads x: [B, T, H, D] of a projection's output into [B, H, T, D]: on the CPU
    /// through Temper's fused kernel; otherwise, with a shared offset and plain frequencies,
    /// through MLX's fast RoPE, or else by explicit per-token angles.
    public func applyToHeads(_ x: Tensor, angles: Angles, sharedOffset: Int?) -> Tensor {
        Kernels.ropeHeads(x, cos: angles.tables.cos, sin: angles.tables.sin) { heads in
            if let sharedOffset, let fusedBase {
                return Fast.rope(heads, dimensions: heads.dim(-1), traditional: false, base: fusedBase, offset: sharedOffset)
            }
            return apply(heads, cos: angles.tables.cos, sin: angles.tables.sin)
        }
    }

    /// Rotates x: [B, H, T, D] by the angle tables [1 or B, T, D/2] from `angles(positions:)`.
    public func apply(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
        let (cos, sin) = (cos.expandedDimensions(axis: 1), sin.expandedDimensions(axis: 1))
        let half = x.dim(-1) / 2
        let first = x[TensorIndex.ellipsis, ..<half]
        let second = x[TensorIndex.ellipsis, half...]
        return Tensor.concatenated([first * cos - second * sin, second * cos + first * sin], axis: -1)
    }
}

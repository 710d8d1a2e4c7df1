import CMLXShim

/// A matrix quantized along its last axis in groups (MLX's affine mode):
/// w ≈ scale · q + bias per group of `groupSize` consecutive values, q an unsigned `bits`-bit integer.
public struct QuantizedMatrix {
    /// Packed integers, uint32 words: [rows, columns · bits / 32].
    public var weight: Tensor
    public var scales: Tensor
    public var biases: Tensor
    public var groupSize: Int
    public var bits: Int

    public init(weight: Tensor, scales: Tensor, biases: Tensor, groupSize: Int, bits: Int) {
        self.weight = weight
        self.scales = scales
        self.biases = biases
        self.groupSize = groupSize
        self.bits = bits
    }

    /// Quantizes `w` ([rows, columns], columns divisible by `groupSize`).
    /// - Parameters:
    ///   - groupSize: 32, 64 or 128.
    ///   - bits: 4 or 8 (MLX also accepts 2, 3, 5, 6).
    public init(quantizing w: Tensor, groupSize: Int = 64, bits: Int = 4) {
        let tensors = withTensorVector { parts in
            if tmx_quantize(parts, w.handle, Int32(groupSize), Int32(bits), "affine") != 0 {
                opFailed("quantize(groupSize: \(groupSize), bits: \(bits))")
                return [Tensor](repeating: Tensor.placeholder(), count: 3)
            }
            return TemperCore.tensors(in: parts)
        }
        self.init(
            weight: tensors[0], scales: tensors[1], biases: tensors[2], groupSize: groupSize,
            bits: bits)
    }

    /// The float matrix these values stand for.
    public func dequantized() -> Tensor {
        makeTensor("dequantize") {
            tmx_dequantize(
                $0, weight.handle, scales.handle, biases.handle, Int32(groupSize), Int32(bits),
                "affine")
        }
    }

    /// x @ wᵀ (transposed, the `nn.Linear` layout) or x @ w, computed on the packed values.
    public func matmul(_ x: Tensor, transposed: Bool = true) -> Tensor {
        makeTensor("quantizedMatmul") {
            tmx_quantized_matmul(
                $0, x.handle, weight.handle, scales.handle, biases.handle, transposed,
                Int32(groupSize), Int32(bits), "affine")
        }
    }
}

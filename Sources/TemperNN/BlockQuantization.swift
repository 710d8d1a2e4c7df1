import TemperCore

/// A frozen weight stored in 4-bit NF4 or 8-bit blocks with one float32 absmax per block
/// (QLoRA's storage, Dettmers et al. 2023), dequantized when a layer runs.
public struct BlockQuantizedWeight {
    public enum Format: String, Sendable, Codable {
        /// NormalFloat4: 16 levels at normal quantiles, two codes per byte (bitsandbytes' layout).
        case nf4
        /// Linear int8: q = round(x / absmax · 127).
        case int8
    }

    public let format: Format
    /// NF4: uint8 [⌈count/2⌉]; int8: int8 [count].
    public let codes: Tensor
    /// float32 [blocks], or nil when the scales are themselves quantized (`nestedScales`).
    private let plainAbsmax: Tensor?
    /// Double quantization (QLoRA §3): the per-block absmax values less their mean, stored as
    /// int8 in blocks of 256 with one float32 scale each, plus the mean.
    public let nestedScales: (codes: Tensor, scales: Tensor, mean: Float)?
    public let shape: [Int]
    public let blockSize: Int

    /// Quantizes `weight` in blocks of `blockSize` consecutive values (row-major), as
    /// bitsandbytes' blockwise quantization: each value is scaled by its block's absmax and
    /// mapped to the nearest level (ties to the lower one).
    /// float32 [blocks] absmax values (dequantized from int8 under double quantization).
    public var absmax: Tensor {
        if let plainAbsmax { return plainAbsmax }
        let nested = nestedScales!
        let count = shape.reduce(1, *)
        let blocks = (count + blockSize - 1) / blockSize
        return Kernels.int8Dequantize(codes: nested.codes, absmax: nested.scales, shape: [blocks], blockSize: 256)
            + Double(nested.mean)
    }

    public init(quantizing weight: Tensor, format: Format, blockSize: Int = 64, doubleQuantization: Bool = false) {
        let values = weight.asType(.float32).toArray(Float.self)
        let blocks = (values.count + blockSize - 1) / blockSize
        var absmax = [Float](repeating: 0, count: blocks)
        for block in 0..<blocks {
            var m: Float = 0
            for i in (block * blockSize)..<min(values.count, (block + 1) * blockSize) { m = max(m, Swift.abs(values[i])) }
            absmax[block] = m
        }
        switch format {
        case .nf4:
            // Midpoints between consecutive NF4 levels: a value above midpoint i maps past level i.
            let levels = Kernels.nf4Codes
            let midpoints = (0..<15).map { (levels[$0] + levels[$0 + 1]) / 2 }
            var packed = [UInt8](repeating: 0, count: (values.count + 1) / 2)
            for (index, value) in values.enumerated() {
                let scale = absmax[index / blockSize]
                let normalized = scale == 0 ? 0 : value / scale
                var code = 0
                while code < 15 && normalized > midpoints[code] { code += 1 }
                if index % 2 == 0 {
                    packed[index / 2] = UInt8(code) << 4
                } else {
                    packed[index / 2] |= UInt8(code)
                }
            }
            codes = Tensor(packed)
        case .int8:
            var quantized = [Int8](repeating: 0, count: values.count)
            for (index, value) in values.enumerated() {
                let scale = absmax[index / blockSize]
                quantized[index] = scale == 0 ? 0 : Int8((value / scale * 127).rounded())
            }
            codes = Tensor(quantized)
        }
        self.format = format
        self.shape = weight.shape
        self.blockSize = blockSize
        if doubleQuantization {
            let mean = absmax.reduce(0, +) / Float(max(absmax.count, 1))
            let nested = BlockQuantizedWeight(
                quantizing: Tensor(absmax.map { $0 - mean }), format: .int8, blockSize: 256)
            nestedScales = (nested.codes, nested.plainAbsmax!, mean)
            plainAbsmax = nil
        } else {
            plainAbsmax = Tensor(absmax)
            nestedScales = nil
        }
    }

    public func dequantized() -> Tensor {
        switch format {
        case .nf4: Kernels.nf4Dequantize(packed: codes, absmax: absmax, shape: shape, blockSize: blockSize)
        case .int8: Kernels.int8Dequantize(codes: codes, absmax: absmax, shape: shape, blockSize: blockSize)
        }
    }

    /// Bytes held: codes plus scales.
    public var byteCount: Int {
        codes.byteCount + (plainAbsmax?.byteCount ?? 0)
            + (nestedScales.map { $0.codes.byteCount + $0.scales.byteCount + 4 } ?? 0)
    }
}

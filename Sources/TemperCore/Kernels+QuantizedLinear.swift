import CMLXShim

/// A weight matrix [out, in] stored weight-only quantized for inference, in groups of
/// ``groupSize`` consecutive input elements of each output row:
/// - ``Format/int8``: symmetric, w ≈ scale · q with q in −127…127 (int8 codes [out, in]);
/// - ``Format/q4``: affine 4-bit, w ≈ scale · q + min with q in 0…15, two codes per byte, low
///   nibble first (uint8 codes [out, in / 2]);
/// - ``Format/bfloat16``: the weight rounded to bfloat16 (codes bfloat16 [out, in]), half float32's bytes;
/// - ``Format/float32``: the float32 weight itself (codes float32 [out, in]): not a quantization, but
///   the way to send plain float weights through the decode-shaped fused product, which reads a few
///   rows' weight far faster than an sgemm that packs it on every call.
/// Scales (and mins) are float32 [out, in / groupSize]; the float formats have none (scales [out, 0]).
/// ``Kernels/quantizedLinear(_:weights:bias:)`` multiplies by it without materializing the float weight.
public struct WeightOnlyQuantizedMatrix {
    public enum Format: Sendable, Equatable {
        case int8, q4, bfloat16, float32
        /// Bits per weight of the codes.
        public var bits: Int {
            switch self {
            case .int8: 8
            case .q4: 4
            case .bfloat16: 16
            case .float32: 32
            }
        }
        /// Whether the codes are the weight itself, with no scales.
        public var isFloat: Bool { self == .bfloat16 || self == .float32 }
    }

    /// Input elements per scale (and min).
    public static let groupSize = 64

    public var format: Format
    public var codes: Tensor
    /// [out, in / groupSize]; [out, 0] for the float formats.
    public var scales: Tensor
    /// The q4 format's per-group offsets; nil for the other formats.
    public var mins: Tensor?
    /// [out, in] of the float matrix.
    public var shape: [Int]

    public init(format: Format, codes: Tensor, scales: Tensor, mins: Tensor?, shape: [Int]) {
        self.format = format
        self.codes = codes
        self.scales = scales
        self.mins = mins
        self.shape = shape
    }

    /// Quantizes a float [out, in] matrix, in a multiple of ``groupSize``, with MLX ops: int8 scales
    /// are absmax / 127 and codes round(w / scale); q4 scales are (max − min) / 15 and codes
    /// round((w − min) / scale). Each element is then within scale / 2 of its value; a constant
    /// group has scale 0 and is exact. bfloat16 rounds w to nearest (even); float32 keeps w itself
    /// when it is float32 already (no copy). The float formats also want `in` a multiple of
    /// ``groupSize``, which the fused kernel's chunks divide.
    public init(quantizing w: Tensor, format: Format) {
        precondition(w.ndim == 2 && w.dim(1) % Self.groupSize == 0,
                     "WeightOnlyQuantizedMatrix: expects [out, in] with in a multiple of \(Self.groupSize), got \(w.shape)")
        let (out, input) = (w.dim(0), w.dim(1))
        let groups = { w.asType(.float32).reshaped(out, input / Self.groupSize, Self.groupSize) }
        switch format {
        case .int8:
            let groups = groups()
            let scales = groups.abs().max(axis: 2, keepDims: true) / 127
            let safe = which(scales .> 0, scales, Tensor.ones(like: scales))
            let q = (groups / safe + 0.5).floor().clipped(min: -127, max: 127)
            self.init(format: .int8, codes: q.asType(.int8).reshaped(out, input),
                      scales: scales.reshaped(out, input / Self.groupSize), mins: nil, shape: [out, input])
        case .q4:
            let groups = groups()
            let low = groups.min(axis: 2, keepDims: true)
            let scales = (groups.max(axis: 2, keepDims: true) - low) / 15
            let safe = which(scales .> 0, scales, Tensor.ones(like: scales))
            let q = ((groups - low) / safe + 0.5).floor().clipped(min: 0, max: 15).reshaped(out, input / 2, 2)
            let pair = q.split(sections: 2, axis: 2)
            let packed = (pair[0] + pair[1] * 16).asType(.uint8).reshaped(out, input / 2)
            self.init(format: .q4, codes: packed, scales: scales.reshaped(out, input / Self.groupSize),
                      mins: low.reshaped(out, input / Self.groupSize), shape: [out, input])
        case .bfloat16, .float32:
            let dtype: DType = format == .bfloat16 ? .bfloat16 : .float32
            self.init(format: format, codes: w.dtype == dtype ? w : w.asType(dtype), scales: Tensor.zeros([out, 0]),
                      mins: nil, shape: [out, input])
        }
    }

    /// The tensors held (codes, scales and any mins), e.g. to evaluate them once.
    public var tensors: [Tensor] { [codes, scales] + (mins.map { [$0] } ?? []) }

    /// The codes as float32 [out, in], before scaling.
    func codeValues() -> Tensor {
        let (out, input) = (shape[0], shape[1])
        switch format {
        case .int8, .bfloat16, .float32:
            return codes.dtype == .float32 ? codes : codes.asType(.float32)
        case .q4:
            let bytes = codes.asType(.float32)
            let high = (bytes / 16).floor()
            let low = bytes - high * 16
            return Tensor.stacked([low, high], axis: 2).reshaped(out, input)
        }
    }

    /// The float32 matrix [out, in] the codes stand for, from MLX ops; the float32 format's is its
    /// codes themselves (no copy).
    public func dequantized() -> Tensor {
        if format.isFloat { return codeValues() }
        let (out, input) = (shape[0], shape[1])
        let groupCount = input / Self.groupSize
        let values = codeValues().reshaped(out, groupCount, Self.groupSize)
        var w = values * scales.reshaped(out, groupCount, 1)
        if let mins { w = w + mins.reshaped(out, groupCount, 1) }
        return w.reshaped(out, input)
    }

    /// Bytes held: codes, scales and mins (the float formats: the weight's bytes).
    public var byteCount: Int {
        codes.size * codes.dtype.size + scales.size * 4 + (mins?.size ?? 0) * 4
    }
}

extension Kernels {
    /// x·dequant(W)ᵀ (+ bias) for a weight-only quantized W [out, in] and x [..., in], for inference.
    /// The fused kernel (float32 x on the CPU) reads each code once per call, widening and scaling
    /// it in registers for every row of x at once, and never materializes the float weight; it is
    /// not differentiable. Elsewhere (GPU, other dtypes) the weight is dequantized with MLX ops and
    /// multiplied. More than ``quantizedRowLimit`` rows (a prefill) are a GEMM's job: the weight is
    /// widened once per call (the float32 format's is used as it is) and multiplied by
    /// ``linear(_:weight:bias:)``.
    public static func quantizedLinear(_ x: Tensor, weights: WeightOnlyQuantizedMatrix, bias: Tensor? = nil) -> Tensor {
        let rows = x.size / max(1, x.dim(-1))
        guard rows > quantizedRowLimit, fused([x]) else {
            return quantizedLinear(x, weights: weights, bias: bias, instructionSet: -1)
        }
        let y = linear(x.reshaped(rows, x.dim(-1)), weight: weights.dequantized(), bias: bias)
        return y.reshaped(Array(x.shape.dropLast()) + [weights.shape[0]])
    }

    /// Rows up to which reading the codes directly beats widening the weight for sgemm.
    public static let quantizedRowLimit = 64

    /// `instructionSet`: -1 the widest build the CPU runs, or 0 portable, 1 AVX2, 2 AVX-512 (capped
    /// to what the CPU runs), so tests reach every build.
    static func quantizedLinear(
        _ x: Tensor, weights: WeightOnlyQuantizedMatrix, bias: Tensor?, instructionSet: Int32
    ) -> Tensor {
        guard fused([x]), x.ndim >= 2 else { return referenceQuantizedLinear(x, weights: weights, bias: bias) }
        let leading = Array(x.shape.dropLast())
        let flat = x.ndim == 2 ? x : x.reshaped(-1, x.dim(-1))
        let y = makeTensor("Kernels.quantizedLinear") {
            tmx_kernel_quantized_linear(
                $0, flat.handle, weights.codes.handle, weights.scales.handle, weights.mins?.handle, bias?.handle,
                Int32(weights.format.bits), Int32(WeightOnlyQuantizedMatrix.groupSize), instructionSet)
        }
        return x.ndim == 2 ? y : y.reshaped(leading + [weights.shape[0]])
    }

    /// The same product from MLX ops: dequantize, then multiply.
    public static func referenceQuantizedLinear(
        _ x: Tensor, weights: WeightOnlyQuantizedMatrix, bias: Tensor? = nil
    ) -> Tensor {
        let w = weights.dequantized().asType(x.dtype)
        let y = x.matmul(w.mT)
        return bias.map { y + $0.asType(x.dtype) } ?? y
    }
}

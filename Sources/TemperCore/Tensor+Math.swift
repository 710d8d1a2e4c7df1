import CMLXShim

typealias UnaryShimOp = (UnsafeMutablePointer<tmx_array?>?, tmx_array?) -> Int32
typealias BinaryShimOp = (UnsafeMutablePointer<tmx_array?>?, tmx_array?, tmx_array?) -> Int32

extension Tensor {
    func unary(_ name: String, _ op: UnaryShimOp) -> Tensor {
        makeTensor(name) { op($0, handle) }
    }

    func binary(_ name: String, _ other: Tensor, _ op: BinaryShimOp) -> Tensor {
        makeTensor(name) { op($0, handle, other.handle) }
    }

    /// A scalar that takes this tensor's dtype, as MLX treats Python scalars (a float32 tensor plus
    /// 0.5 stays float32; an integer tensor times 2.5 becomes float32).
    func scalar(_ value: Double) -> Tensor {
        if dtype.isFloatingPoint || value.rounded() == value && dtype != .bool {
            return Tensor(value, dtype: dtype)
        }
        return Tensor(Float(value))
    }

    // MARK: elementwise

    public func abs() -> Tensor { unary("abs", tmx_abs) }
    public func sign() -> Tensor { unary("sign", tmx_sign) }
    public func exp() -> Tensor { unary("exp", tmx_exp) }
    public func expm1() -> Tensor { unary("expm1", tmx_expm1) }
    public func log() -> Tensor { unary("log", tmx_log) }
    public func log1p() -> Tensor { unary("log1p", tmx_log1p) }
    public func sqrt() -> Tensor { unary("sqrt", tmx_sqrt) }
    public func rsqrt() -> Tensor { unary("rsqrt", tmx_rsqrt) }
    public func square() -> Tensor { unary("square", tmx_square) }
    public func reciprocal() -> Tensor { unary("reciprocal", tmx_reciprocal) }
    public func sigmoid() -> Tensor { unary("sigmoid", tmx_sigmoid) }
    public func tanh() -> Tensor { unary("tanh", tmx_tanh) }
    public func sin() -> Tensor { unary("sin", tmx_sin) }
    public func cos() -> Tensor { unary("cos", tmx_cos) }
    public func erf() -> Tensor { unary("erf", tmx_erf) }
    public func floor() -> Tensor { unary("floor", tmx_floor) }
    public func ceil() -> Tensor { unary("ceil", tmx_ceil) }

    /// x · sigmoid(x) (Elfwing et al. 2017, "SiLU"/"swish").
    public func silu() -> Tensor { self * sigmoid() }

    /// x · Φ(x) with the exact normal CDF: 0.5 · x · (1 + erf(x / √2)) (Hendrycks & Gimpel 2016).
    public func gelu() -> Tensor { self * (1 + (self * scalar(0.5.squareRoot())).erf()) * 0.5 }

    /// The tanh approximation of GELU used by GPT-2 ("gelu_pytorch_tanh").
    public func geluApproximate() -> Tensor {
        let inner = (self + self * self * self * 0.044715) * (2.0 / Double.pi).squareRoot()
        return self * 0.5 * (1 + inner.tanh())
    }

    public func pow(_ exponent: Tensor) -> Tensor { binary("pow", exponent, tmx_power) }
    public func pow(_ exponent: Double) -> Tensor { pow(scalar(exponent)) }

    /// Clamps to `[low, high]`; a nil bound is open.
    public func clipped(min low: Double? = nil, max high: Double? = nil) -> Tensor {
        let lowTensor = low.map { scalar($0) }
        let highTensor = high.map { scalar($0) }
        return withExtendedLifetime((lowTensor, highTensor)) {
            makeTensor("clipped") { tmx_clip($0, handle, lowTensor?.handle, highTensor?.handle) }
        }
    }

    /// Blocks gradients: the value passes, the derivative is zero.
    public func stoppedGradient() -> Tensor { unary("stoppedGradient", tmx_stop_gradient) }

    // MARK: matrix products

    /// Matrix product with NumPy's broadcasting of batch dimensions.
    public func matmul(_ other: Tensor) -> Tensor { binary("matmul", other, tmx_matmul) }

    /// beta · self + alpha · (a @ b).
    public func addmm(_ a: Tensor, _ b: Tensor, alpha: Float = 1, beta: Float = 1) -> Tensor {
        makeTensor("addmm") { tmx_addmm($0, handle, a.handle, b.handle, alpha, beta) }
    }
}

/// Elementwise maximum with broadcasting.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { a.binary("maximum", b, tmx_maximum) }
/// Elementwise minimum with broadcasting.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { a.binary("minimum", b, tmx_minimum) }

// MARK: operators

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary("+", b, tmx_add) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary("-", b, tmx_subtract) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary("*", b, tmx_multiply) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary("/", b, tmx_divide) }
    public static func % (a: Tensor, b: Tensor) -> Tensor { a.binary("%", b, tmx_remainder) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary("negate", tmx_negative) }

    public static func + (a: Tensor, b: Double) -> Tensor { a + a.scalar(b) }
    public static func - (a: Tensor, b: Double) -> Tensor { a - a.scalar(b) }
    public static func * (a: Tensor, b: Double) -> Tensor { a * a.scalar(b) }
    public static func / (a: Tensor, b: Double) -> Tensor { a / a.scalar(b) }
    public static func + (a: Double, b: Tensor) -> Tensor { b.scalar(a) + b }
    public static func - (a: Double, b: Tensor) -> Tensor { b.scalar(a) - b }
    public static func * (a: Double, b: Tensor) -> Tensor { b.scalar(a) * b }
    public static func / (a: Double, b: Tensor) -> Tensor { b.scalar(a) / b }

    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }

    // Comparisons give bool tensors; `==` is elementwise, as in NumPy, so Tensor is not Equatable.
    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.binary("==", b, tmx_equal) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.binary("!=", b, tmx_not_equal) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.binary("<", b, tmx_less) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.binary("<=", b, tmx_less_equal) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.binary(">", b, tmx_greater) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.binary(">=", b, tmx_greater_equal) }
    public static func .== (a: Tensor, b: Double) -> Tensor { a .== a.scalar(b) }
    public static func .!= (a: Tensor, b: Double) -> Tensor { a .!= a.scalar(b) }
    public static func .< (a: Tensor, b: Double) -> Tensor { a .< a.scalar(b) }
    public static func .<= (a: Tensor, b: Double) -> Tensor { a .<= a.scalar(b) }
    public static func .> (a: Tensor, b: Double) -> Tensor { a .> a.scalar(b) }
    public static func .>= (a: Tensor, b: Double) -> Tensor { a .>= a.scalar(b) }
    public static func .& (a: Tensor, b: Tensor) -> Tensor { a.binary("&", b, tmx_logical_and) }
    public static func .| (a: Tensor, b: Tensor) -> Tensor { a.binary("|", b, tmx_logical_or) }
    public static prefix func .! (a: Tensor) -> Tensor { a.unary("!", tmx_logical_not) }
}

// MARK: reductions, scans, sorting

typealias ReductionShimOp = (
    UnsafeMutablePointer<tmx_array?>?, tmx_array?, UnsafePointer<Int32>?, Int32, Bool
) -> Int32

extension Tensor {
    func reduce(_ name: String, axes: [Int], keepDims: Bool, _ op: ReductionShimOp) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("\(name)(axes: \(axes))") { op($0, handle, values, count, keepDims) }
        }
    }

    /// Sum over `axes` (all axes when empty).
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("sum", axes: axes, keepDims: keepDims, tmx_sum)
    }
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("mean", axes: axes, keepDims: keepDims, tmx_mean)
    }
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    public func max(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("max", axes: axes, keepDims: keepDims, tmx_max)
    }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }

    public func min(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("min", axes: axes, keepDims: keepDims, tmx_min)
    }
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    public func product(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("product", axes: axes, keepDims: keepDims, tmx_prod)
    }
    public func all(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("all", axes: axes, keepDims: keepDims, tmx_all)
    }
    public func any(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("any", axes: axes, keepDims: keepDims, tmx_any)
    }

    /// log Σ exp(x) over `axes`, computed stably.
    public func logSumExp(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        reduce("logSumExp", axes: axes, keepDims: keepDims, tmx_logsumexp)
    }
    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor {
        logSumExp(axes: [axis], keepDims: keepDims)
    }

    /// Variance with `ddof` delta degrees of freedom (0: population, 1: sample).
    public func variance(axes: [Int] = [], keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("variance") { tmx_var($0, handle, values, count, keepDims, Int32(ddof)) }
        }
    }

    public func standardDeviation(axes: [Int] = [], keepDims: Bool = false, ddof: Int = 0) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("standardDeviation") { tmx_std($0, handle, values, count, keepDims, Int32(ddof)) }
        }
    }

    /// exp(x) / Σ exp(x) over `axes` (default: the last). `precise` accumulates in f32 for f16/bf16.
    public func softmax(axes: [Int] = [-1], precise: Bool = false) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("softmax") { tmx_softmax($0, handle, values, count, precise) }
        }
    }
    public func softmax(axis: Int, precise: Bool = false) -> Tensor { softmax(axes: [axis], precise: precise) }

    /// x − logsumexp(x) along `axis`.
    public func logSoftmax(axis: Int = -1) -> Tensor { self - logSumExp(axis: axis, keepDims: true) }

    public func argMax(axis: Int, keepDims: Bool = false) -> Tensor {
        makeTensor("argMax") { tmx_argmax($0, handle, Int32(axis), keepDims) }
    }
    public func argMin(axis: Int, keepDims: Bool = false) -> Tensor {
        makeTensor("argMin") { tmx_argmin($0, handle, Int32(axis), keepDims) }
    }

    /// Running sum along `axis`; `inclusive: false` shifts by one (starts at 0).
    public func cumsum(axis: Int, reverse: Bool = false, inclusive: Bool = true) -> Tensor {
        makeTensor("cumsum") { tmx_cumsum($0, handle, Int32(axis), reverse, inclusive) }
    }

    public func sorted(axis: Int = -1) -> Tensor {
        makeTensor("sorted") { tmx_sort($0, handle, Int32(axis)) }
    }
    public func argSort(axis: Int = -1) -> Tensor {
        makeTensor("argSort") { tmx_argsort($0, handle, Int32(axis)) }
    }

    /// The `k` largest values along `axis`, in no particular order (MLX semantics).
    public func topK(_ k: Int, axis: Int = -1) -> Tensor {
        makeTensor("topK") { tmx_topk($0, handle, Int32(k), Int32(axis)) }
    }

    /// Indices such that the element at position `kth` is in sorted place, smaller ones before it.
    public func argPartition(kth: Int, axis: Int = -1) -> Tensor {
        makeTensor("argPartition") { tmx_argpartition($0, handle, Int32(kth), Int32(axis)) }
    }
}

import CMLXShim

/// Temper's fused CPU kernels (CTemperKernels): vectorized (AVX2/FMA where the CPU has it),
/// split across cores, with exact gradients. Each function takes the fused path for float32
/// tensors on the CPU and otherwise falls back to the equivalent composition of MLX ops, so the
/// same code runs on a GPU build.
public enum Kernels {
    /// Whether graphs built in this task use the fused kernels; benchmarks compare them with MLX's
    /// own compositions by building a graph inside `Kernels.$useFusedKernels.withValue(false) { … }`.
    /// A task-local, so no other task's graphs change.
    @TaskLocal public static var useFusedKernels = true

    /// Whether `tensors` take the fused path: float32, and the CPU is the current device.
    static func fused(_ tensors: Tensor...) -> Bool { fused(tensors) }

    static func fused(_ tensors: [Tensor]) -> Bool {
        useFusedKernels && Device.current == .cpu && tensors.allSatisfy { $0.dtype == .float32 }
    }

    /// The elementwise functions with a fused kernel, in the shim's numbering.
    enum Unary: Int32 {
        case exp = 0, log, sigmoid, silu, geluTanh, geluErf, tanh, softplus
    }

    static func unary(_ op: Unary, _ x: Tensor, fallback: (Tensor) -> Tensor) -> Tensor {
        guard fused(x) else { return fallback(x) }
        return makeTensor("Kernels.\(op)") { tmx_kernel_unary($0, op.rawValue, x.handle) }
    }

    public static func exp(_ x: Tensor) -> Tensor { unary(.exp, x) { $0.exp() } }
    public static func log(_ x: Tensor) -> Tensor { unary(.log, x) { $0.log() } }
    public static func sigmoid(_ x: Tensor) -> Tensor { unary(.sigmoid, x) { $0.sigmoid() } }
    public static func silu(_ x: Tensor) -> Tensor { unary(.silu, x) { $0.silu() } }
    /// GELU with the tanh approximation ("gelu_pytorch_tanh").
    public static func geluApproximate(_ x: Tensor) -> Tensor {
        unary(.geluTanh, x) { $0.geluApproximate() }
    }
    /// GELU with the exact normal CDF.
    public static func gelu(_ x: Tensor) -> Tensor { unary(.geluErf, x) { $0.gelu() } }
    public static func tanh(_ x: Tensor) -> Tensor { unary(.tanh, x) { $0.tanh() } }
    /// log(1 + exp(x)), computed without overflow.
    public static func softplus(_ x: Tensor) -> Tensor {
        unary(.softplus, x) { maximum($0, Tensor.zeros(like: $0)) + ($0.abs() * -1).exp().log1p() }
    }

    /// silu(gate) ⊙ up, the SwiGLU MLP activation (Shazeer 2020), fused with its backward.
    public static func swiGLU(gate: Tensor, up: Tensor) -> Tensor {
        guard fused(gate, up), gate.shape == up.shape else { return gate.silu() * up }
        return makeTensor("Kernels.swiGLU") { tmx_kernel_swiglu($0, gate.handle, up.handle) }
    }

    /// Inverted dropout (as torch.nn.Dropout): each element is zeroed with `probability`, the rest
    /// scaled by 1 / (1 - probability). The fused kernel hashes (seed, element index) for its mask,
    /// so the backward and a recomputation draw the same mask with nothing stored; the fallback
    /// draws its own mask with MLX's generator keyed by the seed.
    /// `offset`: the index of x's first element in the tensor the mask is drawn for (a data-parallel
    /// rank's rows of the whole batch); the fallback's mask does not follow it.
    public static func dropout(_ x: Tensor, probability: Float, seed: UInt64, offset: Int = 0) -> Tensor {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1), got \(probability)")
        guard fused(x) else {
            let keep = Random.bernoulli(1 - probability, shape: x.shape, key: Random.key(seed))
            return which(keep, x * Double(1 / (1 - probability)), Tensor.zeros(like: x))
        }
        return makeTensor("Kernels.dropout") { tmx_kernel_dropout($0, x.handle, probability, seed, UInt64(offset)) }
    }

    /// x / √(mean(x²) + eps) · weight over the last axis (RMSNorm), one threaded pass each way.
    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
        guard fused(x, weight), x.ndim > 0, weight.shape == [x.dim(-1)] else {
            return Fast.rmsNorm(x, weight: weight, eps: eps)
        }
        return makeTensor("Kernels.rmsNorm") { tmx_kernel_rms_norm($0, x.handle, weight.handle, eps) }
    }

    /// Rotary embedding in the rotate-half layout of x [B, T, H, D] (a projection's output split
    /// into heads) by angle tables cos, sin [1 or B, T, D/2], returned as [B, H, T, D], the layout
    /// attention reads: the transpose comes free with the rotation. Off the fused path, `fallback`
    /// rotates x transposed to [B, H, T, D].
    public static func ropeHeads(_ x: Tensor, cos: Tensor, sin: Tensor, fallback: (Tensor) -> Tensor) -> Tensor {
        let table = x.ndim == 4 ? [x.dim(1), x.dim(3) / 2] : []
        guard fused(x, cos, sin), x.ndim == 4, x.dim(3) % 2 == 0, cos.shape == sin.shape, cos.ndim == 3,
            cos.dim(0) == 1 || cos.dim(0) == x.dim(0), Array(cos.shape.dropFirst()) == table
        else { return fallback(x.transposed(0, 2, 1, 3)) }
        return makeTensor("Kernels.ropeHeads") { tmx_kernel_rope_heads($0, x.handle, cos.handle, sin.handle) }
    }

    /// softmax over the last axis.
    public static func softmax(_ x: Tensor) -> Tensor {
        guard fused(x), x.ndim > 0 else { return x.softmax(axis: -1) }
        return makeTensor("Kernels.softmax") { tmx_kernel_softmax($0, x.handle) }
    }

    /// log softmax over the last axis.
    public static func logSoftmax(_ x: Tensor) -> Tensor {
        guard fused(x), x.ndim > 0 else { return x.logSoftmax(axis: -1) }
        return makeTensor("Kernels.logSoftmax") { tmx_kernel_log_softmax($0, x.handle) }
    }

    /// log Σ exp over the last axis, which is removed (kept with size 1 when `keepDims`).
    public static func logSumExp(_ x: Tensor, keepDims: Bool = false) -> Tensor {
        guard fused(x), x.ndim > 0 else { return x.logSumExp(axis: -1, keepDims: keepDims) }
        let result = makeTensor("Kernels.logSumExp") { tmx_kernel_logsumexp($0, x.handle) }
        return keepDims ? result.expandedDimensions(axis: -1) : result
    }

    /// The largest value of a host row, NaN ignored (−inf for an empty or all-NaN row).
    public static func hostMax(_ x: UnsafeBufferPointer<Float>) -> Float {
        guard let base = x.baseAddress else { return -.infinity }
        return tmx_host_max(base, x.count)
    }

    /// Σ exp((x − shift)·scale) over a host row, vectorized (the sampler's normalisers and weights):
    /// `shift` at least the row's max, `scale` > 0, NaN entries weighing 0. Each weight is written
    /// to `weights` (of x's count) when given.
    public static func hostExpWeights(
        _ x: UnsafeBufferPointer<Float>, shift: Float, scale: Float = 1, into weights: UnsafeMutablePointer<Float>? = nil
    ) -> Float {
        guard let base = x.baseAddress else { return 0 }
        return tmx_host_exp_weights(base, x.count, shift, scale, weights)
    }

    /// The number of threads the kernels split work across.
    public static var threadCount: Int { Int(tmx_kernel_thread_count()) }

    /// The kernel build that runs: 0 portable, 1 AVX2, 2 AVX-512 (capped by TEMPER_KERNEL_ISA).
    public static var instructionSet: Int32 { Int32(tmx_kernel_instruction_set()) }

    /// The kernel set OpenBLAS runs the matrix products with (its core name, e.g. SkylakeX).
    public static var openBLASCore: String {
        guard let name = tmx_openblas_core() else { return "unknown" }
        defer { tmx_string_free(name) }
        return String(cString: name)
    }
}

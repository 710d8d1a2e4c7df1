import CMLXShim

extension Kernels {
    /// A LoRA-adapted linear layer: x·Wᵀ (+ bias) + scale·(x'·Aᵀ)·Bᵀ, where x' is `droppedInput`
    /// (x after LoRA dropout) or x itself. The fused kernel does the base product in one sgemm and
    /// each rank-r step in one pass over the rows, accumulating into the output in place.
    /// - Parameters:
    ///   - x: [N, in]; weight: [out, in], float32 or (a frozen weight) bfloat16, which the kernel
    ///     widens per call rather than keeping a float32 copy for the backward; bias: [out].
    ///   - a: [r, in]; b: [out, r].
    ///   - dropout: drops x on the adapter's path inside the kernel, with the mask
    ///     ``dropout(_:probability:seed:)`` draws for the seed, redrawn in the backward rather than
    ///     kept as an [N, in] activation. Give this or `droppedInput`, not both.
    ///   - dropoutOffset: x's first element's index in the tensor the mask is drawn for.
    public static func loraLinear(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil, a: Tensor, b: Tensor, scale: Float,
        droppedInput: Tensor? = nil, dropout: (probability: Float, seed: UInt64)? = nil, dropoutOffset: Int = 0
    ) -> Tensor {
        precondition(droppedInput == nil || dropout == nil, "loraLinear takes a dropped input or a dropout, not both")
        var inputs = [x, a, b]
        if let bias { inputs.append(bias) }
        if let droppedInput { inputs.append(droppedInput) }
        guard fused(inputs), weight.dtype == .float32 || weight.dtype == .bfloat16, x.ndim == 2, a.dim(0) <= 256 else {
            let weight = weight.dtype == .float32 ? weight : weight.asType(.float32)
            let dropped = droppedInput ?? dropout.map { Self.dropout(x, probability: $0.probability, seed: $0.seed, offset: dropoutOffset) }
            return referenceLoRALinear(x, weight: weight, bias: bias, a: a, b: b, scale: scale, droppedInput: dropped)
        }
        let (probability, seed) = dropout ?? (0, 0)
        return makeTensor("Kernels.loraLinear") {
            tmx_kernel_lora_linear(
                $0, x.handle, weight.handle, bias?.handle, a.handle, b.handle, scale, droppedInput?.handle, probability, seed,
                UInt64(dropoutOffset))
        }
    }

    /// x·Wᵀ (+ bias) for x [N, in] and W [out, in]. On the fused path the backward gives W's gradient
    /// as dyᵀ·x, in W's own row-major layout; MLX's matmul with the view Wᵀ gives it as a transposed
    /// view, which the optimizer then has to copy.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        guard fused([x, weight] + (bias.map { [$0] } ?? [])), x.ndim == 2, weight.ndim == 2 else {
            return bias.map { $0.addmm(x, weight.mT) } ?? x.matmul(weight.mT)
        }
        return makeTensor("Kernels.linear") { tmx_kernel_dense_linear($0, x.handle, weight.handle, bias?.handle) }
    }

    /// The same layer from MLX's ops.
    public static func referenceLoRALinear(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil, a: Tensor, b: Tensor, scale: Float,
        droppedInput: Tensor? = nil
    ) -> Tensor {
        let base = bias.map { $0.addmm(x, weight.mT) } ?? x.matmul(weight.mT)
        return base + (droppedInput ?? x).matmul(a.mT).matmul(b.mT) * Double(scale)
    }
}

import CMLXShim

extension Kernels {
    /// A LoRA-adapted linear layer: x·Wᵀ (+ bias) + scale·(x'·Aᵀ)·Bᵀ, where x' is `droppedInput`
    /// (x after LoRA dropout) or x itself. The fused kernel does the base product in one sgemm and
    /// each rank-r step in one pass over the rows, accumulating into the output in place.
    /// - Parameters:
    ///   - x: [N, in]; weight: [out, in]; bias: [out].
    ///   - a: [r, in]; b: [out, r].
    public static func loraLinear(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil, a: Tensor, b: Tensor, scale: Float,
        droppedInput: Tensor? = nil
    ) -> Tensor {
        var inputs = [x, weight, a, b]
        if let bias { inputs.append(bias) }
        if let droppedInput { inputs.append(droppedInput) }
        guard fused(inputs), x.ndim == 2, a.dim(0) <= 256 else {
            return referenceLoRALinear(x, weight: weight, bias: bias, a: a, b: b, scale: scale, droppedInput: droppedInput)
        }
        return makeTensor("Kernels.loraLinear") {
            tmx_kernel_lora_linear($0, x.handle, weight.handle, bias?.handle, a.handle, b.handle, scale, droppedInput?.handle)
        }
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

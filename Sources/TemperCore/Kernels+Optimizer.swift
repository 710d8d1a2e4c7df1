import CMLXShim
import Foundation

/// Settings of one AdamW step (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").
public struct AdamWStep: Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    /// The 1-based number of the step being taken, for bias correction.
    public var step: Int

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, step: Int) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.step = step
    }

    var biasCorrection1: Float { 1 - Float(Foundation.pow(Double(beta1), Double(step))) }
    var biasCorrection2: Float { 1 - Float(Foundation.pow(Double(beta2), Double(step))) }
}

/// Parameters and moments after an AdamW step, in the order they were given.
public struct AdamWResult {
    public var parameters: [Tensor]
    public var firstMoments: [Tensor]
    public var secondMoments: [Tensor]
}

extension Kernels {
    /// One AdamW step for many tensors in a single fused primitive, with PyTorch's arithmetic:
    /// p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − (lr/c1)·m / (√v/√c2 + eps),
    /// c = 1 − βᵗ. `weightDecays` has one entry per tensor (0 for norms and biases).
    public static func adamWUpdate(
        parameters: [Tensor], gradients: [Tensor], firstMoments: [Tensor], secondMoments: [Tensor],
        weightDecays: [Float], step: AdamWStep
    ) -> AdamWResult {
        let k = parameters.count
        precondition(
            gradients.count == k && firstMoments.count == k && secondMoments.count == k
                && weightDecays.count == k,
            "adamWUpdate: \(k) parameters but \(gradients.count) gradients, \(firstMoments.count)/\(secondMoments.count) moments, \(weightDecays.count) decays")
        let all = parameters + gradients + firstMoments + secondMoments
        guard fused(all) else {
            return referenceAdamWUpdate(
                parameters: parameters, gradients: gradients, firstMoments: firstMoments,
                secondMoments: secondMoments, weightDecays: weightDecays, step: step)
        }
        let outputs = withTensorVector(all) { inputs in
            withTensorVector { out in
                let status = weightDecays.withUnsafeBufferPointer { decays in
                    tmx_kernel_adamw(
                        out, inputs, decays.baseAddress, step.learningRate, step.beta1, step.beta2,
                        step.eps, step.biasCorrection1, step.biasCorrection2)
                }
                if status != 0 {
                    opFailed("Kernels.adamWUpdate")
                    return [Tensor](repeating: Tensor.placeholder(), count: 3 * k)
                }
                return tensors(in: out)
            }
        }
        return AdamWResult(
            parameters: Array(outputs[0..<k]), firstMoments: Array(outputs[k..<(2 * k)]),
            secondMoments: Array(outputs[(2 * k)...]))
    }

    /// The same step composed from MLX ops.
    public static func referenceAdamWUpdate(
        parameters: [Tensor], gradients: [Tensor], firstMoments: [Tensor], secondMoments: [Tensor],
        weightDecays: [Float], step: AdamWStep
    ) -> AdamWResult {
        var result = AdamWResult(parameters: [], firstMoments: [], secondMoments: [])
        let (beta1, beta2) = (Double(step.beta1), Double(step.beta2))
        for j in parameters.indices {
            let g = gradients[j]
            let m = firstMoments[j] * beta1 + g * (1 - beta1)
            let v = secondMoments[j] * beta2 + g.square() * (1 - beta2)
            let decayed = parameters[j] * Double(1 - step.learningRate * weightDecays[j])
            let denominator = v.sqrt() / Double(step.biasCorrection2.squareRoot()) + Double(step.eps)
            result.parameters.append(decayed - m / denominator * Double(step.learningRate / step.biasCorrection1))
            result.firstMoments.append(m)
            result.secondMoments.append(v)
        }
        return result
    }

    /// The 16 NF4 code values of bitsandbytes (normal-float quantiles, Dettmers et al. 2023).
    public static let nf4Codes: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// Float32 values of `shape` from NF4 codes (uint8, two per byte, the first element in the high
    /// nibble, as bitsandbytes packs them) and one absmax per block of `blockSize` values.
    public static func nf4Dequantize(packed: Tensor, absmax: Tensor, shape: [Int], blockSize: Int = 64) -> Tensor {
        guard Device.current == .cpu else {
            return referenceNF4Dequantize(packed: packed, absmax: absmax, shape: shape, blockSize: blockSize)
        }
        return withCInts(shape) { dims, count in
            makeTensor("Kernels.nf4Dequantize") {
                tmx_kernel_nf4_dequantize($0, packed.handle, absmax.handle, dims, count, Int32(blockSize))
            }
        }
    }

    /// NF4 dequantization composed from MLX ops (the fallback and the tests' reference).
    public static func referenceNF4Dequantize(packed: Tensor, absmax: Tensor, shape: [Int], blockSize: Int = 64) -> Tensor {
        let bytes = packed.asType(.int32)
        let high = (bytes / Tensor(Int32(16))).floor().asType(.int32)
        let low = bytes - high * Tensor(Int32(16))
        let codes = Tensor.stacked([high, low], axis: -1).reshaped(-1)            // [2·bytes]
        let count = shape.reduce(1, *)
        let values = Tensor(nf4Codes).take(codes[..<count], axis: 0)              // [count]
        let scales = absmax.asType(.float32).reshaped(-1, 1)
            .broadcast(to: [absmax.size, blockSize]).reshaped(-1)[..<count]
        return (values * scales).reshaped(shape)
    }

    /// Float32 values of `shape` from int8 codes: q · absmax / 127 per block of `blockSize`.
    public static func int8Dequantize(codes: Tensor, absmax: Tensor, shape: [Int], blockSize: Int = 64) -> Tensor {
        guard Device.current == .cpu else {
            let count = shape.reduce(1, *)
            let scales = (absmax.asType(.float32) / 127).reshaped(-1, 1)
                .broadcast(to: [absmax.size, blockSize]).reshaped(-1)[..<count]
            return (codes.asType(.float32).reshaped(-1) * scales).reshaped(shape)
        }
        return withCInts(shape) { dims, count in
            makeTensor("Kernels.int8Dequantize") {
                tmx_kernel_int8_dequantize($0, codes.handle, absmax.handle, dims, count, Int32(blockSize))
            }
        }
    }
}

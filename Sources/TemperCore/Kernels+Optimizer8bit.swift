import CMLXShim
import Foundation

/// A tensor stored as uint8 codes into a 256-entry codebook with one float32 absmax per block of
/// consecutive (row-major) elements: value ≈ codebook[code] · absmax. The moments of 8-bit AdamW.
public struct BlockwiseCodes {
    /// uint8, the tensor's shape.
    public var codes: Tensor
    /// float32 [⌈count / blockSize⌉].
    public var absmax: Tensor

    public init(codes: Tensor, absmax: Tensor) {
        self.codes = codes
        self.absmax = absmax
    }

    /// Bytes held: one per element plus four per block.
    public var byteCount: Int { codes.size * codes.dtype.size + absmax.size * absmax.dtype.size }
}

/// Parameters and quantized moments after an 8-bit AdamW step, in the order they were given.
public struct AdamW8bitResult {
    public var parameters: [Tensor]
    public var firstMoments: [BlockwiseCodes]
    public var secondMoments: [BlockwiseCodes]
}

extension Kernels {
    /// Elements per absmax block of the 8-bit optimizer state (bitsandbytes' blockwise optimizers).
    public static let optimizerBlockSize = 256

    /// bitsandbytes' signed dynamic map (`create_dynamic_map(signed=True)`): the 8-bit code of
    /// the first moment. 127 negative and 127 positive values, 0 and 1; spans [−0.99296875, 1].
    public static let signedDynamicMap = dynamicMap(signed: true)
    /// bitsandbytes' unsigned dynamic map (`create_dynamic_map(signed=False)`): the 8-bit code of
    /// the second moment. 0, 254 positive values and 1.
    public static let unsignedDynamicMap = dynamicMap(signed: false)

    /// The dynamic quantization map of Dettmers (2016) as bitsandbytes builds it (7 exponent
    /// bits, 8 bits in all), sorted: for each decade 10^(i−6), i = 0…6, the midpoints of
    /// 2^i + 1 (signed) or 2^(i+1) + 1 (unsigned) evenly spaced points on [0.1, 1], times 10^(i−6)
    /// (and negated, when signed); then 0 and 1. Computed in float32 as PyTorch does.
    public static func dynamicMap(signed: Bool) -> [Float] {
        var data: [Float] = [0, 1]
        for i in 0..<7 {
            let points = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1
            let boundaries = linspace32(0.1, 1, points)
            let scale = Float(Foundation.pow(10, Double(i - 6)))
            for j in 0..<(points - 1) {
                let mean = (boundaries[j] + boundaries[j + 1]) / 2
                data.append(scale * mean)
                if signed { data.append(-scale * mean) }
            }
        }
        precondition(data.count == 256, "dynamicMap: \(data.count) values")
        return data.sorted()
    }

    /// torch.linspace in float32: start + step·i over the first half, end − step·(steps − 1 − i)
    /// over the rest, step = (end − start) / (steps − 1).
    static func linspace32(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        let step = (end - start) / Float(steps - 1)
        return (0..<steps).map { i in
            i < steps / 2 ? start + step * Float(i) : end - step * Float(steps - 1 - i)
        }
    }

    /// Blockwise quantization composed from MLX ops: each block of `blockSize` values is divided
    /// by its absmax and mapped to the nearest entry of the sorted 256-entry `map` (ties to the
    /// lower one), by a binary search over the midpoints between entries. A block of zeros gets
    /// absmax 0 and the code of 0.
    public static func quantizeBlockwise(
        _ values: Tensor, map: [Float], blockSize: Int = optimizerBlockSize
    ) -> BlockwiseCodes {
        precondition(map.count == 256, "quantizeBlockwise: the map has \(map.count) entries, not 256")
        let count = values.size
        let blocks = (count + blockSize - 1) / blockSize
        let flat = values.asType(.float32).reshaped(-1)
            .padded(axes: [0], low: [0], high: [blocks * blockSize - count])
            .reshaped(blocks, blockSize)                                             // [blocks, B]
        let absmax = flat.abs().max(axis: 1)                                         // [blocks]
        let inverse = which(absmax .> 0, 1.0 / absmax, Tensor.zeros([blocks]))
        let normalized = (flat * inverse.reshaped(-1, 1)).reshaped(-1)[..<count]    // [count]
        let midpoints = Tensor((0..<255).map { (map[$0] + map[$0 + 1]) * 0.5 } + [Float.infinity])
        var index = Tensor.zeros([count], dtype: .int32)
        for step in [128, 64, 32, 16, 8, 4, 2, 1] {
            let probe = midpoints.take(index + Double(step - 1), axis: 0)
            index = index + (probe .< normalized).asType(.int32) * Double(step)
        }
        return BlockwiseCodes(codes: index.asType(.uint8).reshaped(values.shape), absmax: absmax)
    }

    /// Float32 values (the codes' shape) of blockwise codes into `map`: map[code] · absmax.
    public static func dequantizeBlockwise(
        _ quantized: BlockwiseCodes, map: [Float], blockSize: Int = optimizerBlockSize
    ) -> Tensor {
        let count = quantized.codes.size
        let blocks = quantized.absmax.size
        let values = Tensor(map).take(quantized.codes.reshaped(-1).asType(.int32), axis: 0)          // [count]
        let scales = quantized.absmax.asType(.float32).reshaped(-1, 1)
            .broadcast(to: [blocks, blockSize]).reshaped(-1)[..<count]                              // [count]
        return (values * scales).reshaped(quantized.codes.shape)
    }

    /// Codes of a zero moment of `shape`.
    public static func zeroBlockwiseCodes(
        _ shape: [Int], map: [Float], blockSize: Int = optimizerBlockSize
    ) -> BlockwiseCodes {
        let zero = map.firstIndex(of: 0) ?? 0
        let blocks = (shape.reduce(1, *) + blockSize - 1) / blockSize
        return BlockwiseCodes(
            codes: Tensor.full(shape, value: Double(zero), dtype: .uint8), absmax: Tensor.zeros([blocks]))
    }

    /// One blockwise 8-bit AdamW step for many tensors in a single fused primitive (bitsandbytes'
    /// 8-bit optimizers, Dettmers et al. 2022): first moments are codes into `signedDynamicMap`,
    /// second moments into `unsignedDynamicMap`, with one absmax per `blockSize` elements. Each
    /// block is dequantized, stepped with adamWUpdate's float32 arithmetic (the parameter update
    /// uses the new moments before they are quantized), and requantized with its new absmax.
    public static func adamW8bitUpdate(
        parameters: [Tensor], gradients: [Tensor], firstMoments: [BlockwiseCodes], secondMoments: [BlockwiseCodes],
        weightDecays: [Float], step: AdamWStep, blockSize: Int = optimizerBlockSize
    ) -> AdamW8bitResult {
        let k = parameters.count
        precondition(
            gradients.count == k && firstMoments.count == k && secondMoments.count == k
                && weightDecays.count == k,
            "adamW8bitUpdate: \(k) parameters but \(gradients.count) gradients, "
                + "\(firstMoments.count)/\(secondMoments.count) moments, \(weightDecays.count) decays")
        let codes = firstMoments.map(\.codes) + secondMoments.map(\.codes)
        let scales = firstMoments.map(\.absmax) + secondMoments.map(\.absmax)
        guard k > 0, fused(parameters + gradients + scales), codes.allSatisfy({ $0.dtype == .uint8 }) else {
            return referenceAdamW8bitUpdate(
                parameters: parameters, gradients: gradients, firstMoments: firstMoments,
                secondMoments: secondMoments, weightDecays: weightDecays, step: step, blockSize: blockSize)
        }
        let all = parameters + gradients + firstMoments.map(\.codes) + firstMoments.map(\.absmax)
            + secondMoments.map(\.codes) + secondMoments.map(\.absmax)
        let outputs = withTensorVector(all) { inputs in
            withTensorVector { out in
                let status = weightDecays.withUnsafeBufferPointer { decays in
                    signedDynamicMap.withUnsafeBufferPointer { first in
                        unsignedDynamicMap.withUnsafeBufferPointer { second in
                            tmx_kernel_adamw_8bit(
                                out, inputs, decays.baseAddress, step.learningRate, step.beta1, step.beta2,
                                step.eps, step.biasCorrection1, step.biasCorrection2, first.baseAddress,
                                second.baseAddress, Int32(clamping: blockSize))
                        }
                    }
                }
                if status != 0 {
                    opFailed("Kernels.adamW8bitUpdate")
                    return [Tensor](repeating: Tensor.placeholder(), count: 5 * k)
                }
                return tensors(in: out)
            }
        }
        let group = { (g: Int) in Array(outputs[(g * k)..<((g + 1) * k)]) }
        return AdamW8bitResult(
            parameters: group(0),
            firstMoments: zip(group(1), group(2)).map { BlockwiseCodes(codes: $0, absmax: $1) },
            secondMoments: zip(group(3), group(4)).map { BlockwiseCodes(codes: $0, absmax: $1) })
    }

    /// The same step composed from MLX ops, rounding as the fused kernel does.
    public static func referenceAdamW8bitUpdate(
        parameters: [Tensor], gradients: [Tensor], firstMoments: [BlockwiseCodes], secondMoments: [BlockwiseCodes],
        weightDecays: [Float], step: AdamWStep, blockSize: Int = optimizerBlockSize
    ) -> AdamW8bitResult {
        var result = AdamW8bitResult(parameters: [], firstMoments: [], secondMoments: [])
        let (beta1, beta2) = (step.beta1, step.beta2)
        let stepSize = step.learningRate / step.biasCorrection1
        let inverseRootC2 = 1 / step.biasCorrection2.squareRoot()
        for j in parameters.indices {
            let g = gradients[j].asType(.float32)
            let m0 = dequantizeBlockwise(firstMoments[j], map: signedDynamicMap, blockSize: blockSize)
            let v0 = dequantizeBlockwise(secondMoments[j], map: unsignedDynamicMap, blockSize: blockSize)
            let m = m0 * Double(beta1) + g * Double(1 - beta1)
            let v = v0 * Double(beta2) + g.square() * Double(1 - beta2)
            let decayed = parameters[j].asType(.float32) * Double(1 - step.learningRate * weightDecays[j])
            let denominator = v.sqrt() * Double(inverseRootC2) + Double(step.eps)
            let updated = decayed - m * Double(stepSize) / denominator
            result.parameters.append(updated.asType(parameters[j].dtype))
            result.firstMoments.append(quantizeBlockwise(m, map: signedDynamicMap, blockSize: blockSize))
            result.secondMoments.append(quantizeBlockwise(v, map: unsignedDynamicMap, blockSize: blockSize))
        }
        return result
    }
}

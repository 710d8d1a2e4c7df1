import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

@Suite struct AdamWKernelTests {
    @Test func oneStepByHand() {
        // p = 1, g = 0.5, m = v = 0, lr = 0.1, wd = 0.01, t = 1:
        // decayed 0.999; m = 0.05; v = 0.00025; c1 = 0.1, c2 = 0.001;
        // p = 0.999 − (0.1/0.1)·0.05/(√0.00025/√0.001 + 1e-8) = 0.999 − 0.1 = 0.899.
        let result = Kernels.adamWUpdate(
            parameters: [Tensor([1] as [Float])], gradients: [Tensor([0.5] as [Float])],
            firstMoments: [Tensor.zeros([1])], secondMoments: [Tensor.zeros([1])], weightDecays: [0.01],
            step: AdamWStep(learningRate: 0.1, step: 1))
        assertClose(result.parameters[0], [0.899])
        assertClose(result.firstMoments[0], [0.05])
        assertClose(result.secondMoments[0], [0.00025])
    }

    @Test func manyTensorsMatchTheComposition() {
        let shapes: [[Int]] = [[3], [17, 5], [64, 129], [1]]
        let key = { (i: Int, j: Int) in Random.key(UInt64(10 * i + j)) }
        let parameters = shapes.enumerated().map { Random.normal($0.element, key: key($0.offset, 0)) }
        let gradients = shapes.enumerated().map { Random.normal($0.element, key: key($0.offset, 1)) }
        let first = shapes.enumerated().map { Random.normal($0.element, standardDeviation: 0.1, key: key($0.offset, 2)) }
        let second = shapes.enumerated().map { Random.uniform($0.element, low: 0, high: 0.1, key: key($0.offset, 3)) }
        let decays: [Float] = [0.1, 0, 0.01, 0]
        let step = AdamWStep(learningRate: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-6, step: 7)
        let fused = Kernels.adamWUpdate(parameters: parameters, gradients: gradients, firstMoments: first, secondMoments: second, weightDecays: decays, step: step)
        let reference = Kernels.referenceAdamWUpdate(parameters: parameters, gradients: gradients, firstMoments: first, secondMoments: second, weightDecays: decays, step: step)
        let tolerance = Tolerance(absolute: 1e-6, relative: 1e-5)
        for j in shapes.indices {
            assertClose(fused.parameters[j], reference.parameters[j], tolerance: tolerance, "parameter \(j)")
            assertClose(fused.firstMoments[j], reference.firstMoments[j], tolerance: tolerance, "m \(j)")
            assertClose(fused.secondMoments[j], reference.secondMoments[j], tolerance: tolerance, "v \(j)")
        }
    }

    @Test func inputsHeldByNobodyElseAreUpdatedInPlaceWithTheSameResult() {
        // The inputs are temporaries only the graph refers to, so the kernel may reuse their buffers.
        let step = AdamWStep(learningRate: 0.1, step: 1)
        let fused = Kernels.adamWUpdate(
            parameters: [Tensor.ones([1000]) * 1], gradients: [Tensor.ones([1000]) * 0.5],
            firstMoments: [Tensor.zeros([1000]) * 1], secondMoments: [Tensor.zeros([1000]) * 1],
            weightDecays: [0.01], step: step)
        eval(fused.parameters + fused.firstMoments + fused.secondMoments)
        #expect(fused.parameters[0].toArray(Float.self).allSatisfy { Swift.abs($0 - 0.899) < 1e-6 })
        #expect(fused.firstMoments[0].toArray(Float.self).allSatisfy { Swift.abs($0 - 0.05) < 1e-7 })
        // 1 − β2 rounds to 0.00100005 in float32, hence 2.49997e-4 rather than 2.5e-4.
        #expect(fused.secondMoments[0].toArray(Float.self).allSatisfy { Swift.abs($0 - 0.00025) < 1e-8 })
    }

    @Test func stepsFedTheirOwnResultsUpdateInPlaceAndMatchTheComposition() {
        // As in training: each step gets the last one's tensors and nothing else holds them, so the
        // kernel writes into their buffers. Odd sizes, one large enough to be split across threads.
        let shapes: [[Int]] = [[257, 129], [5]]
        let step = AdamWStep(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, step: 3)
        let decays: [Float] = [0.05, 0]
        func run(_ update: ([Tensor], [Tensor], [Tensor], [Tensor]) -> AdamWResult) -> AdamWResult {
            let gradients = shapes.enumerated().map { Random.normal($0.element, key: Random.key(UInt64(40 + $0.offset))) }
            var state = AdamWResult(parameters: shapes.enumerated().map { Random.normal($0.element, key: Random.key(UInt64(50 + $0.offset))) },
                                    firstMoments: shapes.map { Tensor.zeros($0) }, secondMoments: shapes.map { Tensor.zeros($0) })
            for _ in 0..<3 {
                state = update(state.parameters, gradients, state.firstMoments, state.secondMoments)
                eval(state.parameters + state.firstMoments + state.secondMoments)
            }
            return state
        }
        let fused = run { Kernels.adamWUpdate(parameters: $0, gradients: $1, firstMoments: $2, secondMoments: $3, weightDecays: decays, step: step) }
        let reference = run { Kernels.referenceAdamWUpdate(parameters: $0, gradients: $1, firstMoments: $2, secondMoments: $3, weightDecays: decays, step: step) }
        let tolerance = Tolerance(absolute: 1e-6, relative: 1e-5)
        for j in shapes.indices {
            assertClose(fused.parameters[j], reference.parameters[j], tolerance: tolerance, "parameter \(j)")
            assertClose(fused.firstMoments[j], reference.firstMoments[j], tolerance: tolerance, "m \(j)")
            assertClose(fused.secondMoments[j], reference.secondMoments[j], tolerance: tolerance, "v \(j)")
        }
    }

    @Test func mismatchedShapesThrowInsideTheErrorScope() {
        #expect(throws: MLXError.self) {
            try withErrorHandling {
                Kernels.adamWUpdate(parameters: [Tensor.zeros([2])], gradients: [Tensor.zeros([3])], firstMoments: [Tensor.zeros([2])], secondMoments: [Tensor.zeros([2])], weightDecays: [0], step: AdamWStep(learningRate: 1, step: 1)).parameters[0]
            }
        }
    }
}

@Suite struct BlockDequantizationTests {
    /// Nearest-code NF4 quantization with one absmax per block, packed two codes per byte.
    static func quantizeNF4(_ values: [Float], blockSize: Int) -> (packed: [UInt8], absmax: [Float]) {
        var codes: [UInt8] = []
        var absmax: [Float] = []
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = values[start..<min(start + blockSize, values.count)]
            let scale = block.map { Swift.abs($0) }.max() ?? 1
            absmax.append(scale)
            for value in block {
                let normalized = scale == 0 ? 0 : value / scale
                let nearest = Kernels.nf4Codes.indices.min { Swift.abs(Kernels.nf4Codes[$0] - normalized) < Swift.abs(Kernels.nf4Codes[$1] - normalized) } ?? 7
                codes.append(UInt8(nearest))
            }
        }
        if codes.count % 2 == 1 { codes.append(7) }
        let packed = stride(from: 0, to: codes.count, by: 2).map { codes[$0] << 4 | codes[$0 + 1] }
        return (packed, absmax)
    }

    @Test func nf4ByHand() {
        // Codes 15 and 0 in the first byte (1.0, −1.0), 7 and 8 in the second (0, 0.0796…).
        let out = Kernels.nf4Dequantize(packed: Tensor([0xF0, 0x78] as [UInt8]), absmax: Tensor([2] as [Float]), shape: [2, 2], blockSize: 64)
        assertClose(out, [2, -2, 0, 2 * 0.07958029955625534])
    }

    @Test(arguments: [64, 32])
    func nf4RoundTripMatchesReferenceAndErrorBound(blockSize: Int) {
        let values = Random.normal([37 * 64 + 3], key: Random.key(9)).toArray(Float.self)
        let (packed, absmax) = Self.quantizeNF4(values, blockSize: blockSize)
        let packedTensor = Tensor(packed)
        let absmaxTensor = Tensor(absmax)
        let shape = [values.count]
        let fused = Kernels.nf4Dequantize(packed: packedTensor, absmax: absmaxTensor, shape: shape, blockSize: blockSize)
        let reference = Kernels.referenceNF4Dequantize(packed: packedTensor, absmax: absmaxTensor, shape: shape, blockSize: blockSize)
        assertClose(fused, reference, tolerance: Tolerance(absolute: 0, relative: 0))
        // Nearest code: the error is at most half the widest gap between codes (−1 to −0.6962) × absmax.
        let errors = (fused - Tensor(values)).abs().toArray(Float.self)
        for (index, error) in errors.enumerated() {
            let bound = 0.5 * 0.3038071990013123 * absmax[index / blockSize] + 1e-6
            if error > bound {
                Issue.record("element \(index): error \(error) > \(bound)")
                break
            }
        }
    }

    @Test func int8Blocks() {
        let out = Kernels.int8Dequantize(codes: Tensor([127, -127, 64, 0] as [Int8]), absmax: Tensor([1, 2] as [Float]), shape: [4], blockSize: 2)
        assertClose(out, [1, -1, 2.0 * 64 / 127, 0])
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.int8Dequantize(codes: Tensor([1, 2, 3] as [Int8]), absmax: Tensor([1] as [Float]), shape: [4], blockSize: 2) }
        }
    }
}

@Suite struct AdamW8bitKernelTests {
    static let signed = Kernels.signedDynamicMap
    static let unsigned = Kernels.unsignedDynamicMap

    @Test func dynamicMapsHaveBitsandbytesValues() {
        // create_dynamic_map(signed=True): decade 10^(i−6) holds the 2^i midpoints of 2^i + 1 points
        // evenly spaced on [0.1, 1], ± (127 each), then 0 and 1. The top decade's step is 0.9/64, so
        // the ends are ±(1 − 0.9/128) = ±0.99296875; the smallest magnitude is 0.55·10⁻⁶.
        let tolerance: Float = 1e-7
        #expect(Self.signed.count == 256)
        #expect(zip(Self.signed, Self.signed.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Swift.abs(Self.signed[0] - -0.99296875) < tolerance)
        #expect(Swift.abs(Self.signed[1] - -0.97890625) < tolerance)        // −(1 − 3·0.9/128)
        #expect(Swift.abs(Self.signed[126] - -5.5e-7) < 1e-12)
        #expect(Self.signed[127] == 0)
        #expect(Swift.abs(Self.signed[128] - 5.5e-7) < 1e-12)
        #expect(Swift.abs(Self.signed[129] - 3.25e-6) < 1e-11)              // 10⁻⁵·(0.1 + 0.9/4)
        #expect(Swift.abs(Self.signed[254] - 0.99296875) < tolerance)
        #expect(Self.signed[255] == 1)
        #expect(Self.signed.filter { $0 > 0.1 && $0 < 1 }.count == 64)
        #expect(Self.signed.filter { $0 > 0.01 && $0 < 0.1 }.count == 32)
        #expect((0..<127).allSatisfy { Self.signed[$0] == -Self.signed[254 - $0] })
        // create_dynamic_map(signed=False): 2^(i+1) midpoints per decade (254 in all), 0 and 1.
        #expect(Self.unsigned.count == 256)
        #expect(zip(Self.unsigned, Self.unsigned.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Self.unsigned[0] == 0)
        #expect(Swift.abs(Self.unsigned[1] - 3.25e-7) < 1e-12)              // 10⁻⁶·(0.1 + 0.45)/2
        #expect(Swift.abs(Self.unsigned[2] - 7.75e-7) < 1e-12)              // 10⁻⁶·(0.55 + 1)/2
        #expect(Swift.abs(Self.unsigned[254] - 0.996484375) < tolerance)     // 1 − 0.9/256
        #expect(Self.unsigned[255] == 1)
        #expect(Self.unsigned.filter { $0 > 0.1 && $0 < 1 }.count == 128)
    }

    @Test(arguments: [true, false])
    func quantizeDequantizeIsNearestCodeWithinHalfTheWidestGap(signed: Bool) {
        let map = signed ? Self.signed : Self.unsigned
        // Blocks at scales from 10⁻⁶ to 10³, a block of zeros, and a short last block.
        let count = 12 * 256 + 77
        var values = Random.normal([count], key: Random.key(21)).toArray(Float.self)
        for index in values.indices {
            let block = index / 256
            values[index] *= block == 5 ? 0 : Float(Foundation.pow(10, Double(block % 10 - 6)))
            if !signed { values[index] = values[index] * values[index] }
        }
        let quantized = Kernels.quantizeBlockwise(Tensor(values), map: map)
        #expect(quantized.codes.dtype == .uint8 && quantized.codes.shape == [count])
        let codes = quantized.codes.toArray(UInt8.self)
        let absmax = quantized.absmax.toArray(Float.self)
        #expect(absmax.count == 13)
        let restored = Kernels.dequantizeBlockwise(quantized, map: map).toArray(Float.self)
        // The widest gap is the top decade's step: 0.9/64 (signed) or 0.9/128 (unsigned).
        let widest = zip(map, map.dropFirst()).map { $1 - $0 }.max()!
        #expect(Swift.abs(widest - (signed ? 0.9 / 64 : 0.9 / 128)) < 1e-6)
        for block in 0..<absmax.count {
            let range = (block * 256)..<min(count, block * 256 + 256)
            #expect(absmax[block] == values[range].map { Swift.abs($0) }.max()!, "block \(block)")
        }
        #expect(absmax[5] == 0 && restored[(5 * 256)..<(6 * 256)].allSatisfy { $0 == 0 })
        var failures = 0
        for index in values.indices where failures < 5 {
            let scale = absmax[index / 256]
            let normalized = scale == 0 ? 0 : values[index] * (1 / scale)
            let code = Int(codes[index])
            let error = Swift.abs(normalized - map[code])
            let nearest = (max(0, code - 1)...min(255, code + 1)).allSatisfy { error <= Swift.abs(normalized - map[$0]) }
            // −absmax itself is as far as that from −0.99296875 (the signed map has no −1).
            let bound = 0.5 * widest * scale * (1 + 1e-4)
            if !nearest || Swift.abs(restored[index] - values[index]) > bound {
                Issue.record("element \(index): \(values[index]) → code \(code) → \(restored[index]), bound \(bound)")
                failures += 1
            }
        }
    }

    /// Parameters, gradients and quantized moments of `shapes`, drawn from `seed`.
    static func problem(_ shapes: [[Int]], seed: UInt64) -> (p: [Tensor], g: [Tensor], m: [BlockwiseCodes], v: [BlockwiseCodes]) {
        let key = { (i: Int, j: Int) in Random.key(seed + UInt64(10 * i + j)) }
        let p = shapes.enumerated().map { Random.normal($0.element, key: key($0.offset, 0)) }
        var g = shapes.enumerated().map { Random.normal($0.element, key: key($0.offset, 1)) }
        // A block of zero gradient: with zero moments it keeps absmax 0 and the code of 0.
        g[0] = g[0] * (Tensor.arange(Double(g[0].size)).reshaped(g[0].shape) .>= 256).asType(.float32)
        let m = shapes.enumerated().map {
            Kernels.quantizeBlockwise(Random.normal($0.element, standardDeviation: 0.1, key: key($0.offset, 2)) * ($0.offset == 0 ? 0 : 1), map: signed)
        }
        let v = shapes.enumerated().map {
            Kernels.quantizeBlockwise(Random.uniform($0.element, low: 0, high: 0.1, key: key($0.offset, 3)) * ($0.offset == 0 ? 0 : 1), map: unsigned)
        }
        return (p, g, m, v)
    }

    @Test func fusedStepsMatchTheCompositionCodeForCode() {
        // Odd sizes, one large enough to be split across threads; each step is fed the last one's
        // tensors and nothing else holds them, so the kernel updates them in place.
        let shapes: [[Int]] = [[300, 41], [4096], [70_001]]
        let step = AdamWStep(learningRate: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-6, step: 7)
        let decays: [Float] = [0.1, 0, 0.01]
        func run(fused: Bool) -> AdamW8bitResult {
            let start = Self.problem(shapes, seed: 100)
            var state = AdamW8bitResult(parameters: start.p, firstMoments: start.m, secondMoments: start.v)
            for _ in 0..<3 {
                let update = fused ? Kernels.adamW8bitUpdate : Kernels.referenceAdamW8bitUpdate
                state = update(state.parameters, start.g, state.firstMoments, state.secondMoments, decays, step, 256)
                eval(state.parameters + state.firstMoments.flatMap { [$0.codes, $0.absmax] } + state.secondMoments.flatMap { [$0.codes, $0.absmax] })
            }
            return state
        }
        let fused = run(fused: true)
        let reference = run(fused: false)
        for j in shapes.indices {
            // Both round every operation the same way (no fused multiply-adds), so they agree exactly.
            #expect(fused.parameters[j].toArray(Float.self) == reference.parameters[j].toArray(Float.self), "parameter \(j)")
            for (name, a, b) in [("m", fused.firstMoments[j], reference.firstMoments[j]), ("v", fused.secondMoments[j], reference.secondMoments[j])] {
                #expect(a.codes.dtype == .uint8 && a.codes.shape == shapes[j])
                #expect(a.codes.toArray(UInt8.self) == b.codes.toArray(UInt8.self), "\(name) codes \(j)")
                #expect(a.absmax.toArray(Float.self) == b.absmax.toArray(Float.self), "\(name) absmax \(j)")
            }
        }
        // The zero-gradient block of tensor 0 stayed at zero moments.
        #expect(fused.firstMoments[0].absmax.toArray(Float.self)[0] == 0)
        #expect(fused.firstMoments[0].codes.reshaped(-1)[..<256].toArray(UInt8.self).allSatisfy { $0 == 127 })
        #expect(fused.secondMoments[0].codes.reshaped(-1)[..<256].toArray(UInt8.self).allSatisfy { $0 == 0 })
    }

    @Test func oneStepFromZeroByHand() {
        // From zero moments, m = 0.1·g and v = 0.001·g² are quantized against their block absmax:
        // the largest |g| gets codes 255 (+1) or 0 (−0.99296875), and 0 gets the code of 0.
        let g: [Float] = [0.5, -2, 0, 1]
        let zero = { (map: [Float]) in Kernels.zeroBlockwiseCodes([4], map: map) }
        let result = Kernels.adamW8bitUpdate(
            parameters: [Tensor([1, 1, 1, 1] as [Float])], gradients: [Tensor(g)], firstMoments: [zero(Self.signed)],
            secondMoments: [zero(Self.unsigned)], weightDecays: [0.01], step: AdamWStep(learningRate: 0.1, step: 1))
        // As float32 AdamW's first step: p·(1 − 0.001) − 0.1·sign(g).
        assertClose(result.parameters[0], [0.899, 1.099, 0.999, 0.899])
        assertClose(result.firstMoments[0].absmax, [0.2])
        assertClose(result.secondMoments[0].absmax, [0.004])
        #expect(result.firstMoments[0].codes.toArray(UInt8.self)[1...2] == [0, 127])
        #expect(result.secondMoments[0].codes.toArray(UInt8.self)[1...2] == [255, 0])
        assertClose(Kernels.dequantizeBlockwise(result.firstMoments[0], map: Self.signed), [0.05, -0.2 * 0.99296875, 0, 0.1], tolerance: Tolerance(absolute: 0.2 * 0.0071, relative: 0))
    }

    @Test func mismatchedSizesThrowInsideTheErrorScope() {
        let zero = Kernels.zeroBlockwiseCodes([300], map: Self.signed)
        let short = BlockwiseCodes(codes: zero.codes, absmax: Tensor.zeros([1]))
        // The fused kernel's own check (so the fused path is the one taken on the CPU).
        let error = #expect(throws: MLXError.self) {
            try withErrorHandling {
                Kernels.adamW8bitUpdate(parameters: [Tensor.zeros([300])], gradients: [Tensor.zeros([300])], firstMoments: [short], secondMoments: [zero], weightDecays: [0], step: AdamWStep(learningRate: 1, step: 1)).parameters[0]
            }
        }
        #expect(error?.operation == "Kernels.adamW8bitUpdate")
        #expect(error?.message.contains("m absmax 0 must have 2 elements") == true, "\(String(describing: error))")
    }
}

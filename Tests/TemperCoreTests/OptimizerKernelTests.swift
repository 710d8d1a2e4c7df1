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

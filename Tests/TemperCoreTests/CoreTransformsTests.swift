import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

@Suite struct TransformTests {
    @Test func vjpAndJvpOfASquare() {
        let x = Tensor([1, -2, 3] as [Float])
        let cotangent = Tensor([1, 10, 100] as [Float])
        let (outputs, vjps) = vjp({ [$0[0] * $0[0]] }, primals: [x], cotangents: [cotangent])
        #expect(outputs[0].toArray(Float.self) == [1, 4, 9])
        #expect(vjps[0].toArray(Float.self) == [2, -40, 600])  // 2x · c
        let (jvpOutputs, jvps) = jvp({ [$0[0] * $0[0] * $0[1]] }, primals: [x, Tensor(Float(2))], tangents: [Tensor.ones([3]), Tensor(Float(0))])
        #expect(jvpOutputs[0].toArray(Float.self) == [2, 8, 18])
        #expect(jvps[0].toArray(Float.self) == [4, -8, 12])  // 2x·y·1
    }

    @Test func valueAndGradWithAuxiliaryOutputsAndArgumentSubset() {
        let x = Tensor([1, 2] as [Float])
        let y = Tensor([3, 4] as [Float])
        let f = valueAndGrad({ (inputs: [Tensor]) -> [Tensor] in
            let product = inputs[0] * inputs[1]
            return [product.sum(), product]  // loss, then a metric that rides along
        }, argumentNumbers: [1])
        let (values, gradients) = f([x, y])
        #expect(values.count == 2)
        #expect(values[0].item(Float.self) == 11)
        #expect(values[1].toArray(Float.self) == [3, 8])
        #expect(gradients.count == 1)
        #expect(gradients[0].toArray(Float.self) == [1, 2])  // ∂/∂y = x
        let all = grad { ($0[0] * $0[1]).sum() }([x, y])
        #expect(all.map { $0.toArray(Float.self) } == [[3, 4], [1, 2]])
    }

    @Test func namedParameterGradients() {
        let parameters = ["layer.weight": Tensor([2, 3] as [Float]), "layer.bias": Tensor(Float(1))]
        let input = Tensor([1, 4] as [Float])
        let (loss, gradients) = valueAndGrad { (p: [String: Tensor]) -> Tensor in
            guard let w = p["layer.weight"], let b = p["layer.bias"] else { return Tensor(Float(0)) }
            return ((w * input).sum() + b).square()  // (2 + 12 + 1)² = 225
        }(parameters)
        #expect(loss.item(Float.self) == 225)
        #expect(Set(gradients.keys) == ["layer.weight", "layer.bias"])
        #expect(gradients["layer.weight"]?.toArray(Float.self) == [30, 120])  // 2·15·x
        #expect(gradients["layer.bias"]?.item(Float.self) == 30)
        let justGradients = grad { (p: [String: Tensor]) -> Tensor in (p["a"] ?? Tensor(Float(0))).exp().sum() }(["a": Tensor([0] as [Float])])
        #expect(justGradients["a"]?.toArray(Float.self) == [1])
    }

    @Test func secondOrderGradient() {
        let x = Tensor([1, 2, -3] as [Float])
        let secondDerivative = grad { inputs in grad { ($0[0] * $0[0] * $0[0]).sum() }(inputs)[0].sum() }([x])[0]
        #expect(secondDerivative.toArray(Float.self) == [6, 12, -18])  // d²/dx² x³ = 6x
    }

    @Test func compiledFunctionsMatchUncompiled() {
        let f = { (inputs: [Tensor]) -> [Tensor] in [(inputs[0] * 2 + 1).exp() * inputs[1], inputs[0].sigmoid()] }
        let compiled = compile(f)
        let shapeless = compile(shapeless: true, f)
        for shape in [[3], [2, 5]] {
            let a = Random.normal(shape, key: Random.key(1))
            let b = Random.normal(shape, key: Random.key(2))
            let want = f([a, b])
            for (label, function) in [("compiled", compiled), ("shapeless", shapeless)] {
                let got = function([a, b])
                #expect(got.count == 2)
                assertClose(got[0], want[0], "\(label) \(shape) output 0")
                assertClose(got[1], want[1], "\(label) \(shape) output 1")
            }
        }
        // Gradients flow through compiled functions.
        let g = grad { compiled([$0[0], Tensor.ones([3])])[0].sum() }([Tensor([0, 0.5, 1] as [Float])])[0]
        assertClose(g, [2 * Foundation.exp(1.0), 2 * Foundation.exp(2.0), 2 * Foundation.exp(3.0)])
    }
}

@Suite struct ErrorHandlingTests {
    @Test func matmulShapeMismatchThrowsInsideTheScope() throws {
        let a = Tensor.ones([2, 3])
        let b = Tensor.ones([4, 5])
        do {
            _ = try withErrorHandling { a.matmul(b) }
            Issue.record("mismatched matmul did not throw")
        } catch let error as MLXError {
            #expect(error.operation == "matmul")
            #expect(error.message.contains("(2,3)"), "\(error.message)")
            #expect(error.message.contains("(4,5)"), "\(error.message)")
        }
    }

    @Test func badReshapeAndAxisThrowAndLaterOpsStillWork() throws {
        #expect(throws: MLXError.self) { try withErrorHandling { Tensor.ones([2, 3]).reshaped(4, 2) } }
        #expect(throws: MLXError.self) { try withErrorHandling { Tensor.ones([2, 3]).sum(axis: 5) } }
        #expect(throws: MLXError.self) { try withErrorHandling { Tensor.ones([2]) + Tensor.ones([3]) } }
        // The first failure is reported even when later ops consume its placeholder.
        do {
            _ = try withErrorHandling { Tensor.ones([2, 3]).transposed(0, 1, 2).exp().sum() }
            Issue.record("did not throw")
        } catch let error as MLXError {
            #expect(error.operation == "transposed([0, 1, 2])")
        }
        // Outside any scope, and in a scope with no failure, ops work as usual.
        #expect(try withErrorHandling { (Tensor.ones([2, 3]) * 2).sum().item(Float.self) } == 12)
        #expect(Tensor.ones([2, 2]).matmul(Tensor.ones([2, 2])).sum().item(Float.self) == 8)
    }

    @Test func nestedScopesReportToTheInnermost() throws {
        let outer = try withErrorHandling { () -> String in
            do {
                _ = try withErrorHandling { Tensor.ones([2]).reshaped(3) }
                return "inner did not throw"
            } catch {
                return "inner threw"
            }
        }
        #expect(outer == "inner threw")
    }
}

@Suite(.serialized) struct MemoryTests {
    @Test func statisticsAndLimits() {
        Memory.clearCache()
        #expect(Memory.cacheBytes == 0)
        Memory.resetPeak()
        let before = Memory.activeBytes
        do {
            let big = Tensor.ones([1 << 20]).evaluated()
            #expect(Memory.activeBytes >= before + (4 << 20))
            #expect(Memory.peakBytes >= Memory.activeBytes)
            _ = big.size
        }
        #expect(Memory.cacheBytes >= 4 << 20)  // freed buffers are kept for reuse…
        Memory.clearCache()
        #expect(Memory.cacheBytes == 0)        // …until the cache is cleared
        let previous = Memory.setCacheLimit(1 << 20)
        #expect(Memory.setCacheLimit(previous) == 1 << 20)
        #expect(Memory.peakBytes >= 4 << 20)
        Memory.resetPeak()
        #expect(Memory.peakBytes < 4 << 20)
    }

    @Test func asyncEvalThenRead() {
        let x = Tensor.arange(1000, dtype: .int32).square()
        asyncEval([x])
        #expect(x.sum().item(Int32.self) == 332_833_500)
    }
}

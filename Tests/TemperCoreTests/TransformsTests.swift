import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// Counts how often MLX calls a Swift function while tracing it.
private final class TraceCounter {
    var count = 0
}

/// Whether `condition` holds on one of `attempts` tries. Memory statistics are process-wide and
/// other suites allocate and free concurrently, so a single reading may be disturbed.
private func holdsOnSomeAttempt(_ attempts: Int = 5, _ condition: () -> Bool) -> Bool {
    for _ in 0..<attempts where condition() { return true }
    return false
}

@Suite struct TransformsTests {
    // MARK: vjp and jvp

    @Test func vjpAppliesTheCotangent() {
        // f(x) = x², cotangent c: the vjp is 2x·c.
        let x = Tensor([1, -2, 3, 0.5] as [Double])
        let c = Tensor([1, 10, -100, 4] as [Double])
        let (outputs, vjps) = vjp({ [$0[0] * $0[0]] }, primals: [x], cotangents: [c])
        #expect(outputs.count == 1)
        #expect(outputs[0].toArray(Double.self) == [1, 4, 9, 0.25])
        #expect(vjps.count == 1)
        #expect(vjps[0].toArray(Double.self) == [2, -40, -600, 4])

        // Two inputs, two outputs: f(x, y) = (x·y, x + 3y) with cotangents (c1, c2) gives
        // ∂/∂x = c1·y + c2 and ∂/∂y = c1·x + 3·c2.
        let y = Tensor([2, 0.5, -1, 4] as [Double])
        let c2 = Tensor([1, 1, 2, -1] as [Double])
        let two = vjp(
            { [$0[0] * $0[1], $0[0] + $0[1] * 3] }, primals: [x, y], cotangents: [c, c2])
        #expect(
            two.outputs.map { $0.toArray(Double.self) } == [[2, -1, -3, 2], [7, -0.5, 0, 12.5]])
        #expect(two.vjps[0].toArray(Double.self) == [3, 6, 102, 15])
        #expect(two.vjps[1].toArray(Double.self) == [4, -17, -294, -1])
    }

    @Test func jvpAppliesTheTangent() {
        // f(x) = x², tangent t: the jvp is 2x·t.
        let x = Tensor([1, -2, 3] as [Double])
        let (outputs, jvps) = jvp(
            { [$0[0] * $0[0]] }, primals: [x], tangents: [Tensor([1, 0.5, -2] as [Double])])
        #expect(outputs[0].toArray(Double.self) == [1, 4, 9])
        #expect(jvps[0].toArray(Double.self) == [2, -2, -12])

        // f(x, y) = x·y with tangents (tx, ty): tx·y + x·ty; a broadcast scalar y.
        let y = Tensor(2.0)
        let both = jvp(
            { [$0[0] * $0[1]] }, primals: [x, y],
            tangents: [Tensor([1, 1, 1] as [Double]), Tensor(0.25)])
        #expect(both.outputs[0].toArray(Double.self) == [2, -4, 6])
        #expect(both.jvps[0].toArray(Double.self) == [2.25, 1.5, 2.75])
    }

    @Test func vjpAndJvpAreAdjoint() {
        // ⟨c, J·t⟩ = ⟨Jᵀ·c, t⟩ for a nonlinear map ℝ⁶ → ℝ⁶ at a random point.
        let f = { (inputs: [Tensor]) -> [Tensor] in
            let x = inputs[0].reshaped(2, 3)
            return [(x.matmul(x.mT).matmul(x) * x.tanh()).reshaped(-1)]
        }
        let x = Random.normal([6], key: Random.key(1)).asType(.float64)
        let t = Random.normal([6], key: Random.key(2)).asType(.float64)
        let c = Random.normal([6], key: Random.key(3)).asType(.float64)
        let jt = jvp(f, primals: [x], tangents: [t]).jvps[0]
        let jtc = vjp(f, primals: [x], cotangents: [c]).vjps[0]
        let left = (c * jt).sum().item(Double.self)
        let right = (jtc * t).sum().item(Double.self)
        #expect(Swift.abs(left) > 0.1)
        #expect(
            Swift.abs(left - right) <= 1e-12 * Swift.max(1, Swift.abs(left)), "\(left) vs \(right)")
    }

    // MARK: valueAndGrad and grad

    @Test func valueAndGradKeepsAuxiliaryOutputs() {
        let x = Tensor([1, 2, 3] as [Float])
        let y = Tensor([4, 5, 6] as [Float])
        let f = valueAndGrad { (inputs: [Tensor]) -> [Tensor] in
            let product = inputs[0] * inputs[1]
            // The loss first; the other outputs ride along undifferentiated.
            return [product.sum(), product, inputs[0].max()]
        }
        let (values, gradients) = f([x, y])
        #expect(values.count == 3)
        #expect(values[0].item(Float.self) == 32)
        #expect(values[1].toArray(Float.self) == [4, 10, 18])
        #expect(values[2].item(Float.self) == 3)
        #expect(gradients.count == 2)
        #expect(gradients[0].toArray(Float.self) == [4, 5, 6])  // ∂/∂x = y
        #expect(gradients[1].toArray(Float.self) == [1, 2, 3])  // ∂/∂y = x
    }

    @Test func argumentNumbersSelectTheDifferentiatedInputs() {
        let inputs = [Tensor(Float(2)), Tensor(Float(3)), Tensor(Float(5))]
        // f = a·b·c + c²
        let f = { (t: [Tensor]) -> [Tensor] in [t[0] * t[1] * t[2] + t[2] * t[2], t[0] + t[1]] }
        let last = valueAndGrad(f, argumentNumbers: [2])(inputs)
        #expect(last.values.map { $0.item(Float.self) } == [55, 5])
        #expect(last.gradients.map { $0.item(Float.self) } == [16])  // ab + 2c
        let outer = valueAndGrad(f, argumentNumbers: [0, 2])(inputs)
        #expect(outer.gradients.map { $0.item(Float.self) } == [15, 16])  // bc, ab + 2c
        // MLX's C++ value_and_grad walks the argument numbers as a sorted set: the gradients come
        // in ascending argument order whatever order the numbers are given in.
        let reversed = valueAndGrad(f, argumentNumbers: [2, 0])(inputs)
        #expect(reversed.gradients.map { $0.item(Float.self) } == [15, 16])
    }

    @Test func namedParametersGetGradientsByName() {
        let parameters = [
            "layer.weight": Tensor([2, -1] as [Float], shape: [1, 2]),
            "layer.bias": Tensor([0.5] as [Float]),
            "unused": Tensor([7, 7, 7] as [Float]),
        ]
        let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        // loss = Σ (x·Wᵀ + b)²; rows give 2·1 − 2 + 0.5 = 0.5 and 2·3 − 4 + 0.5 = 2.5.
        let lossAndGradients = valueAndGrad { (p: [String: Tensor]) -> Tensor in
            let w = p["layer.weight"] ?? Tensor(Float(0))
            let b = p["layer.bias"] ?? Tensor(Float(0))
            return (x.matmul(w.mT) + b).square().sum()
        }
        let (loss, gradients) = lossAndGradients(parameters)
        #expect(loss.item(Float.self) == 6.5)
        #expect(Set(gradients.keys) == ["layer.weight", "layer.bias", "unused"])
        // ∂/∂W = Σ 2·r·x = 2·0.5·[1, 2] + 2·2.5·[3, 4]; ∂/∂b = 2·(0.5 + 2.5).
        #expect(gradients["layer.weight"]?.toArray(Float.self) == [16, 22])
        #expect(gradients["layer.weight"]?.shape == [1, 2])
        #expect(gradients["layer.bias"]?.toArray(Float.self) == [6])
        #expect(gradients["unused"]?.toArray(Float.self) == [0, 0, 0])

        let onlyGradients = grad { (p: [String: Tensor]) -> Tensor in
            ((p["a"] ?? Tensor(Float(0))) * (p["b"] ?? Tensor(Float(0)))).sum()
        }(["a": Tensor([1, 2] as [Float]), "b": Tensor([3, 4] as [Float])])
        #expect(onlyGradients["a"]?.toArray(Float.self) == [3, 4])
        #expect(onlyGradients["b"]?.toArray(Float.self) == [1, 2])
    }

    @Test func gradOfAScalarFunction() {
        let x = Tensor([1, 2, -1] as [Double])
        let y = Tensor([0.5, -3, 2] as [Double])
        // f = Σ x²·y + 3·Σ y: ∂/∂x = 2xy, ∂/∂y = x² + 3.
        let gradients = grad { ($0[0].square() * $0[1]).sum() + $0[1].sum() * 3 }([x, y])
        #expect(gradients.count == 2)
        #expect(gradients[0].toArray(Double.self) == [1, -12, -4])
        #expect(gradients[1].toArray(Double.self) == [4, 7, 4])
        let (value, sameGradients) = valueAndGrad {
            ($0[0].square() * $0[1]).sum() + $0[1].sum() * 3
        }([x, y])
        #expect(value.item(Double.self) == 0.5 - 12 + 2 + 3 * -0.5)
        #expect(sameGradients[0].toArray(Double.self) == [1, -12, -4])
    }

    @Test func stoppedGradientBlocksTheGradient() {
        let x = Tensor([1, -2, 3] as [Double])
        // d/dx Σ x·stop(x) = stop(x) = x, not 2x.
        let throughOne = grad { ($0[0] * $0[0].stoppedGradient()).sum() }([x])[0]
        #expect(throughOne.toArray(Double.self) == [1, -2, 3])
        #expect(grad { ($0[0] * $0[0]).sum() }([x])[0].toArray(Double.self) == [2, -4, 6])
        // Entirely stopped: a zero gradient, while the value still passes.
        let (value, blocked) = valueAndGrad { $0[0].exp().stoppedGradient().sum() + 1 }([x])
        #expect(blocked[0].toArray(Double.self) == [0, 0, 0])
        #expect(
            Swift.abs(
                value.item(Double.self)
                    - (Foundation.exp(1) + Foundation.exp(-2) + Foundation.exp(3) + 1)) < 1e-5)
    }

    @Test func higherOrderGradients() {
        let x = Tensor([1, 2, -3, 0.5] as [Double])
        let cube = { (inputs: [Tensor]) -> Tensor in inputs[0].pow(3).sum() }
        let first = grad(cube)
        let second = grad { first($0)[0].sum() }
        let third = grad { second($0)[0].sum() }
        #expect(first([x])[0].toArray(Double.self) == [3, 12, 27, 0.75])  // 3x²
        #expect(second([x])[0].toArray(Double.self) == [6, 12, -18, 3])  // 6x
        #expect(third([x])[0].toArray(Double.self) == [6, 6, 6, 6])
        // Mixed partials of f = Σ x²·y: ∂²f/∂y∂x = 2x.
        let y = Tensor([3, 3, 3, 3] as [Double])
        let mixed = grad { grad { ($0[0].square() * $0[1]).sum() }($0)[0].sum() }([x, y])
        #expect(mixed[1].toArray(Double.self) == [2, 4, -6, 1])
    }

    // MARK: compile

    @Test func compiledFunctionsMatchUncompiledForEachShape() {
        let f = { (inputs: [Tensor]) -> [Tensor] in
            let a = inputs[0]
            let b = inputs[1]
            return [(a * 2 + 1).exp() * b - a.sigmoid(), (a * b).sum(axis: -1)]
        }
        let compiled = compile(f)
        for (seed, shape) in [(UInt64(1), [5]), (2, [3, 4])] {
            let a = Random.normal(shape, key: Random.key(seed))
            let b = Random.normal(shape, key: Random.key(seed + 10))
            let want = f([a, b])
            let got = compiled([a, b])
            #expect(got.count == 2)
            #expect(got.map(\.shape) == want.map(\.shape))
            assertClose(got[0], want[0], "compiled \(shape) output 0")
            assertClose(got[1], want[1], "compiled \(shape) output 1")
        }
    }

    @Test func compileTracesOncePerShapeAndDType() {
        let traces = TraceCounter()
        let compiled = compile { (inputs: [Tensor]) -> [Tensor] in
            traces.count += 1
            return [inputs[0] * 3 - 1]
        }
        #expect(compiled([Tensor([1, 2, 3] as [Float])])[0].toArray(Float.self) == [2, 5, 8])
        #expect(traces.count == 1)
        // Same shape and dtype, new values: the cached trace is reused.
        #expect(compiled([Tensor([0, 1, 2] as [Float])])[0].toArray(Float.self) == [-1, 2, 5])
        #expect(traces.count == 1)
        // A new shape is traced again; going back to the first shape is not.
        #expect(compiled([Tensor([1, 1] as [Float])])[0].toArray(Float.self) == [2, 2])
        #expect(traces.count == 2)
        _ = compiled([Tensor([4, 5, 6] as [Float])])[0].toArray(Float.self)
        #expect(traces.count == 2)
        // A new dtype is traced again.
        #expect(compiled([Tensor([1, 2, 3] as [Double])])[0].toArray(Double.self) == [2, 5, 8])
        #expect(traces.count == 3)
    }

    @Test func shapelessCompileReusesOneTraceAcrossShapes() {
        let traces = TraceCounter()
        let f = { (inputs: [Tensor]) -> [Tensor] in
            traces.count += 1
            return [(inputs[0] * inputs[1] + 0.5).tanh()]
        }
        let shapeless = compile(shapeless: true, f)
        for (seed, length) in [(UInt64(3), 4), (4, 9), (5, 1)] {
            let a = Random.normal([length], key: Random.key(seed))
            let b = Random.normal([length], key: Random.key(seed + 10))
            let got = shapeless([a, b])[0]
            #expect(got.shape == [length])
            assertClose(got, (a * b + 0.5).tanh(), "shapeless, length \(length)")
        }
        #expect(traces.count == 1)
        // MLX retraces a shapeless function when the number of dimensions changes.
        let a = Random.normal([2, 3], key: Random.key(6))
        assertClose(shapeless([a, a])[0], (a * a + 0.5).tanh(), "shapeless, 2-D")
        #expect(traces.count == 2)
    }

    @Test func gradientsFlowThroughCompiledFunctions() {
        let compiled = compile { (inputs: [Tensor]) -> [Tensor] in [inputs[0].square() * inputs[1]]
        }
        let x = Tensor([1, -2, 0.5] as [Double])
        let y = Tensor([3, 1, 4] as [Double])
        let gradients = grad { compiled($0)[0].sum() }([x, y])
        #expect(gradients[0].toArray(Double.self) == [6, -4, 4])  // 2xy
        #expect(gradients[1].toArray(Double.self) == [1, 4, 0.25])  // x²
        // And a compiled function of a gradient.
        let compiledGradient = compile { grad { ($0[0].pow(3)).sum() }($0) }
        #expect(compiledGradient([x])[0].toArray(Double.self) == [3, 12, 0.75])
    }

    // MARK: eval

    @Test func evalAndAsyncEvalThenRead() {
        let a = Tensor.arange(6, dtype: .float32).reshaped(2, 3)
        let b = a.matmul(a.mT)  // [[5, 14], [14, 50]]
        let c = b.sum(axis: 0)
        eval(b, c)
        #expect(b.toArray(Float.self) == [5, 14, 14, 50])
        #expect(c.toArray(Float.self) == [19, 64])
        let d = (c * 2).evaluated()
        #expect(d.toArray(Float.self) == [38, 128])

        let big = Tensor.arange(10_000, dtype: .int64).square()
        let total = big.sum()
        asyncEval([big, total])
        #expect(total.item(Int64.self) == 333_283_335_000)  // Σ k² for k < 10⁴
        #expect(big.toArray(Int64.self)[9_999] == 99_980_001)
        eval([])  // nothing to do
    }
}

extension TransformsTests {
    @Suite struct ErrorHandling {
        /// The MLXError thrown by `body` inside an error scope, or nil.
        func failure<R>(_ body: () -> R) -> MLXError? {
            do {
                _ = try withErrorHandling(body)
                return nil
            } catch let error as MLXError {
                return error
            } catch {
                Issue.record("unexpected error \(error)")
                return nil
            }
        }

        @Test func matmulShapeMismatchThrowsWithTheShapes() throws {
            let a = Tensor.ones([2, 3])
            let b = Tensor.ones([4, 5])
            let error = try #require(failure { a.matmul(b) })
            #expect(error.operation == "matmul")
            // MLX: "[matmul] Last dimension of first input with shape (2,3) must match second to
            // last dimension of second input with shape (4,5)."
            #expect(error.message.contains("[matmul]"), "\(error.message)")
            #expect(error.message.contains("(2,3)"), "\(error.message)")
            #expect(error.message.contains("(4,5)"), "\(error.message)")
            #expect(error.description == "matmul: \(error.message)")
        }

        @Test func impossibleReshapeThrows() throws {
            let error = try #require(failure { Tensor.ones([2, 3]).reshaped(4, 2) })
            #expect(error.operation == "reshaped([4, 2])")
            #expect(
                error.message.contains("Cannot reshape array of size 6 into shape (4,2)"),
                "\(error.message)")
        }

        @Test func invalidAxisThrows() throws {
            let error = try #require(failure { Tensor.ones([2, 3]).sum(axis: 5) })
            #expect(error.operation == "sum(axes: [5])")
            #expect(error.message.contains("Invalid axis 5"), "\(error.message)")
            let broadcast = try #require(failure { Tensor.ones([2]) + Tensor.ones([3]) })
            #expect(
                broadcast.message.contains("(2) and (3) cannot be broadcast"),
                "\(broadcast.message)")
        }

        @Test func theFirstFailureIsReportedWhenLaterOpsUseItsPlaceholder() throws {
            let error = try #require(
                failure {
                    Tensor.ones([2, 3]).reshaped(5).matmul(Tensor.ones([7, 2])).exp().sum().item(
                        Float.self)
                })
            #expect(error.operation == "reshaped([5])")
            let transposed = try #require(
                failure { Tensor.ones([2, 3]).transposed(0, 1, 2).exp().sum() })
            #expect(transposed.operation == "transposed([0, 1, 2])")
        }

        @Test func failuresInsideTransformsSurfaceFromTheScope() throws {
            let traced = try #require(
                failure {
                    grad { $0[0].matmul(Tensor.ones([4, 1])).sum() }([Tensor.ones([2, 3])])
                })
            #expect(traced.operation == "matmul")
            let nonScalar = try #require(failure { grad { $0[0] * 2 }([Tensor.ones([3])]) })
            #expect(nonScalar.operation == "valueAndGrad")
            #expect(nonScalar.message.contains("cotangent shape"), "\(nonScalar.message)")
            let badArgument = try #require(
                failure {
                    valueAndGrad({ [$0[0].sum()] }, argumentNumbers: [3])([Tensor.ones([3])])
                })
            #expect(
                badArgument.message.contains("Invalid argument number"), "\(badArgument.message)")
            let badCotangent = try #require(
                failure {
                    vjp(
                        { [$0[0] * 2] }, primals: [Tensor.ones([3])], cotangents: [Tensor.ones([4])]
                    )
                })
            #expect(badCotangent.operation == "vjp")
        }

        @Test func opsWorkAfterAFailedScope() throws {
            _ = failure { Tensor.ones([2, 3]).matmul(Tensor.ones([2, 3])) }
            // Outside any scope, and inside a scope without failures, ops behave as usual.
            let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
            #expect(a.matmul(a).toArray(Float.self) == [7, 10, 15, 22])
            let value = try withErrorHandling { (a * 2).sum().item(Float.self) }
            #expect(value == 20)
        }

        @Test func nestedScopes() throws {
            // A failure in the inner scope is thrown there and does not reach the outer scope.
            let outcome = try withErrorHandling { () -> String in
                do {
                    _ = try withErrorHandling { Tensor.ones([2]).reshaped(3) }
                    return "inner did not throw"
                } catch let error as MLXError {
                    return "inner threw from \(error.operation)"
                }
            }
            #expect(outcome == "inner threw from reshaped([3])")
            // A failure in the outer scope before a clean inner scope is still thrown by the outer.
            do {
                _ = try withErrorHandling { () -> Float in
                    _ = Tensor.ones([2, 3]).sum(axis: 9)
                    return try withErrorHandling { Tensor.ones([2]).sum().item(Float.self) }
                }
                Issue.record("outer scope did not throw")
            } catch let error as MLXError {
                #expect(error.operation == "sum(axes: [9])")
            }
        }

        @Test func errorsThrownByTheBodyPassThrough() {
            struct Custom: Error, Equatable {}
            #expect(throws: Custom()) {
                try withErrorHandling { () throws -> Int in throw Custom() }
            }
        }

        @Test func asyncScope() async throws {
            do {
                _ = try await withErrorHandling { () async -> Tensor in
                    await Task.yield()
                    return Tensor.ones([3]).reshaped(2)
                }
                Issue.record("async scope did not throw")
            } catch let error as MLXError {
                #expect(error.operation == "reshaped([2])")
            }
            let value = try await withErrorHandling { () async -> Float in
                Tensor.ones([3]).sum().item(Float.self)
            }
            #expect(value == 3)
        }
    }

    /// Memory statistics are process-wide: tests that read them retry a few times, because other
    /// suites allocate and free buffers at the same time.
    @Suite(.serialized) struct MemoryStatistics {
        static let fourMiB = 4 << 20

        @Test func activeAndPeakTrackALiveTensor() {
            var observed: [(Int, Int, Int)] = []
            let held = holdsOnSomeAttempt {
                let before = Memory.activeBytes
                let big = Tensor.arange(Double(1 << 20), dtype: .float32).evaluated()  // 4 MiB
                let active = Memory.activeBytes
                let peak = Memory.peakBytes
                observed.append((before, active, peak))
                #expect(big.byteCount == Self.fourMiB)
                return active - before >= Self.fourMiB && peak >= active
            }
            #expect(held, "(before, active, peak): \(observed)")
        }

        @Test func resetPeakForgetsAFreedTensor() {
            let held = holdsOnSomeAttempt {
                do {
                    let big = Tensor.arange(Double(1 << 20), dtype: .float32).evaluated()
                    _ = big.size
                }
                let peakAfterFree = Memory.peakBytes
                Memory.resetPeak()
                return peakAfterFree >= Self.fourMiB && Memory.peakBytes < peakAfterFree
            }
            #expect(held)
        }

        @Test func cacheKeepsFreedBuffersUntilCleared() {
            let held = holdsOnSomeAttempt {
                do {
                    let big = Tensor.arange(Double(1 << 20), dtype: .float32).evaluated()
                    _ = big.size
                }
                let cachedAfterFree = Memory.cacheBytes
                Memory.clearCache()
                return cachedAfterFree >= Self.fourMiB && Memory.cacheBytes == 0
            }
            #expect(held)
        }

        @Test func setCacheLimitReturnsThePreviousLimit() {
            let held = holdsOnSomeAttempt {
                let previous = Memory.setCacheLimit(Self.fourMiB)
                let echoed = Memory.setCacheLimit(previous)
                return echoed == Self.fourMiB && previous > 0
            }
            #expect(held)
        }
    }
}

@Suite struct DistributedTests {
    /// A process started on its own is a group of one: all_sum returns its input.
    @Test func aLoneProcessIsAGroupOfOne() throws {
        let group = try Distributed.join(backend: "any", strict: false)
        #expect(group == Distributed.Group(rank: 0, size: 1))
        #expect(group.isMain)
        let x = Tensor([1, 2.5, -3] as [Float], shape: [3])
        #expect(Distributed.allSum(x).toArray(Float.self) == [1, 2.5, -3])
        #expect(Distributed.isAvailable("ring"))
    }
}

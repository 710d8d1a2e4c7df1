import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

// Expected values are worked out by hand or, for transcendental functions, with Python's math module
// (values written out here; nothing runs Python at test time).

@Suite struct CreationTests {
    @Test func fromSwiftValuesAndScalars() {
        let floats = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(floats.shape == [2, 3])
        #expect(floats.dtype == .float32)
        #expect(floats.toArray(Float.self) == [1, 2, 3, 4, 5, 6])
        #expect(Tensor([1, 2] as [Int32]).dtype == .int32)
        #expect(Tensor([1, 2] as [Int]).dtype == .int64)
        #expect(Tensor([true, false]).dtype == .bool)
        #expect(Tensor([1.5] as [Double]).dtype == .float64)
        let scalar = Tensor(Float(2.5))
        #expect(scalar.shape == [])
        #expect(scalar.item(Float.self) == 2.5)
        #expect(Tensor(7, dtype: .int16).dtype == .int16)
        #expect(Tensor(7, dtype: .int16).item(Int32.self) == 7)
    }

    @Test func filledRangesAndSpaces() {
        #expect(Tensor.zeros([2, 2]).toArray(Float.self) == [0, 0, 0, 0])
        #expect(Tensor.ones([3], dtype: .int32).toArray(Int32.self) == [1, 1, 1])
        #expect(Tensor.full([2], value: 3.5, dtype: .bfloat16).toArray(Float.self) == [3.5, 3.5])
        #expect(Tensor.full([2], value: 3.5, dtype: .bfloat16).dtype == .bfloat16)
        #expect(Tensor.arange(5).toArray(Float.self) == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25).toArray(Float.self) == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.arange(0, 6, step: 2, dtype: .int32).toArray(Int32.self) == [0, 2, 4])
        #expect(Tensor.linspace(0, 1, count: 5).toArray(Float.self) == [0, 0.25, 0.5, 0.75, 1])
        #expect(Tensor.zeros(like: Tensor.ones([2, 3], dtype: .int8)).dtype == .int8)
    }

    @Test func randomIsReproducibleFromKeys() {
        let key = Random.key(42)
        let a = Random.normal([1000], key: key).toArray(Float.self)
        let b = Random.normal([1000], key: key).toArray(Float.self)
        #expect(a == b)
        let keys = Random.split(key)
        #expect(keys.count == 2)
        #expect(keys[0].shape == [2])
        let c = Random.normal([1000], key: keys[0]).toArray(Float.self)
        let d = Random.normal([1000], key: keys[1]).toArray(Float.self)
        #expect(c != d)
        #expect(Random.split(key, count: 5).count == 5)
    }

    @Test func randomDistributionsHaveTheirMoments() {
        let normal = Random.normal([20_000], mean: 2, standardDeviation: 3, key: Random.key(1))
        #expect(Swift.abs(normal.mean().item(Float.self) - 2) < 0.1)
        #expect(Swift.abs(normal.standardDeviation().item(Float.self) - 3) < 0.1)
        let uniform = Random.uniform([20_000], low: -2, high: 5, key: Random.key(2))
        #expect(uniform.min().item(Float.self) >= -2)
        #expect(uniform.max().item(Float.self) < 5)
        #expect(Swift.abs(uniform.mean().item(Float.self) - 1.5) < 0.1)
        let coin = Random.bernoulli(0.25, shape: [20_000], key: Random.key(3))
        #expect(coin.dtype == .bool)
        #expect(Swift.abs(coin.asType(.float32).mean().item(Float.self) - 0.25) < 0.02)
        let logits = Tensor([0, 0, 100, 0] as [Float], shape: [1, 4]).broadcast(to: [8, 4])
        let picks = Random.categorical(logits: logits, key: Random.key(4))
        #expect(picks.shape == [8])
        #expect(picks.toArray(Int32.self) == Array(repeating: 2, count: 8))
        let many = Random.categorical(logits: logits, samples: 3, key: Random.key(5))
        #expect(many.shape == [8, 3])
        let halves = Random.categorical(
            logits: Tensor([0, 0] as [Float], shape: [1, 2]), samples: 10_000, key: Random.key(6))
        #expect(Swift.abs(halves.asType(.float32).mean().item(Float.self) - 0.5) < 0.03)
    }
}

@Suite struct DTypeTests {
    @Test func everyDTypeRoundTripsThroughAsType() {
        let values: [Float] = [0, 1, 2, 100]
        for dtype: DType in [.float32, .float16, .bfloat16, .int8, .int16, .int32, .int64, .uint8, .uint32, .float64] {
            let converted = Tensor(values).asType(dtype)
            #expect(converted.dtype == dtype)
            #expect(converted.itemSize == dtype.size)
            #expect(converted.toArray(Float.self) == values, "\(dtype)")
            #expect(converted.toArray(Int32.self) == [0, 1, 2, 100], "\(dtype)")
        }
        #expect(Tensor(values).asType(.bool).toArray(Bool.self) == [false, true, true, true])
    }

    @Test func conversionsRoundAndWrapAsMLXDoes() {
        // float → int truncates toward zero; bf16 keeps 8 significant bits.
        #expect(Tensor([1.7, -1.7] as [Float]).asType(.int32).toArray(Int32.self) == [1, -1])
        #expect(Tensor([1.00390625] as [Float]).asType(.bfloat16).toArray(Float.self) == [1.0])
        #expect(Tensor([1.5] as [Float]).asType(.bfloat16).rawBytes() == [0xC0, 0x3F])
        #expect(Tensor([1.5] as [Float]).asType(.float16).rawBytes() == [0x00, 0x3E])
        #expect(Tensor([300] as [Float]).asType(.uint8).dtype == .uint8)
    }
}

@Suite struct ShapeOpTests {
    let x = Tensor((0..<6).map(Float.init), shape: [2, 3])

    @Test func reshapeTransposeExpandSqueezeBroadcast() {
        #expect(x.reshaped(3, -1).shape == [3, 2])
        #expect(x.transposed().toArray(Float.self) == [0, 3, 1, 4, 2, 5])
        #expect(x.mT.shape == [3, 2])
        let cube = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let permuted = cube.transposed(2, 0, 1)
        #expect(permuted.shape == [4, 2, 3])
        #expect(permuted[1, 1, 2].item(Float.self) == 21)  // cube[1, 2, 1]
        #expect(x.expandedDimensions(axis: 0).shape == [1, 2, 3])
        #expect(x.expandedDimensions(axes: [0, 3]).shape == [1, 2, 3, 1])
        #expect(x.reshaped(1, 2, 1, 3).squeezed().shape == [2, 3])
        #expect(x.reshaped(1, 2, 1, 3).squeezed(axis: 2).shape == [1, 2, 3])
        #expect(Tensor([1, 2] as [Float], shape: [2, 1]).broadcast(to: [2, 3]).toArray(Float.self) == [1, 1, 1, 2, 2, 2])
        #expect(x.flattened().shape == [6])
    }

    @Test func concatenateStackSplit() {
        let joined = Tensor.concatenated([x, x * 10], axis: 0)
        #expect(joined.shape == [4, 3])
        #expect(joined[2].toArray(Float.self) == [0, 10, 20])
        #expect(Tensor.concatenated([x, x], axis: 1).shape == [2, 6])
        let stacked = Tensor.stacked([x, x + 1], axis: 1)
        #expect(stacked.shape == [2, 2, 3])
        #expect(stacked[0, 1].toArray(Float.self) == [1, 2, 3])
        let thirds = x.split(sections: 3, axis: 1)
        #expect(thirds.map { $0.toArray(Float.self) } == [[0, 3], [1, 4], [2, 5]])
        let pieces = Tensor.arange(6).split(indices: [1, 4])
        #expect(pieces.map { $0.toArray(Float.self) } == [[0], [1, 2, 3], [4, 5]])
    }

    @Test func subscriptsWithRangesStridesNewAxisEllipsis() {
        let m = Tensor((0..<20).map(Float.init), shape: [4, 5])
        #expect(m[1].toArray(Float.self) == [5, 6, 7, 8, 9])
        #expect(m[-1, -2].item(Float.self) == 18)
        #expect(m[1..<3, 2].toArray(Float.self) == [7, 12])
        #expect(m[1...2, 3...].toArray(Float.self) == [8, 9, 13, 14])
        #expect(m[..<1, ..<2].toArray(Float.self) == [0, 1])
        #expect(m[TensorIndex.all, TensorIndex.stride(by: 2)].toArray(Float.self) == [0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19])
        #expect(m[TensorIndex.stride(from: 1, by: 2), 0].toArray(Float.self) == [5, 15])
        #expect(m[TensorIndex.newAxis, 0].shape == [1, 5])
        #expect(m[TensorIndex.ellipsis, 4].toArray(Float.self) == [4, 9, 14, 19])
        #expect(m[2, TensorIndex.ellipsis].toArray(Float.self) == [10, 11, 12, 13, 14])
        #expect(m[0..<100].shape == [4, 5])  // bounds clamp like NumPy
        #expect(m[TensorIndex.slice(start: 3, stop: 1, step: 1)].shape == [0, 5])
    }

    @Test func subscriptAssignmentUpdatesASlice() {
        var m = Tensor.zeros([3, 3])
        m[1] = Tensor([1, 2, 3] as [Float])
        m[0..<3, 2] = Tensor(Float(9))
        #expect(m.toArray(Float.self) == [0, 0, 9, 1, 2, 9, 0, 0, 9])
        var strided = Tensor.zeros([6])
        strided[TensorIndex.stride(by: 2)] = Tensor([1, 2, 3] as [Float])
        #expect(strided.toArray(Float.self) == [1, 0, 2, 0, 3, 0])
    }

    @Test func gatherAndScatter() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3])
        #expect(table.take(Tensor([3, 0, 3] as [Int32]), axis: 0).toArray(Float.self) == [9, 10, 11, 0, 1, 2, 9, 10, 11])
        #expect(table.take(Tensor([2] as [Int32]), axis: 1).toArray(Float.self) == [2, 5, 8, 11])
        let picks = Tensor([2, 0, 1, 1] as [Int32], shape: [4, 1])
        #expect(table.takeAlong(picks, axis: 1).toArray(Float.self) == [2, 3, 7, 10])
        let put = Tensor.zeros([2, 3]).putAlong(Tensor([1, 2] as [Int32], shape: [2, 1]), values: Tensor([5, 6] as [Float], shape: [2, 1]), axis: 1)
        #expect(put.toArray(Float.self) == [0, 5, 0, 0, 0, 6])
        // Repeated indices accumulate.
        let added = Tensor.zeros([4]).scatterAdd(Tensor([1, 1, 3] as [Int32]), values: Tensor([1, 2, 5] as [Float]), axis: 0)
        #expect(added.toArray(Float.self) == [0, 3, 0, 5])
    }

    @Test func whereTrianglesAndPadding() {
        let condition = Tensor([true, false, true])
        #expect(which(condition, Tensor([1, 2, 3] as [Float]), Tensor(Float(-1))).toArray(Float.self) == [1, -1, 3])
        let ones = Tensor.ones([3, 3])
        #expect(ones.triu().toArray(Float.self) == [1, 1, 1, 0, 1, 1, 0, 0, 1])
        #expect(ones.triu(1).toArray(Float.self) == [0, 1, 1, 0, 0, 1, 0, 0, 0])
        #expect(ones.tril(-1).toArray(Float.self) == [0, 0, 0, 1, 0, 0, 1, 1, 0])
        let row = Tensor([1, 2] as [Float])
        #expect(row.padded([(1, 2)], value: 7).toArray(Float.self) == [7, 1, 2, 7, 7])
        #expect(row.padded(axes: [0], low: [2], high: [1], mode: "edge").toArray(Float.self) == [1, 1, 1, 2, 2])
        #expect(x.padded([(0, 1), (1, 0)]).shape == [3, 4])
    }
}

@Suite struct MathOpTests {
    let v = Tensor([-1, 0, 1, 2] as [Float])

    @Test func arithmeticBroadcastsAndTakesScalars() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let row = Tensor([10, 20, 30] as [Float])
        #expect((a + row).toArray(Float.self) == [11, 22, 33, 14, 25, 36])
        #expect((a - 1).toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        #expect((2 * a).toArray(Float.self) == [2, 4, 6, 8, 10, 12])
        #expect((a / 2).toArray(Float.self) == [0.5, 1, 1.5, 2, 2.5, 3])
        #expect((12 / a).toArray(Float.self) == [12, 6, 4, 3, 2.4, 2])
        #expect((10 - a).toArray(Float.self) == [9, 8, 7, 6, 5, 4])
        #expect((a % Tensor(Float(4))).toArray(Float.self) == [1, 2, 3, 0, 1, 2])
        #expect((-a).toArray(Float.self) == [-1, -2, -3, -4, -5, -6])
        // A float32 tensor with a Swift Double stays float32; an int tensor with 2.5 becomes float.
        #expect((a * 0.5).dtype == .float32)
        #expect((Tensor([2] as [Int32]) * 2).dtype == .int32)
        #expect((Tensor([2] as [Int32]) * 2.5).toArray(Float.self) == [5])
        var b = a
        b += a
        b *= Tensor(Float(0.5))
        #expect(b.toArray(Float.self) == a.toArray(Float.self))
    }

    @Test func matrixProducts() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let b = Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
        #expect(a.matmul(b).toArray(Float.self) == [58, 64, 139, 154])
        let batch = Tensor.stacked([a, a * 2])                 // [2, 2, 3]
        let product = batch.matmul(b)                         // b broadcasts over the batch
        #expect(product.shape == [2, 2, 2])
        #expect(product[1].toArray(Float.self) == [116, 128, 278, 308])
        let c = Tensor([1, 1, 1, 1] as [Float], shape: [2, 2])
        #expect(c.addmm(a, b, alpha: 2, beta: 3).toArray(Float.self) == [119, 131, 281, 311])
    }

    @Test func unaryFunctions() {
        assertClose(v.exp(), [0.36787944117144233, 1, 2.718281828459045, 7.38905609893065])
        assertClose(Tensor([1, 2.718281828459045, 10] as [Float]).log(), [0, 1, 2.302585092994046])
        assertClose(Tensor([0, 1, 3] as [Float]).log1p(), [0, 0.6931471805599453, 1.3862943611198906])
        assertClose(Tensor([4, 9, 0.25] as [Float]).sqrt(), [2, 3, 0.5])
        assertClose(Tensor([4, 0.25] as [Float]).rsqrt(), [0.5, 2])
        #expect(v.abs().toArray(Float.self) == [1, 0, 1, 2])
        assertClose(v.sigmoid(), [0.2689414213699951, 0.5, 0.7310585786300049, 0.8807970779778823])
        assertClose(v.silu(), [-0.2689414213699951, 0, 0.7310585786300049, 1.7615941559557646])
        assertClose(v.gelu(), [-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416])
        assertClose(v.geluApproximate(), [-0.15880800939172324, 0, 0.8411919906082768, 1.954597694087775])
        assertClose(v.tanh(), [-0.7615941559557649, 0, 0.7615941559557649, 0.9640275800758169])
        assertClose(v.pow(2), [1, 0, 1, 4])
        assertClose(Tensor([2, 3] as [Float]).pow(Tensor([3, 0.5] as [Float])), [8, 1.7320508075688772])
        #expect(maximum(v, Tensor(Float(0.5))).toArray(Float.self) == [0.5, 0.5, 1, 2])
        #expect(minimum(v, Tensor(Float(0.5))).toArray(Float.self) == [-1, 0, 0.5, 0.5])
        #expect(v.clipped(min: -0.5, max: 1.5).toArray(Float.self) == [-0.5, 0, 1, 1.5])
        #expect(v.clipped(max: 0).toArray(Float.self) == [-1, 0, 0, 0])
    }

    @Test func softmaxFamily() {
        assertClose(v.softmax(), [0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879724])
        assertClose(v.logSumExp(), [2.4401896985611953], shape: [])
        assertClose(v.logSoftmax(), [-3.4401896985611953, -2.4401896985611953, -1.4401896985611953, -0.4401896985611953])
        // Stable for large logits: no overflow to inf/nan.
        let large = Tensor([1000, 1000] as [Float])
        assertClose(large.logSumExp(), [1000.6931471805599453], shape: [])
        assertClose(large.softmax(), [0.5, 0.5])
        let grid = Tensor([1, 2, 3, 1, 1, 1] as [Float], shape: [2, 3])
        assertClose(grid.softmax(axis: 0).sum(axis: 0), [1, 1, 1])
    }

    @Test func comparisonsGiveBooleans() {
        let threshold = Tensor([0, 0, 2, 2] as [Float])
        #expect((v .== threshold).toArray(Bool.self) == [false, true, false, true])
        #expect((v .!= threshold).toArray(Bool.self) == [true, false, true, false])
        #expect((v .< threshold).toArray(Bool.self) == [true, false, true, false])
        #expect((v .<= 1).toArray(Bool.self) == [true, true, true, false])
        #expect((v .> 0).toArray(Bool.self) == [false, false, true, true])
        #expect((v .>= 0).dtype == .bool)
        #expect(((v .> -1) .& (v .< 2)).toArray(Bool.self) == [false, true, true, false])
        #expect(((v .< 0) .| (v .> 1)).toArray(Bool.self) == [true, false, false, true])
        #expect((.!(v .> 0)).toArray(Bool.self) == [true, true, false, false])
    }

    @Test func reductionsAlongAxes() {
        let m = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(m.sum().item(Float.self) == 21)
        #expect(m.sum(axis: 0).toArray(Float.self) == [5, 7, 9])
        #expect(m.sum(axis: 1, keepDims: true).shape == [2, 1])
        #expect(m.mean(axis: 1).toArray(Float.self) == [2, 5])
        #expect(m.max(axis: 0).toArray(Float.self) == [4, 5, 6])
        #expect(m.min().item(Float.self) == 1)
        #expect(m.product(axes: [1]).toArray(Float.self) == [6, 120])
        #expect(m.argMax(axis: 1).toArray(Int32.self) == [2, 2])
        #expect(Tensor([3, 1, 2] as [Float]).argMin(axis: 0).item(Int32.self) == 1)
        #expect(m.argMax(axis: 0, keepDims: true).shape == [1, 3])
        assertClose(m.variance(axes: [1]), [0.6666666666666666, 0.6666666666666666])
        assertClose(m.standardDeviation(axes: [0], ddof: 1), [2.1213203435596424, 2.1213203435596424, 2.1213203435596424])
        #expect((m .> 3).any().item(Bool.self))
        #expect(!(m .> 3).all().item(Bool.self))
    }

    @Test func scansAndSorting() {
        let a = Tensor([3, 1, 4, 1, 5] as [Float])
        #expect(a.cumsum(axis: 0).toArray(Float.self) == [3, 4, 8, 9, 14])
        #expect(a.cumsum(axis: 0, inclusive: false).toArray(Float.self) == [0, 3, 4, 8, 9])
        #expect(a.cumsum(axis: 0, reverse: true).toArray(Float.self) == [14, 11, 10, 6, 5])
        #expect(a.sorted().toArray(Float.self) == [1, 1, 3, 4, 5])
        #expect(Array(a.argSort().toArray(Int32.self).suffix(3)) == [0, 2, 4])
        #expect(a.topK(2).sorted().toArray(Float.self) == [4, 5])
        let m = Tensor([5, 1, 3, 2, 9, 0] as [Float], shape: [2, 3])
        #expect(m.sorted(axis: 1).toArray(Float.self) == [1, 3, 5, 0, 2, 9])
        #expect(m.topK(1, axis: 1).toArray(Float.self) == [5, 9])
        // argPartition puts the kth smallest in place with smaller values before it.
        let values: [Float] = [9, 2, 7, 4, 1, 8]
        let order = Tensor(values).argPartition(kth: 2).toArray(Int32.self).map(Int.init)
        #expect(values[order[2]] == 4)
        #expect(order[..<2].allSatisfy { values[$0] < 4 })
        #expect(order[3...].allSatisfy { values[$0] > 4 })
    }
}

@Suite struct FastKernelTests {
    @Test func rmsNormAndLayerNormMatchTheirDefinitions() {
        let x = Tensor([1, 2, 3, 4, -1, 0, 1, 2] as [Float], shape: [2, 4])
        let weight = Tensor([1, 0.5, 2, 1] as [Float])
        // Row 0: mean(x²) = 7.5 → x / √7.5.
        let scale0 = 1 / (7.5 + 1e-5).squareRoot()
        let scale1 = 1 / (1.5 + 1e-5).squareRoot()
        assertClose(Fast.rmsNorm(x, weight: weight, eps: 1e-5), [
            1 * scale0, 2 * 0.5 * scale0, 3 * 2 * scale0, 4 * scale0,
            -1 * scale1, 0, 1 * 2 * scale1, 2 * scale1,
        ])
        let bias = Tensor([0, 1, 0, 1] as [Float])
        // Row 0: mean 2.5, variance 1.25.
        let inv = 1 / (1.25 + 1e-5).squareRoot()
        let normalized = Fast.layerNorm(x, weight: weight, bias: bias, eps: 1e-5)
        assertClose(normalized[0], [-1.5 * inv, -0.5 * inv * 0.5 + 1, 0.5 * inv * 2, 1.5 * inv + 1])
        assertClose(Fast.layerNorm(x, weight: nil, bias: nil, eps: 1e-5).mean(axis: -1), [0, 0], tolerance: Tolerance(absolute: 1e-6, relative: 0))
    }

    /// RoPE by explicit loops: positions offset…offset+T−1, θ_i = base^(−2i/D).
    static func referenceRoPE(_ x: [Float], T: Int, D: Int, base: Float, offset: Int, traditional: Bool) -> [Float] {
        var out = x
        for t in 0..<T {
            for i in 0..<(D / 2) {
                let angle = Float(t + offset) * Foundation.pow(base, -2 * Float(i) / Float(D))
                let (c, s) = (Foundation.cos(angle), Foundation.sin(angle))
                let (first, second) = traditional ? (t * D + 2 * i, t * D + 2 * i + 1) : (t * D + i, t * D + i + D / 2)
                out[first] = x[first] * c - x[second] * s
                out[second] = x[second] * c + x[first] * s
            }
        }
        return out
    }

    @Test(arguments: [false, true])
    func ropeMatchesLoops(traditional: Bool) {
        let (T, D) = (5, 8)
        let x = Random.normal([1, 1, T, D], key: Random.key(7))
        let values = x.toArray(Float.self)
        for (base, offset) in [(Float(10_000), 0), (Float(500_000), 3)] {
            let got = Fast.rope(x, dimensions: D, traditional: traditional, base: base, offset: offset)
            let want = Self.referenceRoPE(values, T: T, D: D, base: base, offset: offset, traditional: traditional)
            assertClose(got.reshaped(-1), want.map(Double.init), tolerance: Tolerance(absolute: 1e-5, relative: 1e-4), "traditional \(traditional) base \(base) offset \(offset)")
        }
    }

    /// softmax(q·kᵀ·scale + mask)·v with key/value heads repeated for grouped queries.
    static func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, additiveMask: Tensor?) -> Tensor {
        let groups = q.dim(1) / k.dim(1)
        let kRepeated = Tensor.concatenated((0..<k.dim(1)).flatMap { h in Array(repeating: k[TensorIndex.all, h..<(h + 1)], count: groups) }, axis: 1)
        let vRepeated = Tensor.concatenated((0..<v.dim(1)).flatMap { h in Array(repeating: v[TensorIndex.all, h..<(h + 1)], count: groups) }, axis: 1)
        var scores = q.matmul(kRepeated.mT) * Double(scale)
        if let additiveMask { scores = scores + additiveMask }
        return scores.softmax(axis: -1).matmul(vRepeated)
    }

    @Test func attentionMatchesComposition() {
        let keys = Random.split(Random.key(11), count: 3)
        let (B, H, Hkv, T, Dh) = (2, 4, 2, 6, 8)
        let q = Random.normal([B, H, T, Dh], key: keys[0])
        let k = Random.normal([B, Hkv, T, Dh], key: keys[1])
        let v = Random.normal([B, Hkv, T, Dh], key: keys[2])
        let scale = 1 / Float(Dh).squareRoot()
        let tolerance = Tolerance(absolute: 1e-5, relative: 1e-4)

        assertClose(Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale),
                    Self.referenceAttention(q, k, v, scale: scale, additiveMask: nil), tolerance: tolerance, "no mask")

        let causal = which(Tensor.ones([T, T]).tril() .> 0, Tensor(Float(0)), Tensor(-Float.infinity))
        assertClose(Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .causal),
                    Self.referenceAttention(q, k, v, scale: scale, additiveMask: causal), tolerance: tolerance, "causal")

        let additive = Random.normal([T, T], key: Random.key(12))
        assertClose(Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(additive)),
                    Self.referenceAttention(q, k, v, scale: scale, additiveMask: additive), tolerance: tolerance, "additive")

        // Boolean mask: the last two keys are padding for every query.
        let keep = Tensor((0..<T).map { $0 < T - 2 }, shape: [1, 1, 1, T])
        let asAdditive = which(keep, Tensor(Float(0)), Tensor(-Float.infinity))
        assertClose(Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: scale, mask: .array(keep)),
                    Self.referenceAttention(q, k, v, scale: scale, additiveMask: asAdditive), tolerance: tolerance, "boolean")
    }
}

@Suite struct QuantizationTests {
    @Test(arguments: [32, 64, 128], [4, 8])
    func dequantizationErrorIsWithinOneStep(groupSize: Int, bits: Int) {
        let w = Random.normal([16, 256], key: Random.key(UInt64(groupSize * bits)))
        let quantized = QuantizedMatrix(quantizing: w, groupSize: groupSize, bits: bits)
        #expect(quantized.weight.dtype == .uint32)
        #expect(quantized.weight.shape == [16, 256 * bits / 32])
        #expect(quantized.scales.shape == [16, 256 / groupSize])
        #expect(quantized.biases.shape == [16, 256 / groupSize])
        let restored = quantized.dequantized()
        #expect(restored.shape == [16, 256])
        // MLX's affine scheme makes 0 exactly representable: bias is the group's extreme of larger
        // magnitude and the step is stretched to |edge| / round(|edge| / ((max − min) / (2^bits − 1))).
        // Inside the grid the error is at most half of that step (the `scales` returned); rounding
        // the zero point can shrink the grid so the far extreme is clipped by less than one step.
        let groups = w.reshaped(16, 256 / groupSize, groupSize)
        let step = quantized.scales.abs().expandedDimensions(axis: -1)
        let error = (restored.reshaped(16, 256 / groupSize, groupSize) - groups).abs()
        let ratio = (error / step).max().item(Float.self)
        #expect(ratio <= 1 + 1e-3, "group \(groupSize) bits \(bits): error is \(ratio) steps")
        let meanRatio = (error / step).mean().item(Float.self)
        #expect(meanRatio <= 0.3, "mean error \(meanRatio) steps; uniform rounding gives 0.25")
        // And the step is no coarser than (max − min) / (2^bits − 1) allows, stretched by the rounding.
        let naiveStep = (groups.max(axis: -1, keepDims: true) - groups.min(axis: -1, keepDims: true)) / Double((1 << bits) - 1)
        #expect((step / naiveStep).max().item(Float.self) <= 2)
        // The packed product equals the product with the dequantized matrix.
        let x = Random.normal([3, 256], key: Random.key(5))
        assertClose(quantized.matmul(x), x.matmul(restored.mT), tolerance: Tolerance(absolute: 1e-3, relative: 1e-4))
    }
}

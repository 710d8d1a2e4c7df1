import Foundation
import TemperTestSupport
import Testing

@testable import TemperCore

// Arithmetic, elementwise functions, reductions, scans and sorting. Transcendental values were
// computed with Python's math module / NumPy in float64 and written out here.

@Suite struct ArithmeticOpsTests {
    /// [[1, 2, 3], [4, 5, 6]]
    let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])

    @Test func binaryOperatorsBroadcast() {
        let row = Tensor([10, 20, 30] as [Float])
        let column = Tensor([100, 200] as [Float], shape: [2, 1])
        #expect((a + row).toArray(Float.self) == [11, 22, 33, 14, 25, 36])
        #expect((a + column).toArray(Float.self) == [101, 102, 103, 204, 205, 206])
        #expect((row + column).shape == [2, 3])
        #expect((row + column).toArray(Float.self) == [110, 120, 130, 210, 220, 230])
        #expect((a - row).toArray(Float.self) == [-9, -18, -27, -6, -15, -24])
        #expect((a * column).toArray(Float.self) == [100, 200, 300, 800, 1000, 1200])
        #expect((row / a).toArray(Float.self) == [10, 10, 10, 2.5, 4, 5])
        #expect((a * a).toArray(Float.self) == [1, 4, 9, 16, 25, 36])
        // Shapes [2, 1, 3] and [4, 1] broadcast to [2, 4, 3].
        let wide = a.reshaped(2, 1, 3) + Tensor([0, 1, 2, 3] as [Float], shape: [4, 1])
        #expect(wide.shape == [2, 4, 3])
        #expect(wide[1, 3].toArray(Float.self) == [7, 8, 9])
    }

    @Test func doubleScalarsOnEitherSide() {
        #expect((a + 0.5).toArray(Float.self) == [1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
        #expect((0.5 + a).toArray(Float.self) == [1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
        #expect((a - 1).toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        #expect((10 - a).toArray(Float.self) == [9, 8, 7, 6, 5, 4])
        #expect((a * 3).toArray(Float.self) == [3, 6, 9, 12, 15, 18])
        #expect((-2 * a).toArray(Float.self) == [-2, -4, -6, -8, -10, -12])
        #expect((a / 4).toArray(Float.self) == [0.25, 0.5, 0.75, 1, 1.25, 1.5])
        #expect((12 / a).toArray(Float.self) == [12, 6, 4, 3, 2.4, 2])
        // A float tensor with a Double scalar keeps its dtype.
        #expect((a * 0.5).dtype == .float32)
        #expect((0.5 * a.asType(.float16)).dtype == .float16)
        #expect((a.asType(.bfloat16) + 1).dtype == .bfloat16)
        #expect((a.asType(.float16) / 2).toArray(Float.self) == [0.5, 1, 1.5, 2, 2.5, 3])
        // An integer tensor keeps its dtype with integral scalars, and becomes float otherwise.
        let ints = Tensor([2, 7] as [Int32])
        #expect((ints * 2).dtype == .int32)
        #expect((ints * 2).toArray(Int32.self) == [4, 14])
        #expect((3 - ints).toArray(Int32.self) == [1, -4])
        #expect((ints * 2.5).dtype == .float32)
        #expect((ints * 2.5).toArray(Float.self) == [5, 17.5])
        #expect((ints + 0.25).toArray(Float.self) == [2.25, 7.25])
        // A float64 scalar is not rounded through float32 on the way in.
        let precise = Tensor([1] as [Double]) + 1e-12
        #expect(precise.dtype == .float64)
        #expect(precise.item(Double.self) == 1 + 1e-12)
        #expect((Tensor([0.1] as [Double]) * 3).item(Double.self) == 0.1 * 3)
    }

    @Test func integerDivisionAndRemainder() {
        // Division of integers is true division.
        let quotient = Tensor([7, -8] as [Int32]) / Tensor([2, 4] as [Int32])
        #expect(quotient.dtype.isFloatingPoint)
        #expect(quotient.toArray(Float.self) == [3.5, -2])
        #expect((1 / Tensor([2, 4] as [Int32])).toArray(Float.self) == [0.5, 0.25])
        // Remainder takes the sign of the divisor, as in Python.
        #expect((Tensor([-7, 7, 7, -7.5] as [Float]) % Tensor([3, 3, -3, 2] as [Float])).toArray(Float.self)
            == [2, 1, -2, 0.5])
        #expect((a % Tensor(Float(4))).toArray(Float.self) == [1, 2, 3, 0, 1, 2])
        #expect((Tensor([-7, 7, 9] as [Int32]) % Tensor([3, -3, 4] as [Int32])).toArray(Int32.self) == [2, -2, 1])
    }

    @Test func negationAndCompoundAssignment() {
        #expect((-a).toArray(Float.self) == [-1, -2, -3, -4, -5, -6])
        #expect((-Tensor([3, -4] as [Int32])).toArray(Int32.self) == [-3, 4])
        #expect((-(-a)).toArray(Float.self) == [1, 2, 3, 4, 5, 6])
        var b = a
        b += a               // 2a
        #expect(b.toArray(Float.self) == [2, 4, 6, 8, 10, 12])
        b -= Tensor(Float(1))   // 2a − 1
        #expect(b.toArray(Float.self) == [1, 3, 5, 7, 9, 11])
        b *= Tensor([2, 0, 1] as [Float])
        #expect(b.toArray(Float.self) == [2, 0, 5, 14, 0, 11])
        b /= Tensor(Float(2))
        #expect(b.toArray(Float.self) == [1, 0, 2.5, 7, 0, 5.5])
        #expect(a.toArray(Float.self) == [1, 2, 3, 4, 5, 6])
    }

    @Test func matrixProducts() {
        let b = Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
        let product = a.matmul(b)
        #expect(product.shape == [2, 2])
        #expect(product.toArray(Float.self) == [58, 64, 139, 154])
        #expect(b.matmul(a).toArray(Float.self) == [39, 54, 69, 49, 68, 87, 59, 82, 105])

        // [2, 1, 2, 3] @ [3, 3, 2] broadcasts to [2, 3, 2, 2].
        let left = Tensor((0..<12).map(Float.init), shape: [2, 1, 2, 3])
        let right = Tensor((0..<18).map { Float($0 - 5) }, shape: [3, 3, 2])
        let batched = left.matmul(right)
        #expect(batched.shape == [2, 3, 2, 2])
        #expect(batched.toArray(Float.self) == [
            -5, -2, -32, -20, 13, 16, 40, 52, 31, 34, 112, 124,
            -59, -38, -86, -56, 67, 88, 94, 124, 193, 214, 274, 304,
        ])
        // A batch times one shared matrix.
        let shared = Tensor.stacked([a, a * 2]).matmul(b)
        #expect(shared.shape == [2, 2, 2])
        #expect(shared[1].toArray(Float.self) == [116, 128, 278, 308])
        // A matrix times a vector drops the vector's axis.
        #expect(a.matmul(Tensor([1, 0, -1] as [Float])).toArray(Float.self) == [-2, -2])
    }

    @Test func addmmScalesBothTerms() {
        let b = Tensor([7, 8, 9, 10, 11, 12] as [Float], shape: [3, 2])
        let c = Tensor([1, -1, 0, 2] as [Float], shape: [2, 2])
        // 2 · [[58, 64], [139, 154]] − 0.5 · c
        #expect(c.addmm(a, b, alpha: 2, beta: -0.5).toArray(Float.self) == [115.5, 128.5, 278, 307])
        #expect(c.addmm(a, b).toArray(Float.self) == [59, 63, 139, 156])
        // A bias row broadcasts.
        let bias = Tensor([1, 2] as [Float])
        #expect(bias.addmm(a, b, alpha: 1, beta: 3).toArray(Float.self) == [61, 70, 142, 160])
    }
}

@Suite struct ElementwiseOpsTests {
    /// [−2, 0, 0.5, 3]
    let v = Tensor([-2, 0, 0.5, 3] as [Float])

    @Test func exponentialsAndRoots() {
        assertClose(v.exp(), [0.1353352832366127, 1, 1.6487212707001282, 20.085536923187668])
        let positive = Tensor([0.5, 1, 4, 100] as [Float])
        assertClose(positive.log(), [-0.6931471805599453, 0, 1.3862943611198906, 4.605170185988092])
        assertClose(positive.log1p(), [0.4054651081081644, 0.6931471805599453, 1.6094379124341003, 4.61512051684126])
        assertClose(positive.sqrt(), [0.7071067811865476, 1, 2, 10])
        assertClose(positive.rsqrt(), [1.414213562373095, 1, 0.5, 0.1])
        // log1p keeps precision where log(1 + x) loses it.
        assertClose(Tensor([1e-7] as [Float]).log1p(), [9.999999500000033e-08], tolerance: Tolerance(absolute: 0, relative: 1e-5))
        #expect(Tensor([0] as [Float]).log().item(Float.self) == -Float.infinity)
        #expect(Tensor([-1] as [Float]).sqrt().item(Float.self).isNaN)
    }

    @Test func absMaximumMinimumClip() {
        #expect(v.abs().toArray(Float.self) == [2, 0, 0.5, 3])
        #expect(Tensor([-3, 4] as [Int32]).abs().toArray(Int32.self) == [3, 4])
        #expect(maximum(v, Tensor(Float(0.25))).toArray(Float.self) == [0.25, 0.25, 0.5, 3])
        #expect(minimum(v, Tensor(Float(0.25))).toArray(Float.self) == [-2, 0, 0.25, 0.25])
        let column = Tensor([0, 1] as [Float], shape: [2, 1])
        let broadcast = maximum(v, column)
        #expect(broadcast.shape == [2, 4])
        #expect(broadcast.toArray(Float.self) == [0, 0, 0.5, 3, 1, 1, 1, 3])
        #expect(v.clipped(min: -1, max: 1).toArray(Float.self) == [-1, 0, 0.5, 1])
        #expect(v.clipped(min: 0.1).toArray(Float.self) == [0.1, 0.1, 0.5, 3])
        #expect(v.clipped(max: 0).toArray(Float.self) == [-2, 0, 0, 0])
        let ints = Tensor([-5, 2, 9] as [Int32]).clipped(min: 0, max: 4)
        #expect(ints.dtype == .int32)
        #expect(ints.toArray(Int32.self) == [0, 2, 4])
    }

    @Test func powers() {
        assertClose(
            Tensor([2, 3, -2, 9] as [Float]).pow(Tensor([3, 0.5, 2, -0.5] as [Float])),
            [8, 1.7320508075688772, 4, 0.3333333333333333])
        assertClose(v.pow(2), [4, 0, 0.25, 9])
        assertClose(Tensor([4, 9] as [Float]).pow(0.5), [2, 3])
        #expect(Tensor([2, 3] as [Int32]).pow(3).toArray(Int32.self) == [8, 27])
    }

    @Test func activations() {
        assertClose(v.sigmoid(), [0.11920292202211755, 0.5, 0.6224593312018546, 0.9525741268224334])
        assertClose(v.silu(), [-0.2384058440442351, 0, 0.3112296656009273, 2.8577223804672998])
        assertClose(v.tanh(), [-0.9640275800758169, 0, 0.46211715726000974, 0.9950547536867305])
        // GELU with the exact normal CDF: gelu(1) = Φ(1) = 0.8413447460685429.
        assertClose(Tensor(Float(1)).gelu(), [0.8413447460685429], shape: [])
        assertClose(v.gelu(), [-0.04550026389635842, 0, 0.34573123063700656, 2.99595030590511])
        // The tanh approximation differs in the fourth decimal.
        assertClose(Tensor(Float(1)).geluApproximate(), [0.8411919906082768], shape: [])
        assertClose(v.geluApproximate(), [-0.04540230591222494, 0, 0.34571400982514394, 2.996362607918227])
        // Float64 inputs: MLX's float64 sigmoid and erf (so gelu) on the CPU run in float32 inside.
        let f32Tolerance = Tolerance(absolute: 1e-6, relative: 1e-6)
        assertClose(Tensor([0.5, 1] as [Double]).sigmoid(), [0.6224593312018546, 0.7310585786300049], tolerance: f32Tolerance)
        assertClose(Tensor([1] as [Double]).gelu(), [0.8413447460685429], tolerance: f32Tolerance)
        #expect(Tensor([1] as [Double]).gelu().dtype == .float64)
        // Reduced precision keeps its dtype.
        let half = v.asType(.bfloat16).gelu()
        #expect(half.dtype == .bfloat16)
        assertClose(half, [-0.04550026389635842, 0, 0.34573123063700656, 2.99595030590511])
    }

    @Test func softmaxFamily() {
        let m = Tensor([1, 2, 3, 1, 1, 1] as [Float], shape: [2, 3])
        assertClose(m.softmax(), [
            0.09003057317038046, 0.24472847105479767, 0.6652409557748219,
            0.3333333333333333, 0.3333333333333333, 0.3333333333333333,
        ])
        assertClose(m.softmax(axis: 0), [
            0.5, 0.7310585786300049, 0.8807970779778824, 0.5, 0.2689414213699951, 0.11920292202211755,
        ])
        assertClose(m.softmax(axes: [0, 1]).sum(), [1], shape: [])
        assertClose(m.logSoftmax(), [
            -2.40760596444438, -1.4076059644443801, -0.40760596444438013,
            -1.0986122886681096, -1.0986122886681096, -1.0986122886681096,
        ])
        assertClose(m.logSoftmax(axis: 0).exp().sum(axis: 0), [1, 1, 1])
        assertClose(m.logSumExp(axis: 1), [3.40760596444438, 2.0986122886681096])
        assertClose(m.logSumExp(axis: 0), [1.6931471805599452, 2.3132616875182226, 3.1269280110429727])
        assertClose(m.logSumExp(), [3.6466950823946482], shape: [])
        #expect(m.logSumExp(axis: 1, keepDims: true).shape == [2, 1])
        // Large logits neither overflow nor give NaN.
        let large = Tensor([1000, 1000, -1000] as [Float])
        assertClose(large.logSumExp(), [1000.6931471805599453], shape: [])
        assertClose(large.softmax(), [0.5, 0.5, 0])
        assertClose(large.logSoftmax(), [-0.6931471805599453, -0.6931471805599453, -2000.6931471805599])
        // Half precision with float32 accumulation.
        let precise = m.asType(.float16).softmax(precise: true)
        #expect(precise.dtype == .float16)
        assertClose(precise[0], [0.09003057317038046, 0.24472847105479767, 0.6652409557748219])
    }

    @Test func comparisonsGiveBooleans() {
        let threshold = Tensor([0, 0, 2, 3] as [Float])
        let equal = v .== threshold
        #expect(equal.dtype == .bool)
        #expect(equal.toArray(Bool.self) == [false, true, false, true])
        #expect((v .!= threshold).toArray(Bool.self) == [true, false, true, false])
        #expect((v .< threshold).toArray(Bool.self) == [true, false, true, false])
        #expect((v .<= threshold).toArray(Bool.self) == [true, true, true, true])
        #expect((v .> threshold).toArray(Bool.self) == [false, false, false, false])
        #expect((v .>= threshold).toArray(Bool.self) == [false, true, false, true])
        #expect((v .== 0.5).toArray(Bool.self) == [false, false, true, false])
        #expect((v .!= 0.5).toArray(Bool.self) == [true, true, false, true])
        #expect((v .< 0).toArray(Bool.self) == [true, false, false, false])
        #expect((v .<= 0).toArray(Bool.self) == [true, true, false, false])
        #expect((v .> 0).toArray(Bool.self) == [false, false, true, true])
        #expect((v .>= 0.5).toArray(Bool.self) == [false, false, true, true])
        #expect((v .>= 0.5).dtype == .bool)
        // Broadcasting and integer comparisons.
        let grid = Tensor([1, 2, 3] as [Int32]) .< Tensor([2, 3] as [Int32], shape: [2, 1])
        #expect(grid.shape == [2, 3])
        #expect(grid.toArray(Bool.self) == [true, false, false, true, true, false])
        // Logical combinations.
        #expect(((v .> -1) .& (v .< 3)).toArray(Bool.self) == [false, true, true, false])
        #expect(((v .< 0) .| (v .> 1)).toArray(Bool.self) == [true, false, false, true])
        #expect((.!(v .> 0)).toArray(Bool.self) == [true, true, false, false])
    }
}

@Suite struct ReductionOpsTests {
    /// [[3, 1, 4, 0], [5, 9, 2, 6], [7, 3, 5, 8]]
    let m = Tensor([3, 1, 4, 0, 5, 9, 2, 6, 7, 3, 5, 8] as [Float], shape: [3, 4])

    @Test func sumMeanMaxMin() {
        #expect(m.sum().shape == [])
        #expect(m.sum().item(Float.self) == 53)
        #expect(m.sum(axis: 0).toArray(Float.self) == [15, 13, 11, 14])
        #expect(m.sum(axis: 1).toArray(Float.self) == [8, 22, 23])
        #expect(m.sum(axis: -1, keepDims: true).shape == [3, 1])
        #expect(m.sum(axis: -1, keepDims: true).toArray(Float.self) == [8, 22, 23])
        #expect(m.sum(axes: [0, 1], keepDims: true).shape == [1, 1])
        assertClose(m.mean(), [4.416666666666667], shape: [])
        assertClose(m.mean(axis: 0), [5, 4.333333333333333, 3.6666666666666665, 4.666666666666667])
        assertClose(m.mean(axis: 1, keepDims: true), [2, 5.5, 5.75], shape: [3, 1])
        #expect(m.max().item(Float.self) == 9)
        #expect(m.max(axis: 0).toArray(Float.self) == [7, 9, 5, 8])
        #expect(m.max(axis: 1, keepDims: true).shape == [3, 1])
        #expect(m.max(axis: 1, keepDims: true).toArray(Float.self) == [4, 9, 8])
        #expect(m.min().item(Float.self) == 0)
        #expect(m.min(axis: 0).toArray(Float.self) == [3, 1, 2, 0])
        #expect(m.min(axis: -1).toArray(Float.self) == [0, 2, 3])
        #expect(m.product(axes: [1]).toArray(Float.self) == [0, 540, 840])
        // Integer sums stay integers; the mean of integers is a float.
        let ints = Tensor([1, 2, 4] as [Int32])
        #expect(ints.sum().item(Int32.self) == 7)
        #expect(ints.mean().dtype.isFloatingPoint)
        assertClose(ints.mean(), [2.3333333333333335], shape: [])
        #expect((m .> 8).any().item(Bool.self))
        #expect(!(m .> 8).all().item(Bool.self))
        #expect((m .>= 0).all(axes: [1]).toArray(Bool.self) == [true, true, true])
        #expect((m .> 6).any(axes: [1]).toArray(Bool.self) == [false, true, true])
    }

    @Test func argMaxAndArgMin() {
        #expect(m.argMax(axis: 1).toArray(Int32.self) == [2, 1, 3])
        #expect(m.argMax(axis: 0).toArray(Int32.self) == [2, 1, 2, 2])
        #expect(m.argMin(axis: 1).toArray(Int32.self) == [3, 2, 1])
        #expect(m.argMin(axis: 0).toArray(Int32.self) == [0, 0, 1, 0])
        #expect(m.argMax(axis: -1, keepDims: true).shape == [3, 1])
        #expect(m.argMin(axis: 0, keepDims: true).shape == [1, 4])
        #expect(m.argMin(axis: 0, keepDims: true).toArray(Int32.self) == [0, 0, 1, 0])
    }

    @Test func varianceAndStandardDeviation() {
        // Population (ddof 0).
        assertClose(m.variance(axes: [1]), [2.5, 6.25, 3.6875])
        assertClose(m.variance(axes: [0]), [2.6666666666666665, 11.555555555555557, 1.5555555555555554, 11.555555555555557])
        assertClose(m.variance(), [7.076388888888888], shape: [])
        assertClose(m.standardDeviation(axes: [1]), [1.5811388300841898, 2.5, 1.920286436967152])
        assertClose(m.standardDeviation(axes: [0], keepDims: true), [1.632993161855452, 3.39934634239519, 1.247219128924647, 3.39934634239519], shape: [1, 4])
        assertClose(m.standardDeviation(), [2.6601482832520613], shape: [])
        // Sample (ddof 1).
        assertClose(m.variance(axes: [1], keepDims: true, ddof: 1), [3.3333333333333335, 8.333333333333334, 4.916666666666667], shape: [3, 1])
        assertClose(m.variance(axes: [0], ddof: 1), [4, 17.333333333333336, 2.333333333333333, 17.333333333333336])
        assertClose(m.variance(ddof: 1), [7.719696969696969], shape: [])
        assertClose(m.standardDeviation(axes: [1], ddof: 1), [1.8257418583505538, 2.886751345948129, 2.217355782608345])
        assertClose(m.standardDeviation(axes: [0], ddof: 1), [2, 4.163331998932266, 1.5275252316519465, 4.163331998932266])
        assertClose(m.standardDeviation(ddof: 1), [2.7784342658585555], shape: [])
        #expect(m.variance(axes: [1], keepDims: true).shape == [3, 1])
    }

    @Test func cumulativeSums() {
        let c = Tensor([1, 2, 3, 4, 10, 20, 30, 40] as [Float], shape: [2, 4])
        #expect(c.cumsum(axis: 1).toArray(Float.self) == [1, 3, 6, 10, 10, 30, 60, 100])
        #expect(c.cumsum(axis: 1, inclusive: false).toArray(Float.self) == [0, 1, 3, 6, 0, 10, 30, 60])
        #expect(c.cumsum(axis: 1, reverse: true).toArray(Float.self) == [10, 9, 7, 4, 100, 90, 70, 40])
        #expect(c.cumsum(axis: 1, reverse: true, inclusive: false).toArray(Float.self) == [9, 7, 4, 0, 90, 70, 40, 0])
        #expect(c.cumsum(axis: 0).toArray(Float.self) == [1, 2, 3, 4, 11, 22, 33, 44])
        #expect(c.cumsum(axis: -1).shape == [2, 4])
        #expect(Tensor([1, 1, 1] as [Int32]).cumsum(axis: 0).toArray(Int32.self) == [1, 2, 3])
    }
}

@Suite struct SortingOpsTests {
    /// [[3, 1, 4, 0], [5, 9, 2, 6], [7, 3, 5, 8]]
    let m = Tensor([3, 1, 4, 0, 5, 9, 2, 6, 7, 3, 5, 8] as [Float], shape: [3, 4])

    @Test func sortedAndArgSort() {
        #expect(m.sorted().toArray(Float.self) == [0, 1, 3, 4, 2, 5, 6, 9, 3, 5, 7, 8])
        #expect(m.sorted(axis: 0).toArray(Float.self) == [3, 1, 2, 0, 5, 3, 4, 6, 7, 9, 5, 8])
        #expect(m.argSort().toArray(Int32.self) == [3, 1, 0, 2, 2, 0, 3, 1, 1, 2, 0, 3])
        #expect(m.argSort(axis: 0).toArray(Int32.self) == [0, 0, 1, 0, 1, 2, 0, 1, 2, 1, 2, 2])
        // Gathering with the argsort gives the sorted values.
        #expect(m.takeAlong(m.argSort(axis: 1), axis: 1).toArray(Float.self) == m.sorted(axis: 1).toArray(Float.self))
        #expect(Tensor([2, -1, 0] as [Int32]).sorted().toArray(Int32.self) == [-1, 0, 2])
    }

    @Test func topKHoldsTheLargestValues() {
        // The order inside the top k is unspecified: compare sorted.
        let top2 = m.topK(2)
        #expect(top2.shape == [3, 2])
        #expect(top2.sorted().toArray(Float.self) == [3, 4, 6, 9, 7, 8])
        let top1 = m.topK(1, axis: 0)
        #expect(top1.shape == [1, 4])
        #expect(top1.toArray(Float.self) == [7, 9, 5, 8])
        let vector = Tensor([3, 1, 4, 1, 5, 9, 2, 6] as [Float])
        #expect(vector.topK(3).sorted().toArray(Float.self) == [5, 6, 9])
        #expect(vector.topK(8).sorted().toArray(Float.self) == [1, 1, 2, 3, 4, 5, 6, 9])
    }

    @Test func argPartitionPartitionsAroundKth() {
        let values: [Float] = [9, 2, 7, 4, 1, 8, 3]
        for kth in [0, 2, 3, 6] {
            let order = Tensor(values).argPartition(kth: kth).toArray(Int32.self).map(Int.init)
            let pivot = values.sorted()[kth]
            #expect(order.sorted() == Array(0..<values.count), "kth \(kth): not a permutation")
            #expect(values[order[kth]] == pivot, "kth \(kth)")
            #expect(order[..<kth].allSatisfy { values[$0] <= pivot }, "kth \(kth)")
            #expect(order[(kth + 1)...].allSatisfy { values[$0] >= pivot }, "kth \(kth)")
        }
        // Along axis 0 of a matrix, per column.
        let order = m.argPartition(kth: 1, axis: 0)
        #expect(order.shape == [3, 4])
        let gathered = m.takeAlong(order, axis: 0)
        // The middle row holds each column's median: 5, 3, 4, 6.
        #expect(gathered[1].toArray(Float.self) == [5, 3, 4, 6])
        #expect((gathered[0] .<= gathered[1]).all().item(Bool.self))
        #expect((gathered[2] .>= gathered[1]).all().item(Bool.self))
    }
}

import Foundation
import TemperTestSupport
import Testing

@testable import TemperCore

// Op-family tests: every expected value is written out here, worked out by hand or with
// Python/NumPy when the tests were written (nothing runs Python at test time).
// This file: creation from Swift values, filled tensors, ranges, random draws, dtypes.
// OpsTests+Shape.swift: shape ops and indexing. OpsTests+Math.swift: arithmetic, elementwise
// functions, reductions, scans and sorting. OpsTests+Fast.swift: fused kernels and quantization.

@Suite struct CreationOpsTests {
    @Test func floatArraysKeepValuesShapeAndDType() {
        let t = Tensor([1.5, -2, 3, 4.25, 0, -0.5] as [Float], shape: [2, 3])
        #expect(t.shape == [2, 3])
        #expect(t.ndim == 2)
        #expect(t.size == 6)
        #expect(t.dim(0) == 2)
        #expect(t.dim(-1) == 3)
        #expect(t.dtype == .float32)
        #expect(t.itemSize == 4)
        #expect(t.byteCount == 24)
        #expect(t.toArray(Float.self) == [1.5, -2, 3, 4.25, 0, -0.5])
        #expect(Tensor([1, 2, 3] as [Float]).shape == [3])

        let doubles = Tensor([0.1, 0.2, 1e-300] as [Double])
        #expect(doubles.dtype == .float64)
        #expect(doubles.itemSize == 8)
        #expect(doubles.toArray(Double.self) == [0.1, 0.2, 1e-300])
    }

    @Test func integerAndBoolArrays() {
        let int32 = Tensor([-3, 0, 7] as [Int32])
        #expect(int32.dtype == .int32)
        #expect(int32.toArray(Int32.self) == [-3, 0, 7])

        // Swift Int is int64: values beyond 32 bits survive.
        let int64 = Tensor([1 << 40, -5] as [Int])
        #expect(int64.dtype == .int64)
        #expect(int64.toArray(Int.self) == [1_099_511_627_776, -5])
        #expect(Tensor([Int64.min, Int64.max]).toArray(Int64.self) == [Int64.min, Int64.max])

        let bytes = Tensor([0, 128, 255] as [UInt8])
        #expect(bytes.dtype == .uint8)
        #expect(bytes.itemSize == 1)
        #expect(bytes.toArray(UInt8.self) == [0, 128, 255])
        #expect(bytes.toArray(Int32.self) == [0, 128, 255])

        #expect(Tensor([-128, 127] as [Int8]).dtype == .int8)
        #expect(Tensor([-128, 127] as [Int8]).toArray(Int32.self) == [-128, 127])
        #expect(Tensor([-300, 300] as [Int16]).toArray(Int16.self) == [-300, 300])
        #expect(Tensor([65_535] as [UInt16]).toArray(Int32.self) == [65_535])
        #expect(Tensor([4_000_000_000] as [UInt32]).toArray(UInt32.self) == [4_000_000_000])
        #expect(Tensor([4_000_000_000] as [UInt32]).toArray(Int.self) == [4_000_000_000])
        #expect(Tensor([1 << 63] as [UInt64]).toArray(UInt64.self) == [1 << 63])

        let flags = Tensor([true, false, true])
        #expect(flags.dtype == .bool)
        #expect(flags.toArray(Bool.self) == [true, false, true])
        #expect(flags.toArray(Int32.self) == [1, 0, 1])
        #expect(flags.toArray(Float.self) == [1, 0, 1])

        #if !(os(macOS) && arch(x86_64))
        let halves = Tensor([0.5, -1.25] as [Float16])
        #expect(halves.dtype == .float16)
        #expect(halves.toArray(Float.self) == [0.5, -1.25])
        #endif
    }

    @Test func scalars() {
        let f = Tensor(Float(2.5))
        #expect(f.shape == [])
        #expect(f.ndim == 0)
        #expect(f.size == 1)
        #expect(f.item(Float.self) == 2.5)

        #expect(Tensor(7).dtype == .int64)
        #expect(Tensor(7).item(Int.self) == 7)
        #expect(Tensor(Int32(-4)).dtype == .int32)
        #expect(Tensor(Int32(-4)).item(Int32.self) == -4)
        #expect(Tensor(true).dtype == .bool)
        #expect(Tensor(true).item(Bool.self))
        #expect(Tensor(UInt8(200)).item(Int32.self) == 200)
        #expect(Tensor(0.1).dtype == .float64)
        #expect(Tensor(0.1).item(Double.self) == 0.1)
        #expect(Tensor(0.1, dtype: .float32).dtype == .float32)
        #expect(Tensor(0.1, dtype: .float32).item(Float.self) == Float(0.1))
        #expect(Tensor(3, dtype: .int16).dtype == .int16)
        #expect(Tensor(-3, dtype: .int16).item(Int32.self) == -3)
        // A one-element tensor of any shape has an item.
        #expect(Tensor([9] as [Float], shape: [1, 1]).item(Float.self) == 9)
    }

    @Test func rawBytesInitializer() {
        // Little-endian int16: 0x0201 = 513, 0xFFFF = -1, 0x8000 = -32768.
        let raw: [UInt8] = [0x01, 0x02, 0xFF, 0xFF, 0x00, 0x80]
        let t = raw.withUnsafeBytes { Tensor(bytes: $0, shape: [3], dtype: .int16) }
        #expect(t.dtype == .int16)
        #expect(t.toArray(Int32.self) == [513, -1, -32_768])
        // float32 0x3F800000 = 1.0; 0xC0490FDB is −π rounded to nearest (Float.pi rounds down).
        let floatBytes: [UInt8] = [0x00, 0x00, 0x80, 0x3F, 0xDB, 0x0F, 0x49, 0xC0]
        let floats = floatBytes.withUnsafeBytes { Tensor(bytes: $0, shape: [2, 1], dtype: .float32) }
        #expect(floats.shape == [2, 1])
        #expect(floats.toArray(Float.self) == [1, Float(-Double.pi)])
    }

    @Test func filledTensors() {
        let zeros = Tensor.zeros([2, 3])
        #expect(zeros.shape == [2, 3])
        #expect(zeros.dtype == .float32)
        #expect(zeros.toArray(Float.self) == [0, 0, 0, 0, 0, 0])
        #expect(Tensor.ones([4], dtype: .int32).dtype == .int32)
        #expect(Tensor.ones([4], dtype: .int32).toArray(Int32.self) == [1, 1, 1, 1])
        #expect(Tensor.full([2, 2], value: -1.5).toArray(Float.self) == [-1.5, -1.5, -1.5, -1.5])
        let halves = Tensor.full([3], value: 2.75, dtype: .float16)
        #expect(halves.dtype == .float16)
        #expect(halves.toArray(Float.self) == [2.75, 2.75, 2.75])
        let bfloats = Tensor.full([2], value: 3.5, dtype: .bfloat16)
        #expect(bfloats.dtype == .bfloat16)
        #expect(bfloats.toArray(Float.self) == [3.5, 3.5])
        #expect(Tensor.full([2], value: -7, dtype: .int8).toArray(Int32.self) == [-7, -7])
        #expect(Tensor.full([2], value: 1, dtype: .bool).toArray(Bool.self) == [true, true])
        let scalar = Tensor.full([], value: 3)
        #expect(scalar.shape == [])
        #expect(scalar.item(Float.self) == 3)
        #expect(Tensor.zeros([0, 4]).shape == [0, 4])
        #expect(Tensor.zeros([0, 4]).size == 0)

        let like = Tensor.zeros(like: Tensor([1, 2, 3] as [Int32]))
        #expect(like.dtype == .int32)
        #expect(like.toArray(Int32.self) == [0, 0, 0])
        let onesLike = Tensor.ones(like: Tensor.zeros([2, 2], dtype: .bfloat16))
        #expect(onesLike.dtype == .bfloat16)
        #expect(onesLike.shape == [2, 2])
        #expect(onesLike.toArray(Float.self) == [1, 1, 1, 1])
    }

    @Test func arangeAndLinspace() {
        #expect(Tensor.arange(5).dtype == .float32)
        #expect(Tensor.arange(5).toArray(Float.self) == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(2, 8, step: 1.5).toArray(Float.self) == [2, 3.5, 5, 6.5])
        #expect(Tensor.arange(10, 0, step: -3).toArray(Float.self) == [10, 7, 4, 1])
        #expect(Tensor.arange(0, 1, step: 0.25).toArray(Float.self) == [0, 0.25, 0.5, 0.75])
        let ints = Tensor.arange(0, 6, step: 2, dtype: .int32)
        #expect(ints.dtype == .int32)
        #expect(ints.toArray(Int32.self) == [0, 2, 4])
        #expect(Tensor.arange(3, dtype: .int64).toArray(Int.self) == [0, 1, 2])
        #expect(Tensor.arange(3, 3).shape == [0])

        #expect(Tensor.linspace(-1, 1, count: 5).toArray(Float.self) == [-1, -0.5, 0, 0.5, 1])
        let fine = Tensor.linspace(0, 1, count: 3, dtype: .float64)
        #expect(fine.dtype == .float64)
        #expect(fine.toArray(Double.self) == [0, 0.5, 1])
        assertClose(Tensor.linspace(0, 1, count: 4), [0, 1.0 / 3, 2.0 / 3, 1])
    }
}

@Suite struct RandomOpsTests {
    @Test func sameKeyGivesIdenticalValues() {
        let key = Random.key(42)
        #expect(
            Random.normal([64], key: key).toArray(Float.self)
                == Random.normal([64], key: Random.key(42)).toArray(Float.self))
        #expect(
            Random.uniform([64], key: key).toArray(Float.self)
                == Random.uniform([64], key: key).toArray(Float.self))
        #expect(
            Random.bernoulli(0.5, shape: [64], key: key).toArray(Bool.self)
                == Random.bernoulli(0.5, shape: [64], key: key).toArray(Bool.self))
        let logits = Tensor.zeros([8, 5])
        #expect(
            Random.categorical(logits: logits, key: key).toArray(Int32.self)
                == Random.categorical(logits: logits, key: key).toArray(Int32.self))
    }

    @Test func differentKeysGiveDifferentValues() {
        let parent = Random.key(7)
        let keys = Random.split(parent, count: 3)
        #expect(keys.count == 3)
        for key in keys {
            #expect(key.shape == [2])
            #expect(key.dtype == .uint32)
        }
        // Splitting is itself deterministic.
        #expect(
            Random.split(Random.key(7), count: 3).map { $0.toArray(UInt32.self) }
                == keys.map { $0.toArray(UInt32.self) })
        #expect(Random.split(parent).count == 2)

        let streams = ([parent] + keys).map { Random.normal([32], key: $0).toArray(Float.self) }
        for i in streams.indices {
            for j in streams.indices where j > i {
                #expect(streams[i] != streams[j], "streams \(i) and \(j) agree")
            }
        }
        #expect(Random.key(1).toArray(UInt32.self) != Random.key(2).toArray(UInt32.self))
        #expect(
            Random.uniform([32], key: Random.key(1)).toArray(Float.self)
                != Random.uniform([32], key: Random.key(2)).toArray(Float.self))
    }

    @Test func uniformStaysInsideItsBounds() {
        let u = Random.uniform([100, 100], low: -2, high: 3, key: Random.key(3))
        #expect(u.shape == [100, 100])
        #expect(u.dtype == .float32)
        let values = u.toArray(Float.self)
        #expect(values.allSatisfy { $0 >= -2 && $0 < 3 })
        // 10 000 draws cover the interval: the extremes come within 1 % of the ends.
        #expect(values.min()! < -1.95)
        #expect(values.max()! > 2.95)
        // Mean 0.5, standard error 5/√12/100 ≈ 0.014.
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        #expect(Swift.abs(mean - 0.5) < 0.06)
        // P(u < 0) = 2/5.
        let belowZero = Double(values.filter { $0 < 0 }.count) / Double(values.count)
        #expect(Swift.abs(belowZero - 0.4) < 0.02)

        let half = Random.uniform([4, 3], dtype: .float16, key: Random.key(4))
        #expect(half.dtype == .float16)
        #expect(half.shape == [4, 3])
        #expect(half.toArray(Float.self).allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func normalHasItsMeanAndStandardDeviation() {
        let draws = Random.normal([10_000], mean: 2, standardDeviation: 3, key: Random.key(5))
        #expect(draws.shape == [10_000])
        #expect(draws.dtype == .float32)
        let values = draws.toArray(Float.self).map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count))
            .squareRoot()
        // Standard errors: 3/100 = 0.03 for the mean, 3/√20000 ≈ 0.021 for the std.
        #expect(Swift.abs(mean - 2) < 0.12)
        #expect(Swift.abs(std - 3) < 0.09)
        // About 68.27 % fall within one standard deviation.
        let inside = Double(values.filter { Swift.abs($0 - 2) < 3 }.count) / Double(values.count)
        #expect(Swift.abs(inside - 0.6827) < 0.02)

        let standard = Random.normal([50, 200], key: Random.key(6))
        #expect(standard.shape == [50, 200])
        #expect(Swift.abs(standard.mean().item(Float.self)) < 0.04)
        #expect(Swift.abs(standard.standardDeviation().item(Float.self) - 1) < 0.03)
    }

    @Test func bernoulliFrequencyMatchesItsProbability() {
        let coins = Random.bernoulli(0.3, shape: [10_000], key: Random.key(8))
        #expect(coins.dtype == .bool)
        #expect(coins.shape == [10_000])
        let heads = Double(coins.toArray(Bool.self).filter { $0 }.count) / 10_000
        // Standard error √(0.3 · 0.7 / 10 000) ≈ 0.0046.
        #expect(Swift.abs(heads - 0.3) < 0.02)

        // Probabilities broadcast: column 0 never, column 1 always.
        let columns = Random.bernoulli(Tensor([0, 1] as [Float]), shape: [6, 2], key: Random.key(9))
        #expect(columns.shape == [6, 2])
        #expect(columns.toArray(Bool.self) == Array(repeating: [false, true], count: 6).flatMap { $0 })
        #expect(!Random.bernoulli(0, shape: [100], key: Random.key(10)).any().item(Bool.self))
        #expect(Random.bernoulli(1, shape: [100], key: Random.key(10)).all().item(Bool.self))
    }

    @Test func categoricalPicksAHugeLogit() {
        let logits = Tensor(
            [0, 0, 50, 0,
             40, 0, 0, 0,
             0, 0, 0, 60] as [Float], shape: [3, 4])
        let picks = Random.categorical(logits: logits, key: Random.key(11))
        #expect(picks.shape == [3])
        #expect(picks.toArray(Int32.self) == [2, 0, 3])
        let many = Random.categorical(logits: logits, samples: 5, key: Random.key(12))
        #expect(many.shape == [3, 5])
        #expect(many.toArray(Int32.self) == [2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3])
        // Classes along axis 0.
        let columns = Random.categorical(logits: logits.transposed(), axis: 0, key: Random.key(13))
        #expect(columns.toArray(Int32.self) == [2, 0, 3])

        // Logits log 1 and log 3: class 1 with probability 3/4 (standard error ≈ 0.0043).
        let weighted = Tensor([0, Float(Foundation.log(3.0))])
        let draws = Random.categorical(logits: weighted, samples: 10_000, key: Random.key(14))
        #expect(draws.shape == [10_000])
        let ones = Double(draws.toArray(Int32.self).filter { $0 == 1 }.count) / 10_000
        #expect(Swift.abs(ones - 0.75) < 0.02)
    }
}

@Suite struct DTypeOpsTests {
    static let numeric: [DType] = [
        .float32, .float16, .bfloat16, .float64, .int8, .int16, .int32, .int64, .uint8, .uint32,
    ]

    @Test(arguments: numeric)
    func convertsAndRoundTrips(_ dtype: DType) {
        let source = Tensor([0, 1, 2, 7, 100] as [Float])
        let converted = source.asType(dtype)
        #expect(converted.dtype == dtype)
        #expect(converted.itemSize == dtype.size)
        #expect(converted.byteCount == 5 * dtype.size)
        #expect(converted.rawBytes().count == 5 * dtype.size)
        #expect(converted.toArray(Float.self) == [0, 1, 2, 7, 100])
        #expect(converted.toArray(Int32.self) == [0, 1, 2, 7, 100])
        #expect(converted.toArray(Double.self) == [0, 1, 2, 7, 100])
        #expect(converted.asType(.float32).dtype == .float32)
        #expect(converted.asType(.float32).toArray(Float.self) == [0, 1, 2, 7, 100])
        #expect(converted[3].item(Float.self) == 7)
        #expect(converted[4].item(Int32.self) == 100)
        #expect(converted.asType(.bool).toArray(Bool.self) == [false, true, true, true, true])

        let filled = Tensor.full([2], value: 3, dtype: dtype)
        #expect(filled.dtype == dtype)
        #expect(filled.toArray(Int32.self) == [3, 3])
        #expect(Tensor(5, dtype: dtype).item(Float.self) == 5)
    }

    @Test(arguments: [DType.float32, .float16, .bfloat16, .float64, .int8, .int16, .int32, .int64])
    func signedTypesKeepNegatives(_ dtype: DType) {
        let converted = Tensor([-100, -1, 0, 5] as [Float]).asType(dtype)
        #expect(converted.toArray(Int32.self) == [-100, -1, 0, 5])
        #expect(converted.toArray(Float.self) == [-100, -1, 0, 5])
    }

    @Test func boolConversions() {
        #expect(Tensor([0, 2, -1, 0.5] as [Float]).asType(.bool).toArray(Bool.self) == [false, true, true, true])
        let flags = Tensor([true, false])
        #expect(flags.asType(.float32).toArray(Float.self) == [1, 0])
        #expect(flags.asType(.int32).toArray(Int32.self) == [1, 0])
        #expect(flags.asType(.uint8).rawBytes() == [1, 0])
        #expect(flags.itemSize == 1)
    }

    @Test func floatToIntegerTruncatesTowardZero() {
        let values = Tensor([1.7, -1.7, 2.5, -0.5] as [Float])
        #expect(values.asType(.int32).toArray(Int32.self) == [1, -1, 2, 0])
        #expect(values.toArray(Int32.self) == [1, -1, 2, 0])
        #expect(values.asType(.int8).toArray(Int32.self) == [1, -1, 2, 0])
    }

    @Test func integerNarrowingWraps() {
        let wide = Tensor([300, -1, 255, 256] as [Int32])
        #expect(wide.asType(.uint8).toArray(UInt8.self) == [44, 255, 255, 0])
        #expect(Tensor([200, -100] as [Int32]).asType(.int8).toArray(Int8.self) == [-56, -100])
        #expect(Tensor([-1] as [Int32]).asType(.uint32).toArray(UInt32.self) == [4_294_967_295])
    }

    @Test func bfloat16KeepsEightSignificantBits() {
        let onePointFive = Tensor([1.5] as [Float]).asType(.bfloat16)
        #expect(onePointFive.dtype == .bfloat16)
        #expect(onePointFive.itemSize == 2)
        // 1.5 = 0x3FC0 in bfloat16, stored little-endian.
        #expect(onePointFive.rawBytes() == [0xC0, 0x3F])
        #expect(onePointFive.toArray(Float.self) == [1.5])
        #expect(onePointFive.item(Float.self) == 1.5)
        #expect(Tensor(1.5, dtype: .bfloat16).rawBytes() == [0xC0, 0x3F])
        #expect(Tensor([-2] as [Float]).asType(.bfloat16).rawBytes() == [0x00, 0xC0])
        // 1/3 = 0x3EAAAAAB in float32 rounds up to 0x3EAB = 0.333984375.
        let third = Tensor([1.0 / 3] as [Float]).asType(.bfloat16)
        #expect(third.rawBytes() == [0xAB, 0x3E])
        #expect(third.toArray(Float.self) == [0.333984375])
        // 1 + 2⁻⁸ is a tie between 1 and 1 + 2⁻⁷: round to even gives 1.
        #expect(Tensor([1.00390625] as [Float]).asType(.bfloat16).toArray(Float.self) == [1])
        // And bf16 bits read from bytes: 0x3FC0 = 1.5, 0x4049 = 3.140625.
        let bits: [UInt8] = [0xC0, 0x3F, 0x49, 0x40]
        let fromBits = bits.withUnsafeBytes { Tensor(bytes: $0, shape: [2], dtype: .bfloat16) }
        #expect(fromBits.toArray(Float.self) == [1.5, 3.140625])
        #expect(fromBits.toArray(Double.self) == [1.5, 3.140625])
    }

    @Test func float16KeepsElevenSignificantBits() {
        let values = Tensor([1.5, -2, 0.1] as [Float]).asType(.float16)
        // 1.5 = 0x3E00, -2 = 0xC000, 0.1 = 0x2E66.
        #expect(values.rawBytes() == [0x00, 0x3E, 0x00, 0xC0, 0x66, 0x2E])
        #expect(Tensor([1.0 / 3] as [Float]).asType(.float16).toArray(Float.self) == [0.333251953125])
        #if !(os(macOS) && arch(x86_64))
        #expect(values.toArray(Float16.self) == [1.5, -2, Float16(0.1)])
        #endif
    }

    @Test func rawBytesAreLittleEndian() {
        #expect(Tensor([1, -2] as [Int32]).rawBytes() == [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])
        #expect(Tensor([1] as [Float]).rawBytes() == [0x00, 0x00, 0x80, 0x3F])
        #expect(Tensor([258] as [UInt16]).rawBytes() == [0x02, 0x01])
        // A transposed view reads back in row-major order of its own shape.
        let m = Tensor([1, 2, 3, 4] as [UInt8], shape: [2, 2])
        #expect(m.transposed().rawBytes() == [1, 3, 2, 4])
    }

    @Test func float64KeepsDoublePrecision() {
        let precise = Tensor([0.1, 1 + 1e-12] as [Double])
        #expect(precise.toArray(Double.self) == [0.1, 1 + 1e-12])
        #expect(precise.asType(.float32).toArray(Double.self) == [Double(Float(0.1)), 1])
        #expect(precise.asType(.float32).asType(.float64).toArray(Double.self) == [Double(Float(0.1)), 1])
        #expect(Tensor([4_000_000_000] as [UInt32]).asType(.int64).toArray(Int.self) == [4_000_000_000])
        #expect(Tensor([1 << 40] as [Int]).asType(.float64).toArray(Double.self) == [1_099_511_627_776])
    }
}

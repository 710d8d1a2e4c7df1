import Testing

@testable import TemperCore

/// The fused dropout: its mask is a hash of (seed, element index), so the rate, the scaling, the
/// reproducibility and the gradient can all be checked exactly.
@Suite struct DropoutKernelTests {
    static var x: Tensor { Tensor((0..<100_003).map { Float($0 % 97) + 0.5 }, shape: [100_003]) }

    @Test(arguments: [Float(0.05), 0.1, 0.5])
    func dropsAboutTheRateAndScalesTheRest(probability: Float) {
        let x = Self.x
        let y = Kernels.dropout(x, probability: probability, seed: 42).toArray(Float.self)
        let input = x.toArray(Float.self)
        let scale = 1 / (1 - probability)
        var dropped = 0, bothDropped = 0
        for i in 0..<y.count {
            if y[i] == 0 {
                dropped += 1
                if i > 0 && y[i - 1] == 0 { bothDropped += 1 }
            } else {
                #expect(y[i] == input[i] * scale, "element \(i): \(y[i]) is not \(input[i]) × \(scale)")
            }
        }
        // Binomial standard deviation √(n p (1-p)) ≤ 158 here; 5σ bounds.
        let n = Double(y.count), p = Double(probability)
        #expect(abs(Double(dropped) - n * p) < 5 * (n * p * (1 - p)).squareRoot(), "dropped \(dropped) of \(y.count)")
        // Neighbours are independent: both dropped about p² of the time.
        #expect(abs(Double(bothDropped) - n * p * p) < 5 * (n * p * p).squareRoot() + 5, "both dropped \(bothDropped)")
    }

    /// A data-parallel rank's rows, dropped with their offset in the whole batch, get the whole
    /// batch's mask for those rows, in the plain kernel and inside the LoRA kernel.
    @Test func anOffsetDrawsThatPartOfTheWholeMask() {
        let whole = Tensor((0..<(6 * 40)).map { Float($0 % 13) + 0.25 }, shape: [6, 40])
        let all = Kernels.dropout(whole, probability: 0.3, seed: 11).toArray(Float.self)
        let part = Kernels.dropout(whole[2..<5], probability: 0.3, seed: 11, offset: 2 * 40).toArray(Float.self)
        #expect(part == Array(all[80..<200]))
        #expect(part != Array(all[0..<120]))

        let weight = Tensor((0..<(8 * 40)).map { Float($0 % 7) * 0.01 }, shape: [8, 40])
        let a = Tensor((0..<(4 * 40)).map { Float($0 % 5) * 0.02 - 0.04 }, shape: [4, 40])
        let b = Tensor((0..<(8 * 4)).map { Float($0 % 3) * 0.1 }, shape: [8, 4])
        let wholeOutput = Kernels.loraLinear(whole, weight: weight, a: a, b: b, scale: 2, dropout: (0.3, 11)).toArray(Float.self)
        let partOutput = Kernels.loraLinear(whole[2..<5], weight: weight, a: a, b: b, scale: 2, dropout: (0.3, 11), dropoutOffset: 80)
            .toArray(Float.self)
        // The same mask; the products differ only by the sgemm's summation order over other row counts.
        let largest = zip(partOutput, wholeOutput[16..<40]).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest < 1e-5, "largest difference \(largest)")
        let undropped = Kernels.loraLinear(whole[2..<5], weight: weight, a: a, b: b, scale: 2).toArray(Float.self)
        #expect(zip(undropped, partOutput).contains { abs($0 - $1) > 1e-2 }, "the dropout changes the output")
    }

    @Test func theSeedAloneDecidesTheMask() {
        let a = Kernels.dropout(Self.x, probability: 0.1, seed: 7).toArray(Float.self)
        let again = Kernels.dropout(Self.x, probability: 0.1, seed: 7).toArray(Float.self)
        let other = Kernels.dropout(Self.x, probability: 0.1, seed: 8).toArray(Float.self)
        #expect(a == again)
        #expect(a != other)
        // The two masks agree only as often as independent draws would (0.9² + 0.1² = 82%).
        let agree = zip(a, other).filter { ($0 == 0) == ($1 == 0) }.count
        #expect(abs(Double(agree) / Double(a.count) - 0.82) < 0.01, "masks agree on \(agree) of \(a.count)")
        #expect(Kernels.dropout(Self.x, probability: 0, seed: 7).toArray(Float.self) == Self.x.toArray(Float.self))
    }

    @Test func theGradientIsTheSameMaskAndScale() {
        let x = Tensor((0..<4096).map { Float($0) * 0.01 - 20 }, shape: [64, 64])
        let weights = Tensor((0..<4096).map { Float(($0 * 37) % 101) - 50 }, shape: [64, 64])
        let gradient = grad { (inputs: [Tensor]) -> Tensor in
            (Kernels.dropout(inputs[0], probability: 0.25, seed: 99) * weights).sum()
        }([x])[0].toArray(Float.self)
        let kept = Kernels.dropout(Tensor.ones([64, 64]), probability: 0.25, seed: 99).toArray(Float.self)
        let w = weights.toArray(Float.self)
        #expect(kept.contains(0) && kept.contains(Float(1) / 0.75))
        for i in 0..<4096 { #expect(gradient[i] == w[i] * kept[i], "element \(i)") }
    }

    @Test func theFallbackOffFloat32DropsAboutTheRateToo() {
        let y = Kernels.dropout(Self.x.asType(.bfloat16), probability: 0.2, seed: 3).asType(.float32).toArray(Float.self)
        let dropped = y.filter { $0 == 0 }.count
        #expect(abs(Double(dropped) / Double(y.count) - 0.2) < 0.01)
    }
}

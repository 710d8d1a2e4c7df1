import Foundation
import Testing
import TemperCore
import TemperTestSupport

@testable import TemperNN

@Suite struct AdamW8bitTests {
    /// Three tensors of 10k elements and a bias, at their initial values, and the minimum each
    /// tensor's quadratic loss ½·c·(p − target)² pulls towards.
    static func problem() -> (parameters: [String: Tensor], targets: [String: Tensor]) {
        let shapes: [String: [Int]] = [
            "layers.0.weight": [100, 100], "layers.1.weight": [40, 250], "embed.weight": [10_000], "layers.1.bias": [40],
        ]
        var parameters: [String: Tensor] = [:]
        var targets: [String: Tensor] = [:]
        for (index, name) in shapes.keys.sorted().enumerated() {
            parameters[name] = Random.normal(shapes[name]!, standardDeviation: 0.02, key: Random.key(UInt64(index)))
            targets[name] = Random.normal(shapes[name]!, standardDeviation: 0.5, key: Random.key(UInt64(100 + index)))
        }
        return (parameters, targets)
    }

    /// Gradients of the noisy quadratic at step `t`: c·(p − target) + noise, with per-element
    /// curvatures c spread over two orders of magnitude and noise drawn from key t, so every
    /// run sees the same sequence for the same parameters.
    static func gradients(_ parameters: [String: Tensor], targets: [String: Tensor], step t: Int) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (index, name) in parameters.keys.sorted().enumerated() {
            let p = parameters[name]!
            let spread = Random.uniform(p.shape, low: -1, high: 1, key: Random.key(UInt64(200 + index)))
            let curvature = (spread * 2.3).exp()                                  // 0.1 ... 10
            let noise = Random.normal(
                p.shape, standardDeviation: 0.3, key: Random.key(UInt64(1000 * t + index)))
            result[name] = curvature * (p - targets[name]!) + noise
        }
        return result
    }

    /// `parameters` after the optimizer's steps `steps` on the noisy quadratic.
    static func train<O: Optimizer>(
        _ optimizer: inout O, _ parameters: [String: Tensor], targets: [String: Tensor], steps: Range<Int>,
        learningRate: Float = 1e-2
    ) -> [String: Tensor] {
        var parameters = parameters
        for t in steps {
            let gradients = gradients(parameters, targets: targets, step: t)
            let updated = optimizer.update(parameters: parameters, gradients: gradients, learningRate: learningRate)
            parameters.merge(updated) { $1 }
            eval(Array(parameters.values) + Array(optimizer.state.values))
        }
        return parameters
    }

    static func stateBytes(_ state: [String: Tensor], _ names: [String]? = nil) -> Int {
        state.filter { key, _ in names.map { $0.contains { key.hasSuffix("." + $0) } } ?? true }
            .values.reduce(0) { $0 + $1.size * $1.dtype.size }
    }

    @Test func hundredStepsStayCloseToFloat32AdamWWithAQuarterOfTheMomentMemory() {
        let (start, targets) = Self.problem()
        var float32 = AdamW(weightDecay: 0.01)
        var eightBit = AdamW8bit(weightDecay: 0.01)
        let learningRate: Float = 1e-2
        let reference = Self.train(&float32, start, targets: targets, steps: 0..<100, learningRate: learningRate)
        let quantized = Self.train(&eightBit, start, targets: targets, steps: 0..<100, learningRate: learningRate)
        #expect(eightBit.step == 100)
        let large = ["embed.weight", "layers.0.weight", "layers.1.weight"]
        for name in large {
            #expect(eightBit.state["m_codes." + name]?.dtype == .uint8 && eightBit.state["v_codes." + name]?.dtype == .uint8)
            let p32 = reference[name]!, p8 = quantized[name]!
            // Each step dequantizes moments that are off by at most half a codebook gap of their
            // block's absmax (0.70% for m, 0.35% for v in the top decade; coarser for entries far
            // below the block's largest), so every update differs from float32's by a few percent
            // of its size, and on this contracting problem the differences do not compound: over
            // 100 steps the 8-bit parameters drift from the float32 ones by ~3% of the distance
            // those moved (measured 2.8-3.1%). The bound is twice that.
            let moved = (p32 - start[name]!).square().sum().sqrt().item(Float.self)
            let drift = (p8 - p32).square().sum().sqrt().item(Float.self)
            #expect(drift <= 0.06 * moved, "\(name): drift \(drift), moved \(moved)")
            // It minimizes as well: the mean distance to the minimum is within 6% of float32's
            // (measured 2.7-3.3% farther, the noise of 8-bit moments).
            let distance32 = (p32 - targets[name]!).abs().mean().item(Float.self)
            let distance8 = (p8 - targets[name]!).abs().mean().item(Float.self)
            #expect(distance8 <= 1.06 * distance32, "\(name): \(distance8) vs \(distance32)")
            // And the moments really are 8-bit: almost no parameter ends bit-identical (measured ≤ 0.06%).
            let identical = (p8 .== p32).asType(.float32).mean().item(Float.self)
            #expect(identical < 0.01, "\(name): \(identical) of the elements identical to float32 AdamW's")
        }
        // The 40-element bias keeps float32 moments (under minimum8bitSize) and AdamW's exact step.
        #expect(eightBit.state["m.layers.1.bias"]?.dtype == .float32)
        #expect(quantized["layers.1.bias"]!.toArray(Float.self) == reference["layers.1.bias"]!.toArray(Float.self))
        // Moment memory: 2 bytes per element plus 8 per block of 256 against float32's 8 per element:
        // 8·10⁴ / (2·10⁴ + 8·40) = 3.94 for each 10k tensor.
        let ratio = Double(Self.stateBytes(float32.state, large)) / Double(Self.stateBytes(eightBit.state, large))
        #expect(Self.stateBytes(eightBit.state, large) == 3 * 2 * (10_000 + 4 * 40))
        #expect(ratio > 3.9 && ratio < 4, "moment memory ratio \(ratio)")
        #expect(Double(Self.stateBytes(float32.state)) / Double(eightBit.stateByteCount) > 3.9)
    }

    @Test func stateRoundTripsThroughACheckpointAndResumesBitForBit() throws {
        let (start, targets) = Self.problem()
        var optimizer = AdamW8bit(beta2: 0.99, weightDecay: 0.1)
        let middle = Self.train(&optimizer, start, targets: targets, steps: 0..<5)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adamw8bit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("optimizer.safetensors")
        try Safetensors.save(optimizer.state, to: file)
        let saved = try Safetensors.load(file).tensors
        #expect(Set(saved.keys) == Set(optimizer.state.keys))
        #expect(saved["m_codes.embed.weight"]?.dtype == .uint8 && saved["m_absmax.embed.weight"]?.shape == [40])
        #expect(saved["v_codes.layers.0.weight"]?.shape == [100, 100] && saved["v.layers.1.bias"]?.dtype == .float32)
        var resumed = AdamW8bit(beta2: 0.99, weightDecay: 0.1)
        resumed.restore(state: saved, step: optimizer.step)
        let continued = Self.train(&optimizer, middle, targets: targets, steps: 5..<10)
        let fromCheckpoint = Self.train(&resumed, middle, targets: targets, steps: 5..<10)
        for name in start.keys {
            #expect(continued[name]!.toArray(Float.self) == fromCheckpoint[name]!.toArray(Float.self), "\(name)")
        }
        let (a, b) = (optimizer.state, resumed.state)
        #expect(Set(a.keys) == Set(b.keys) && resumed.step == 10)
        for key in a.keys {
            if a[key]!.dtype == .uint8 {
                #expect(a[key]!.toArray(UInt8.self) == b[key]!.toArray(UInt8.self), "\(key)")
            } else {
                #expect(a[key]!.toArray(Float.self) == b[key]!.toArray(Float.self), "\(key)")
            }
        }
    }

    @Test func resumesFromFloat32AdamWMomentsByQuantizingThem() {
        let (start, targets) = Self.problem()
        var float32 = AdamW()
        let middle = Self.train(&float32, start, targets: targets, steps: 0..<3)
        var eightBit = AdamW8bit()
        eightBit.restore(state: float32.state, step: float32.step)
        let gradients = Self.gradients(middle, targets: targets, step: 3)
        let updated = eightBit.update(parameters: middle, gradients: gradients, learningRate: 1e-2)
        let name = "embed.weight"
        let expected = Kernels.referenceAdamW8bitUpdate(
            parameters: [middle[name]!], gradients: [gradients[name]!],
            firstMoments: [Kernels.quantizeBlockwise(float32.firstMoments[name]!, map: Kernels.signedDynamicMap)],
            secondMoments: [Kernels.quantizeBlockwise(float32.secondMoments[name]!, map: Kernels.unsignedDynamicMap)],
            weightDecays: [0], step: AdamWStep(learningRate: 1e-2, step: 4))
        #expect(updated[name]!.toArray(Float.self) == expected.parameters[0].toArray(Float.self))
        #expect(eightBit.state["m.\(name)"] == nil && eightBit.state["m_codes.\(name)"] != nil)
    }
}

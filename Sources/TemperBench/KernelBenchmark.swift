import Foundation
import TemperCore
import TemperModels

/// Times each fused kernel against MLX's own composition of the same function and, when a Python
/// with PyTorch is given, against PyTorch, at the shapes of real models (batch 4 × 256 tokens).
///
/// Rounds alternate the three implementations case by case; a round in which other processes used
/// more than `contentionLimit` of a core is dropped and counted.
public struct KernelBenchmark {
    public struct Case: Codable, Sendable {
        public var op: String
        public var model: String
        public var shape: [Int]
        public var backward: Bool
        public var repeats: Int
        /// RMSNorm's ε, the model's `rms_norm_eps`.
        public var eps: Double? = nil
        /// RoPE's θ base, the model's `rope_theta`.
        public var ropeTheta: Double? = nil
    }

    public struct Row: Codable, Sendable {
        public var op: String
        public var model: String
        public var shape: [Int]
        public var mode: String
        public var temperMilliseconds: Double
        public var mlxMilliseconds: Double
        public var torchMilliseconds: Double?
        /// torch time / Temper time: above 1 means Temper is faster.
        public var speedupOverTorch: Double?
        public var speedupOverMLX: Double
        /// Peak MLX memory of one run above what was live before it, in MB.
        public var temperPeakMB: Double
        public var mlxPeakMB: Double
        public var roundsKept: Int
        public var roundsDropped: Int
    }

    public var rounds: Int
    public var python: String?
    public var peerScript: String
    public var contentionLimit: Double
    public var cases: [Case]

    /// Ops the PyTorch peer implements (bitsandbytes' NF4 has no CPU build to compare with).
    static let peerOps: Set<String> = [
        "exp", "sigmoid", "silu", "gelu", "gelu_tanh", "tanh", "softplus", "swiglu", "softmax",
        "log_softmax", "logsumexp", "linear_cross_entropy", "adamw", "attention", "rms_norm", "rope",
    ]

    public init(rounds: Int = 3, python: String?, peerScript: String, contentionLimit: Double = 0.25, cases: [Case] = KernelBenchmark.defaultCases()) {
        self.rounds = rounds
        self.python = python
        self.peerScript = peerScript
        self.contentionLimit = contentionLimit
        self.cases = cases
    }

    /// SmolLM2-135M (hidden 576, MLP 1536, vocabulary 49152) and Qwen2.5-0.5B (hidden 896, MLP
    /// 4864, vocabulary 151936) at 4 × 256 tokens.
    public static func defaultCases() -> [Case] {
        var cases: [Case] = []
        for backward in [false, true] {
            for op in ["exp", "sigmoid", "silu", "gelu", "gelu_tanh", "tanh", "softplus"] {
                cases.append(Case(op: op, model: "SmolLM2-135M", shape: [1024, 1536], backward: backward, repeats: 5))
            }
            cases.append(Case(op: "swiglu", model: "SmolLM2-135M", shape: [1024, 1536], backward: backward, repeats: 5))
            cases.append(Case(op: "swiglu", model: "Qwen2.5-0.5B", shape: [1024, 4864], backward: backward, repeats: 5))
            for op in ["softmax", "log_softmax", "logsumexp"] {
                cases.append(Case(op: op, model: "SmolLM2-135M", shape: [1024, 49152], backward: backward, repeats: 3))
                cases.append(Case(op: op, model: "Qwen2.5-0.5B", shape: [1024, 151936], backward: backward, repeats: 2))
            }
            // [tokens, hidden]: RMSNorm with its weight, at the model's ε.
            cases.append(Case(op: "rms_norm", model: "SmolLM2-135M", shape: [1024, 576], backward: backward, repeats: 5, eps: 1e-5))
            cases.append(Case(op: "rms_norm", model: "Qwen2.5-0.5B", shape: [1024, 896], backward: backward, repeats: 5, eps: 1e-6))
            // [B, H, Hkv, T, Dh]: one layer's rotary embedding (rotate-half, positions 0..<T, the
            // model's θ) of the queries and keys, from the projections' [B, T, heads, Dh] into the
            // [B, heads, T, Dh] attention reads.
            cases.append(Case(op: "rope", model: "SmolLM2-135M", shape: [4, 9, 3, 256, 64], backward: backward, repeats: 5, ropeTheta: 10_000))
            cases.append(Case(op: "rope", model: "Qwen2.5-0.5B", shape: [4, 14, 2, 256, 64], backward: backward, repeats: 5, ropeTheta: 1_000_000))
            // [B, H, Hkv, T, Dh]: causal self-attention with grouped-query heads.
            cases.append(Case(op: "attention", model: "SmolLM2-135M", shape: [4, 9, 3, 256, 64], backward: backward, repeats: 5))
            cases.append(Case(op: "attention", model: "Qwen2.5-0.5B", shape: [4, 14, 2, 256, 64], backward: backward, repeats: 5))
            // [tokens, hidden, vocabulary]: hidden states through the (tied) LM head into the loss.
            cases.append(Case(op: "linear_cross_entropy", model: "SmolLM2-135M", shape: [1024, 576, 49152], backward: backward, repeats: 3))
            cases.append(Case(op: "linear_cross_entropy", model: "Qwen2.5-0.5B", shape: [1024, 896, 151936], backward: backward, repeats: 2))
        }
        // Optimizer and dequantization are not differentiated: [tensors, rows, columns].
        cases.append(Case(op: "adamw", model: "SmolLM2-135M", shape: [12, 576, 1536], backward: false, repeats: 5))
        cases.append(Case(op: "nf4_dequantize", model: "Qwen2.5-0.5B", shape: [1, 896, 4864], backward: false, repeats: 5))
        // Weight-only quantized products at decode shapes, [N, in, out], against MLX dequantizing
        // then multiplying (bf16 and f32: against the float32 weight's dense product, what float32
        // decode runs without them); then one decode step's products ([N]), against float32
        // Kernels.linear.
        for format in ["int8", "q4", "bf16", "f32"] {
            for rows in [1, 8] {
                for (input, output) in [(576, 1536), (1536, 576), (576, 49152)] {
                    cases.append(Case(op: "quantized_linear_\(format)", model: "SmolLM2-135M", shape: [rows, input, output], backward: false, repeats: 5))
                }
            }
            for rows in [1, 8] {
                cases.append(Case(op: "quantized_decode_\(format)", model: "SmolLM2-135M", shape: [rows], backward: false, repeats: 5))
            }
        }
        // Paged attention (inference: 16-token blocks at shuffled ids of one pool) against the
        // reference that gathers the blocks and runs Kernels.attention with a mask, [B, H, Hkv, Tq,
        // keys per row, Dh]: decode steps of 8, 1 (a long row) and 64 sequences, and a prefill chunk.
        for shape in [[8, 9, 3, 1, 512, 64], [1, 9, 3, 1, 2048, 64], [64, 9, 3, 1, 512, 64], [1, 9, 3, 512, 512, 64]] {
            cases.append(Case(op: "paged_attention", model: "SmolLM2-135M", shape: shape, backward: false, repeats: 20))
        }
        return cases
    }

    /// Block size of the paged-attention cases.
    static let pagedBlockSize = 16

    /// The fused function and MLX's composition for an op name.
    static func implementations(_ op: String) -> (arity: Int, temper: ([Tensor]) -> Tensor, mlx: ([Tensor]) -> Tensor) {
        switch op {
        case "exp": (1, { Kernels.exp($0[0]) }, { $0[0].exp() })
        case "sigmoid": (1, { Kernels.sigmoid($0[0]) }, { $0[0].sigmoid() })
        case "silu": (1, { Kernels.silu($0[0]) }, { $0[0].silu() })
        case "gelu": (1, { Kernels.gelu($0[0]) }, { $0[0].gelu() })
        case "gelu_tanh": (1, { Kernels.geluApproximate($0[0]) }, { $0[0].geluApproximate() })
        case "tanh": (1, { Kernels.tanh($0[0]) }, { $0[0].tanh() })
        case "softplus": (1, { Kernels.softplus($0[0]) }, { maximum($0[0], Tensor.zeros(like: $0[0])) + ($0[0].abs() * -1).exp().log1p() })
        case "swiglu": (2, { Kernels.swiGLU(gate: $0[0], up: $0[1]) }, { $0[0].silu() * $0[1] })
        case "softmax": (1, { Kernels.softmax($0[0]) }, { $0[0].softmax(axis: -1) })
        case "log_softmax": (1, { Kernels.logSoftmax($0[0]) }, { $0[0].logSoftmax(axis: -1) })
        default: (1, { Kernels.logSumExp($0[0]) }, { $0[0].logSumExp(axis: -1) })
        }
    }

    /// Inputs for a case: random normal tensors of its shape, or for the cross-entropy hidden
    /// states [N, D] and a weight [V, D] (targets are fixed inside the closures).
    static func inputs(for item: Case) -> [Tensor] {
        if item.op == "adamw" {
            let shape = Array(item.shape.dropFirst())
            return (0..<(4 * item.shape[0])).map { index in
                let tensor = Random.normal(shape, key: Random.key(UInt64(index)))
                return index >= 3 * item.shape[0] ? tensor.abs() : tensor  // second moments ≥ 0
            }
        }
        if item.op == "nf4_dequantize" {
            let count = item.shape.reduce(1, *)
            return [Random.uniform([count / 2], low: 0, high: 255, key: Random.key(1)).asType(.uint8),
                    Random.uniform([count / 64], low: 0.5, high: 2, key: Random.key(2))]
        }
        if item.op.hasPrefix("quantized_") {
            let format = quantizedFormat(item.op)
            return quantizedProducts(item).enumerated().flatMap { index, product -> [Tensor] in
                let keys = Random.split(Random.key(UInt64(index)), count: 2)
                let w = Random.normal([product.output, product.input], standardDeviation: 0.02, key: keys[0])
                let q = WeightOnlyQuantizedMatrix(quantizing: w, format: format)
                return [Random.normal([item.shape[0], product.input], key: keys[1]), w, q.codes, q.scales] + (q.mins.map { [$0] } ?? [])
            }
        }
        if item.op == "attention" {
            let (b, h, hkv, t, dh) = (item.shape[0], item.shape[1], item.shape[2], item.shape[3], item.shape[4])
            return [Random.normal([b, h, t, dh], key: Random.key(1)), Random.normal([b, hkv, t, dh], key: Random.key(2)),
                    Random.normal([b, hkv, t, dh], key: Random.key(3))]
        }
        if item.op == "paged_attention" {
            // q, key and value pools holding each row's blocks at shuffled ids, block table, key counts.
            let (b, h, hkv, tq, keys, dh) = (item.shape[0], item.shape[1], item.shape[2], item.shape[3], item.shape[4], item.shape[5])
            let blocks = (keys + pagedBlockSize - 1) / pagedBlockSize
            var generator = SplitMix64(seed: 1)
            let ids = (0..<(b * blocks)).map(Int32.init).shuffled(using: &generator)
            return [Random.normal([b, h, tq, dh], key: Random.key(1)),
                    Random.normal([b * blocks * pagedBlockSize, hkv, dh], key: Random.key(2)),
                    Random.normal([b * blocks * pagedBlockSize, hkv, dh], key: Random.key(3)),
                    Tensor(ids, shape: [b, blocks]), Tensor([Int32](repeating: Int32(keys), count: b))]
        }
        if item.op == "rms_norm" {
            return [Random.normal(item.shape, key: Random.key(1)),
                    Random.normal([item.shape[1]], standardDeviation: 0.1, key: Random.key(2)) + 1]
        }
        if item.op == "rope" {
            let (b, h, hkv, t, dh) = (item.shape[0], item.shape[1], item.shape[2], item.shape[3], item.shape[4])
            return [Random.normal([b, t, h, dh], key: Random.key(1)), Random.normal([b, t, hkv, dh], key: Random.key(2))]
        }
        if item.op == "linear_cross_entropy" {
            let (n, d, v) = (item.shape[0], item.shape[1], item.shape[2])
            return [Random.normal([n, d], key: Random.key(1)), Random.normal([v, d], standardDeviation: 0.02, key: Random.key(2))]
        }
        return (0..<implementations(item.op).arity).map { Random.normal(item.shape, key: Random.key(UInt64($0 + 1))) }
    }

    /// The weight format a quantized case's op name ends with.
    static func quantizedFormat(_ op: String) -> WeightOnlyQuantizedMatrix.Format {
        if op.hasSuffix("q4") { return .q4 }
        if op.hasSuffix("bf16") { return .bfloat16 }
        if op.hasSuffix("f32") { return .float32 }
        return .int8
    }

    /// The (in, out) of a quantized case's products: the case's own, or those of one SmolLM2-135M
    /// decode step (q, k, v, o, gate, up, down in each of 30 layers, then the LM head).
    static func quantizedProducts(_ item: Case) -> [(input: Int, output: Int)] {
        if item.op.hasPrefix("quantized_linear") { return [(item.shape[1], item.shape[2])] }
        let layer = [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)]
        return Array([[(input: Int, output: Int)]](repeating: layer, count: 30).joined()) + [(576, 49152)]
    }

    /// Ours and MLX's composition for a case, each mapping the inputs to the outputs to evaluate.
    static func workloads(_ item: Case) -> (temper: ([Tensor]) -> [Tensor], mlx: ([Tensor]) -> [Tensor]) {
        if item.op.hasPrefix("quantized_") {
            // Inputs per product: x, the float32 weight, codes, scales (and the q4 mins).
            let format = quantizedFormat(item.op)
            let stride = format == .q4 ? 5 : 4
            let products = quantizedProducts(item)
            func quantized(_ x: [Tensor], _ index: Int) -> WeightOnlyQuantizedMatrix {
                let at = index * stride
                return WeightOnlyQuantizedMatrix(format: format, codes: x[at + 2], scales: x[at + 3], mins: format == .q4 ? x[at + 4] : nil,
                                                 shape: [products[index].output, products[index].input])
            }
            let temper: ([Tensor]) -> [Tensor] = { x in products.indices.map { Kernels.quantizedLinear(x[$0 * stride], weights: quantized(x, $0)) } }
            // A decode step, and a float format's product, compares with the float32 weights
            // (Kernels.linear); an int8 or q4 product with MLX dequantizing the weight and multiplying.
            if item.op.hasPrefix("quantized_decode") || format.isFloat {
                return (temper, { x in products.indices.map { Kernels.linear(x[$0 * stride], weight: x[$0 * stride + 1]) } })
            }
            return (temper, { x in products.indices.map { Kernels.referenceQuantizedLinear(x[$0 * stride], weights: quantized(x, $0)) } })
        }
        switch item.op {
        case "linear_cross_entropy":
            let targets = Random.uniform([item.shape[0]], low: 0, high: Float(item.shape[2]), key: Random.key(3)).asType(.int32)
            // Forward + backward is a training step: the gradients come out of the forward pass.
            let gradients: CrossEntropyGradients = item.backward ? .hiddenAndWeight : .none
            return ({ [Kernels.linearCrossEntropy(hidden: $0[0], weight: $0[1], targets: targets, gradientsInForward: gradients).meanLoss] },
                    { [Kernels.referenceCrossEntropy(hidden: $0[0], weight: $0[1], targets: targets).meanLoss] })
        case "adamw":
            let k = item.shape[0]
            let step = AdamWStep(learningRate: 1e-3, step: 10)
            let decays = [Float](repeating: 0.01, count: k)
            func split(_ x: [Tensor]) -> [[Tensor]] { (0..<4).map { Array(x[($0 * k)..<(($0 + 1) * k)]) } }
            return ({ x in
                let g = split(x)
                let r = Kernels.adamWUpdate(parameters: g[0], gradients: g[1], firstMoments: g[2], secondMoments: g[3], weightDecays: decays, step: step)
                return r.parameters + r.firstMoments + r.secondMoments
            }, { x in
                let g = split(x)
                let r = Kernels.referenceAdamWUpdate(parameters: g[0], gradients: g[1], firstMoments: g[2], secondMoments: g[3], weightDecays: decays, step: step)
                return r.parameters + r.firstMoments + r.secondMoments
            })
        case "attention":
            let scale = 1 / Float(item.shape[4]).squareRoot()
            return ({ [Kernels.attention(queries: $0[0], keys: $0[1], values: $0[2], scale: scale, causal: true)] },
                    { [Fast.scaledDotProductAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: scale, mask: .causal)] })
        case "paged_attention":
            let scale = 1 / Float(item.shape[5]).squareRoot()
            return ({ [Kernels.pagedAttention(queries: $0[0], keyPool: $0[1], valuePool: $0[2], blockTable: $0[3], keyCounts: $0[4], blockSize: pagedBlockSize, scale: scale)] },
                    { [Kernels.referencePagedAttention(queries: $0[0], keyPool: $0[1], valuePool: $0[2], blockTable: $0[3], keyCounts: $0[4], blockSize: pagedBlockSize, scale: scale)] })
        case "rms_norm":
            // MLX's fast RMSNorm, which runs its composition (and that of its VJP) on the CPU.
            let eps = Float(item.eps ?? 1e-5)
            return ({ [Kernels.rmsNorm($0[0], weight: $0[1], eps: eps)] }, { [Fast.rmsNorm($0[0], weight: $0[1], eps: eps)] })
        case "rope":
            // Ours (like the PyTorch peer) computes the angle tables inside the call, once for the
            // queries and keys, as a forward pass does once for all layers; MLX's fast RoPE (its
            // composition on the CPU), the path off the fused kernel, derives them from θ per tensor.
            let (t, dh) = (item.shape[3], item.shape[4])
            let theta = Float(item.ropeTheta ?? 10_000)
            let rope = RotaryEmbedding(headDimension: dh, base: theta, scaling: .none)
            let positions = Tensor.arange(Double(t), dtype: .int32).reshaped(1, t)
            return ({ x in
                let (cos, sin) = rope.angles(positions: positions)
                return x.map { Kernels.ropeHeads($0, cos: cos, sin: sin) { rope.apply($0, cos: cos, sin: sin) } }
            }, { x in
                x.map { Fast.rope($0.transposed(0, 2, 1, 3), dimensions: dh, traditional: false, base: theta) }
            })
        case "nf4_dequantize":
            let shape = Array(item.shape.dropFirst())
            return ({ [Kernels.nf4Dequantize(packed: $0[0], absmax: $0[1], shape: shape)] },
                    { [Kernels.referenceNF4Dequantize(packed: $0[0], absmax: $0[1], shape: shape)] })
        default:
            let (_, temper, mlx) = implementations(item.op)
            return ({ [temper($0)] }, { [mlx($0)] })
        }
    }

    /// Seconds of `repeats` timed runs after one warm-up, and the peak memory of one run in MB.
    static func time(_ f: @escaping ([Tensor]) -> [Tensor], inputs: [Tensor], backward: Bool, repeats: Int) -> (seconds: [Double], peakMB: Double) {
        let cotangents = backward ? f(inputs).map { Random.normal($0.shape, key: Random.key(99)) } : []
        eval(cotangents)
        func run() {
            if backward {
                let (outputs, gradients) = vjp(f, primals: inputs, cotangents: cotangents)
                eval(outputs + gradients)
            } else {
                eval(f(inputs))
            }
        }
        run()
        return timedRepeats(repeats, run)
    }

    /// Seconds of each of `repeats` calls of `body`, and the peak memory above what was live
    /// before them in MB.
    static func timedRepeats(_ repeats: Int, _ body: () -> Void) -> (seconds: [Double], peakMB: Double) {
        let live = Memory.activeBytes
        Memory.resetPeak()
        let seconds = (0..<repeats).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        // Calls that allocate nothing leave the reset peak below what is live.
        return (seconds, Double(Swift.max(Memory.peakBytes, live) - live) / 1e6)
    }

    /// Seconds of `repeats` optimizer steps after two warm-up steps, and the peak memory of the
    /// timed steps in MB. `step` maps [parameters, gradients, first moments, second moments] (k
    /// each) to the new [parameters, first moments, second moments]; each step is fed the last
    /// one's results and nothing else keeps the old ones, so MLX donates their buffers and the
    /// update runs in place: training's steady state, and what PyTorch's fused AdamW does.
    static func timeSteps(_ step: @escaping ([Tensor]) -> [Tensor], inputs: [Tensor], tensors k: Int, repeats: Int) -> (seconds: [Double], peakMB: Double) {
        var state = inputs
        func advance() {
            let updated = step(state)
            state = Array(updated[..<k]) + Array(state[k..<(2 * k)]) + Array(updated[k...])
            eval(state)
        }
        // The first step cannot reuse the caller's tensors; the second is the first in place.
        advance()
        advance()
        return timedRepeats(repeats, advance)
    }

    /// Times one implementation of a case.
    static func measure(_ item: Case, _ f: @escaping ([Tensor]) -> [Tensor], inputs: [Tensor]) -> (seconds: [Double], peakMB: Double) {
        if item.op == "adamw" { return timeSteps(f, inputs: inputs, tensors: item.shape[0], repeats: item.repeats) }
        return time(f, inputs: inputs, backward: item.backward, repeats: item.repeats)
    }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let peer = try python.map { try PeerProcess(python: $0, script: peerScript) }
        var meter = ContentionMeter(peerProcess: peer?.processIdentifier)
        var temperTimes = [[Double]](repeating: [], count: cases.count)
        var peaks = [(temper: Double, mlx: Double)](repeating: (0, 0), count: cases.count)
        var mlxTimes = temperTimes
        var torchTimes = temperTimes
        var dropped = [Int](repeating: 0, count: cases.count)
        for round in 1...rounds {
            for (index, item) in cases.enumerated() {
                let (temper, mlx) = Self.workloads(item)
                let inputs = Self.inputs(for: item)
                eval(inputs)
                meter.begin()
                let oursRun = Self.measure(item, temper, inputs: inputs)
                let theirsRun = Self.measure(item, mlx, inputs: inputs)
                let (ours, theirs) = (median(oursRun.seconds), median(theirsRun.seconds))
                peaks[index] = (oursRun.peakMB, theirsRun.peakMB)
                let torch = try peer.flatMap { peer -> Double? in
                    guard Self.peerOps.contains(item.op) else { return nil }
                    let answer = try peer.request(item)
                    return median(answer["seconds"] as? [Double] ?? [])
                }
                let others = meter.otherCores()
                if others > contentionLimit {
                    dropped[index] += 1
                    progress(String(format: "round %d %@ %@: dropped, other processes used %.2f cores", round, item.op, item.model, others))
                    continue
                }
                temperTimes[index].append(ours)
                mlxTimes[index].append(theirs)
                if let torch { torchTimes[index].append(torch) }
                progress(String(format: "round %d %@ %@ %@: temper %.2f ms, mlx %.2f ms%@ (others %.2f cores)", round, item.op, item.model, item.backward ? "fwd+bwd" : "fwd", ours * 1000, theirs * 1000, torch.map { String(format: ", torch %.2f ms", $0 * 1000) } ?? "", others))
            }
        }
        return cases.indices.compactMap { index in
            let item = cases[index]
            guard !temperTimes[index].isEmpty else { return nil }
            let ours = median(temperTimes[index]) * 1000
            let theirs = median(mlxTimes[index]) * 1000
            let torch = torchTimes[index].isEmpty ? nil : median(torchTimes[index]) * 1000
            return Row(op: item.op, model: item.model, shape: item.shape, mode: item.backward ? "forward+backward" : "forward", temperMilliseconds: ours, mlxMilliseconds: theirs, torchMilliseconds: torch, speedupOverTorch: torch.map { $0 / ours }, speedupOverMLX: theirs / ours, temperPeakMB: peaks[index].temper, mlxPeakMB: peaks[index].mlx, roundsKept: temperTimes[index].count, roundsDropped: dropped[index])
        }
    }

    public static func table(_ rows: [Row]) -> String {
        let header = ["op", "model", "shape", "mode", "temper ms", "MLX ms", "torch ms", "×torch", "×MLX", "temper MB", "MLX MB", "rounds"]
        let body = rows.map { row in
            [row.op, row.model, row.shape.map(String.init).joined(separator: "x"), row.mode,
             String(format: "%.2f", row.temperMilliseconds), String(format: "%.2f", row.mlxMilliseconds),
             row.torchMilliseconds.map { String(format: "%.2f", $0) } ?? "-",
             row.speedupOverTorch.map { String(format: "%.2f", $0) } ?? "-",
             String(format: "%.1f", row.speedupOverMLX), String(format: "%.0f", row.temperPeakMB),
             String(format: "%.0f", row.mlxPeakMB), "\(row.roundsKept)/\(row.roundsKept + row.roundsDropped)"]
        }
        return formatTable(header: header, rows: body)
    }
}

/// Left-aligned text columns, two spaces apart.
func formatTable(header: [String], rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { cells in
        cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}

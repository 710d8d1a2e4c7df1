import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

/// The fused linear cross-entropy against the materialized composition with MLX's ops (in float64).
@Suite struct CrossEntropyKernelTests {
    static let tolerance = Tolerance(absolute: 2e-6, relative: 1e-5)

    struct Problem {
        var hidden: Tensor
        var weight: Tensor
        var targets: Tensor
        var tokenWeights: Tensor?
    }

    static func problem(tokens: Int, hidden: Int, vocabulary: Int, ignored: Set<Int> = [], weighted: Bool = false, seed: UInt64 = 1) -> Problem {
        let keys = Random.split(Random.key(seed), count: 3)
        var ids = Random.uniform([tokens], low: 0, high: Float(vocabulary), key: keys[2]).asType(.int32).toArray(Int32.self)
        for row in ignored { ids[row] = -100 }
        return Problem(
            hidden: Random.normal([tokens, hidden], key: keys[0]),
            weight: Random.normal([vocabulary, hidden], standardDeviation: 0.5, key: keys[1]),
            targets: Tensor(ids),
            tokenWeights: weighted ? Random.uniform([tokens], low: 0.5, high: 2, key: Random.key(seed + 9)) : nil)
    }

    /// Checks forward values and gradients of hidden and weight through both the loss and the
    /// log-probs (with a random cotangent on the log-probs, as DPO/GRPO differentiate them).
    static func check(_ p: Problem, tokenChunk: Int, vocabularyChunk: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let fused = Kernels.linearCrossEntropy(hidden: p.hidden, weight: p.weight, targets: p.targets, tokenWeights: p.tokenWeights, entropy: true, tokenChunk: tokenChunk, vocabularyChunk: vocabularyChunk)
        let reference = Kernels.referenceCrossEntropy(hidden: p.hidden.asType(.float64), weight: p.weight.asType(.float64), targets: p.targets, tokenWeights: p.tokenWeights?.asType(.float64), entropy: true)
        for (label, got, want) in [("loss", fused.lossSum, reference.lossSum), ("weight sum", fused.weightSum, reference.weightSum), ("log-probs", fused.logProbabilities, reference.logProbabilities), ("logsumexp", fused.logSumExp, reference.logSumExp), ("entropy", fused.entropy, reference.entropy)] {
            assertClose(got, want.asType(.float32), tolerance: Tolerance(absolute: 1e-5, relative: 1e-5), label, sourceLocation: sourceLocation)
        }
        let seed = Random.normal([p.hidden.dim(0)], key: Random.key(42))
        func objective(_ output: CrossEntropyOutput, _ seed: Tensor) -> Tensor {
            output.meanLoss * 0.7 + (output.logProbabilities * seed).sum()
        }
        let gotGradients = grad { objective(Kernels.linearCrossEntropy(hidden: $0[0], weight: $0[1], targets: p.targets, tokenWeights: p.tokenWeights, tokenChunk: tokenChunk, vocabularyChunk: vocabularyChunk), seed) }([p.hidden, p.weight])
        let wantGradients = grad { objective(Kernels.referenceCrossEntropy(hidden: $0[0], weight: $0[1], targets: p.targets, tokenWeights: p.tokenWeights?.asType(.float64)), seed.asType(.float64)) }([p.hidden.asType(.float64), p.weight.asType(.float64)])
        assertClose(gotGradients[0], wantGradients[0].asType(.float32), tolerance: tolerance, "d hidden", sourceLocation: sourceLocation)
        assertClose(gotGradients[1], wantGradients[1].asType(.float32), tolerance: tolerance, "d weight", sourceLocation: sourceLocation)
    }

    @Test func singleChunk() {
        Self.check(Self.problem(tokens: 6, hidden: 16, vocabulary: 40), tokenChunk: 256, vocabularyChunk: 4096)
    }

    @Test func manyOddChunksWithIgnoredRowsAndWeights() {
        let p = Self.problem(tokens: 37, hidden: 24, vocabulary: 301, ignored: [0, 5, 6, 36], weighted: true, seed: 2)
        Self.check(p, tokenChunk: 8, vocabularyChunk: 64)
        Self.check(p, tokenChunk: 5, vocabularyChunk: 7)
    }

    @Test func oneTokenAndAllIgnored() {
        Self.check(Self.problem(tokens: 1, hidden: 8, vocabulary: 9, seed: 3), tokenChunk: 4, vocabularyChunk: 4)
        let none = Self.problem(tokens: 4, hidden: 8, vocabulary: 9, ignored: [0, 1, 2, 3], seed: 4)
        let output = Kernels.linearCrossEntropy(hidden: none.hidden, weight: none.weight, targets: none.targets)
        #expect(output.lossSum.item(Float.self) == 0)
        #expect(output.weightSum.item(Float.self) == 0)
        #expect(output.meanLoss.item(Float.self) == 0)
        let g = grad { Kernels.linearCrossEntropy(hidden: $0[0], weight: none.weight, targets: none.targets).meanLoss }([none.hidden])[0]
        #expect(g.abs().max().item(Float.self) == 0)
    }

    @Test func frozenWeightGetsNoWork() {
        // Differentiating only the hidden states (LoRA: the LM head is frozen).
        let p = Self.problem(tokens: 10, hidden: 16, vocabulary: 50, seed: 5)
        let (_, gradients) = valueAndGrad({ [Kernels.linearCrossEntropy(hidden: $0[0], weight: $0[1], targets: p.targets).lossSum] }, argumentNumbers: [0])([p.hidden, p.weight])
        let want = grad { Kernels.referenceCrossEntropy(hidden: $0[0], weight: p.weight, targets: p.targets).lossSum }([p.hidden])[0]
        #expect(gradients.count == 1)
        assertClose(gradients[0], want, tolerance: Self.tolerance)
    }

    /// Gradients computed during the forward (training steps): the loss values are unchanged and the
    /// gradients of the mean loss (a loss cotangent other than 1) match, with ignored rows and token
    /// weights, for the hidden states alone and with the weight; asking for the weight when only the
    /// hidden states' gradient was precomputed falls back to the recompute.
    @Test func gradientsComputedInTheForward() {
        let p = Self.problem(tokens: 300, hidden: 24, vocabulary: 301, ignored: [0, 5, 6, 299], weighted: true, seed: 6)
        let reference = { (t: [Tensor]) in
            Kernels.referenceCrossEntropy(hidden: t[0], weight: t[1], targets: p.targets, tokenWeights: p.tokenWeights?.asType(.float64)).meanLoss
        }
        let want = grad(reference)([p.hidden.asType(.float64), p.weight.asType(.float64)]).map { $0.asType(.float32) }
        for mode in [CrossEntropyGradients.hidden, .hiddenAndWeight] {
            let fused = { (t: [Tensor]) in
                Kernels.linearCrossEntropy(hidden: t[0], weight: t[1], targets: p.targets, tokenWeights: p.tokenWeights, gradientsInForward: mode)
            }
            let plain = Kernels.linearCrossEntropy(hidden: p.hidden, weight: p.weight, targets: p.targets, tokenWeights: p.tokenWeights)
            let output = fused([p.hidden, p.weight])
            #expect(output.lossSum.item(Float.self) == plain.lossSum.item(Float.self), "\(mode)")
            assertClose(output.logProbabilities, plain.logProbabilities, tolerance: Self.tolerance, "\(mode) log-probs")
            let got = grad { fused($0).meanLoss }([p.hidden, p.weight])
            assertClose(got[0], want[0], tolerance: Self.tolerance, "\(mode) d hidden")
            assertClose(got[1], want[1], tolerance: Self.tolerance, "\(mode) d weight")
            // Rows without a target get exactly zero.
            #expect(got[0][5].abs().max().item(Float.self) == 0)
        }
    }

    @Test func badShapesThrowInsideTheErrorScope() {
        let p = Self.problem(tokens: 4, hidden: 8, vocabulary: 9)
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.linearCrossEntropy(hidden: p.hidden, weight: Tensor.ones([9, 7]), targets: p.targets).lossSum }
        }
        #expect(throws: MLXError.self) {
            try withErrorHandling { Kernels.linearCrossEntropy(hidden: p.hidden, weight: p.weight, targets: Tensor([1, 2] as [Int32])).lossSum }
        }
    }
}

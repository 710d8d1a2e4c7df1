import Foundation
import TemperCore
@testable import TemperModels
import Testing

/// Deterministic logits in [-scale, scale).
private func randomLogits(_ count: Int, seed: UInt64, scale: Float = 5) -> [Float] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in (Float(generator.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
}

/// log_softmax in Double, the reference.
private func logSoftmax(_ logits: [Float]) -> [Double] {
    let top = Double(logits.max()!)
    let normaliser = top + log(logits.reduce(0.0) { $0 + exp(Double($1) - top) })
    return logits.map { Double($0) - normaliser }
}

/// Draws `count` tokens with one sampler and returns how often each came back.
private func histogram(
    _ logits: [Float], _ parameters: RequestSamplingParameters, count: Int, seed: UInt64 = 7
) -> (counts: [Int], logProbs: [Int: Float]) {
    var sampler = RequestSampler(parameters: parameters, seed: seed)
    var counts = [Int](repeating: 0, count: logits.count)
    var logProbs: [Int: Float] = [:]
    for _ in 0..<count {
        let sampled = sampler.sample(logits: logits)
        counts[sampled.token] += 1
        logProbs[sampled.token] = sampled.logProb
    }
    return (counts, logProbs)
}

@Suite("TokenSampler: the engine's per-request sampler (RequestSampler)")
struct TokenSamplerTests {
    /// p = [0.4, 0.3, 0.15, 0.1, 0.05].
    static let handMade: [Float] = [0.4, 0.3, 0.15, 0.1, 0.05].map { Float(log(Double($0))) }

    @Test("greedy equals argmax, with log-prob 0 under its point mass")
    func greedyIsArgmax() {
        for seed in UInt64(0)..<20 {
            let logits = randomLogits(500, seed: seed)
            var sampler = RequestSampler(parameters: .greedy, seed: seed)
            let sampled = sampler.sample(logits: logits)
            #expect(sampled.token == logits.indices.max { logits[$0] < logits[$1] }!)
            #expect(sampled.logProb == 0)
            #expect(sampled.candidatePoolSize == 0)
        }
    }

    @Test("top-k = 1 equals greedy at any temperature")
    func topKOneIsGreedy() {
        for seed in UInt64(0)..<20 {
            let logits = randomLogits(300, seed: seed)
            var greedy = RequestSampler(parameters: .greedy, seed: 0)
            var topOne = RequestSampler(parameters: .init(temperature: 1.5, topK: 1), seed: seed)
            let sampled = topOne.sample(logits: logits)
            #expect(sampled.token == greedy.sample(logits: logits).token)
            #expect(sampled.logProb == 0)
            #expect(sampled.candidatePoolSize == 1)
        }
    }

    @Test("a fixed seed gives the same tokens back; two seeds differ")
    func seeds() {
        let logits = randomLogits(200, seed: 1, scale: 1)
        let parameters = RequestSamplingParameters(temperature: 1, topP: 0.95)
        func run(_ seed: UInt64) -> [Int] {
            var sampler = RequestSampler(parameters: parameters, seed: seed)
            return (0..<50).map { _ in sampler.sample(logits: logits).token }
        }
        #expect(run(42) == run(42))
        #expect(run(42) != run(43))
    }

    @Test("top-p keeps exactly the nucleus, with the renormalised frequencies")
    func topPNucleus() {
        // 0.4 + 0.3 = 0.7 < 0.8 ≤ 0.85: the nucleus is {0, 1, 2}.
        let draws = 20000
        let (counts, logProbs) = histogram(Self.handMade, .init(temperature: 1, topP: 0.8), count: draws)
        #expect(counts[3] == 0 && counts[4] == 0)
        let expected = [0.4, 0.3, 0.15].map { $0 / 0.85 }
        for (token, probability) in expected.enumerated() {
            // 5 standard deviations of a binomial frequency (about 0.017 here).
            let tolerance = 5 * (probability * (1 - probability) / Double(draws)).squareRoot()
            #expect(abs(Double(counts[token]) / Double(draws) - probability) < tolerance)
            #expect(abs(Double(logProbs[token]!) - log(probability)) < 1e-6)
        }
    }

    @Test("min-p keeps tokens at least min_p × the top probability, renormalised")
    func minP() {
        // min_p 0.5: threshold 0.2, so {0, 1} with 0.4/0.7 and 0.3/0.7.
        let draws = 20000
        let (counts, logProbs) = histogram(Self.handMade, .init(temperature: 1, minP: 0.5), count: draws)
        #expect(counts[2] == 0 && counts[3] == 0 && counts[4] == 0)
        for (token, probability) in [0.4 / 0.7, 0.3 / 0.7].enumerated() {
            let tolerance = 5 * (probability * (1 - probability) / Double(draws)).squareRoot()
            #expect(abs(Double(counts[token]) / Double(draws) - probability) < tolerance)
            #expect(abs(Double(logProbs[token]!) - log(probability)) < 1e-6)
        }
    }

    @Test("temperature, top-k, top-p and min-p together stay inside their set")
    func combined() {
        // Temperature 2 gives weights ∝ sqrt(p) = [.632, .548, .387, .316, .224]; top-k 4 drops token 4
        // (mass 1.884 left); top-p 0.6 needs 1.130: .632 < 1.130 ≤ .632 + .548, so {0, 1}.
        let (counts, _) = histogram(Self.handMade, .init(temperature: 2, topK: 4, topP: 0.6), count: 5000)
        #expect(counts[2] == 0 && counts[3] == 0 && counts[4] == 0)
        #expect(counts[0] > 0 && counts[1] > 0)
    }

    @Test("penalties change exactly the expected logits")
    func penalties() {
        let parameters = RequestSamplingParameters(
            repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25, logitBias: [4: -1])
        var sampler = RequestSampler(parameters: parameters, seed: 0, prompt: [1])
        sampler.observe(2)
        sampler.observe(2)
        sampler.observe(3)
        var logits: [Float] = [2, 3, -2, 4, 1]
        sampler.applyPenalties(to: &logits)
        // 0: untouched; 1 (prompt): 3/2; 2 (twice): -2·2 - 0.5 - 2·0.25; 3 (once): 4/2 - 0.5 - 0.25; 4: 1 - 1.
        #expect(logits == [2, 1.5, -5, 1.25, 0])
        // The greedy choice follows the penalised logits and is counted.
        let sampled = sampler.sample(logits: [2, 3, -2, 4, 1])
        #expect(sampled.token == 0)
        #expect(sampler.outputCounts == [0: 1, 2: 2, 3: 1])
        // Without penalties token 3 wins.
        var plain = RequestSampler(parameters: .greedy, seed: 0)
        #expect(plain.sample(logits: [2, 3, -2, 4, 1]).token == 3)
    }

    @Test("a logit bias of -inf bans a token")
    func banned() {
        let (counts, _) = histogram(Self.handMade, .init(temperature: 1, logitBias: [0: -.infinity]), count: 5000)
        #expect(counts[0] == 0)
        #expect(counts[1...].allSatisfy { $0 > 0 })
        var greedy = RequestSampler(parameters: .init(logitBias: [0: -.infinity]), seed: 0)
        #expect(greedy.sample(logits: Self.handMade).token == 1)
    }

    @Test("raw log-probs are log_softmax of the unmodified logits within 1e-6")
    func rawLogProbs() {
        let logits = randomLogits(1000, seed: 3)
        let reference = logSoftmax(logits)
        let mlx = Tensor(logits).logSoftmax().toArray(Float.self)
        var sampler = RequestSampler(
            parameters: .init(
                temperature: 0.7, topP: 0.9, repetitionPenalty: 1.3, frequencyPenalty: 0.4, logitBias: [5: 3]),
            seed: 11, prompt: [1, 2, 3])
        for _ in 0..<50 {
            let sampled = sampler.sample(logits: logits)
            #expect(abs(Double(sampled.rawLogProb) - reference[sampled.token]) < 1e-6)
            #expect(abs(sampled.rawLogProb - mlx[sampled.token]) < 1e-5)
        }
    }

    @Test("top-N alternatives are the most likely raw tokens, sorted, ties by lower id")
    func alternatives() {
        var logits = randomLogits(1000, seed: 4)
        logits[10] = 9
        logits[20] = 9  // a tie: 10 comes first
        logits[30] = 8
        let reference = logSoftmax(logits)
        var sampler = RequestSampler(parameters: .init(temperature: 1, topK: 3, alternatives: 5), seed: 0)
        let sampled = sampler.sample(logits: logits)
        let expected = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        #expect(sampled.alternatives.map(\.token) == Array(expected.prefix(5)))
        #expect(sampled.alternatives.prefix(3).map(\.token) == [10, 20, 30])
        for alternative in sampled.alternatives {
            #expect(abs(Double(alternative.logProb) - reference[alternative.token]) < 1e-6)
        }
        #expect(zip(sampled.alternatives, sampled.alternatives.dropFirst()).allSatisfy { $0.logProb >= $1.logProb })
        #expect([10, 20, 30].contains(sampled.token))
    }

    @Test("batched sampling of [B, V] equals sampling each row alone")
    func batchedEqualsPerRow() {
        let vocabulary = 300
        let parameters: [RequestSamplingParameters] = [
            .greedy,
            .init(temperature: 0.8, topK: 20, alternatives: 3),
            .init(temperature: 1, topP: 0.9, presencePenalty: 0.5),
            .init(temperature: 1.2, minP: 0.05, repetitionPenalty: 1.2, logitBias: [7: 2]),
        ]
        var batched = parameters.enumerated().map {
            RequestSampler(parameters: $1, seed: UInt64($0) + 100, prompt: [1, 2])
        }
        var alone = batched
        for step in UInt64(0)..<10 {
            let rows = (0..<parameters.count).map { randomLogits(vocabulary, seed: step * 10 + UInt64($0)) }
            let logits = Tensor(rows.flatMap { $0 }, shape: [parameters.count, vocabulary])
            let fromBatch = RequestSampler.sample(logits: logits, requests: &batched)
            for row in rows.indices {
                #expect(fromBatch[row] == alone[row].sample(logits: rows[row]))
            }
            // A bf16 row through the tensor path matches its float copy.
            let row = Tensor(rows[0]).asType(.bfloat16)
            var copy = RequestSampler(parameters: .greedy, seed: 0)
            var again = RequestSampler(parameters: .greedy, seed: 0)
            #expect(copy.sample(logits: row) == again.sample(logits: row.toArray(Float.self)))
        }
    }

    @Test("a 49152-token vocabulary needs no full sort: the candidate pool stays bounded")
    func largeVocabulary() {
        // A Zipf law (p ∝ rank^-1.5, like a language model's next-token distribution) over shuffled ids:
        // the top 1024 tokens hold about 98% of the mass.
        let vocabulary = 49152
        var ids = Array(0..<vocabulary)
        var generator = SplitMix64(seed: 5)
        for index in stride(from: vocabulary - 1, to: 0, by: -1) {
            ids.swapAt(index, generator.next(below: index + 1))
        }
        var logits = [Float](repeating: 0, count: vocabulary)
        for (rank, id) in ids.enumerated() { logits[id] = -1.5 * Float(log(Double(rank + 1))) }
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let probabilities = logSoftmax(logits).map { exp($0) }
        // The exact nucleus for top_p 0.9, by a full sort in the test only.
        var cumulative = 0.0
        var nucleus = Set<Int>()
        for token in order {
            nucleus.insert(token)
            cumulative += probabilities[token]
            if cumulative >= 0.9 { break }
        }
        #expect(nucleus.count < RequestSampler.candidatePoolLimit)
        var sampler = RequestSampler(parameters: .init(temperature: 1, topP: 0.9), seed: 9)
        for _ in 0..<20 {
            let sampled = sampler.sample(logits: logits)
            #expect(sampled.candidatePoolSize == RequestSampler.candidatePoolLimit)
            #expect(nucleus.contains(sampled.token))
        }
        var topK = RequestSampler(parameters: .init(temperature: 1, topK: 50, topP: 0.95), seed: 9)
        let sampled = topK.sample(logits: logits)
        #expect(sampled.candidatePoolSize == 50)
        #expect(order.prefix(50).contains(sampled.token))
        // Temperature alone draws over the vocabulary in one pass, with nothing sorted.
        var plain = RequestSampler(parameters: .init(temperature: 1), seed: 9)
        #expect(plain.sample(logits: logits).candidatePoolSize == 0)
    }

    @Test("a nucleus larger than the first pool grows it and stays exact")
    func growingPool() {
        // 3000 equal tokens hold nearly all the mass: the nucleus is 2700 of them (ties by lower id).
        var logits = [Float](repeating: -30, count: 49152)
        for token in 0..<3000 { logits[token] = 0 }
        var sampler = RequestSampler(parameters: .init(temperature: 1, topP: 0.9), seed: 2)
        var largest = 0
        for _ in 0..<200 {
            let sampled = sampler.sample(logits: logits)
            #expect(sampled.candidatePoolSize == 4096)
            #expect(sampled.token < 2700)
            #expect(abs(Double(sampled.logProb) - log(1.0 / 2700)) < 1e-5)
            largest = max(largest, sampled.token)
        }
        #expect(largest > 1024)
    }

    @Test("the O(V) selection equals the head of a full sort, ties by lower id")
    func selection() {
        var logits = randomLogits(5000, seed: 6).map { ($0 * 4).rounded() / 4 }  // many ties
        logits[17] = -.infinity
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        for count in [1, 2, 7, 100, 1024, 4999, 5000] {
            #expect(RequestSampler.topIndices(logits, count: count, sorted: true) == Array(order.prefix(count)))
            #expect(RequestSampler.topIndices(logits, count: count, sorted: false) == order.prefix(count).sorted())
        }
    }
}

@Suite("StopStringMatcher: incremental stop strings")
struct StopStringMatcherTests {
    typealias Output = StopStringMatcher.Output

    @Test("a stop string inside one delta")
    func singleDelta() {
        var matcher = StopStringMatcher(stops: ["</s>"])
        #expect(matcher.feed("Hello</s>world") == Output(text: "Hello", stop: "</s>"))
        #expect(matcher.stopped == "</s>")
        #expect(matcher.feed("more") == Output(text: ""))
        #expect(matcher.finish() == Output(text: ""))
    }

    @Test("a stop string split across three deltas")
    func splitAcrossDeltas() {
        var matcher = StopStringMatcher(stops: ["</s>"])
        #expect(matcher.feed("Hi <") == Output(text: "Hi "))
        #expect(matcher.heldBack == "<")
        #expect(matcher.feed("/") == Output(text: ""))
        #expect(matcher.heldBack == "</")
        #expect(matcher.feed("s>tail") == Output(text: "", stop: "</s>"))
    }

    @Test("overlapping prefixes: 'aab' after 'aa', and 'ab' against 'aab'")
    func overlappingPrefixes() {
        var matcher = StopStringMatcher(stops: ["aab"])
        #expect(matcher.feed("a") == Output(text: ""))
        #expect(matcher.feed("a") == Output(text: ""))
        #expect(matcher.feed("a") == Output(text: "a"))
        #expect(matcher.feed("b!") == Output(text: "", stop: "aab"))

        // Both end at the same scalar: the longer one starts first and wins.
        var both = StopStringMatcher(stops: ["ab", "aab"])
        #expect(both.feed("xa") == Output(text: "x"))
        #expect(both.feed("ab") == Output(text: "", stop: "aab"))
        // The one that ends first wins.
        var nested = StopStringMatcher(stops: ["abc", "b"])
        #expect(nested.feed("xabc") == Output(text: "xa", stop: "b"))
    }

    @Test("held-back text is released once it stops matching, or at the end")
    func releaseHeldBack() {
        var matcher = StopStringMatcher(stops: ["stop"])
        #expect(matcher.feed("a st") == Output(text: "a "))
        #expect(matcher.feed("ar") == Output(text: "star"))
        #expect(matcher.heldBack == "")
        #expect(matcher.feed("s sto") == Output(text: "s "))
        #expect(matcher.finish() == Output(text: "sto"))
        #expect(matcher.stopped == nil)
        // No stop strings: everything passes straight through.
        var none = StopStringMatcher(stops: [""])
        #expect(none.feed("abc") == Output(text: "abc"))
    }

    @Test("unicode stop strings across deltas")
    func unicode() {
        var matcher = StopStringMatcher(stops: ["終わり", "🛑"])
        #expect(matcher.feed("こんにちは終") == Output(text: "こんにちは"))
        #expect(matcher.feed("わ") == Output(text: ""))
        #expect(matcher.feed("り残り") == Output(text: "", stop: "終わり"))
        var emoji = StopStringMatcher(stops: ["🛑"])
        #expect(emoji.feed("café ") == Output(text: "café "))
        #expect(emoji.feed("naïve 🛑 x") == Output(text: "naïve ", stop: "🛑"))
    }

    @Test("streamed text equals the full text before the stop, whatever the split")
    func anySplit() {
        let text = "one two <|end|> three"
        for size in 1...6 {
            var matcher = StopStringMatcher(stops: ["<|end|>", "<|eot|>"])
            var emitted = ""
            var stop: String?
            var start = text.startIndex
            while start < text.endIndex && stop == nil {
                let end = text.index(start, offsetBy: size, limitedBy: text.endIndex) ?? text.endIndex
                let output = matcher.feed(String(text[start..<end]))
                emitted += output.text
                stop = output.stop
                start = end
            }
            #expect(emitted == "one two ")
            #expect(stop == "<|end|>")
        }
    }
}

import Foundation
import TemperCore

/// How the next token is chosen from logits, applied in transformers' order: repetition penalty,
/// temperature, top-k, top-p, min-p, then a draw (or argmax when temperature is 0).
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy.
    public var temperature: Float
    /// Keep the k most likely tokens (0 = off).
    public var topK: Int
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    public var topP: Float
    /// Drop tokens less likely than minP × the top probability (0 = off).
    public var minP: Float
    /// > 1 discourages tokens already in the prompt or output (CTRL's rule, as transformers).
    public var repetitionPenalty: Float

    public init(
        temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
        repetitionPenalty: Float = 1
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    public static let greedy = SamplingParameters()
}

/// Picks the next token from one row of logits.
public struct TokenSampler {
    public var parameters: SamplingParameters
    private var generator: SplitMix64

    public init(parameters: SamplingParameters, seed: UInt64) {
        self.parameters = parameters
        generator = SplitMix64(seed: seed)
    }

    /// - Parameter history: the tokens the repetition penalty applies to (prompt and output).
    public mutating func next(logits row: [Float], history: [Int]) -> Int {
        var logits = row
        if parameters.repetitionPenalty != 1 {
            let penalty = parameters.repetitionPenalty
            for token in Set(history) where token >= 0 && token < logits.count {
                logits[token] = logits[token] < 0 ? logits[token] * penalty : logits[token] / penalty
            }
        }
        if parameters.temperature <= 0 { return Self.argmax(logits) }

        // Candidates sorted by logit, best first; top-k cuts the list before anything else.
        var candidates = Array(0..<logits.count)
        let k = parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count
        if k < logits.count {
            candidates = Array(candidates.partialSorted(k) { logits[$0] > logits[$1] })
        } else {
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        }
        let temperature = parameters.temperature
        let top = logits[candidates[0]] / temperature
        var probabilities = candidates.map { Foundation.exp(Double(logits[$0] / temperature - top)) }
        let total = probabilities.reduce(0, +)
        probabilities = probabilities.map { $0 / total }

        var keep = probabilities.count
        if parameters.topP < 1 {
            var cumulative = 0.0
            for (index, probability) in probabilities.enumerated() {
                cumulative += probability
                if cumulative >= Double(parameters.topP) {
                    keep = index + 1
                    break
                }
            }
        }
        if parameters.minP > 0 {
            let threshold = Double(parameters.minP) * probabilities[0]
            keep = min(keep, max(1, probabilities.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        let kept = probabilities.prefix(keep)
        let draw = Double.random(in: 0..<kept.reduce(0, +), using: &generator)
        var cumulative = 0.0
        for (index, probability) in kept.enumerated() {
            cumulative += probability
            if draw < cumulative { return candidates[index] }
        }
        return candidates[keep - 1]
    }

    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return best
    }
}

extension Array {
    /// The first k elements in the order `areInIncreasingOrder`, without sorting the rest.
    func partialSorted(_ k: Int, by areInIncreasingOrder: (Element, Element) -> Bool) -> ArraySlice<Element> {
        guard k < count else { return self.sorted(by: areInIncreasingOrder)[...] }
        var heap = Array(prefix(k)).sorted(by: areInIncreasingOrder)
        for element in self[k...] where areInIncreasingOrder(element, heap[k - 1]) {
            var index = k - 1
            while index > 0 && areInIncreasingOrder(element, heap[index - 1]) {
                heap[index] = heap[index - 1]
                index -= 1
            }
            heap[index] = element
        }
        return heap[...]
    }
}

import Foundation
import TemperCore

/// How one request of the step-wise engine picks its tokens. The fields shared with
/// `SamplingParameters` keep their names and meaning; the rest follow OpenAI's API.
///
/// Order of application (vLLM's): repetition penalty, presence and frequency penalties, logit bias,
/// then temperature, top-k, top-p, min-p, and a draw (argmax when temperature is 0).
public struct RequestSamplingParameters: Sendable, Equatable {
    /// 0 means greedy.
    public var temperature: Float
    /// Keep the k most likely tokens (0 = off).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = off).
    public var topP: Float
    /// Drop tokens less likely than minP × the top probability (0 = off).
    public var minP: Float
    /// transformers' (CTRL's) rule over the prompt and the output: positive logits of tokens seen are
    /// divided by it, negative ones multiplied (1 = off).
    public var repetitionPenalty: Float
    /// OpenAI's rule over the output: subtract `presencePenalty` from every token generated at least once.
    public var presencePenalty: Float
    /// OpenAI's rule over the output: subtract `frequencyPenalty × count` from every token generated.
    public var frequencyPenalty: Float
    /// Added to the logit of each token; `-.infinity` bans a token.
    public var logitBias: [Int: Float]
    /// How many of the most likely alternatives (by the raw distribution) to report per token (0 = none).
    public var alternatives: Int

    public init(
        temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
        repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
        logitBias: [Int: Float] = [:], alternatives: Int = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.alternatives = alternatives
    }

    /// The same choices as the offline sampler's parameters.
    public init(_ parameters: SamplingParameters) {
        self.init(
            temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
            minP: parameters.minP, repetitionPenalty: parameters.repetitionPenalty)
    }

    public static let greedy = RequestSamplingParameters()

    /// Whether penalties or a logit bias change the logits before the draw.
    var changesLogits: Bool {
        repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 || !logitBias.isEmpty
    }
}

/// A token and its log-probability under the raw distribution (log-softmax of the unmodified logits).
public struct TokenLogProb: Sendable, Equatable {
    public var token: Int
    public var logProb: Float

    public init(token: Int, logProb: Float) {
        self.token = token
        self.logProb = logProb
    }
}

/// What one sampling step chose.
public struct SampledToken: Sendable, Equatable {
    public var token: Int
    /// Log-probability under the final sampling distribution (after penalties, bias, temperature and
    /// truncation); 0 for greedy, whose distribution is a point mass.
    public var logProb: Float
    /// Log-probability under the model's raw distribution, log_softmax of the unmodified logits (what
    /// GRPO's importance ratios need).
    public var rawLogProb: Float
    /// The `alternatives` most likely tokens of the raw distribution, most likely first (ties: lower id).
    public var alternatives: [TokenLogProb]
    /// How many candidates were selected and sorted to apply top-k/top-p; 0 when no sort was needed
    /// (greedy, or a draw over the whole vocabulary). Never the vocabulary unless top-p needs it.
    public var candidatePoolSize: Int
}

/// The sampler of one request of the step-wise engine: its own seeded generator and its own token
/// counts, so that what it draws depends only on its seed, its prompt and the logit rows it is given,
/// never on the other rows of a batch.
///
/// Nothing sorts the vocabulary. Candidates come from an O(V) selection (`topIndices`: a three-way
/// quickselect finds the M-th largest logit, one pass collects the tokens above it, ties by lower id),
/// and only that pool is sorted:
/// - top-k alone: the pool is the top-k set; it is not even sorted.
/// - top-p: the pool starts at the `candidatePoolLimit` (1024) largest logits (or the top-k set if
///   smaller). The normaliser Z is computed exactly over the whole vocabulary (or the top-k set) in
///   O(V). Every token outside the pool has a logit no larger than every token inside it, so the pool,
///   sorted, is exactly the head of the vocabulary in descending order: if the running mass reaches
///   top_p · Z inside the pool, the nucleus is exact, the same set a full sort would give. Otherwise
///   the pool grows fourfold and the search repeats (only a nearly flat distribution, whose nucleus
///   really holds thousands of tokens, pays for it).
/// - min-p needs no order at all: it keeps the tokens whose probability is at least min_p × the top
///   one, a threshold on the logit known from the maximum.
/// - temperature alone (or with min-p): one O(V) inverse-CDF pass over the vocabulary in id order.
public struct RequestSampler: Sendable {
    /// The first candidate pool of a top-p search without top-k.
    public static let candidatePoolLimit = 1024

    public var parameters: RequestSamplingParameters
    private var generator: SplitMix64
    /// Tokens of the prompt, for the repetition penalty.
    private var promptTokens: Set<Int>
    /// How often each token was generated, for every penalty.
    public private(set) var outputCounts: [Int: Int] = [:]

    public init(parameters: RequestSamplingParameters, seed: UInt64, prompt: [Int] = []) {
        self.parameters = parameters
        generator = SplitMix64(seed: seed)
        promptTokens = Set(prompt)
    }

    /// Counts a generated token that did not come from `sample` (sampling records its own choices).
    public mutating func observe(_ token: Int) { outputCounts[token, default: 0] += 1 }

    // MARK: sampling

    /// Samples from one row of logits, [V] of any float dtype.
    public mutating func sample(logits: Tensor) -> SampledToken {
        precondition(logits.ndim == 1, "sample(logits:) takes one row [V], got \(logits.shape)")
        return sample(logits: logits.toArray(Float.self))
    }

    public mutating func sample(logits: [Float]) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(row: $0) }
    }

    /// Samples one token per row of `logits` [B, V], row b with `requests[b]`. The batch is copied to the
    /// host once; each row is then handled exactly as `sample(logits:)` would handle it alone.
    public static func sample(logits: Tensor, requests: inout [RequestSampler]) -> [SampledToken] {
        precondition(
            logits.ndim == 2 && logits.dim(0) == requests.count,
            "sample(logits:requests:) takes [\(requests.count), V] logits, got \(logits.shape)")
        let vocabulary = logits.dim(1)
        let host = logits.toArray(Float.self)
        return host.withUnsafeBufferPointer { buffer in
            (0..<requests.count).map { row in
                requests[row].sample(
                    row: UnsafeBufferPointer(rebasing: buffer[row * vocabulary..<(row + 1) * vocabulary]))
            }
        }
    }

    mutating func sample(row raw: UnsafeBufferPointer<Float>) -> SampledToken {
        precondition(!raw.isEmpty, "sample: empty logits row")
        // log_softmax of the raw row needs only its log-normaliser.
        let rawMax = Kernels.hostMax(raw)
        let rawSum = Kernels.hostExpWeights(raw, shift: rawMax)
        let rawLogNormaliser = Double(rawMax) + Foundation.log(Double(rawSum))

        let token: Int
        let logProb: Double
        let poolSize: Int
        if parameters.temperature <= 0 && !parameters.changesLogits {
            // Greedy on the raw row: no copy to penalise, NaN skipped as -inf would be.
            token = Self.argmax(raw)
            logProb = 0
            poolSize = 0
        } else {
            var logits = [Float](raw)
            for index in logits.indices where logits[index].isNaN { logits[index] = -.infinity }
            applyPenalties(to: &logits)
            if parameters.temperature <= 0 {
                token = Self.argmax(logits)
                logProb = 0
                poolSize = 0
            } else {
                (token, logProb, poolSize) = draw(logits)
            }
        }
        observe(token)

        var alternatives: [TokenLogProb] = []
        if parameters.alternatives > 0 {
            var clean = [Float](raw)
            for index in clean.indices where clean[index].isNaN { clean[index] = -.infinity }
            alternatives = Self.topIndices(clean, count: parameters.alternatives, sorted: true).map {
                TokenLogProb(token: $0, logProb: Float(Double(raw[$0]) - rawLogNormaliser))
            }
        }
        return SampledToken(
            token: token, logProb: Float(logProb), rawLogProb: Float(Double(raw[token]) - rawLogNormaliser),
            alternatives: alternatives, candidatePoolSize: poolSize)
    }

    /// Repetition, presence and frequency penalties, then the logit bias, touching only the tokens
    /// concerned (the prompt, the output so far and the biased ids).
    func applyPenalties(to logits: inout [Float]) {
        let penalty = parameters.repetitionPenalty
        if penalty != 1 {
            for token in promptTokens.union(outputCounts.keys) where logits.indices.contains(token) {
                logits[token] = logits[token] < 0 ? logits[token] * penalty : logits[token] / penalty
            }
        }
        if parameters.presencePenalty != 0 || parameters.frequencyPenalty != 0 {
            for (token, count) in outputCounts where logits.indices.contains(token) {
                logits[token] -= parameters.presencePenalty + parameters.frequencyPenalty * Float(count)
            }
        }
        for (token, bias) in parameters.logitBias where logits.indices.contains(token) {
            logits[token] += bias
        }
    }

    /// Temperature, top-k, top-p and min-p on the penalised logits, then one draw.
    private mutating func draw(_ logits: [Float]) -> (token: Int, logProb: Double, poolSize: Int) {
        let vocabulary = logits.count
        let temperature = Double(parameters.temperature)
        let top = logits.withUnsafeBufferPointer(Kernels.hostMax)
        precondition(top > -.infinity, "sample: every token is banned")
        // Weights relative to the most likely token, whose weight is 1, all computed in one vectorized
        // pass; min-p is a threshold on them.
        var weights = [Float](repeating: 0, count: vocabulary)
        let everyWeight = weights.withUnsafeMutableBufferPointer { out in
            logits.withUnsafeBufferPointer {
                Kernels.hostExpWeights($0, shift: top, scale: Float(1 / temperature), into: out.baseAddress)
            }
        }
        func weight(_ token: Int) -> Double { Double(weights[token]) }
        let minimumWeight = Double(parameters.minP)
        let limit = parameters.topK > 0 ? min(parameters.topK, vocabulary) : vocabulary

        var support: [Int] = []
        var poolSize = 0
        if limit == vocabulary && parameters.topP >= 1 {
            support = logits.indices.filter { weight($0) >= minimumWeight }
        } else if parameters.topP >= 1 {
            // Top-k alone (with perhaps min-p): the top-k set, in id order.
            let pool = Self.topIndices(logits, count: limit, sorted: false)
            poolSize = pool.count
            support = pool.filter { weight($0) >= minimumWeight }
        } else {
            // The normaliser of the top-k set (or of the whole vocabulary), exact, in O(V).
            let total: Double
            if limit == vocabulary {
                total = Double(everyWeight)
            } else {
                var scratch = logits
                let threshold = Self.largest(rank: limit - 1, in: &scratch)
                var above = 0
                var sum = 0.0
                for token in logits.indices where logits[token] > threshold {
                    above += 1
                    sum += weight(token)
                }
                total = sum + Double(limit - above) * weight(logits.firstIndex(of: threshold)!)
            }
            let target = Double(parameters.topP) * total
            var size = min(limit, Self.candidatePoolLimit)
            while true {
                let pool = Self.topIndices(logits, count: size, sorted: true)
                var cumulative = 0.0
                var keep: Int?
                for (position, token) in pool.enumerated() {
                    cumulative += weight(token)
                    if cumulative >= target {
                        keep = position + 1
                        break
                    }
                }
                if keep != nil || size == limit {
                    poolSize = pool.count
                    support = Array(pool.prefix(keep ?? pool.count)).filter { weight($0) >= minimumWeight }
                    break
                }
                size = min(limit, size * 4)
            }
        }

        // Tokens of weight 0 (banned, or underflowed) can never be drawn; the top token always remains.
        var drawable: [Int] = []
        var drawableWeights: [Double] = []
        for token in support {
            let value = weight(token)
            if value > 0 {
                drawable.append(token)
                drawableWeights.append(value)
            }
        }
        support = drawable
        let total = drawableWeights.reduce(0, +)
        let draw = Double(generator.next() >> 11) * 0x1p-53 * total
        var cumulative = 0.0
        var chosen = support.count - 1
        for (position, value) in drawableWeights.enumerated() {
            cumulative += value
            if draw < cumulative {
                chosen = position
                break
            }
        }
        return (support[chosen], Foundation.log(drawableWeights[chosen] / total), poolSize)
    }

    // MARK: selection without a sort

    /// The largest value, the lowest id among ties; NaN is never the largest (unless every value is NaN: 0).
    static func argmax(_ values: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var largest = values[0].isNaN ? -Float.infinity : values[0]
        for index in 1..<values.count where values[index] > largest {
            best = index
            largest = values[index]
        }
        return best
    }

    /// The largest value, the lowest id among ties.
    static func argmax(_ values: [Float]) -> Int { values.withUnsafeBufferPointer { argmax($0) } }

    /// The `count` largest entries of `values` by (value descending, id ascending), in O(V) expected:
    /// one quickselect for the threshold, one pass to collect. Sorted in that order if `sorted`,
    /// else in id order. `values` must hold no NaN.
    static func topIndices(_ values: [Float], count: Int, sorted: Bool) -> [Int] {
        var result: [Int]
        if count >= values.count {
            result = Array(values.indices)
        } else if count <= 0 {
            return []
        } else {
            var scratch = values
            let threshold = largest(rank: count - 1, in: &scratch)
            var above = 0
            for value in values where value > threshold { above += 1 }
            var ties = count - above
            result = []
            result.reserveCapacity(count)
            for (index, value) in values.enumerated() {
                if value > threshold {
                    result.append(index)
                } else if value == threshold && ties > 0 {
                    result.append(index)
                    ties -= 1
                }
            }
        }
        if sorted {
            result.sort { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
        }
        return result
    }

    /// The value at descending position `rank` (0 = the largest), by a three-way quickselect that
    /// reorders `values` (nth_element). No NaN allowed.
    static func largest(rank: Int, in values: inout [Float]) -> Float {
        precondition(values.indices.contains(rank), "largest(rank:): rank \(rank) of \(values.count)")
        var low = 0
        var high = values.count - 1
        while low < high {
            let a = values[low], b = values[(low + high) / 2], c = values[high]
            let pivot = max(min(a, b), min(max(a, b), c))  // the median of three
            // [low, greater) > pivot, [greater, index) == pivot, (smaller, high] < pivot.
            var greater = low
            var index = low
            var smaller = high
            while index <= smaller {
                if values[index] > pivot {
                    values.swapAt(greater, index)
                    greater += 1
                    index += 1
                } else if values[index] < pivot {
                    values.swapAt(index, smaller)
                    smaller -= 1
                } else {
                    index += 1
                }
            }
            if rank < greater {
                high = greater - 1
            } else if rank <= smaller {
                return pivot
            } else {
                low = smaller + 1
            }
        }
        return values[low]
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators"; the
/// constants of Vigna's reference `splitmix64.c`). The data order depends only on the seed, on every
/// platform and Swift version, which `SystemRandomNumberGenerator` and the standard library's
/// `shuffle(using:)` algorithm do not promise.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound`, by rejection so that no value is favoured.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive, got \(bound)")
        let limit = UInt64(bound)
        let threshold = (0 &- limit) % limit  // 2^64 mod bound: values below it would bias the modulo
        while true {
            let value = next()
            if value >= threshold { return Int(value % limit) }
        }
    }
}

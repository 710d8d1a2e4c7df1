import CMLXShim

/// Runs `body` with a pointer to `values` converted to C ints.
func withCInts<R>(_ values: [Int], _ body: (UnsafePointer<Int32>?, Int32) -> R) -> R {
    let converted = values.map { Int32($0) }
    return converted.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
}

extension Tensor {
    /// A tensor of `shape` filled with `value`.
    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32) -> Tensor {
        let fill = Tensor(value, dtype: dtype)
        return withExtendedLifetime(fill) {
            withCInts(shape) { dims, count in
                makeTensor("full") { tmx_full($0, dims, count, fill.handle, dtype.rawValue) }
            }
        }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, value: 0, dtype: dtype)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, value: 1, dtype: dtype)
    }

    public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape, dtype: other.dtype) }
    public static func ones(like other: Tensor) -> Tensor { ones(other.shape, dtype: other.dtype) }

    /// Values from `start` up to (not including) `stop` in steps of `step`.
    public static func arange(
        _ start: Double = 0, _ stop: Double, step: Double = 1, dtype: DType = .float32
    ) -> Tensor {
        makeTensor("arange") { tmx_arange($0, start, stop, step, dtype.rawValue) }
    }

    /// Values 0, 1, … up to (not including) `stop`.
    public static func arange(_ stop: Double, dtype: DType = .float32) -> Tensor {
        arange(0, stop, dtype: dtype)
    }

    /// `count` evenly spaced values from `start` to `stop`, both included.
    public static func linspace(
        _ start: Double, _ stop: Double, count: Int, dtype: DType = .float32
    ) -> Tensor {
        makeTensor("linspace") { tmx_linspace($0, start, stop, Int32(count), dtype.rawValue) }
    }
}

/// Pseudo-random tensors from explicit keys (MLX's counter-based Threefry generator).
///
/// The same key always gives the same values; split a key to get independent streams. Passing no key
/// draws from MLX's global generator (seeded with ``seed(_:)``).
public enum Random {
    /// A key from a seed.
    public static func key(_ seed: UInt64) -> Tensor {
        makeTensor("Random.key") { tmx_random_key($0, seed) }
    }

    /// Splits a key into `count` new keys, stacked along the first axis.
    public static func split(_ key: Tensor, count: Int = 2) -> [Tensor] {
        let keys = makeTensor("Random.split") { tmx_random_split($0, key.handle, Int32(count)) }
        return (0..<count).map { keys[$0] }
    }

    /// Seeds the global generator used when no key is given.
    public static func seed(_ seed: UInt64) {
        if tmx_random_seed(seed) != 0 { opFailed("Random.seed") }
    }

    public static func normal(
        _ shape: [Int], dtype: DType = .float32, mean: Float = 0, standardDeviation: Float = 1,
        key: Tensor? = nil
    ) -> Tensor {
        withCInts(shape) { dims, count in
            makeTensor("Random.normal") {
                tmx_random_normal(
                    $0, dims, count, dtype.rawValue, mean, standardDeviation, key?.handle)
            }
        }
    }

    /// Uniform values in `[low, high)`.
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, dtype: DType = .float32,
        key: Tensor? = nil
    ) -> Tensor {
        withCInts(shape) { dims, count in
            makeTensor("Random.uniform") {
                tmx_random_uniform($0, low, high, dims, count, dtype.rawValue, key?.handle)
            }
        }
    }

    /// Booleans that are true with probability `probability` (broadcast to `shape`).
    public static func bernoulli(_ probability: Tensor, shape: [Int], key: Tensor? = nil) -> Tensor {
        withCInts(shape) { dims, count in
            makeTensor("Random.bernoulli") {
                tmx_random_bernoulli($0, probability.handle, dims, count, key?.handle)
            }
        }
    }

    public static func bernoulli(_ probability: Float, shape: [Int], key: Tensor? = nil) -> Tensor {
        bernoulli(Tensor(probability), shape: shape, key: key)
    }

    /// Samples class indices from unnormalized log-probabilities along `axis`.
    /// - Parameter samples: draws per distribution; nil draws one and removes `axis`.
    public static func categorical(
        logits: Tensor, axis: Int = -1, samples: Int? = nil, key: Tensor? = nil
    ) -> Tensor {
        makeTensor("Random.categorical") {
            tmx_random_categorical($0, logits.handle, Int32(axis), Int32(samples ?? -1), key?.handle)
        }
    }
}

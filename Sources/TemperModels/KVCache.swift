import TemperCore

/// Where one attention layer keeps keys and values across forward passes: the contiguous
/// ``LayerCache`` of `Generator`, or the engine's paged blocks.
public protocol AttentionCache: AnyObject {
    /// Stores this pass's keys and values (RoPE applied) and attends over everything cached.
    /// - Parameters: queries [B, H, T, Dh]; keys, values [B, Hkv, T, Dh].
    /// - Returns: [B, H, T, Dh].
    func attend(queries: Tensor, keys: Tensor, values: Tensor, scale: Float, layout: TokenLayout) -> Tensor
}

/// The caches of a whole model, one per layer.
public protocol ModelCache {
    /// Tokens already cached when every row has the same count (the default positions' offset).
    var length: Int { get }
    func layer(_ index: Int) -> any AttentionCache
}

/// Keys and values of one attention layer for the tokens seen so far, in buffers pre-allocated
/// in steps of `step` tokens so decoding writes in place instead of concatenating.
public final class LayerCache: AttentionCache {
    public private(set) var keys: Tensor?
    public private(set) var values: Tensor?
    /// [B, capacity] sample ids of the cached tokens (-1 = padding), once any call had segments.
    private var segmentBuffer: Tensor?
    public private(set) var length = 0
    let step: Int

    init(step: Int) { self.step = step }

    var capacity: Int { keys?.dim(2) ?? 0 }

    /// The cached segments up to `length`, or nil when every cached token is in segment 0.
    public var segments: Tensor? {
        segmentBuffer.map { $0[0..., ..<length] }
    }

    public func attend(queries: Tensor, keys: Tensor, values: Tensor, scale: Float, layout: TokenLayout) -> Tensor {
        let (cachedKeys, cachedValues) = append(keys: keys, values: values, segments: layout.segments)
        var segments: Kernels.Segments?
        if let keySegments = self.segments {
            let querySegments = layout.segments ?? Tensor.zeros([queries.dim(0), queries.dim(2)], dtype: .int32)
            segments = Kernels.Segments(queries: querySegments, keys: keySegments)
        }
        return Kernels.attention(
            queries: queries, keys: cachedKeys, values: cachedValues, scale: scale, causal: true, segments: segments)
    }

    /// Appends k, v: [B, Hkv, T, Dh] (and their sample ids [B, T]); returns all keys and values so
    /// far, [B, Hkv, length, Dh].
    func append(keys newKeys: Tensor, values newValues: Tensor, segments newSegments: Tensor?) -> (Tensor, Tensor) {
        let (batch, heads, count, dim) = (newKeys.dim(0), newKeys.dim(1), newKeys.dim(2), newKeys.dim(3))
        let end = length + count
        if end > capacity {
            let grown = ((end + step - 1) / step) * step
            func grow(_ buffer: Tensor?, _ template: Tensor) -> Tensor {
                let fresh = Tensor.zeros([batch, heads, grown, dim], dtype: template.dtype)
                guard let buffer, length > 0 else { return fresh }
                return fresh.updatingSlice(
                    buffer[0..., 0..., ..<length], start: [0, 0, 0, 0], stop: [batch, heads, length, dim])
            }
            keys = grow(keys, newKeys)
            values = grow(values, newValues)
            if let old = segmentBuffer {
                segmentBuffer = Tensor.zeros([batch, grown], dtype: .int32)
                    .updatingSlice(old[0..., ..<length], start: [0, 0], stop: [batch, length])
            }
        }
        if newSegments != nil && segmentBuffer == nil {
            segmentBuffer = Tensor.zeros([batch, capacity], dtype: .int32)
        }
        if let buffer = segmentBuffer {
            let ids = newSegments?.asType(.int32) ?? Tensor.zeros([batch, count], dtype: .int32)
            segmentBuffer = buffer.updatingSlice(ids, start: [0, length], stop: [batch, end])
        }
        keys = keys!.updatingSlice(newKeys, start: [0, 0, length, 0], stop: [batch, heads, end, dim])
        values = values!.updatingSlice(newValues, start: [0, 0, length, 0], stop: [batch, heads, end, dim])
        length = end
        return (keys![0..., 0..., ..<end], values![0..., 0..., ..<end])
    }
}

/// The KV cache of a whole model: one `LayerCache` per layer.
public final class KVCache: ModelCache {
    public let layers: [LayerCache]

    /// - Parameter step: buffers grow by this many tokens at a time.
    public init(layerCount: Int, step: Int = 256) {
        layers = (0..<layerCount).map { _ in LayerCache(step: step) }
    }

    public convenience init(model: CausalLanguageModel, step: Int = 256) {
        self.init(layerCount: model.configuration.layerCount, step: step)
    }

    /// Tokens cached so far.
    public var length: Int { layers.first?.length ?? 0 }

    public func layer(_ index: Int) -> any AttentionCache { layers[index] }

    /// Every cached tensor, to evaluate together with a step's output.
    public var tensors: [Tensor] {
        layers.flatMap { [$0.keys, $0.values].compactMap { $0 } }
    }
}

import TemperCore

/// A frozen LoRA adapter kept beside the base weight for serving, applied only to the batch rows
/// that ``AdapterRouting`` sends to it, so one forward pass serves several adapters and the base.
public struct ServedLoRA {
    /// [rank, in].
    public let a: Tensor
    /// [out, rank].
    public let b: Tensor
    /// alpha / rank (or alpha / √rank with rsLoRA).
    public let scale: Float

    public init(a: Tensor, b: Tensor, scale: Float) {
        precondition(a.ndim == 2 && b.ndim == 2 && a.dim(0) == b.dim(1), "ServedLoRA: A \(a.shape) and B \(b.shape) do not chain")
        self.a = a
        self.b = b
        self.scale = scale
    }

    public var rank: Int { a.dim(0) }
}

/// Which served adapter each batch row (or token) uses in the forward passes run inside
/// `AdapterRouting.$current.withValue(rows) { … }`. Rows not covered by any mask get the bare base.
public enum AdapterRouting {
    /// The routing of the current forward pass; nil (the default) leaves every layer unchanged.
    @TaskLocal public static var current: Rows?

    /// Float32 masks by adapter name.
    // Safety of @unchecked Sendable: the masks are built and evaluated in `init` and never mutated,
    // so every reader sees the same immutable MLX arrays (their reference counts are atomic). A
    // task-local bound with `withValue` in synchronous code is read only by the thread that bound it.
    public final class Rows: @unchecked Sendable {
        /// Masks by adapter name, each broadcastable against a layer input [B, T, in] with a
        /// last axis of 1: [B, 1, 1] (one adapter per row) or [B, T, 1] (per token, for packed rows).
        public let masks: [String: Tensor]
        /// The adapter names, sorted, so the low-rank terms are added in a fixed order.
        public let names: [String]

        /// One adapter name per batch row; nil sends the row to the base model.
        public convenience init(_ adapters: [String?]) {
            var masks: [String: Tensor] = [:]
            for name in Set(adapters.compactMap { $0 }) {
                masks[name] = Tensor(adapters.map { $0 == name ? Float(1) : 0 }, shape: [adapters.count, 1, 1])
            }
            self.init(masks: masks)
        }

        /// Masks given directly (see ``masks``); values other than 0 and 1 weight the adapter.
        public init(masks: [String: Tensor]) {
            self.masks = masks.mapValues { $0.dtype == .float32 ? $0 : $0.asType(.float32) }
            names = masks.keys.sorted()
            eval(Array(self.masks.values))
        }
    }
}

extension Linear {
    /// `y` (this layer's base output for `x`) plus, for every adapter in `routing` that this layer
    /// serves, mask ⊙ scale·(x·Aᵀ)·Bᵀ; the mask is applied to the rank-r product, before B.
    func addingServedAdapters(_ y: Tensor, input x: Tensor, routing: AdapterRouting.Rows) -> Tensor {
        var y = y
        for name in routing.names {
            guard let adapter = servedAdapters[name], let mask = routing.masks[name] else { continue }
            precondition(
                mask.ndim == x.ndim && (mask.dim(0) == x.dim(0) || mask.dim(0) == 1),
                "AdapterRouting: mask for '\(name)' has shape \(mask.shape), input \(x.shape)")
            let low = x.matmul(adapter.a.mT) * (mask * Double(adapter.scale))
            y = y + low.matmul(adapter.b.mT)
        }
        return y
    }
}

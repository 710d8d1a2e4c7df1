/// One entry of a tensor subscript: `x[0, 1..<3, .all, .stride(by: 2), .newAxis, .ellipsis]`.
public enum TensorIndex: Sendable {
    /// One position; the axis is removed. Negative positions count from the end.
    case index(Int)
    /// Positions `start..<stop` by `step` (> 0); nil bounds are the axis' ends.
    case slice(start: Int?, stop: Int?, step: Int)
    /// A new axis of size 1.
    case newAxis
    /// As many full slices as needed to cover the axes not named.
    case ellipsis

    public static let all = TensorIndex.slice(start: nil, stop: nil, step: 1)
    public static func stride(from start: Int? = nil, to stop: Int? = nil, by step: Int) -> TensorIndex {
        .slice(start: start, stop: stop, step: step)
    }
}

/// Values usable inside a tensor subscript.
public protocol TensorIndexConvertible {
    var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexConvertible { public var tensorIndex: TensorIndex { self } }
extension Int: TensorIndexConvertible { public var tensorIndex: TensorIndex { .index(self) } }
extension Range<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, stop: upperBound, step: 1) }
}
extension ClosedRange<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, stop: upperBound + 1, step: 1) }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, stop: nil, step: 1) }
}
extension PartialRangeUpTo<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, stop: upperBound, step: 1) }
}
extension PartialRangeThrough<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, stop: upperBound + 1, step: 1) }
}

/// A subscript resolved against a shape: the slice to take, then the final shape.
struct ResolvedIndex {
    var start: [Int] = []
    var stop: [Int] = []
    var strides: [Int] = []
    /// Shape after removing `.index` axes and inserting `.newAxis` ones.
    var resultShape: [Int] = []

    init(_ indices: [TensorIndex], shape: [Int]) {
        let named = indices.filter {
            if case .newAxis = $0 { return false }
            if case .ellipsis = $0 { return false }
            return true
        }.count
        precondition(named <= shape.count, "subscript: \(named) indices for shape \(shape)")
        var expanded: [TensorIndex] = []
        var sawEllipsis = false
        for index in indices {
            if case .ellipsis = index {
                precondition(!sawEllipsis, "subscript: more than one ellipsis")
                sawEllipsis = true
                expanded += Array(repeating: .all, count: shape.count - named)
            } else {
                expanded.append(index)
            }
        }
        if !sawEllipsis { expanded += Array(repeating: .all, count: shape.count - named) }

        var axis = 0
        for index in expanded {
            switch index {
            case .newAxis:
                resultShape.append(1)
            case .index(let position):
                let size = shape[axis]
                let resolved = position < 0 ? position + size : position
                precondition(
                    resolved >= 0 && resolved < size,
                    "subscript: index \(position) out of range for axis \(axis) of size \(size)")
                append(start: resolved, stop: resolved + 1, step: 1)
                axis += 1
            case .slice(let first, let last, let step):
                precondition(step > 0, "subscript: step must be positive, got \(step)")
                let size = shape[axis]
                let lower = Self.clamp(first ?? 0, size)
                let upper = max(lower, Self.clamp(last ?? size, size))
                append(start: lower, stop: upper, step: step)
                resultShape.append((upper - lower + step - 1) / step)
                axis += 1
            case .ellipsis:
                break
            }
        }
    }

    private mutating func append(start: Int, stop: Int, step: Int) {
        self.start.append(start)
        self.stop.append(stop)
        strides.append(step)
    }

    private static func clamp(_ position: Int, _ size: Int) -> Int {
        min(max(position < 0 ? position + size : position, 0), size)
    }
}

extension Tensor {
    /// Basic indexing with integers, ranges, strides, new axes and an ellipsis, as in NumPy.
    public subscript(_ indices: any TensorIndexConvertible...) -> Tensor {
        get { self[indices.map(\.tensorIndex)] }
        set { self[indices.map(\.tensorIndex)] = newValue }
    }

    public subscript(_ indices: [TensorIndex]) -> Tensor {
        get {
            let resolved = ResolvedIndex(indices, shape: shape)
            return sliced(start: resolved.start, stop: resolved.stop, strides: resolved.strides)
                .reshaped(resolved.resultShape)
        }
        set {
            let resolved = ResolvedIndex(indices, shape: shape)
            let regionShape = zip(zip(resolved.start, resolved.stop), resolved.strides).map {
                ($0.0.1 - $0.0.0 + $0.1 - 1) / $0.1
            }
            let update = newValue.asType(dtype).broadcast(to: resolved.resultShape)
                .reshaped(regionShape)
            self = updatingSlice(
                update, start: resolved.start, stop: resolved.stop, strides: resolved.strides)
        }
    }
}

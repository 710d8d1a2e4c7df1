import CMLXShim

extension Tensor {
    /// The same elements in a new shape; one dimension may be -1.
    public func reshaped(_ shape: [Int]) -> Tensor {
        withCInts(shape) { dims, count in
            makeTensor("reshaped(\(shape))") { tmx_reshape($0, handle, dims, count) }
        }
    }

    public func reshaped(_ shape: Int...) -> Tensor { reshaped(shape) }

    /// Permutes the axes; with none, reverses them.
    public func transposed(_ axes: [Int]) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("transposed(\(axes))") { tmx_transpose($0, handle, values, count) }
        }
    }

    public func transposed(_ axes: Int...) -> Tensor { transposed(axes) }

    /// Swaps the last two axes (matrix transpose for batched matrices).
    public var mT: Tensor {
        var axes = Array(0..<ndim)
        axes.swapAt(ndim - 2, ndim - 1)
        return transposed(axes)
    }

    public func expandedDimensions(axes: [Int]) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("expandedDimensions") { tmx_expand_dims($0, handle, values, count) }
        }
    }

    public func expandedDimensions(axis: Int) -> Tensor { expandedDimensions(axes: [axis]) }

    /// Removes the given size-1 axes, or all of them when none are given.
    public func squeezed(axes: [Int] = []) -> Tensor {
        withCInts(axes) { values, count in
            makeTensor("squeezed") { tmx_squeeze($0, handle, values, count) }
        }
    }

    public func squeezed(axis: Int) -> Tensor { squeezed(axes: [axis]) }

    public func broadcast(to shape: [Int]) -> Tensor {
        withCInts(shape) { dims, count in
            makeTensor("broadcast(to: \(shape))") { tmx_broadcast_to($0, handle, dims, count) }
        }
    }

    /// A copy laid out contiguously in row-major order.
    public func contiguous() -> Tensor { makeTensor("contiguous") { tmx_contiguous($0, handle) } }

    public func flattened() -> Tensor { reshaped([-1]) }

    /// Splits into `sections` equal parts along `axis`.
    public func split(sections: Int, axis: Int = 0) -> [Tensor] {
        withTensorVector { parts in
            if tmx_split_sections(parts, handle, Int32(sections), Int32(axis)) != 0 {
                opFailed("split(sections: \(sections))")
                return []
            }
            return tensors(in: parts)
        }
    }

    /// Splits before each of `indices` along `axis`.
    public func split(indices: [Int], axis: Int = 0) -> [Tensor] {
        withTensorVector { parts in
            let status = withCInts(indices) { values, count in
                tmx_split_indices(parts, handle, values, count, Int32(axis))
            }
            if status != 0 {
                opFailed("split(indices: \(indices))")
                return []
            }
            return tensors(in: parts)
        }
    }

    /// Elements `start..<stop` by `strides` on every axis.
    public func sliced(start: [Int], stop: [Int], strides: [Int]? = nil) -> Tensor {
        let strides = strides ?? Array(repeating: 1, count: start.count)
        return withCInts(start) { starts, count in
            withCInts(stop) { stops, _ in
                withCInts(strides) { steps, _ in
                    makeTensor("sliced") { tmx_slice($0, handle, starts, stops, steps, count) }
                }
            }
        }
    }

    /// A copy with `update` written into the region `start..<stop` by `strides`.
    public func updatingSlice(
        _ update: Tensor, start: [Int], stop: [Int], strides: [Int]? = nil
    ) -> Tensor {
        let strides = strides ?? Array(repeating: 1, count: start.count)
        return withCInts(start) { starts, count in
            withCInts(stop) { stops, _ in
                withCInts(strides) { steps, _ in
                    makeTensor("updatingSlice") {
                        tmx_slice_update($0, handle, update.handle, starts, stops, steps, count)
                    }
                }
            }
        }
    }

    /// Gathers entries at integer `indices` along `axis` (numpy `take`).
    public func take(_ indices: Tensor, axis: Int) -> Tensor {
        makeTensor("take(axis: \(axis))") { tmx_take($0, handle, indices.handle, Int32(axis)) }
    }

    public func takeAlong(_ indices: Tensor, axis: Int) -> Tensor {
        makeTensor("takeAlong(axis: \(axis))") {
            tmx_take_along_axis($0, handle, indices.handle, Int32(axis))
        }
    }

    /// A copy with `values` written at `indices` along `axis`.
    public func putAlong(_ indices: Tensor, values: Tensor, axis: Int) -> Tensor {
        makeTensor("putAlong(axis: \(axis))") {
            tmx_put_along_axis($0, handle, indices.handle, values.handle, Int32(axis))
        }
    }

    /// A copy with `values` added at `indices` along `axis`; repeated indices accumulate.
    public func scatterAdd(_ indices: Tensor, values: Tensor, axis: Int) -> Tensor {
        makeTensor("scatterAdd(axis: \(axis))") {
            tmx_scatter_add_axis($0, handle, indices.handle, values.handle, Int32(axis))
        }
    }

    /// Pads `axes` with `low` values before and `high` values after.
    /// - Parameter mode: "constant" (uses `value`) or "edge".
    public func padded(
        axes: [Int], low: [Int], high: [Int], value: Double = 0, mode: String = "constant"
    ) -> Tensor {
        let fill = Tensor(value, dtype: dtype)
        return withExtendedLifetime(fill) { withCInts(axes) { axisValues, count in
            withCInts(low) { lows, _ in
                withCInts(high) { highs, _ in
                    makeTensor("padded") {
                        tmx_pad($0, handle, axisValues, lows, highs, count, fill.handle, mode)
                    }
                }
            }
        } }
    }

    /// Pads every axis by `widths[i] = (before, after)`.
    public func padded(_ widths: [(Int, Int)], value: Double = 0) -> Tensor {
        padded(
            axes: Array(0..<widths.count), low: widths.map(\.0), high: widths.map(\.1),
            value: value)
    }

    /// The upper triangle (`k` above the diagonal and up), zeros elsewhere.
    public func triu(_ k: Int = 0) -> Tensor { makeTensor("triu") { tmx_triu($0, handle, Int32(k)) } }

    /// The lower triangle (`k` above the diagonal and down), zeros elsewhere.
    public func tril(_ k: Int = 0) -> Tensor { makeTensor("tril") { tmx_tril($0, handle, Int32(k)) } }

    public static func concatenated(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        withTensorVector(tensors) { vector in
            makeTensor("concatenated(axis: \(axis))") { tmx_concatenate($0, vector, Int32(axis)) }
        }
    }

    public static func stacked(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        withTensorVector(tensors) { vector in
            makeTensor("stacked(axis: \(axis))") { tmx_stack($0, vector, Int32(axis)) }
        }
    }
}

/// Elements of `x` where `condition` is true, else of `y` (broadcasting).
public func which(_ condition: Tensor, _ x: Tensor, _ y: Tensor) -> Tensor {
    makeTensor("which") { tmx_where($0, condition.handle, x.handle, y.handle) }
}

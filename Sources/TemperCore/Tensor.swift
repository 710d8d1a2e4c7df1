import CMLXShim

/// Owns one MLX array handle; freed as soon as the last ``Tensor`` referring to it goes away.
final class TensorStorage {
    let handle: tmx_array
    init(_ handle: tmx_array) { self.handle = handle }
    deinit { tmx_array_free(handle) }
}

/// An n-dimensional array backed by MLX: a value type, lazily evaluated, freed deterministically.
///
/// Ops build a graph; values are computed on ``eval(_:)`` or when read back (``toArray(_:)``,
/// ``item(_:)``). Tensors are not `Sendable`: confine them to one isolation domain.
public struct Tensor {
    let storage: TensorStorage

    init(handle: tmx_array) { storage = TensorStorage(handle) }

    var handle: tmx_array { storage.handle }

    /// A scalar standing in for the result of a failed op inside ``withErrorHandling(_:)``.
    static func placeholder() -> Tensor { Tensor(Float(0)) }

    // MARK: creation from Swift values

    /// A tensor holding `values` with the given shape (default: one dimension), copied.
    public init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) {
        let shape = shape ?? [values.count]
        precondition(
            shape.reduce(1, *) == values.count,
            "Tensor: \(values.count) values do not fill shape \(shape)")
        self = values.withUnsafeBytes { raw in
            Tensor(bytes: raw, shape: shape, dtype: T.dtype)
        }
    }

    /// A scalar (zero-dimensional) tensor.
    public init<T: TensorElement>(_ value: T) {
        self.init([value], shape: [])
    }

    /// A scalar of a given dtype, converted from a Double (e.g. `Tensor(0.5, dtype: .bfloat16)`).
    public init(_ value: Double, dtype: DType) {
        self = Tensor(value).asType(dtype)
    }

    /// A tensor over raw little-endian bytes of `dtype` (e.g. bf16 bits read from a file), copied.
    public init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
        precondition(
            bytes.count == shape.reduce(1, *) * dtype.size,
            "Tensor: \(bytes.count) bytes do not fill shape \(shape) of \(dtype)")
        let dims = shape.map { Int32($0) }
        self = dims.withUnsafeBufferPointer { dimsPointer in
            makeTensor("Tensor(bytes:)") {
                tmx_array_from_data(
                    $0, bytes.baseAddress, dimsPointer.baseAddress, Int32(dims.count), dtype.rawValue)
            }
        }
    }

    // MARK: properties

    public var ndim: Int { Int(tmx_array_ndim(handle)) }

    public var shape: [Int] {
        var dims = [Int32](repeating: 0, count: ndim)
        dims.withUnsafeMutableBufferPointer { tmx_array_shape(handle, $0.baseAddress) }
        return dims.map(Int.init)
    }

    /// The size of one axis; negative axes count from the end.
    public func dim(_ axis: Int) -> Int {
        let shape = self.shape
        return shape[axis < 0 ? axis + shape.count : axis]
    }

    public var size: Int { Int(tmx_array_size(handle)) }
    public var dtype: DType { DType(rawValue: tmx_array_dtype(handle)) ?? .float32 }
    public var itemSize: Int { Int(tmx_array_itemsize(handle)) }
    public var byteCount: Int { size * itemSize }

    // MARK: reading values back

    /// Evaluates and returns the elements in row-major order, converted to `T` as MLX's `astype` does.
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) -> [T] {
        let source = dtype == T.dtype ? self : asType(T.dtype)
        let count = source.size
        return withExtendedLifetime(source) {
          [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            let status = tmx_array_copy_data(
                source.handle, UnsafeMutableRawPointer(buffer.baseAddress), count * T.dtype.size)
            if status != 0 {
                opFailed("toArray")
                initialized = 0
                return
            }
            initialized = count
          }
        }
    }

    /// The raw bytes in row-major order (bf16 tensors give their 16-bit patterns).
    public func rawBytes() -> [UInt8] {
        let count = byteCount
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if tmx_array_copy_data(handle, buffer.baseAddress, count) != 0 {
                opFailed("rawBytes")
                initialized = 0
                return
            }
            initialized = count
        }
    }

    /// The single element of a one-element tensor.
    public func item<T: TensorElement>(_ type: T.Type = T.self) -> T {
        precondition(size == 1, "item: tensor of shape \(shape) has \(size) elements, not 1")
        let values: [T] = toArray()
        guard let value = values.first else {
            preconditionFailure("item: could not read the tensor's value")
        }
        return value
    }

    /// Converts the elements to another dtype.
    public func asType(_ dtype: DType) -> Tensor {
        makeTensor("asType") { tmx_astype($0, handle, dtype.rawValue) }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        var text: UnsafeMutablePointer<CChar>?
        guard tmx_array_describe(handle, &text) == 0, let text else {
            return "Tensor(shape: \(shape), dtype: \(dtype), <error: \(lastShimError())>)"
        }
        defer { tmx_string_free(text) }
        return String(cString: text)
    }
}

// MARK: vectors crossing the shim
//
// Vectors live only inside these scoped calls and are freed by `defer`, never by ARC: ARC may end an
// object's life right after its last use, which would be before the C call that reads the pointer.

/// Runs `body` with a C++ vector holding `tensors` (or an empty one to receive outputs).
func withTensorVector<R>(_ tensors: [Tensor] = [], _ body: (tmx_vec) -> R) -> R {
    guard let raw = tmx_vec_new() else { preconditionFailure("tmx_vec_new failed") }
    defer { tmx_vec_free(raw) }
    for tensor in tensors { withExtendedLifetime(tensor) { tmx_vec_push(raw, tensor.handle) } }
    return body(raw)
}

/// The tensors a C++ vector holds, as new handles.
func tensors(in raw: tmx_vec) -> [Tensor] {
    (0..<tmx_vec_size(raw)).map { Tensor(handle: tmx_vec_get(raw, $0)) }
}

/// Runs `body` with a C++ vector of strings.
func withStringVector<R>(_ strings: [String] = [], _ body: (tmx_strvec) -> R) -> R {
    guard let raw = tmx_strvec_new() else { preconditionFailure("tmx_strvec_new failed") }
    defer { tmx_strvec_free(raw) }
    for string in strings { tmx_strvec_push(raw, string) }
    return body(raw)
}

func strings(in raw: tmx_strvec) -> [String] {
    (0..<tmx_strvec_size(raw)).map { String(cString: tmx_strvec_get(raw, $0)) }
}

/// Evaluates the given tensors (and what they depend on) now.
public func eval(_ tensors: Tensor...) { eval(tensors) }

/// Evaluates the given tensors (and what they depend on) now.
public func eval(_ tensors: [Tensor]) {
    if withTensorVector(tensors, tmx_eval) != 0 { opFailed("eval") }
}

/// Starts evaluating the tensors in the background; reading them later waits for the result.
public func asyncEval(_ tensors: [Tensor]) {
    if withTensorVector(tensors, tmx_async_eval) != 0 { opFailed("asyncEval") }
}

extension Tensor {
    /// Evaluates this tensor now and returns it.
    @discardableResult
    public func evaluated() -> Tensor {
        eval(self)
        return self
    }
}

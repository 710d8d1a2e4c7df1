import CMLXShim

/// Element types of a ``Tensor``, as MLX defines them.
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible, Codable {
    case bool = 0, uint8, uint16, uint32, uint64
    case int8, int16, int32, int64
    case float16, float32, float64, bfloat16, complex64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .uint8, .int8: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .complex64: 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .float32, .float64, .bfloat16: true
        default: false
        }
    }

    public var isInteger: Bool { !isFloatingPoint && self != .bool && self != .complex64 }

    /// The name used by safetensors headers and NumPy-style tools.
    public var description: String {
        switch self {
        case .bool: "bool"
        case .uint8: "uint8"
        case .uint16: "uint16"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .int8: "int8"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .float16: "float16"
        case .float32: "float32"
        case .float64: "float64"
        case .bfloat16: "bfloat16"
        case .complex64: "complex64"
        }
    }
}

/// Swift types whose values can be copied into and out of a ``Tensor`` bit for bit.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}

extension Bool: TensorElement { public static var dtype: DType { .bool } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension UInt16: TensorElement { public static var dtype: DType { .uint16 } }
extension UInt32: TensorElement { public static var dtype: DType { .uint32 } }
extension UInt64: TensorElement { public static var dtype: DType { .uint64 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
/// Swift's `Int` is 64-bit on every platform Temper supports.
extension Int: TensorElement { public static var dtype: DType { .int64 } }
#if !(os(macOS) && arch(x86_64))
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
#endif
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }

import Foundation
import TemperCore

/// A metadata value of a GGUF file, typed as the format stores it.
public enum GGUFValue: Sendable {
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case uint64(UInt64)
    case strings([String])
    case int32s([Int32])
    case float32s([Float])
}

/// How a tensor is stored in a written GGUF file.
public enum GGUFTensorType: UInt32, Sendable {
    case f32 = 0
    case f16 = 1
    /// Blocks of 32 values: a float16 scale and 32 4-bit codes (llama.cpp's Q4_0).
    case q4_0 = 2
    /// Blocks of 32 values: a float16 scale and 32 int8s (llama.cpp's Q8_0).
    case q8_0 = 8
}

/// Writes GGUF version 3 files (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) with
/// F32, F16, Q8_0 and Q4_0 tensors, which llama.cpp-based tools load.
public struct GGUFWriter {
    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [(name: String, tensor: Tensor, type: GGUFTensorType)] = []
    public let alignment = 32

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.removeAll { $0.key == key }
        metadata.append((key, value))
    }

    public mutating func add(_ name: String, _ tensor: Tensor, type: GGUFTensorType) {
        tensors.append((name, tensor, type))
    }

    /// Writes to a temporary file beside `url`, then renames it into place.
    public func write(to url: URL) throws {
        var header = Data()
        header.append(contentsOf: Array("GGUF".utf8))
        header.appendLittleEndian(UInt32(3))
        header.appendLittleEndian(UInt64(tensors.count))
        header.appendLittleEndian(UInt64(metadata.count + 1))
        header.appendString("general.alignment")
        header.appendLittleEndian(UInt32(4))
        header.appendLittleEndian(UInt32(alignment))
        for (key, value) in metadata {
            header.appendString(key)
            header.appendValue(value)
        }
        var payloads: [Data] = []
        var offset = 0
        for (name, tensor, type) in tensors {
            let payload = Self.encode(tensor, as: type)
            header.appendString(name)
            header.appendLittleEndian(UInt32(tensor.ndim))
            // GGUF lists dimensions innermost first.
            for dimension in tensor.shape.reversed() { header.appendLittleEndian(UInt64(dimension)) }
            header.appendLittleEndian(type.rawValue)
            header.appendLittleEndian(UInt64(offset))
            payloads.append(payload)
            offset += Self.padded(payload.count, to: alignment)
        }
        header.append(Data(count: Self.padded(header.count, to: alignment) - header.count))
        try writeAtomically(to: url) { temporary in
            FileManager.default.createFile(atPath: temporary.path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: temporary.path) else {
                throw ModelError.unsupported(path: url.path, reason: "cannot create the file")
            }
            defer { try? handle.close() }
            try handle.write(contentsOf: header)
            for payload in payloads {
                try handle.write(contentsOf: payload)
                try handle.write(contentsOf: Data(count: Self.padded(payload.count, to: alignment) - payload.count))
            }
        }
    }

    static func padded(_ count: Int, to alignment: Int) -> Int { (count + alignment - 1) / alignment * alignment }

    /// The bytes of `tensor` in `type`: row-major, as GGUF stores them.
    static func encode(_ tensor: Tensor, as type: GGUFTensorType) -> Data {
        switch type {
        case .f32: return Data(tensor.asType(.float32).contiguous().rawBytes())
        case .f16: return Data(tensor.asType(.float16).contiguous().rawBytes())
        case .q8_0: return quantizeQ8_0(tensor.asType(.float32).toArray(Float.self))
        case .q4_0: return quantizeQ4_0(tensor.asType(.float32).toArray(Float.self))
        }
    }

    /// llama.cpp's Q4_0: per block of 32, d = (the value of largest magnitude) / -8, stored as float16,
    /// and codes min(15, trunc(x / d + 8.5)); byte j holds element j in its low nibble and element
    /// j + 16 in its high one.
    static func quantizeQ4_0(_ values: [Float]) -> Data {
        precondition(values.count % 32 == 0, "Q4_0 needs a multiple of 32 values")
        var out = Data(capacity: values.count / 32 * 18)
        for block in stride(from: 0, to: values.count, by: 32) {
            let chunk = Array(values[block..<(block + 32)])
            var amax: Float = 0, extreme: Float = 0
            for value in chunk where Swift.abs(value) > amax {
                amax = Swift.abs(value)
                extreme = value
            }
            let d = extreme / -8
            let inverse: Float = d == 0 ? 0 : 1 / d
            out.appendLittleEndian(Float16(d).bitPattern)
            func code(_ value: Float) -> UInt8 { UInt8(Swift.min(15, Int8(value * inverse + 8.5))) }
            for j in 0..<16 { out.append(code(chunk[j]) | code(chunk[j + 16]) << 4) }
        }
        return out
    }

    /// llama.cpp's Q8_0: per block of 32, d = max|x| / 127 (stored as float16) and
    /// q = round-half-away(x / d).
    static func quantizeQ8_0(_ values: [Float]) -> Data {
        precondition(values.count % 32 == 0, "Q8_0 needs a multiple of 32 values")
        var out = Data(capacity: values.count / 32 * 34)
        for block in stride(from: 0, to: values.count, by: 32) {
            let chunk = values[block..<(block + 32)]
            let amax = chunk.map { Swift.abs($0) }.max() ?? 0
            let d = amax / 127
            let inverse: Float = d == 0 ? 0 : 1 / d
            out.appendLittleEndian(Float16(d).bitPattern)
            for value in chunk {
                out.append(UInt8(bitPattern: Int8((value * inverse).rounded(.toNearestOrAwayFromZero))))
            }
        }
        return out
    }
}

extension Data {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ string: String) {
        let bytes = Array(string.utf8)
        appendLittleEndian(UInt64(bytes.count))
        append(contentsOf: bytes)
    }

    mutating func appendValue(_ value: GGUFValue) {
        // Type codes from the GGUF specification.
        switch value {
        case .uint32(let v): appendLittleEndian(UInt32(4)); appendLittleEndian(v)
        case .int32(let v): appendLittleEndian(UInt32(5)); appendLittleEndian(v)
        case .float32(let v): appendLittleEndian(UInt32(6)); appendLittleEndian(v.bitPattern)
        case .bool(let v): appendLittleEndian(UInt32(7)); append(v ? 1 : 0)
        case .string(let v): appendLittleEndian(UInt32(8)); appendString(v)
        case .uint64(let v): appendLittleEndian(UInt32(10)); appendLittleEndian(v)
        case .strings(let list):
            appendLittleEndian(UInt32(9)); appendLittleEndian(UInt32(8)); appendLittleEndian(UInt64(list.count))
            for item in list { appendString(item) }
        case .int32s(let list):
            appendLittleEndian(UInt32(9)); appendLittleEndian(UInt32(5)); appendLittleEndian(UInt64(list.count))
            for item in list { appendLittleEndian(item) }
        case .float32s(let list):
            appendLittleEndian(UInt32(9)); appendLittleEndian(UInt32(6)); appendLittleEndian(UInt64(list.count))
            for item in list { appendLittleEndian(item.bitPattern) }
        }
    }
}

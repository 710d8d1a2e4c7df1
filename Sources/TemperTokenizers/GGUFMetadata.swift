// A reader for the header of a GGUF file (llama.cpp's model format, versions 2 and 3): every
// metadata key/value and the tensor directory, without touching the tensor data.
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values, the
// tensor infos, padding to `general.alignment` (default 32), then the data.

import Foundation

/// One metadata value; arrays may nest.
public enum GGUFMetadataValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFMetadataValue])

    /// The value as an integer, when it is one (of any width) or a bool.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        case .bool(let v): v ? 1 : 0
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFMetadataValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

/// A tensor's entry in the directory; `offset` is relative to `GGUFMetadata.dataOffset`.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// Dimensions as GGUF stores them (innermost first).
    public var dimensions: [Int]
    /// The `ggml_type` number (0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0, 30 BF16, ...).
    public var type: Int
    public var offset: Int
}

public struct GGUFMetadata: Sendable {
    public var version: Int
    public var values: [String: GGUFMetadataValue]
    /// Keys in file order.
    public var keys: [String]
    public var tensorInfos: [GGUFTensorInfo]
    public var alignment: Int
    /// Byte offset of the tensor data in the file.
    public var dataOffset: Int

    /// Reads the header of the GGUF file at `url`.
    public static func read(_ url: URL) throws -> GGUFMetadata {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        return try parse(data, file: url.path)
    }

    /// Parses a GGUF header held in memory (`file` names it in errors).
    public static func parse(_ data: Data, file: String = "GGUF data") throws -> GGUFMetadata {
        try data.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw, file: file)
            return try reader.readHeader()
        }
    }

    // MARK: Accessors

    public func string(_ key: String) -> String? { values[key]?.stringValue }
    public func int(_ key: String) -> Int? { values[key]?.intValue }
    public func bool(_ key: String) -> Bool? { values[key]?.boolValue }
    public func double(_ key: String) -> Double? { values[key]?.doubleValue }
    public func strings(_ key: String) -> [String]? {
        values[key]?.arrayValue.flatMap { items in
            let strings = items.compactMap(\.stringValue)
            return strings.count == items.count ? strings : nil
        }
    }
    public func ints(_ key: String) -> [Int]? {
        values[key]?.arrayValue.flatMap { items in
            let ints = items.compactMap(\.intValue)
            return ints.count == items.count ? ints : nil
        }
    }
    public func floats(_ key: String) -> [Float]? {
        values[key]?.arrayValue.flatMap { items in
            let floats = items.compactMap { $0.doubleValue.map(Float.init) }
            return floats.count == items.count ? floats : nil
        }
    }
}

private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var position = 0
    var bigEndian = false

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    func error(_ reason: String) -> TokenizerError { .gguf(file: file, reason: reason) }

    mutating func need(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, position + count <= bytes.count else {
            throw error("truncated: \(what()) at byte \(position) needs \(count) bytes, file has \(bytes.count)")
        }
    }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let value = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
        return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
    }

    mutating func count(_ what: @autoclosure () -> String) throws -> Int {
        let raw = try integer(UInt64.self, what())
        guard raw <= UInt64(bytes.count) else {
            throw error("truncated or corrupt: \(what()) is \(raw), more than the file's \(bytes.count) bytes")
        }
        return Int(raw)
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let length = try count("length of \(what())")
        try need(length, what())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)])
        position += length
        return String(decoding: slice, as: UTF8.self)
    }

    mutating func readHeader() throws -> GGUFMetadata {
        try need(4, "magic")
        let magic = Array(bytes[0..<4])
        guard magic == Array("GGUF".utf8) else {
            let shown = magic.map { String(format: "%02x", $0) }.joined(separator: " ")
            throw error("not a GGUF file (magic \(shown), expected 47 47 55 46 \"GGUF\")")
        }
        position = 4
        var version = try integer(UInt32.self, "version")
        if version & 0xFFFF == 0 && version != 0 {
            // Big-endian files store the version byte-swapped when read little-endian.
            bigEndian = true
            version = version.byteSwapped
        }
        guard version == 2 || version == 3 else {
            throw error("unsupported GGUF version \(version) (supported: 2, 3)")
        }
        let tensorCount = try count("tensor count")
        let valueCount = try count("key/value count")
        var values: [String: GGUFMetadataValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(valueCount)
        for index in 0..<valueCount {
            let key = try string("key #\(index)")
            let type = try integer(UInt32.self, "type of '\(key)'")
            values[key] = try value(type: type, key: key, depth: 0)
            keys.append(key)
        }
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(tensorCount)
        for index in 0..<tensorCount {
            let name = try string("tensor #\(index) name")
            let rank = try integer(UInt32.self, "rank of tensor '\(name)'")
            guard rank <= 8 else { throw error("tensor '\(name)' has rank \(rank) (at most 8)") }
            var dims: [Int] = []
            for _ in 0..<rank { dims.append(try count("dimension of tensor '\(name)'")) }
            let type = try integer(UInt32.self, "type of tensor '\(name)'")
            let offset = try count("offset of tensor '\(name)'")
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, type: Int(type), offset: offset))
        }
        let alignment = values["general.alignment"]?.intValue ?? 32
        guard alignment > 0 else { throw error("general.alignment is \(alignment)") }
        let dataOffset = (position + alignment - 1) / alignment * alignment
        return GGUFMetadata(version: Int(version), values: values, keys: keys, tensorInfos: tensors,
                            alignment: alignment, dataOffset: dataOffset)
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFMetadataValue {
        switch type {
        case 0: return .uint8(try integer(UInt8.self, key))
        case 1: return .int8(try integer(Int8.self, key))
        case 2: return .uint16(try integer(UInt16.self, key))
        case 3: return .int16(try integer(Int16.self, key))
        case 4: return .uint32(try integer(UInt32.self, key))
        case 5: return .int32(try integer(Int32.self, key))
        case 6: return .float32(Float(bitPattern: try integer(UInt32.self, key)))
        case 7: return .bool(try integer(UInt8.self, key) != 0)
        case 8: return .string(try string(key))
        case 9:
            guard depth < 16 else { throw error("'\(key)' nests arrays too deeply") }
            let elementType = try integer(UInt32.self, "element type of '\(key)'")
            let n = try count("length of '\(key)'")
            var items: [GGUFMetadataValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try integer(UInt64.self, key))
        case 11: return .int64(try integer(Int64.self, key))
        case 12: return .float64(Double(bitPattern: try integer(UInt64.self, key)))
        default: throw error("'\(key)' has unknown value type \(type)")
        }
    }
}

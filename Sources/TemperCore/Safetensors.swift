import CMLXShim
import Foundation

/// Why a weights file could not be read or written; each case names the file.
public enum WeightsFileError: Error, LocalizedError, Equatable {
    case fileNotFound(path: String)
    case invalidHeader(path: String, reason: String)
    case truncated(path: String, tensor: String, neededBytes: Int, fileBytes: Int)
    case invalidIndex(path: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: DType)
    case mlx(path: String, message: String)

    public var errorDescription: String? {
        switch self {
        case .fileNotFound(let path):
            "\(path): no such file"
        case .invalidHeader(let path, let reason):
            "\(path): not a valid safetensors file: \(reason)"
        case .truncated(let path, let tensor, let needed, let size):
            "\(path): file is truncated: tensor '\(tensor)' ends at byte \(needed) but the file has \(size) bytes"
        case .invalidIndex(let path, let reason):
            "\(path): invalid sharded-weights index: \(reason)"
        case .unsupportedDType(let path, let tensor, let dtype):
            "\(path): tensor '\(tensor)' is \(dtype), which cannot be saved as safetensors here; convert it with asType(.float32)"
        case .mlx(let path, let message):
            "\(path): \(message)"
        }
    }
}

/// Tensors and string metadata of one safetensors file or a sharded set.
public struct TensorFile {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// Reading and writing the safetensors format (https://github.com/huggingface/safetensors).
public enum Safetensors {
    static let dtypeNames: [String: DType] = [
        "BOOL": .bool, "U8": .uint8, "U16": .uint16, "U32": .uint32, "U64": .uint64,
        "I8": .int8, "I16": .int16, "I32": .int32, "I64": .int64,
        "F16": .float16, "F32": .float32, "F64": .float64, "BF16": .bfloat16, "C64": .complex64,
    ]

    /// Loads every tensor of a `.safetensors` file and its `__metadata__`.
    ///
    /// The header is checked first (tensor byte ranges against dtype × shape and the file size), so a
    /// damaged file is a thrown error naming the file and tensor, never a crash in a later op.
    public static func load(_ url: URL) throws -> TensorFile {
        let path = url.path
        let header = try validatedHeader(path)
        let loaded = withStringVector { names in
            withTensorVector { arrays in
                withStringVector { keys in
                    withStringVector { values in
                        tmx_load_safetensors(path, names, arrays, keys, values) == 0
                            ? (strings(in: names), TemperCore.tensors(in: arrays), strings(in: keys), strings(in: values))
                            : nil
                    }
                }
            }
        }
        guard let (names, arrays, keys, values) = loaded else {
            throw WeightsFileError.mlx(path: path, message: lastShimError())
        }
        let tensors = Dictionary(uniqueKeysWithValues: zip(names, arrays))
        for (name, entry) in header {
            guard let tensor = tensors[name], tensor.shape == entry.shape else {
                throw WeightsFileError.invalidHeader(
                    path: path, reason: "tensor '\(name)' did not load with shape \(entry.shape)")
            }
        }
        return TensorFile(
            tensors: tensors,
            metadata: Dictionary(uniqueKeysWithValues: zip(keys, values)))
    }

    /// Writes tensors (and optional metadata) to `url` atomically: a temporary file in the same
    /// folder, then a rename, so a crash never leaves a half-written file under the final name.
    public static func save(
        _ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL
    ) throws {
        let names = tensors.keys.sorted()
        // MLX 0.32's safetensors writer has no float64 (the format does; no model stores it).
        if let name = names.first(where: { tensors[$0]?.dtype == .float64 }) {
            throw WeightsFileError.unsupportedDType(path: url.path, tensor: name, dtype: .float64)
        }
        let metadataKeys = metadata.keys.sorted()
        try writeAtomically(to: url) { temporary in
            let status = withStringVector(names) { nameVector in
                withTensorVector(names.compactMap { tensors[$0] }) { arrays in
                    withStringVector(metadataKeys) { keys in
                        withStringVector(metadataKeys.compactMap { metadata[$0] }) { values in
                            tmx_save_safetensors(temporary.path, nameVector, arrays, keys, values)
                        }
                    }
                }
            }
            guard status == 0 else { throw WeightsFileError.mlx(path: url.path, message: lastShimError()) }
        }
    }

    // MARK: sharded checkpoints

    /// The Hugging Face index of a sharded checkpoint (`model.safetensors.index.json`).
    public struct ShardIndex: Codable, Equatable, Sendable {
        public var metadata: [String: JSONValue]?
        public var weightMap: [String: String]

        enum CodingKeys: String, CodingKey {
            case metadata
            case weightMap = "weight_map"
        }
    }

    /// Loads every shard named by a `model.safetensors.index.json` and checks that each tensor is
    /// where the index says and that every tensor listed exists.
    public static func loadSharded(index url: URL) throws -> TensorFile {
        let index = try readIndex(url)
        let folder = url.deletingLastPathComponent()
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for shard in Set(index.weightMap.values).sorted() {
            let file = try load(folder.appendingPathComponent(shard))
            for (name, tensor) in file.tensors {
                guard index.weightMap[name] == shard else {
                    throw WeightsFileError.invalidIndex(
                        path: url.path, reason: "tensor '\(name)' is in \(shard) but the index does not place it there")
                }
                tensors[name] = tensor
            }
            metadata.merge(file.metadata) { first, _ in first }
        }
        let missing = index.weightMap.keys.filter { tensors[$0] == nil }.sorted()
        if !missing.isEmpty {
            throw WeightsFileError.invalidIndex(
                path: url.path,
                reason: "tensors listed but not found in their shards: \(missing.prefix(10).joined(separator: ", "))")
        }
        return TensorFile(tensors: tensors, metadata: metadata)
    }

    /// Loads a model folder's weights: `model.safetensors.index.json` when present, else
    /// `model.safetensors`, else every `*.safetensors` file in the folder.
    public static func loadDirectory(_ folder: URL) throws -> TensorFile {
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: index.path) { return try loadSharded(index: index) }
        let single = folder.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return try load(single) }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let shards = files.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !shards.isEmpty else { throw WeightsFileError.fileNotFound(path: folder.appendingPathComponent("model.safetensors").path) }
        var result = TensorFile(tensors: [:])
        for shard in shards {
            let file = try load(folder.appendingPathComponent(shard))
            result.tensors.merge(file.tensors) { first, _ in first }
            result.metadata.merge(file.metadata) { first, _ in first }
        }
        return result
    }

    /// Writes tensors as shards of at most `maxShardBytes` (`model-00001-of-00003.safetensors`, …)
    /// plus `model.safetensors.index.json`, the layout `transformers` writes.
    public static func saveSharded(
        _ tensors: [String: Tensor], metadata: [String: String] = [:], to folder: URL,
        maxShardBytes: Int
    ) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var shards: [[String]] = [[]]
        var shardBytes = 0
        for name in tensors.keys.sorted() {
            let bytes = tensors[name]?.byteCount ?? 0
            if shardBytes > 0 && shardBytes + bytes > maxShardBytes {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(name)
            shardBytes += bytes
        }
        var weightMap: [String: String] = [:]
        for (number, names) in shards.enumerated() {
            let shardName = String(format: "model-%05d-of-%05d.safetensors", number + 1, shards.count)
            let shardTensors = Dictionary(uniqueKeysWithValues: names.compactMap { name in
                tensors[name].map { (name, $0) }
            })
            try save(shardTensors, metadata: metadata, to: folder.appendingPathComponent(shardName))
            for name in names { weightMap[name] = shardName }
        }
        let total = tensors.values.reduce(0) { $0 + $1.byteCount }
        let index = ShardIndex(metadata: ["total_size": .number(Double(total))], weightMap: weightMap)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(to: folder.appendingPathComponent("model.safetensors.index.json")) {
            try encoder.encode(index).write(to: $0)
        }
    }

    static func readIndex(_ url: URL) throws -> ShardIndex {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw WeightsFileError.fileNotFound(path: url.path)
        }
        do {
            return try JSONDecoder().decode(ShardIndex.self, from: data)
        } catch {
            throw WeightsFileError.invalidIndex(path: url.path, reason: "\(error)")
        }
    }

    // MARK: header validation

    struct HeaderEntry {
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// Parses and checks the header of a safetensors file without reading tensor data.
    static func validatedHeader(_ path: String) throws -> [String: HeaderEntry] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw WeightsFileError.fileNotFound(path: path)
        }
        defer { try? handle.close() }
        let fileBytes = Int((try? handle.seekToEnd()) ?? 0)
        try? handle.seek(toOffset: 0)
        guard fileBytes >= 8, let prefix = try? handle.read(upToCount: 8), prefix.count == 8 else {
            throw WeightsFileError.invalidHeader(path: path, reason: "file has \(fileBytes) bytes, fewer than the 8-byte header length")
        }
        let headerBytes = prefix.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerBytes <= fileBytes - 8, headerBytes < 100_000_000 else {
            throw WeightsFileError.invalidHeader(path: path, reason: "header length \(headerBytes) exceeds the file's \(fileBytes) bytes")
        }
        guard let headerData = try? handle.read(upToCount: headerBytes), headerData.count == headerBytes,
            let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any]
        else {
            throw WeightsFileError.invalidHeader(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerBytes
        var entries: [String: HeaderEntry] = [:]
        for (name, value) in json where name != "__metadata__" {
            guard let fields = value as? [String: Any], let dtypeName = fields["dtype"] as? String,
                let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int],
                offsets.count == 2
            else {
                throw WeightsFileError.invalidHeader(path: path, reason: "tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = dtypeNames[dtypeName] else {
                throw WeightsFileError.invalidHeader(path: path, reason: "tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            let expected = shape.reduce(1, *) * dtype.size
            guard offsets[1] - offsets[0] == expected, offsets[0] >= 0 else {
                throw WeightsFileError.invalidHeader(
                    path: path,
                    reason: "tensor '\(name)' spans \(offsets[1] - offsets[0]) bytes but \(dtypeName) \(shape) needs \(expected)")
            }
            guard dataStart + offsets[1] <= fileBytes else {
                throw WeightsFileError.truncated(
                    path: path, tensor: name, neededBytes: dataStart + offsets[1], fileBytes: fileBytes)
            }
            entries[name] = HeaderEntry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        return entries
    }
}

/// Writes through a temporary file in the destination's folder, then renames it into place.
public func writeAtomically(to url: URL, _ write: (URL) throws -> Void) throws {
    let folder = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    // The temporary name keeps the extension: MLX appends ".safetensors"/".gguf" to paths without it.
    let temporary = folder.appendingPathComponent(
        ".tmp-\(ProcessInfo.processInfo.processIdentifier)-\(url.lastPathComponent)")
    defer { try? FileManager.default.removeItem(at: temporary) }
    try write(temporary)
    if rename(temporary.path, url.path) != 0 {
        throw WeightsFileError.mlx(path: url.path, message: "could not rename \(temporary.path) into place: \(String(cString: strerror(errno)))")
    }
}

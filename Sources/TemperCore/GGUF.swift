import CMLXShim
import Foundation

/// Reading and writing GGUF files through MLX (Q4_0, Q4_1 and Q8_0 tensors arrive in MLX's affine
/// quantized layout; F16/F32 as they are).
public enum GGUF {
    /// A metadata value as MLX exposes it: numbers and booleans come as tensors.
    public enum MetadataValue {
        case none
        case tensor(Tensor)
        case string(String)
        case strings([String])
    }

    public struct File {
        public var tensors: [String: Tensor]
        public var metadata: [String: MetadataValue]

        public init(tensors: [String: Tensor], metadata: [String: MetadataValue] = [:]) {
            self.tensors = tensors
            self.metadata = metadata
        }
    }

    public static func load(_ url: URL) throws -> File {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw WeightsFileError.fileNotFound(path: path)
        }
        let meta = tmx_gguf_meta_new()
        defer { tmx_gguf_meta_free(meta) }
        let loaded = withStringVector { names in
            withTensorVector { arrays in
                tmx_load_gguf(path, names, arrays, meta) == 0
                    ? (strings(in: names), tensors(in: arrays)) : nil
            }
        }
        guard let (names, arrays) = loaded else {
            throw WeightsFileError.mlx(path: path, message: lastShimError())
        }
        var metadata: [String: MetadataValue] = [:]
        for i in 0..<tmx_gguf_meta_size(meta) {
            let key = String(cString: tmx_gguf_meta_key(meta, i))
            switch tmx_gguf_meta_kind(meta, i) {
            case Int32(TMX_GGUF_ARRAY.rawValue):
                metadata[key] = .tensor(Tensor(handle: tmx_gguf_meta_array(meta, i)))
            case Int32(TMX_GGUF_STRING.rawValue):
                metadata[key] = .string(String(cString: tmx_gguf_meta_string(meta, i)))
            case Int32(TMX_GGUF_STRINGS.rawValue):
                metadata[key] = .strings(withStringVector { list in
                    tmx_gguf_meta_strings(meta, i, list)
                    return strings(in: list)
                })
            default:
                metadata[key] = MetadataValue.none
            }
        }
        return File(
            tensors: Dictionary(uniqueKeysWithValues: zip(names, arrays)),
            metadata: metadata)
    }

    /// Writes `file` atomically (temporary file, then rename).
    public static func save(_ file: File, to url: URL) throws {
        let names = file.tensors.keys.sorted()
        let meta = tmx_gguf_meta_new()
        defer { tmx_gguf_meta_free(meta) }
        for key in file.metadata.keys.sorted() {
            switch file.metadata[key] {
            case .tensor(let tensor): tmx_gguf_meta_set_array(meta, key, tensor.handle)
            case .string(let string): tmx_gguf_meta_set_string(meta, key, string)
            case .strings(let strings):
                withStringVector(strings) { tmx_gguf_meta_set_strings(meta, key, $0) }
            case .some(.none), nil: continue
            }
        }
        try writeAtomically(to: url) { temporary in
            let status = withStringVector(names) { nameVector in
                withTensorVector(names.compactMap { file.tensors[$0] }) { arrays in
                    tmx_save_gguf(temporary.path, nameVector, arrays, meta)
                }
            }
            guard status == 0 else {
                throw WeightsFileError.mlx(path: url.path, message: lastShimError())
            }
        }
    }
}

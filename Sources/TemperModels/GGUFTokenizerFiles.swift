import Foundation
import TemperCore
import TemperTokenizers

extension GGUFConversion {
    /// `tokenizer.json` and `tokenizer_config.json` built from the GGUF's tokenizer metadata,
    /// each written atomically.
    static func writeTokenizerFiles(from url: URL, to directory: URL) throws {
        let files = try GGUFTokenizerConversion.files(from: try GGUFMetadata.read(url))
        try writeFileAtomically(files.tokenizerJSON, to: directory.appendingPathComponent("tokenizer.json"))
        try writeFileAtomically(files.tokenizerConfigJSON, to: directory.appendingPathComponent("tokenizer_config.json"))
    }

    /// Checks a GGUF's header in Swift before MLX maps it (MLX's reader trusts the file): a bad
    /// magic, a truncated header or tensor data past the end are errors naming the file.
    static func validateHeader(_ url: URL) throws {
        let header = try GGUFMetadata.read(url)
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        if let last = header.tensorInfos.max(by: { $0.offset < $1.offset }),
            header.dataOffset + last.offset >= size {
            throw ModelError.unsupported(
                path: url.path,
                reason: "file is truncated: tensor '\(last.name)' starts at byte \(header.dataOffset + last.offset) but the file has \(size) bytes")
        }
    }
}

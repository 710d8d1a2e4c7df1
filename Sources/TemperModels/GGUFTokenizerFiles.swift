import Foundation
import TemperTokenizers

extension GGUFConversion {
    /// `tokenizer.json` and `tokenizer_config.json` built from the GGUF's tokenizer metadata.
    static func writeTokenizerFiles(from url: URL, to directory: URL) throws {
    }
}

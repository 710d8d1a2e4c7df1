import Foundation

/// Why a tokenizer or a GGUF file could not be loaded. Every case names the file (or folder) and,
/// where it applies, the field at fault.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The folder has neither `tokenizer.json` nor `vocab.json` + `merges.txt`.
    case missingFiles(directory: String)
    /// A file could not be read.
    case unreadable(file: String, reason: String)
    /// A file is not valid JSON.
    case malformedJSON(file: String, reason: String)
    /// A field is missing or has the wrong type or value.
    case invalid(file: String, field: String, reason: String)
    /// The file describes something this implementation does not do (a model or pre-tokenizer type).
    case unsupported(file: String, field: String, value: String)
    /// A GGUF file is damaged or not a GGUF file at all.
    case gguf(file: String, reason: String)

    public var description: String {
        switch self {
        case .missingFiles(let directory):
            "no tokenizer in \(directory): expected tokenizer.json, or vocab.json and merges.txt"
        case .unreadable(let file, let reason):
            "cannot read \(file): \(reason)"
        case .malformedJSON(let file, let reason):
            "\(file) is not valid JSON: \(reason)"
        case .invalid(let file, let field, let reason):
            "\(file): field '\(field)' \(reason)"
        case .unsupported(let file, let field, let value):
            "\(file): unsupported \(field) '\(value)'"
        case .gguf(let file, let reason):
            "\(file): \(reason)"
        }
    }

    /// The same error attributed to `file` (for errors raised before the file name was known).
    func attributed(to file: String) -> TokenizerError {
        switch self {
        case .invalid(_, let field, let reason): .invalid(file: file, field: field, reason: reason)
        case .unsupported(_, let field, let value): .unsupported(file: file, field: field, value: value)
        default: self
        }
    }
}

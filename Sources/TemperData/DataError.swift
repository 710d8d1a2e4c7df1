import Foundation

/// Where a record came from: the file's path as given and the 1-based line the record starts on.
public struct SourceLocation: Codable, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `path:line`, the form editors and compilers use.
    public var description: String { "\(file):\(line)" }
}

/// A record that cannot become a training sample, and why.
public struct DataIssue: Codable, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var reason: Reason

    public init(_ location: SourceLocation, _ reason: Reason) {
        self.location = location
        self.reason = reason
    }

    /// `path:line: reason`.
    public var description: String { "\(location): \(reason)" }

    public enum Reason: Codable, Sendable, Hashable, CustomStringConvertible {
        /// The record is not valid JSON; the column is within the record's line.
        case malformedJSON(message: String, line: Int, column: Int)
        /// The record is valid JSON but not an object (`found` is the JSON type).
        case notAnObject(found: String)
        /// None of the accepted names of a field is present.
        case missingField(names: [String])
        /// The field exists but holds the wrong JSON type.
        case wrongType(field: String, expected: String, found: String)
        /// A role that the column mapping does not know.
        case unknownRole(role: String, index: Int)
        /// The conversation's roles are in an order chat templates and training cannot use.
        case roleOrder(String)
        case noAssistantTurn
        /// The last message is the user's, so nothing follows it to learn.
        case endsWithUserTurn
        /// A field that must hold text is empty (or only whitespace).
        case emptyField(String)
        /// The tokenized sample is longer than `maxLength` and the length policy is `.error`.
        case tooLong(tokens: Int, maxLength: Int)
        /// A GRPO prompt leaves no room for its completions in the model's context.
        case promptExceedsContext(promptTokens: Int, completionTokens: Int, contextLength: Int)
        /// Truncation to `maxLength` would leave no trained token (the prompt alone fills it).
        case noTrainedTokenWithinLimit(promptTokens: Int, maxLength: Int)
        /// The chat template failed to render the conversation.
        case template(String)
        /// The assistant tokens could not be located in the rendered conversation.
        case alignment(String)
        /// A preference pair whose chosen and rejected completions are the same.
        case identicalPair

        /// A short name for counting issues by kind in reports.
        public var kind: String {
            switch self {
            case .malformedJSON: "malformed JSON"
            case .notAnObject: "not an object"
            case .missingField: "missing field"
            case .wrongType: "wrong field type"
            case .unknownRole: "unknown role"
            case .roleOrder, .noAssistantTurn, .endsWithUserTurn: "wrong role order"
            case .emptyField: "empty field"
            case .tooLong, .promptExceedsContext: "too long"
            case .noTrainedTokenWithinLimit: "prompt fills maxLength"
            case .template: "chat template error"
            case .alignment: "mask alignment failed"
            case .identicalPair: "chosen == rejected"
            }
        }

        public var description: String {
            switch self {
            case .malformedJSON(let message, let line, let column):
                "malformed JSON: \(message) (line \(line), column \(column))"
            case .notAnObject(let found):
                "expected a JSON object, found \(found)"
            case .missingField(let names):
                names.count == 1
                    ? "missing field '\(names[0])'"
                    : "missing field '\(names[0])' (or \(names.dropFirst().map { "'\($0)'" }.joined(separator: ", ")))"
            case .wrongType(let field, let expected, let found):
                "field '\(field)' must be \(expected), found \(found)"
            case .unknownRole(let role, let index):
                "unknown role '\(role)' in messages[\(index)] (expected system, user or assistant, or a mapped name)"
            case .roleOrder(let message):
                "wrong role order: \(message)"
            case .noAssistantTurn:
                "wrong role order: no assistant turn"
            case .endsWithUserTurn:
                "wrong role order: the conversation ends with a user turn"
            case .emptyField(let field):
                "empty \(field)"
            case .tooLong(let tokens, let maxLength):
                "too long: \(tokens) tokens > maxLength \(maxLength) (length policy: error)"
            case .promptExceedsContext(let promptTokens, let completionTokens, let contextLength):
                "too long: the prompt's \(promptTokens) tokens plus max_completion_length \(completionTokens) exceed the model's "
                    + "context of \(contextLength) tokens (max_prompt_length keeps a prompt's end)"
            case .noTrainedTokenWithinLimit(let promptTokens, let maxLength):
                "too long: the prompt takes \(promptTokens) tokens, so no trained token fits in maxLength \(maxLength)"
            case .template(let message):
                "chat template failed: \(message)"
            case .alignment(let message):
                "cannot mask the assistant tokens: \(message)"
            case .identicalPair:
                "chosen and rejected are the same, so the pair prefers nothing"
            }
        }
    }
}

/// Errors of the data pipeline. Every message names the file (and the line, where there is one).
public enum DataError: Error, LocalizedError, Equatable, Sendable {
    /// Bad records under the `.abort` policy: all of them are listed here, the message shows the
    /// first 20 and the count of the rest.
    case invalidRecords([DataIssue])
    case unreadableFile(path: String, reason: String)
    /// No record of the file matches a known format; `keys` are the first record's keys.
    case unknownFormat(SourceLocation, keys: [String])
    /// The file holds chat records (or the format is forced to chat) but no chat template was given.
    case missingChatTemplate(path: String)
    /// Nothing is left to train on after validation.
    case noSamples(paths: [String])
    /// An option outside its range.
    case invalidOption(String)

    /// How many issues the `.invalidRecords` message lists before summarizing the rest.
    public static let listedIssueLimit = 20

    public var errorDescription: String? {
        switch self {
        case .invalidRecords(let issues):
            let listed = issues.prefix(Self.listedIssueLimit).map { "  \($0)" }
            let rest = issues.count - listed.count
            let noun = issues.count == 1 ? "record" : "records"
            return (["\(issues.count) invalid \(noun) (fix them, or set the invalid-record policy to skip):"]
                + listed + (rest > 0 ? ["  … and \(rest) more"] : [])).joined(separator: "\n")
        case .unreadableFile(let path, let reason):
            return "cannot read dataset \(path): \(reason)"
        case .unknownFormat(let location, let keys):
            return "\(location): cannot detect the dataset format from the keys [\(keys.joined(separator: ", "))]; "
                + "expected 'messages' (chat), 'instruction' and 'output' (instruction) or 'text', "
                + "or set a column mapping or force the format"
        case .missingChatTemplate(let path):
            return "\(path): chat records need a chat template, and the tokenizer has none"
        case .noSamples(let paths):
            return "no usable samples in \(paths.joined(separator: ", "))"
        case .invalidOption(let message):
            return "invalid data option: \(message)"
        }
    }
}

extension DataIssue.Reason: Error {}

import Foundation
import TemperCore
import TemperTokenizers

/// One validated GRPO prompt: the prompt (a string, or chat messages ending in a user turn) and the
/// record's other fields, which reward functions read (e.g. `answer`).
public struct PromptExample: Sendable, Equatable {
    public var prompt: PreferenceText
    public var fields: [String: JSONValue]
    public var source: SourceLocation

    public init(prompt: PreferenceText, fields: [String: JSONValue] = [:], source: SourceLocation) {
        self.prompt = prompt
        self.fields = fields
        self.source = source
    }
}

/// A prompt as the model sees it: its rendered text and token ids.
public struct TokenizedPrompt: Sendable, Equatable {
    public var ids: [Int]
    public var text: String
    public var fields: [String: JSONValue]
    public var source: SourceLocation

    public init(ids: [Int], text: String, fields: [String: JSONValue] = [:], source: SourceLocation) {
        self.ids = ids
        self.text = text
        self.fields = fields
        self.source = source
    }
}

/// Reads TRL's prompt-only format (GRPO's): `prompt` as a string (standard) or a list of messages
/// (conversational), plus any other fields, kept for the rewards.
public enum PromptReader {
    public static func read(_ url: URL, column: String = "prompt") throws -> (examples: [PromptExample], issues: [DataIssue]) {
        parse(try JSONRecords.contents(of: url), path: url.path, column: column)
    }

    public static func parse(_ bytes: [UInt8], path: String, column: String = "prompt") -> (
        examples: [PromptExample], issues: [DataIssue]
    ) {
        let (examples, issues) = JSONRecords.objects(bytes, path: path) { example($0, column: column, source: $1) }
        return (examples, issues)
    }

    public static func example(_ object: JinjaObject, column: String = "prompt", source: SourceLocation) -> Result<
        PromptExample, DataIssue.Reason
    > {
        do throws(DataIssue.Reason) {
            let prompt: PreferenceText
            switch object[column] {
            case nil, .none?, .undefined?: throw .missingField(names: [column])
            case .string(let text)?: prompt = .text(text)
            case .array(let items)?:
                let messages = try DatasetReader.messages(in: .array(items), key: column, columns: ColumnMapping())
                if messages.last?.role == "assistant" { throw .roleOrder("the prompt ends with an assistant turn") }
                prompt = .messages(messages)
            case let other?:
                throw .wrongType(field: column, expected: "a string or a list of messages", found: DatasetReader.typeName(other))
            }
            if prompt.isEmpty { throw .emptyField(column) }
            var fields: [String: JSONValue] = [:]
            for key in object.keys where key != column { fields[key] = jsonValue(object[key] ?? .none) }
            return .success(PromptExample(prompt: prompt, fields: fields, source: source))
        } catch {
            return .failure(error)
        }
    }

    static func jsonValue(_ value: JinjaValue) -> JSONValue {
        switch value {
        case .undefined, .none: .null
        case .bool(let flag): .bool(flag)
        case .int(let number): .number(Double(number))
        case .double(let number): .number(number)
        case .string(let text): .string(text)
        case .array(let items): .array(items.map(jsonValue))
        case .object(let object):
            .object(Dictionary(uniqueKeysWithValues: object.keys.map { ($0, jsonValue(object[$0] ?? .none)) }))
        default: .string("\(value)")
        }
    }
}

/// Renders and tokenizes prompts: conversational ones through the chat template with the generation
/// prompt, plain ones as text (special tokens added as the tokenizer adds them); prompts longer than
/// `maxPromptLength` keep their end, as TRL's `truncate_with_protected_tokens` does.
public struct PromptEncoder {
    public var tokenizer: Tokenizer
    public var chatTemplate: ChatTemplate?
    public var maxPromptLength: Int?
    /// With `contextLength`, a prompt must leave this many tokens for its completion.
    public var maxCompletionLength: Int
    public var contextLength: Int?

    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate?, maxPromptLength: Int? = nil, maxCompletionLength: Int = 0,
        contextLength: Int? = nil
    ) {
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.maxPromptLength = maxPromptLength
        self.maxCompletionLength = maxCompletionLength
        self.contextLength = contextLength
    }

    public func encode(_ example: PromptExample) -> Result<TokenizedPrompt, DataIssue.Reason> {
        do throws(DataIssue.Reason) {
            let text: String
            var ids: [Int]
            switch example.prompt {
            case .text(let plain):
                text = plain
                ids = tokenizer.encode(plain, addSpecialTokens: true)
            case .messages(let messages):
                guard let chatTemplate else { throw .template("the model has no chat template for conversational prompts") }
                do {
                    let values = try messages.map { try JinjaValue.parseJSON(JSONEncoder().encode($0)) }
                    text = try chatTemplate.render(
                        messages: values, addGenerationPrompt: true, bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
                } catch {
                    throw .template("\(error)")
                }
                ids = tokenizer.encode(text, addSpecialTokens: false)
            }
            if let maxPromptLength, ids.count > maxPromptLength { ids = Array(ids.suffix(maxPromptLength)) }
            if ids.isEmpty { throw .emptyField("prompt") }
            if let contextLength, ids.count + maxCompletionLength > contextLength {
                throw .promptExceedsContext(promptTokens: ids.count, completionTokens: maxCompletionLength, contextLength: contextLength)
            }
            return .success(TokenizedPrompt(ids: ids, text: text, fields: example.fields, source: example.source))
        } catch {
            return .failure(error)
        }
    }

    /// Every prompt of `files`, in order; under `.abort` any bad record throws
    /// ``DataError/invalidRecords(_:)`` naming each file:line.
    public func prepare(
        _ files: [URL], column: String = "prompt", invalidRecordPolicy: InvalidRecordPolicy = .abort
    ) throws -> (prompts: [TokenizedPrompt], skipped: [DataIssue]) {
        var prompts: [TokenizedPrompt] = [], issues: [DataIssue] = []
        for file in files {
            let (examples, fileIssues) = try PromptReader.read(file, column: column)
            issues += fileIssues
            for example in examples {
                switch encode(example) {
                case .success(let prompt): prompts.append(prompt)
                case .failure(let reason): issues.append(DataIssue(example.source, reason))
                }
            }
        }
        if !issues.isEmpty && invalidRecordPolicy == .abort { throw DataError.invalidRecords(issues) }
        guard !prompts.isEmpty else { throw DataError.noSamples(paths: files.map(\.path)) }
        return (prompts, issues)
    }
}

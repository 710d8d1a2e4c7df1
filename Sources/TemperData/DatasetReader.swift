import Foundation
import TemperTokenizers

/// Which JSON keys hold which fields, so datasets with other names load without conversion. Each
/// field lists the accepted keys in priority order; the first present wins.
public struct ColumnMapping: Codable, Sendable, Equatable {
    public var instruction = ["instruction", "prompt", "question", "query"]
    public var input = ["input", "context"]
    public var output = ["output", "response", "completion", "answer"]
    public var system = ["system", "system_prompt"]
    /// Chat: a list of turns (`messages` as OpenAI/TRL, `conversations` as ShareGPT).
    public var messages = ["messages", "conversations"]
    public var role = ["role", "from"]
    public var content = ["content", "value"]
    public var text = ["text"]
    /// Source role name → canonical role. `system`, `user` and `assistant` always map to
    /// themselves.
    public var roles = [
        "human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant",
    ]

    public init() {}

    /// Keys missing from the JSON keep their defaults, so a recipe names only what it changes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ColumnMapping()
        instruction = try container.decodeIfPresent([String].self, forKey: .instruction) ?? defaults.instruction
        input = try container.decodeIfPresent([String].self, forKey: .input) ?? defaults.input
        output = try container.decodeIfPresent([String].self, forKey: .output) ?? defaults.output
        system = try container.decodeIfPresent([String].self, forKey: .system) ?? defaults.system
        messages = try container.decodeIfPresent([String].self, forKey: .messages) ?? defaults.messages
        role = try container.decodeIfPresent([String].self, forKey: .role) ?? defaults.role
        content = try container.decodeIfPresent([String].self, forKey: .content) ?? defaults.content
        text = try container.decodeIfPresent([String].self, forKey: .text) ?? defaults.text
        roles = try container.decodeIfPresent([String: String].self, forKey: .roles) ?? defaults.roles
    }

    func canonicalRole(_ name: String) -> String? {
        if ["system", "user", "assistant"].contains(name) { return name }
        return roles[name]
    }
}

/// The records of one file, its format and the records that failed.
public struct DatasetFile: Sendable {
    public var path: String
    public var format: DatasetFormat?
    public var examples: [Example]
    public var issues: [DataIssue]
    /// Records read, good and bad.
    public var recordCount: Int { examples.count + issues.count }
}

/// Reads JSON-array and JSON Lines dataset files into validated examples.
public enum DatasetReader {
    /// Reads one file. Format problems of single records become issues; a file that cannot be read
    /// or whose format cannot be detected throws.
    /// - Parameters:
    ///   - format: forces the record layout; nil detects it from the first record that is an object.
    /// - Throws: `DataError.unreadableFile`, `DataError.unknownFormat`.
    public static func read(
        _ url: URL, format: DatasetFormat? = nil, columns: ColumnMapping = ColumnMapping()
    ) throws -> DatasetFile {
        try parse(try JSONRecords.contents(of: url), path: url.path, format: format, columns: columns)
    }

    /// Parses the bytes of a dataset file; `path` is used in locations.
    public static func parse(
        _ bytes: [UInt8], path: String, format: DatasetFormat? = nil, columns: ColumnMapping = ColumnMapping()
    ) throws -> DatasetFile {
        let records = JSONRecords.parse(bytes)
        var file = DatasetFile(path: path, format: format, examples: [], issues: [])
        if file.format == nil, let first = records.first(where: { $0.object != nil }), let object = first.object {
            file.format = detectFormat(object, columns: columns)
            if file.format == nil {
                throw DataError.unknownFormat(SourceLocation(file: path, line: first.line), keys: object.keys)
            }
        }
        for record in records {
            let location = SourceLocation(file: path, line: record.line)
            switch record.value {
            case .failure(let failure):
                file.issues.append(
                    DataIssue(location, .malformedJSON(message: failure.message, line: failure.line, column: failure.column)))
            case .success(let value):
                guard case .object(let object) = value else {
                    file.issues.append(DataIssue(location, .notAnObject(found: typeName(value))))
                    continue
                }
                // With no object in the file there is no format, but then no record reaches here.
                switch example(object, format: file.format ?? .text, columns: columns) {
                case .success(let content): file.examples.append(Example(content, source: location))
                case .failure(let reason): file.issues.append(DataIssue(location, reason))
                }
            }
        }
        return file
    }

    /// Chat if a messages key is present; instruction if an instruction and an output key are;
    /// text if a text key is; else nil.
    public static func detectFormat(_ object: JinjaObject, columns: ColumnMapping = ColumnMapping()) -> DatasetFormat? {
        func has(_ keys: [String]) -> Bool { keys.contains { object[$0] != nil } }
        if has(columns.messages) { return .chat }
        if has(columns.instruction) && has(columns.output) { return .instruction }
        if has(columns.text) { return .text }
        return nil
    }

    /// Converts one JSON object to a validated example of the given format.
    public static func example(
        _ object: JinjaObject, format: DatasetFormat, columns: ColumnMapping = ColumnMapping()
    ) -> Result<Example.Content, DataIssue.Reason> {
        do throws(DataIssue.Reason) {
            switch format {
            case .text:
                let text = try string(object, columns.text, required: true) ?? ""
                if text.allSatisfy(\.isWhitespace) { throw .emptyField("text") }
                return .success(.text(text))
            case .instruction:
                let instruction = try string(object, columns.instruction, required: true) ?? ""
                let input = try string(object, columns.input, required: false)
                let output = try string(object, columns.output, required: true) ?? ""
                let system = try string(object, columns.system, required: false)
                if instruction.allSatisfy(\.isWhitespace) { throw .emptyField(columns.instruction[0]) }
                if output.allSatisfy(\.isWhitespace) { throw .emptyField(columns.output[0]) }
                return .success(.instruction(system: system, instruction: instruction, input: input, output: output))
            case .chat:
                var messages = try chatMessages(object, columns: columns)
                if let system = try string(object, columns.system, required: false), !system.isEmpty,
                    messages.first?.role != "system"
                {
                    messages.insert(ChatMessage(role: "system", content: system), at: 0)
                }
                if let reason = Example.validateConversation(messages) { throw reason }
                return .success(.chat(messages))
            }
        } catch {
            return .failure(error)
        }
    }

    private static func chatMessages(_ object: JinjaObject, columns: ColumnMapping) throws(DataIssue.Reason)
        -> [ChatMessage]
    {
        guard let key = columns.messages.first(where: { object[$0] != nil }), let value = object[key] else {
            throw .missingField(names: columns.messages)
        }
        return try messages(in: value, key: key, columns: columns)
    }

    /// The messages of a JSON array field `key` (role/content objects, roles mapped to canonical ones).
    static func messages(in value: JinjaValue, key: String, columns: ColumnMapping) throws(DataIssue.Reason)
        -> [ChatMessage]
    {
        guard case .array(let turns) = value else {
            throw .wrongType(field: key, expected: "an array of messages", found: typeName(value))
        }
        var messages: [ChatMessage] = []
        for (index, turn) in turns.enumerated() {
            guard case .object(let fields) = turn else {
                throw .wrongType(field: "\(key)[\(index)]", expected: "an object", found: typeName(turn))
            }
            guard let roleKey = columns.role.first(where: { fields[$0] != nil }) else {
                throw .missingField(names: columns.role.map { "\(key)[\(index)].\($0)" })
            }
            guard case .string(let roleName) = fields[roleKey] ?? JinjaValue.none else {
                throw .wrongType(
                    field: "\(key)[\(index)].\(roleKey)", expected: "a string", found: typeName(fields[roleKey] ?? JinjaValue.none))
            }
            guard let role = columns.canonicalRole(roleName) else { throw .unknownRole(role: roleName, index: index) }
            guard let contentKey = columns.content.first(where: { fields[$0] != nil }) else {
                throw .missingField(names: columns.content.map { "\(key)[\(index)].\($0)" })
            }
            guard case .string(let content) = fields[contentKey] ?? JinjaValue.none else {
                throw .wrongType(
                    field: "\(key)[\(index)].\(contentKey)", expected: "a string",
                    found: typeName(fields[contentKey] ?? JinjaValue.none))
            }
            messages.append(ChatMessage(role: role, content: content))
        }
        return messages
    }

    /// The first present key's string; null counts as absent.
    static func string(_ object: JinjaObject, _ keys: [String], required: Bool) throws(DataIssue.Reason)
        -> String?
    {
        for key in keys {
            switch object[key] {
            case nil, .none?, .undefined?: continue
            case .string(let text)?: return text
            case let other?: throw .wrongType(field: key, expected: "a string", found: typeName(other))
            }
        }
        if required { throw .missingField(names: keys) }
        return nil
    }

    static func typeName(_ value: JinjaValue) -> String {
        switch value {
        case .undefined, .none: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension JSONRecord {
    var object: JinjaObject? {
        if case .success(.object(let object)) = value { return object }
        return nil
    }
}

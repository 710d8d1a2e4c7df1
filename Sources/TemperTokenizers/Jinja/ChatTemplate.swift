import Foundation

/// A Hugging Face chat template (the `chat_template` Jinja source of a tokenizer), parsed once and
/// rendered the way transformers' `apply_chat_template(tokenize=False)` renders it: jinja2's
/// ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, loop controls, the
/// `{% generation %}` tag, and transformers' `tojson`, `raise_exception`, `strftime_now`, `dict`
/// and `namespace`.
///
/// ```swift
/// let template = try ChatTemplate(source)
/// let prompt = try template.render(
///     messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true, eosToken: "<|im_end|>")
/// ```
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [JinjaNode]

    /// The time `strftime_now` reports (Llama 3.x templates print today's date); nil means now.
    public var currentDate: Date? = nil
    /// The time zone `strftime_now` formats in (Python's `datetime.now()` is local time).
    public var timeZone: TimeZone = .current

    /// Parses the template; throws `JinjaError` on a syntax error or an unsupported construct.
    public init(_ source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Renders a conversation as transformers does: messages lose their keys whose value is none,
    /// reasoning is aliased (`reasoning_content`/`thinking`/`reasoning`, as `_alias_reasoning_fields`
    /// does), `documents` is none, and the special tokens and `extraContext` (e.g.
    /// `enable_thinking`) are passed as template variables.
    public func render(
        messages: [JinjaValue], addGenerationPrompt: Bool, tools: [JinjaValue]? = nil,
        bosToken: String? = nil, eosToken: String? = nil,
        extraContext: [String: JinjaValue] = [:]
    ) throws -> String {
        var context: [String: JinjaValue] = [:]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (key, value) in extraContext { context[key] = value }
        context["messages"] = .array(messages.map(ChatTemplate.normalizedMessage))
        context["tools"] = tools.map(JinjaValue.array) ?? JinjaValue.none
        context["documents"] = JinjaValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try render(context: context)
    }

    /// Renders with exactly these template variables.
    public func render(context: [String: JinjaValue]) throws -> String {
        var variables: [String: JinjaRuntimeValue] = [:]
        for (key, value) in context where value != .undefined { variables[key] = JinjaRuntimeValue(value) }
        let interpreter = JinjaInterpreter(
            context: variables, options: JinjaRenderOptions(now: currentDate, timeZone: timeZone))
        return try interpreter.render(nodes)
    }

    private static let reasoningFields = ["reasoning_content", "thinking", "reasoning"]

    /// transformers' `_normalize_chat_messages` (drop none values) then `_alias_reasoning_fields`
    /// (`{"thinking": r, **message, "reasoning_content": r}`).
    static func normalizedMessage(_ message: JinjaValue) -> JinjaValue {
        guard case .object(let object) = message else { return message }
        var cleaned = JinjaObject()
        for (key, value) in object.pairs where value != .none { cleaned[key] = value }
        guard let reasoning = reasoningFields.lazy.compactMap({ cleaned[$0] }).first else { return .object(cleaned) }
        var aliased = JinjaObject()
        aliased["thinking"] = reasoning
        for (key, value) in cleaned.pairs { aliased[key] = value }
        aliased["reasoning_content"] = reasoning
        return .object(aliased)
    }
}

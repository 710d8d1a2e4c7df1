/// An error raised while parsing or rendering a template. `message` is what Python's `str(error)`
/// gives for the same failure in jinja2 (for `raise_exception(msg)` it is `msg` itself), and `kind`
/// names the Python exception class, so callers can compare with transformers.
public struct JinjaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Malformed template source (jinja2 `TemplateSyntaxError`).
        case syntax = "TemplateSyntaxError"
        /// A construct this interpreter does not implement (jinja2 would accept it).
        case unsupported = "UnsupportedConstruct"
        /// `raise_exception(message)` in the template (jinja2 `TemplateError`).
        case raised = "TemplateError"
        case undefined = "UndefinedError"
        case type = "TypeError"
        case value = "ValueError"
        case index = "IndexError"
        case key = "KeyError"
        case zeroDivision = "ZeroDivisionError"
        case security = "SecurityError"
        case runtime = "TemplateRuntimeError"
        case assertion = "TemplateAssertionError"
    }

    public let kind: Kind
    public let message: String
    /// 1-based source position, when known.
    public var line: Int?
    public var column: Int?

    public init(_ kind: Kind, _ message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    /// A construct this interpreter lacks; the line is filled in where the construct is evaluated
    /// when it is not known here.
    static func unsupported(_ construct: String, line: Int? = nil, column: Int? = nil) -> JinjaError {
        JinjaError(.unsupported, "unsupported Jinja construct '\(construct)'", line: line, column: column)
    }

    public var description: String {
        switch (kind, line, column) {
        case (.unsupported, let line?, _): return "\(message) at line \(line)"
        case (.unsupported, nil, _): return message
        case (.syntax, let line?, let column?): return "\(kind.rawValue) at line \(line), column \(column): \(message)"
        case (_, let line?, _): return "\(kind.rawValue) at line \(line): \(message)"
        default: return "\(kind.rawValue): \(message)"
        }
    }
}

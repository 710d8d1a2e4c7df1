import Foundation
import Hummingbird
import TemperEngine

/// An error answered in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the
/// HTTP status OpenAI (or vLLM, where OpenAI has no equivalent) uses for it.
public struct APIError: Error, HTTPResponseError, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds for a `Retry-After` header (429).
    public var retryAfter: Int?
    /// Whether to send `WWW-Authenticate: Bearer` (401).
    public var challenge: Bool

    public init(
        status: HTTPResponse.Status, message: String, type: String = "invalid_request_error", param: String? = nil,
        code: String? = nil, retryAfter: Int? = nil, challenge: Bool = false
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
        self.challenge = challenge
    }

    // MARK: the cases the server answers

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, param: param, code: code)
    }

    static func invalidJSON(_ message: String) -> APIError {
        APIError(status: .badRequest, message: message, code: "invalid_json")
    }

    static func missingKey() -> APIError {
        APIError(
            status: .unauthorized,
            message: "You didn't provide an API key. You need to provide your API key in an Authorization header "
                + "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            challenge: true)
    }

    static func invalidKey() -> APIError {
        APIError(
            status: .unauthorized, message: "Incorrect API key provided.", code: "invalid_api_key",
            challenge: true)
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(
            status: .notFound, message: "The model `\(name)` does not exist or you do not have access to it.",
            param: "model", code: "model_not_found")
    }

    static func routeNotFound(method: String, path: String) -> APIError {
        APIError(status: .notFound, message: "Invalid URL (\(method) \(path))", code: "unknown_url")
    }

    static func contextLengthExceeded(limit: Int, prompt: Int, completion: Int?, param: String) -> APIError {
        let detail =
            if let completion {
                "However, you requested \(prompt + completion) tokens (\(prompt) in the \(param), \(completion) in the "
                    + "completion). Please reduce the length of the \(param) or completion."
            } else {
                "However, your \(param) resulted in \(prompt) tokens. Please reduce the length of the \(param)."
            }
        return APIError(
            status: .badRequest, message: "This model's maximum context length is \(limit) tokens. " + detail,
            param: param, code: "context_length_exceeded")
    }

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "The request body is larger than the server's limit of \(limit) bytes.",
            code: "request_too_large")
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: "internal_error")
    }

    /// The answer to an engine's refusal. `param` names the request field a bad parameter came from.
    static func engine(_ error: EngineError, promptParam: String) -> APIError {
        switch error {
        case .emptyPrompt:
            return .invalid("The prompt has no tokens.", param: promptParam, code: "empty_prompt")
        case .promptTooLong(let tokens, let limit):
            return APIError(
                status: .badRequest,
                message: "This model's maximum context length is \(limit) tokens. However, the prompt has \(tokens) "
                    + "tokens, and the prompt and max_tokens together must fit.",
                param: promptParam, code: "context_length_exceeded")
        case .invalidParameter(let message):
            return .invalid(message, code: "invalid_parameter")
        case .unknownAdapter(let name):
            return .modelNotFound(name)
        case .queueFull(let seconds):
            return APIError(
                status: .tooManyRequests, message: error.description, type: "rate_limit_error",
                code: "rate_limit_exceeded", retryAfter: max(1, seconds))
        case .shuttingDown:
            return APIError(
                status: .serviceUnavailable, message: error.description, type: "server_error",
                code: "service_unavailable")
        }
    }

    // MARK: encoding

    /// The JSON body, with `param` and `code` as `null` when absent (as OpenAI sends them).
    public var body: ByteBuffer {
        ByteBuffer(bytes: JSONText.encode(ErrorEnvelope(error: .init(self))))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if challenge { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    struct ErrorEnvelope: Encodable {
        struct Payload: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            init(_ error: APIError) {
                message = error.message
                type = error.type
                param = error.param
                code = error.code
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }

        var error: Payload
    }
}

extension APIError: CustomStringConvertible {
    public var description: String { "\(status.code) \(type): \(message)" }
}

/// JSON bytes of an encodable value: keys sorted (Foundation's encoder keeps no order otherwise),
/// slashes unescaped.
enum JSONText {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every value the server encodes is a plain struct of strings and numbers (non-finite
        // numbers are clamped before), so encoding cannot fail.
        return (try? Array(encoder.encode(value))) ?? Array(#"{"error":"encoding failed"}"#.utf8)
    }
}

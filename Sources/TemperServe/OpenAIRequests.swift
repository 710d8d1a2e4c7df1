import Foundation
import TemperModels

// The request bodies of /v1/chat/completions and /v1/completions. Unknown fields are ignored (as
// OpenAI's and vLLM's servers do); fields that would change the answer in a way Temper cannot honour
// (tools, images, several prompts, echo) are refused with a 400 rather than silently dropped.

/// The sampling fields both endpoints share, with OpenAI's names (plus vLLM's `top_k`, `min_p`,
/// `repetition_penalty` and `ignore_eos`).
struct SamplingFields: Decodable, Equatable {
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var repetitionPenalty: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var logitBias: [String: Double]?
    var n: Int?
    var seed: Int64?
    var stop: [String]?
    var maxTokens: Int?
    /// Which field `maxTokens` came from, for error messages.
    var maxTokensParam = "max_tokens"
    var ignoreEOS: Bool?
    var stream: Bool?
    var includeUsage: Bool?

    init() {}

    enum CodingKeys: String, CodingKey {
        case temperature, n, seed, stop, stream
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case repetitionPenalty = "repetition_penalty"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case logitBias = "logit_bias"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case ignoreEOS = "ignore_eos"
        case streamOptions = "stream_options"
    }

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try container.decodeIfPresent(Double.self, forKey: .temperature)
        topP = try container.decodeIfPresent(Double.self, forKey: .topP)
        topK = try container.decodeIfPresent(Int.self, forKey: .topK)
        minP = try container.decodeIfPresent(Double.self, forKey: .minP)
        repetitionPenalty = try container.decodeIfPresent(Double.self, forKey: .repetitionPenalty)
        presencePenalty = try container.decodeIfPresent(Double.self, forKey: .presencePenalty)
        frequencyPenalty = try container.decodeIfPresent(Double.self, forKey: .frequencyPenalty)
        logitBias = try container.decodeIfPresent([String: Double].self, forKey: .logitBias)
        n = try container.decodeIfPresent(Int.self, forKey: .n)
        seed = try container.decodeIfPresent(Int64.self, forKey: .seed)
        stop = try container.decodeIfPresent(StringOrStrings.self, forKey: .stop)?.values
        if let value = try container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens) {
            maxTokens = value
            maxTokensParam = "max_completion_tokens"
        } else {
            maxTokens = try container.decodeIfPresent(Int.self, forKey: .maxTokens)
        }
        ignoreEOS = try container.decodeIfPresent(Bool.self, forKey: .ignoreEOS)
        stream = try container.decodeIfPresent(Bool.self, forKey: .stream)
        includeUsage = try container.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)?.includeUsage
    }
}

/// `"text"` or `["a", "b"]`.
struct StringOrStrings: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let single = try? container.decode(String.self) {
            values = [single]
        } else if let many = try? container.decode([String].self) {
            values = many
        } else {
            throw APIError.invalid(
                "Invalid type for '\(decoder.codingPath.jsonPath)': expected a string or an array of strings.",
                param: decoder.codingPath.jsonPath, code: "invalid_type")
        }
    }
}

/// POST /v1/chat/completions.
struct ChatCompletionRequest: Decodable {
    var model: String?
    var messages: [LanguageModel.Message]
    var sampling: SamplingFields
    var logprobs: Bool
    var topLogprobs: Int?

    enum CodingKeys: String, CodingKey {
        case model, messages, logprobs, tools, functions
        case topLogprobs = "top_logprobs"
        case responseFormat = "response_format"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        messages = try container.decode([ChatMessage].self, forKey: .messages).map(\.message)
        sampling = try SamplingFields(from: decoder)
        logprobs = try container.decodeIfPresent(Bool.self, forKey: .logprobs) ?? false
        topLogprobs = try container.decodeIfPresent(Int.self, forKey: .topLogprobs)
        for key in [CodingKeys.tools, .functions] {
            if let items = try container.decodeIfPresent([AnyJSON].self, forKey: key), !items.isEmpty {
                throw APIError.invalid(
                    "'\(key.stringValue)' is not supported by this server.", param: key.stringValue,
                    code: "unsupported_parameter")
            }
        }
        if let format = try container.decodeIfPresent(ResponseFormat.self, forKey: .responseFormat),
            format.type != "text"
        {
            throw APIError.invalid(
                "response_format '\(format.type)' is not supported by this server; only 'text' is.",
                param: "response_format", code: "unsupported_parameter")
        }
    }

    struct ResponseFormat: Decodable { var type: String }
}

/// One chat message: `content` a string, an array of `{"type": "text", "text": …}` parts, or null
/// (assistant turns only). The `developer` role is passed to the template as `system`.
struct ChatMessage: Decodable {
    var message: LanguageModel.Message

    static let roles = ["system", "developer", "user", "assistant", "tool"]

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
        case functionCall = "function_call"
    }

    struct Part: Decodable {
        var type: String
        var text: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let path = decoder.codingPath.jsonPath
        var role = try container.decode(String.self, forKey: .role)
        guard Self.roles.contains(role) else {
            throw APIError.invalid(
                "Invalid value: '\(role)'. Supported values are: "
                    + Self.roles.map { "'\($0)'" }.joined(separator: ", ") + ".",
                param: "\(path).role", code: "invalid_value")
        }
        for key in [CodingKeys.toolCalls, .functionCall] where container.contains(key) {
            if try container.decodeNil(forKey: key) { continue }
            if let items = try? container.decode([AnyJSON].self, forKey: key), items.isEmpty { continue }
            throw APIError.invalid(
                "'\(key.stringValue)' in messages is not supported by this server.",
                param: "\(path).\(key.stringValue)", code: "unsupported_parameter")
        }
        let content: String
        let contentIsNull = try !container.contains(.content) || container.decodeNil(forKey: .content)
        if contentIsNull {
            guard role == "assistant" else {
                throw APIError.invalid(
                    "Missing required parameter: '\(path).content'.", param: "\(path).content", code: "missing_required_parameter")
            }
            content = ""
        } else if let text = try? container.decode(String.self, forKey: .content) {
            content = text
        } else if let parts = try? container.decode([Part].self, forKey: .content) {
            var texts: [String] = []
            for (index, part) in parts.enumerated() {
                guard part.type == "text", let text = part.text else {
                    throw APIError.invalid(
                        "Only text content parts are supported; '\(path).content[\(index)]' has type '\(part.type)'.",
                        param: "\(path).content[\(index)].type", code: "unsupported_content_type")
                }
                texts.append(text)
            }
            content = texts.joined(separator: "\n")
        } else {
            throw APIError.invalid(
                "Invalid type for '\(path).content': expected a string or an array of content parts.",
                param: "\(path).content", code: "invalid_type")
        }
        if role == "developer" { role = "system" }
        message = LanguageModel.Message(role: role, content: content)
    }
}

/// POST /v1/completions. `prompt` is a string, an array of one string, token ids, or an array of one
/// array of token ids.
struct CompletionRequest: Decodable {
    enum Prompt: Equatable {
        case text(String)
        case tokens([Int])
    }

    var model: String?
    var prompt: Prompt
    var sampling: SamplingFields
    /// The number of alternatives per token (legacy `logprobs`), nil for none.
    var logprobs: Int?

    enum CodingKeys: String, CodingKey {
        case model, prompt, logprobs, echo, suffix
        case bestOf = "best_of"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        sampling = try SamplingFields(from: decoder)
        logprobs = try container.decodeIfPresent(Int.self, forKey: .logprobs)
        guard container.contains(.prompt), try !container.decodeNil(forKey: .prompt) else {
            throw APIError.invalid("Missing required parameter: 'prompt'.", param: "prompt", code: "missing_required_parameter")
        }
        if let text = try? container.decode(String.self, forKey: .prompt) {
            prompt = .text(text)
        } else if let ids = try? container.decode([Int].self, forKey: .prompt) {
            prompt = .tokens(ids)
        } else if let texts = try? container.decode([String].self, forKey: .prompt) {
            guard texts.count == 1 else { throw Self.onePrompt(texts.count) }
            prompt = .text(texts[0])
        } else if let batches = try? container.decode([[Int]].self, forKey: .prompt) {
            guard batches.count == 1 else { throw Self.onePrompt(batches.count) }
            prompt = .tokens(batches[0])
        } else {
            throw APIError.invalid(
                "Invalid type for 'prompt': expected a string, an array of one string, or an array of token ids.",
                param: "prompt", code: "invalid_type")
        }
        if try container.decodeIfPresent(Bool.self, forKey: .echo) == true {
            throw APIError.invalid("'echo' is not supported by this server.", param: "echo", code: "unsupported_parameter")
        }
        if let suffix = try container.decodeIfPresent(String.self, forKey: .suffix), !suffix.isEmpty {
            throw APIError.invalid("'suffix' is not supported by this server.", param: "suffix", code: "unsupported_parameter")
        }
        if let bestOf = try container.decodeIfPresent(Int.self, forKey: .bestOf), bestOf != (sampling.n ?? 1) {
            throw APIError.invalid(
                "'best_of' other than n is not supported by this server.", param: "best_of", code: "unsupported_parameter")
        }
    }

    static func onePrompt(_ count: Int) -> APIError {
        .invalid(
            "This server takes one prompt per request; got \(count).", param: "prompt", code: "unsupported_parameter")
    }
}

/// Any JSON value, skipped.
struct AnyJSON: Decodable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { return }
        if (try? container.decode(Bool.self)) != nil { return }
        if (try? container.decode(Double.self)) != nil { return }
        if (try? container.decode(String.self)) != nil { return }
        if (try? container.decode([AnyJSON].self)) != nil { return }
        _ = try container.decode([String: AnyJSON].self)
    }
}

extension [any CodingKey] {
    /// `messages[0].content`, as OpenAI names parameters.
    var jsonPath: String {
        var path = ""
        for key in self {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return path
    }
}

/// Decodes a request body, turning every failure into the 400 OpenAI would send.
enum RequestDecoding {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as APIError {
            throw error
        } catch let error as DecodingError {
            throw apiError(error, bytes: bytes)
        } catch {
            throw .invalidJSON("We could not parse the JSON body of your request: \(error).")
        }
    }

    static func apiError(_ error: DecodingError, bytes: [UInt8]) -> APIError {
        switch error {
        case .typeMismatch(let type, let context):
            let path = context.codingPath.jsonPath
            if path.isEmpty { return .invalidJSON("The request body must be a JSON object.") }
            return .invalid("Invalid type for '\(path)': expected \(describe(type)).", param: path, code: "invalid_type")
        case .valueNotFound(let type, let context):
            let path = context.codingPath.jsonPath
            return .invalid(
                "Invalid type for '\(path)': expected \(describe(type)), but got null.", param: path, code: "invalid_type")
        case .keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).jsonPath
            return .invalid("Missing required parameter: '\(path)'.", param: path, code: "missing_required_parameter")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                    return .invalidJSON("The request body is empty; expected a JSON object.")
                }
                let problem = JSONSyntax.firstProblem(in: bytes).map { ": \($0)" } ?? "."
                return .invalidJSON("We could not parse the JSON body of your request\(problem)")
            }
            let path = context.codingPath.jsonPath
            return .invalid("Invalid value for '\(path)': \(context.debugDescription)", param: path, code: "invalid_value")
        @unknown default:
            return .invalidJSON("We could not parse the JSON body of your request.")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "an object"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}

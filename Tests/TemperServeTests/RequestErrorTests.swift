import Foundation
import Hummingbird
import HummingbirdTesting
import TemperEngine
import Testing
@testable import TemperServe

/// Each bad input gets OpenAI's error shape with the right status, and nothing reaches the engine.
@Suite struct RequestErrorTests {
    static let chat = "/v1/chat/completions"

    /// The exact body: `{"error": {"message", "type", "param", "code"}}`, nulls included.
    static func errorBody(_ message: String, param: String?, code: String?, type: String = "invalid_request_error")
        -> String
    {
        func quoted(_ value: String?) -> String { value.map { "\"\($0)\"" } ?? "null" }
        return #"{"error":{"code":\#(quoted(code)),"message":"\#(message)","param":\#(quoted(param)),"type":"\#(type)"}}"#
    }

    func expectError(
        _ json: String, uri: String = chat, status: HTTPResponse.Status, param: String?, code: String?,
        messageContains: String, engine: FakeEngine = FakeEngine(), sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        try await testApp(engine).test(.router) { client in
            let response = try await client.post(uri, json)
            #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
            #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
            let error = response.error
            #expect(error["param"] as? String == param, "\(response.text)", sourceLocation: sourceLocation)
            #expect(error["param"] != nil, "param must be present, null or not", sourceLocation: sourceLocation)
            #expect(error["code"] as? String == code, "\(response.text)", sourceLocation: sourceLocation)
            #expect(error["type"] as? String != nil, sourceLocation: sourceLocation)
            let message = error["message"] as? String ?? ""
            #expect(message.contains(messageContains), "\(message)", sourceLocation: sourceLocation)
        }
        #expect(engine.requests.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func malformedJSONSaysWhere() async throws {
        try await testApp(FakeEngine()).test(.router) { client in
            let response = try await client.post(Self.chat, "{\"messages\": [\n  {\"role\": \"user\", \"content\": tru}]}")
            #expect(response.status == .badRequest)
            #expect(
                response.text
                    == Self.errorBody(
                        "We could not parse the JSON body of your request: invalid literal, expected 'true' at line 2, "
                            + "column 34", param: nil, code: "invalid_json"))
        }
    }

    @Test func emptyBodyAndNonObjectBody() async throws {
        try await expectError("", status: .badRequest, param: nil, code: "invalid_json", messageContains: "empty")
        try await expectError(
            "[1, 2]", status: .badRequest, param: nil, code: "invalid_json", messageContains: "must be a JSON object")
    }

    @Test func missingAndEmptyMessages() async throws {
        try await expectError(
            #"{"model": "base"}"#, status: .badRequest, param: "messages", code: "missing_required_parameter",
            messageContains: "Missing required parameter: 'messages'.")
        try await expectError(
            #"{"model": "base", "messages": []}"#, status: .badRequest, param: "messages", code: "empty_array",
            messageContains: "empty array")
    }

    @Test func wrongTypesNameTheField() async throws {
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#, status: .badRequest,
            param: "temperature", code: "invalid_type", messageContains: "Invalid type for 'temperature': expected a number.")
        try await expectError(
            #"{"messages": [{"role": "user", "content": 42}]}"#, status: .badRequest, param: "messages[0].content",
            code: "invalid_type", messageContains: "expected a string or an array of content parts")
        try await expectError(
            #"{"messages": [{"role": "wizard", "content": "hi"}]}"#, status: .badRequest, param: "messages[0].role",
            code: "invalid_value", messageContains: "Invalid value: 'wizard'")
        try await expectError(
            #"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}"#,
            status: .badRequest, param: "messages[0].content[0].type", code: "unsupported_content_type",
            messageContains: "Only text content parts")
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "stop": 3}"#, status: .badRequest, param: "stop",
            code: "invalid_type", messageContains: "a string or an array of strings")
    }

    @Test func unknownModelIs404() async throws {
        try await testApp(FakeEngine()).test(.router) { client in
            let response = try await client.post(
                Self.chat, #"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#)
            #expect(response.status == .notFound)
            #expect(
                response.text
                    == Self.errorBody(
                        "The model `gpt-9` does not exist or you do not have access to it.", param: "model",
                        code: "model_not_found"))
        }
    }

    @Test func samplingRanges() async throws {
        let cases: [(field: String, value: String, code: String, message: String)] = [
            ("temperature", "2.5", "decimal_above_max_value", "Expected a value <= 2, but got 2.5 instead."),
            ("temperature", "-1", "decimal_below_min_value", "Expected a value >= 0, but got -1 instead."),
            ("top_p", "1.5", "decimal_above_max_value", "Expected a value <= 1"),
            ("n", "0", "integer_below_min_value", "Expected a value >= 1, but got 0 instead."),
            ("n", "9", "integer_above_max_value", "Expected a value <= 8, but got 9 instead."),
            ("presence_penalty", "3", "decimal_above_max_value", "<= 2"),
            ("frequency_penalty", "-2.5", "decimal_below_min_value", ">= -2"),
            ("max_tokens", "0", "integer_below_min_value", "Invalid 'max_tokens'"),
            ("max_completion_tokens", "-3", "integer_below_min_value", "Invalid 'max_completion_tokens'"),
            ("top_logprobs", "30", "invalid_value", "[0, 20]"),
        ]
        for (field, value, code, message) in cases {
            let param = field
            try await expectError(
                #"{"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "\#(field)": \#(value)}"#,
                status: .badRequest, param: param, code: code, messageContains: message)
        }
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}"#, status: .badRequest,
            param: "top_logprobs", code: "invalid_value", messageContains: "'logprobs' must be true")
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"abc": 5}}"#, status: .badRequest,
            param: "logit_bias", code: "invalid_value", messageContains: "'abc' is not a token id")
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"65": 101}}"#, status: .badRequest,
            param: "logit_bias", code: "invalid_value", messageContains: "[-100, 100]")
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "stop": ["a", ""]}"#, status: .badRequest,
            param: "stop", code: "invalid_value", messageContains: "must not be empty")
    }

    @Test func contextLimits() async throws {
        // The fake's chat prompt is "user: <content>\nassistant: " (20 tokens for "hi"), context 64.
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 45}"#, status: .badRequest,
            param: "messages", code: "context_length_exceeded",
            messageContains: "This model's maximum context length is 64 tokens. However, you requested 65 tokens "
                + "(20 in the messages, 45 in the completion).")
        let long = String(repeating: "a", count: 60)
        try await expectError(
            #"{"messages": [{"role": "user", "content": "\#(long)"}]}"#, status: .badRequest, param: "messages",
            code: "context_length_exceeded", messageContains: "your messages resulted in 78 tokens")
        try await expectError(
            #"{"prompt": ""}"#, uri: "/v1/completions", status: .badRequest, param: "prompt", code: "empty_prompt",
            messageContains: "no tokens")
        try await expectError(
            #"{"prompt": [65, 99999]}"#, uri: "/v1/completions", status: .badRequest, param: "prompt",
            code: "invalid_value", messageContains: "Invalid token id 99999")
    }

    @Test func completionsRefusesWhatItCannotHonour() async throws {
        try await expectError(
            #"{"prompt": ["a", "b"]}"#, uri: "/v1/completions", status: .badRequest, param: "prompt",
            code: "unsupported_parameter", messageContains: "one prompt per request; got 2")
        try await expectError(
            #"{"prompt": "a", "echo": true}"#, uri: "/v1/completions", status: .badRequest, param: "echo",
            code: "unsupported_parameter", messageContains: "'echo' is not supported")
        try await expectError(
            #"{"model": "base"}"#, uri: "/v1/completions", status: .badRequest, param: "prompt",
            code: "missing_required_parameter", messageContains: "Missing required parameter: 'prompt'.")
        try await expectError(
            #"{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}"#,
            status: .badRequest, param: "tools", code: "unsupported_parameter", messageContains: "'tools'")
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let engine = FakeEngine()
        try await testApp(engine, maxRequestBytes: 1000).test(.router) { client in
            let big = String(repeating: "a", count: 2000)
            let response = try await client.post(Self.chat, #"{"messages": [{"role": "user", "content": "\#(big)"}]}"#)
            #expect(response.status == .contentTooLarge)
            #expect(response.error["code"] as? String == "request_too_large")
            #expect((response.error["message"] as? String)?.contains("1000 bytes") == true)
        }
        #expect(engine.requests.isEmpty)
    }

    @Test func engineRefusals() async throws {
        let chat = #"{"messages": [{"role": "user", "content": "hi"}]}"#
        try await testApp(FakeEngine(refusal: .queueFull(retryAfter: 7))).test(.router) { client in
            let response = try await client.post(Self.chat, chat)
            #expect(response.status == .tooManyRequests)
            #expect(response.headers[.retryAfter] == "7")
            #expect(response.error["code"] as? String == "rate_limit_exceeded")
        }
        try await testApp(FakeEngine(refusal: .shuttingDown)).test(.router) { client in
            let response = try await client.post(Self.chat, chat)
            #expect(response.status == .serviceUnavailable)
            #expect(response.error["code"] as? String == "service_unavailable")
        }
        try await testApp(FakeEngine(refusal: .promptTooLong(tokens: 90, limit: 64))).test(.router) { client in
            let response = try await client.post(Self.chat, chat)
            #expect(response.status == .badRequest)
            #expect(response.error["code"] as? String == "context_length_exceeded")
            #expect(response.error["param"] as? String == "messages")
        }
        try await testApp(FakeEngine(refusal: .invalidParameter("n too large for the KV cache"))).test(.router) { client in
            let response = try await client.post(Self.chat, chat)
            #expect(response.status == .badRequest)
            #expect(response.error["message"] as? String == "n too large for the KV cache")
        }
    }

    @Test func unknownRouteIs404JSON() async throws {
        try await testApp(FakeEngine()).test(.router) { client in
            let response = try await client.execute(uri: "/v1/engines", method: .get)
            #expect(response.status == .notFound)
            #expect(response.text == Self.errorBody("Invalid URL (GET /v1/engines)", param: nil, code: "unknown_url"))
            let wrongMethod = try await client.execute(uri: Self.chat, method: .get)
            #expect(wrongMethod.status == .notFound)
            #expect(wrongMethod.error["message"] as? String == "Invalid URL (GET /v1/chat/completions)")
        }
    }
}

/// JSON syntax errors are located by line and column.
@Suite struct JSONSyntaxTests {
    @Test func locatesTheFirstProblem() {
        func problem(_ text: String) -> String? { JSONSyntax.firstProblem(in: Array(text.utf8))?.description }
        #expect(problem(#"{"a": [1, 2], "b": {"c": null}}"#) == nil)
        #expect(problem(#" [1e5, -0.5, "\u00e9\n", true, false] "#) == nil)
        #expect(problem(#"{"a": 1,}"#) == "unexpected character '}', expected a quoted key at line 1, column 9")
        #expect(problem("{\"a\": tru}") == "invalid literal, expected 'true' at line 1, column 10")
        #expect(problem("{\"a\": 01}") == "unexpected character '1', expected ',' or '}' at line 1, column 8")
        #expect(problem("{\"a\":\n\"x") == "unexpected end of input inside a string at line 2, column 3")
        #expect(problem("{\"é\": x}") == "unexpected character 'x', expected a value at line 1, column 7")
        #expect(problem("{} {}") == "unexpected text after the JSON value at line 1, column 4")
        #expect(problem("[1 2]") == "unexpected character '2', expected ',' or ']' at line 1, column 4")
    }
}

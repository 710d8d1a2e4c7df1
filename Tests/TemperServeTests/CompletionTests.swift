import Foundation
import Hummingbird
import HummingbirdTesting
import TemperEngine
import TemperModels
import Testing
@testable import TemperServe

/// Valid requests: what reaches the engine, and the shapes of whole and streamed answers.
@Suite struct CompletionTests {
    @Test func chatFieldsBecomeTheEngineRequest() async throws {
        let engine = FakeEngine()
        try await testApp(engine).test(.router) { client in
            let response = try await client.post(
                "/v1/chat/completions",
                #"""
                {"model": "tuned", "messages": [{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}],
                 "temperature": 0.7, "top_p": 0.9, "max_completion_tokens": 5, "stop": "END", "n": 2, "seed": -1,
                 "presence_penalty": 0.5, "frequency_penalty": -0.25, "logit_bias": {"65": -100, "66": 2.5},
                 "logprobs": true, "top_logprobs": 3, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1,
                 "user": "ignored", "stream": false}
                """#)
            #expect(response.status == .ok, "\(response.text)")
        }
        let request = try #require(engine.requests.first)
        #expect(request.prompt == Array("system: Be brief.\nuser: Hello\nthere\nassistant: ".unicodeScalars.map { Int($0.value) }))
        #expect(request.adapter == "tuned")
        #expect(request.maxNewTokens == 5)
        #expect(request.sampleCount == 2)
        #expect(request.seed == UInt64.max)
        #expect(request.stopStrings == ["END"])
        #expect(request.stopAtEndOfSequence)
        let expected = RequestSamplingParameters(
            temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1, presencePenalty: 0.5,
            frequencyPenalty: -0.25, logitBias: [65: -100, 66: 2.5], alternatives: 3)
        #expect(request.sampling == expected)
    }

    @Test func defaultsAndMaxTokensWithoutAModel() async throws {
        let engine = FakeEngine(contextLength: 64)
        try await testApp(engine).test(.router) { client in
            _ = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}]}"#)
            _ = try await client.post("/v1/completions", #"{"model": "base", "prompt": "abc", "stop": ["x", "y"], "ignore_eos": true}"#)
            _ = try await client.post("/v1/completions", #"{"prompt": [[1, 2, 3]], "max_tokens": 61, "top_p": 0}"#)
        }
        let requests = engine.requests
        try #require(requests.count == 3)
        // Chat: the context left after the 20-token prompt; OpenAI's temperature 1, no adapter.
        #expect(requests[0].maxNewTokens == 44)
        #expect(requests[0].sampling == RequestSamplingParameters(temperature: 1))
        #expect(requests[0].adapter == nil)
        #expect(requests[0].sampleCount == 1)
        // Completions: OpenAI's default of 16; stop as an array; ignore_eos.
        #expect(requests[1].maxNewTokens == 16)
        #expect(requests[1].prompt == [97, 98, 99])
        #expect(requests[1].stopStrings == ["x", "y"])
        #expect(!requests[1].stopAtEndOfSequence)
        // Token ids as the prompt; top_p 0 is greedy.
        #expect(requests[2].prompt == [1, 2, 3])
        #expect(requests[2].maxNewTokens == 61)
        #expect(requests[2].sampling.temperature == 0)
    }

    @Test func wholeChatCompletion() async throws {
        try await testApp(FakeEngine(reply: "Hi!")).test(.router) { client in
            let response = try await client.post(
                "/v1/chat/completions",
                #"{"model": "base", "messages": [{"role": "user", "content": "hi"}], "n": 2, "logprobs": true, "top_logprobs": 2}"#)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let json = response.json
            #expect(json["object"] as? String == "chat.completion")
            #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(json["model"] as? String == "base")
            #expect(json["created"] as? Int != nil)
            let choices = try #require(json["choices"] as? [[String: Any]])
            #expect(choices.count == 2)
            for (index, choice) in choices.enumerated() {
                #expect(choice["index"] as? Int == index)
                #expect(choice["finish_reason"] as? String == "stop")
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
                #expect(message["content"] as? String == "Hi!")
                let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
                // One entry per visible token: the end-of-sequence token is left out.
                #expect(content.map { $0["token"] as? String } == ["H", "i", "!"])
                #expect(content.map { $0["logprob"] as? Double } == [-0.25, -0.5, -0.75])
                #expect(content[0]["bytes"] as? [Int] == [72])
                let top = try #require(content[0]["top_logprobs"] as? [[String: Any]])
                #expect(top.map { $0["token"] as? String } == ["x", "y"])
                #expect(top.map { $0["logprob"] as? Double } == [-1, -2])
                #expect(top[1]["bytes"] as? [Int] == [121])
            }
            let usage = try #require(json["usage"] as? [String: Any])
            // 3 characters and the end-of-sequence token, per sample.
            #expect(usage["prompt_tokens"] as? Int == 20)
            #expect(usage["completion_tokens"] as? Int == 8)
            #expect(usage["total_tokens"] as? Int == 28)
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 2)
        }
    }

    @Test func lengthFinishAndNoLogprobs() async throws {
        try await testApp(FakeEngine(reply: "Hello")).test(.router) { client in
            let response = try await client.post(
                "/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#)
            let choice = try #require((response.json["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "length")
            #expect((choice["message"] as? [String: Any])?["content"] as? String == "He")
            #expect(choice["logprobs"] is NSNull)
            #expect((response.json["usage"] as? [String: Any])?["completion_tokens"] as? Int == 2)
        }
    }

    @Test func streamedChat() async throws {
        try await testApp(FakeEngine(reply: "Hi")).test(.router) { client in
            let response = try await client.post(
                "/v1/chat/completions",
                #"{"messages": [{"role": "user", "content": "hi"}], "stream": true, "n": 2, "stream_options": {"include_usage": true}}"#)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream; charset=utf-8")
            let (chunks, done) = response.events
            #expect(done)
            #expect(response.text.hasSuffix("data: [DONE]\n\n"))
            let ids = Set(chunks.compactMap { $0["id"] as? String })
            #expect(ids.count == 1)
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            for index in 0..<2 {
                let mine = chunks.compactMap { chunk -> [String: Any]? in
                    (chunk["choices"] as? [[String: Any]])?.first { $0["index"] as? Int == index }
                }
                let deltas = mine.map { $0["delta"] as? [String: Any] ?? [:] }
                #expect(deltas.first?["role"] as? String == "assistant")
                #expect(deltas.first?["content"] as? String == "")
                #expect(deltas.compactMap { $0["content"] as? String }.joined() == "Hi")
                #expect(mine.dropLast().allSatisfy { $0["finish_reason"] is NSNull })
                #expect(mine.last?["finish_reason"] as? String == "stop")
                #expect(deltas.last?.isEmpty == true)
            }
            // Every chunk carries usage: null, the last has no choices and the totals.
            #expect(chunks.dropLast().allSatisfy { $0["usage"] is NSNull })
            let last = try #require(chunks.last)
            #expect((last["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(last["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 20)
            #expect(usage["completion_tokens"] as? Int == 6)
            #expect(usage["total_tokens"] as? Int == 26)
        }
    }

    @Test func streamedChatWithoutUsageHasNoUsageKey() async throws {
        try await testApp(FakeEngine(reply: "Hi")).test(.router) { client in
            let response = try await client.post(
                "/v1/chat/completions",
                #"{"messages": [{"role": "user", "content": "hi"}], "stream": true, "logprobs": true}"#)
            let (chunks, done) = response.events
            #expect(done)
            #expect(chunks.allSatisfy { $0["usage"] == nil })
            let withLogprobs = chunks.compactMap {
                ((($0["choices"] as? [[String: Any]])?.first?["logprobs"]) as? [String: Any])?["content"] as? [[String: Any]]
            }
            #expect(withLogprobs.map { $0.map { $0["token"] as? String } } == [["H"], ["i"]])
        }
    }

    @Test func wholeCompletionWithLegacyLogprobs() async throws {
        try await testApp(FakeEngine(reply: "ab")).test(.router) { client in
            let response = try await client.post(
                "/v1/completions", #"{"model": "tuned", "prompt": ["Say"], "logprobs": 1, "max_tokens": 5}"#)
            #expect(response.status == .ok)
            let json = response.json
            #expect(json["object"] as? String == "text_completion")
            #expect((json["id"] as? String)?.hasPrefix("cmpl-") == true)
            #expect(json["model"] as? String == "tuned")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect(choice["text"] as? String == "ab")
            #expect(choice["finish_reason"] as? String == "stop")
            let logprobs = try #require(choice["logprobs"] as? [String: Any])
            #expect(logprobs["tokens"] as? [String] == ["a", "b"])
            #expect(logprobs["token_logprobs"] as? [Double] == [-0.25, -0.5])
            #expect(logprobs["text_offset"] as? [Int] == [0, 1])
            let top = try #require(logprobs["top_logprobs"] as? [[String: Double]])
            #expect(top == [["x": -1, "a": -0.25], ["x": -1, "b": -0.5]])
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 3)
            #expect(usage["completion_tokens"] as? Int == 3)
        }
    }

    @Test func streamedCompletion() async throws {
        try await testApp(FakeEngine(reply: "ok")).test(.router) { client in
            let response = try await client.post(
                "/v1/completions",
                #"{"prompt": "Say", "stream": true, "logprobs": 0, "stream_options": {"include_usage": true}}"#)
            let (chunks, done) = response.events
            #expect(done)
            #expect(chunks.allSatisfy { $0["object"] as? String == "text_completion" })
            let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            #expect(choices.compactMap { $0["text"] as? String }.joined() == "ok")
            #expect(choices.last?["finish_reason"] as? String == "stop")
            let offsets = choices.compactMap { ($0["logprobs"] as? [String: Any])?["text_offset"] as? [Int] }
            #expect(offsets == [[0], [1]])
            let usage = try #require(chunks.last?["usage"] as? [String: Any])
            #expect(usage["completion_tokens"] as? Int == 3)
        }
    }

    @Test func modelsList() async throws {
        try await testApp(FakeEngine(adapterNames: ["tuned", "alpha"])).test(.router) { client in
            let response = try await client.execute(uri: "/v1/models", method: .get)
            #expect(response.status == .ok)
            #expect(response.json["object"] as? String == "list")
            let data = try #require(response.json["data"] as? [[String: Any]])
            #expect(data.map { $0["id"] as? String } == ["base", "alpha", "tuned"])
            #expect(data.allSatisfy { $0["object"] as? String == "model" && $0["owned_by"] as? String == "temper" })
            #expect(data[0]["parent"] is NSNull)
            #expect(data[1]["parent"] as? String == "base")
            #expect(data[0]["max_model_len"] as? Int == 64)
            let one = try await client.execute(uri: "/v1/models/alpha", method: .get)
            #expect(one.json["id"] as? String == "alpha")
            let missing = try await client.execute(uri: "/v1/models/nope", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.error["code"] as? String == "model_not_found")
        }
    }

    @Test func healthAndChunkEncoding() async throws {
        try await testApp(FakeEngine()).test(.router) { client in
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            #expect(health.text == #"{"status":"ok"}"#)
        }
        let shape = ChatShape(
            identity: ResponseIdentity(prefix: "chatcmpl-", model: "m"), includeUsage: false, logprobsRequested: false)
        let chunk = try #require(shape.chunk(.token(choice: 1, text: "a\"b", logprob: nil), textOffset: 0))
        let id = shape.identity.id
        let created = shape.identity.created
        #expect(
            String(decoding: ServerSentEvents.event(chunk), as: UTF8.self)
                == #"data: {"choices":[{"delta":{"content":"a\"b"},"finish_reason":null,"index":1,"logprobs":null}],"created":\#(created),"id":"\#(id)","model":"m","object":"chat.completion.chunk"}"#
                + "\n\n")
    }

    @Test func tokenTextOfPartialCharacters() {
        #expect(TokenText.string(Array("é".utf8)) == "é")
        #expect(TokenText.string([0xE2, 0x80]) == "bytes:\\xe2\\x80")
    }
}

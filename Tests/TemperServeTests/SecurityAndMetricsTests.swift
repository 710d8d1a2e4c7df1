import Foundation
import Hummingbird
import HummingbirdTesting
import TemperEngine
import Testing
@testable import TemperServe

@Suite struct SecurityTests {
    @Test func loopbackDetection() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
            #expect(ServeSecurity.isLoopback(host: host), "\(host)")
        }
        for host in ["0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.1", "example.com", "128.0.0.1", "127.0.0", "::2", "", "localhost.example.com"] {
            #expect(!ServeSecurity.isLoopback(host: host), "\(host)")
        }
    }

    @Test func keyFileAndBearerCheck() {
        let keys = ServeSecurity.parseKeys("# team keys\nsk-one\n\n  sk-two  \r\n#sk-old\n")
        #expect(keys == ["sk-one", "sk-two"])
        #expect(ServeSecurity.authorize("Bearer sk-one", keys: keys))
        #expect(ServeSecurity.authorize("bearer  sk-two", keys: keys))
        #expect(!ServeSecurity.authorize("Bearer sk-on", keys: keys))
        #expect(!ServeSecurity.authorize("Bearer sk-one1", keys: keys))
        #expect(!ServeSecurity.authorize("Basic sk-one", keys: keys))
        #expect(!ServeSecurity.authorize("sk-one", keys: keys))
        #expect(!ServeSecurity.authorize(nil, keys: keys))
    }

    @Test func everyV1RequestNeedsAKey() async throws {
        let engine = FakeEngine()
        try await testApp(engine, keys: ["sk-test"]).test(.router) { client in
            let chat = #"{"messages": [{"role": "user", "content": "hi"}]}"#
            let missing = try await client.post("/v1/chat/completions", chat)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            #expect(missing.error["type"] as? String == "invalid_request_error")
            #expect((missing.error["message"] as? String)?.hasPrefix("You didn't provide an API key.") == true)
            #expect(missing.error["code"] is NSNull)
            let wrong = try await client.post("/v1/chat/completions", chat, headers: [.authorization: "Bearer sk-nope"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.error["code"] as? String == "invalid_api_key")
            let models = try await client.execute(uri: "/v1/models", method: .get)
            #expect(models.status == .unauthorized)
            // Unknown /v1 routes answer 401 too, so they reveal nothing.
            let unknown = try await client.execute(uri: "/v1/nothing", method: .get)
            #expect(unknown.status == .unauthorized)
            #expect(engine.requests.isEmpty)
            let right = try await client.post("/v1/chat/completions", chat, headers: [.authorization: "Bearer sk-test"])
            #expect(right.status == .ok)
            // Health and metrics stay open (for probes and scrapers on the same network).
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
        }
        #expect(engine.requests.count == 1)
    }
}

@Suite struct MetricsTests {
    @Test func prometheusText() {
        let metrics = ServerMetrics()
        metrics.recordResponse(status: 200)
        metrics.recordResponse(status: 200)
        metrics.recordResponse(status: 429)
        metrics.recordTimeToFirstToken(seconds: 0.02)
        metrics.recordTimeToFirstToken(seconds: 0.3)
        metrics.recordTimeToFirstToken(seconds: 100)
        let text = metrics.prometheusText(engine: FakeEngine().metrics())
        let expected = """
            # HELP temper_requests_total Answered /v1 requests by HTTP status.
            # TYPE temper_requests_total counter
            temper_requests_total{status="200"} 2
            temper_requests_total{status="429"} 1
            # HELP temper_prompt_tokens_total Prompt tokens of admitted requests.
            # TYPE temper_prompt_tokens_total counter
            temper_prompt_tokens_total 120
            # HELP temper_prompt_tokens_cached_total Prompt tokens found in the prefix cache.
            # TYPE temper_prompt_tokens_cached_total counter
            temper_prompt_tokens_cached_total 16
            # HELP temper_generation_tokens_total Tokens generated.
            # TYPE temper_generation_tokens_total counter
            temper_generation_tokens_total 50
            # HELP temper_requests_finished_total Engine requests finished.
            # TYPE temper_requests_finished_total counter
            temper_requests_finished_total 7
            # HELP temper_requests_cancelled_total Engine requests cancelled (client gone).
            # TYPE temper_requests_cancelled_total counter
            temper_requests_cancelled_total 1
            # HELP temper_requests_running Sequences being decoded.
            # TYPE temper_requests_running gauge
            temper_requests_running 3
            # HELP temper_requests_waiting Requests waiting for admission.
            # TYPE temper_requests_waiting gauge
            temper_requests_waiting 1
            # HELP temper_kv_blocks_used KV cache blocks in use.
            # TYPE temper_kv_blocks_used gauge
            temper_kv_blocks_used 10
            # HELP temper_kv_blocks_cached KV cache blocks held only by the prefix cache.
            # TYPE temper_kv_blocks_cached gauge
            temper_kv_blocks_cached 4
            # HELP temper_kv_blocks_total KV cache blocks in all.
            # TYPE temper_kv_blocks_total gauge
            temper_kv_blocks_total 64
            # HELP temper_time_to_first_token_seconds Seconds from a request's arrival to its first generated token.
            # TYPE temper_time_to_first_token_seconds histogram
            temper_time_to_first_token_seconds_bucket{le="0.01"} 0
            temper_time_to_first_token_seconds_bucket{le="0.025"} 1
            temper_time_to_first_token_seconds_bucket{le="0.05"} 1
            temper_time_to_first_token_seconds_bucket{le="0.1"} 1
            temper_time_to_first_token_seconds_bucket{le="0.25"} 1
            temper_time_to_first_token_seconds_bucket{le="0.5"} 2
            temper_time_to_first_token_seconds_bucket{le="1"} 2
            temper_time_to_first_token_seconds_bucket{le="2.5"} 2
            temper_time_to_first_token_seconds_bucket{le="5"} 2
            temper_time_to_first_token_seconds_bucket{le="10"} 2
            temper_time_to_first_token_seconds_bucket{le="30"} 2
            temper_time_to_first_token_seconds_bucket{le="60"} 2
            temper_time_to_first_token_seconds_bucket{le="+Inf"} 3
            temper_time_to_first_token_seconds_sum 100.32
            temper_time_to_first_token_seconds_count 3
            # HELP temper_decode_tokens_per_second Tokens generated per second of decoding, since the start (all sequences together).
            # TYPE temper_decode_tokens_per_second gauge
            temper_decode_tokens_per_second 25

            """
        #expect(text == expected)
    }

    @Test func metricsEndpointCountsV1Responses() async throws {
        try await testApp(FakeEngine()).test(.router) { client in
            _ = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}]}"#)
            _ = try await client.post("/v1/chat/completions", #"{"messages": []}"#)
            _ = try await client.execute(uri: "/health", method: .get)
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(response.text.contains("temper_requests_total{status=\"200\"} 1\n"))
            #expect(response.text.contains("temper_requests_total{status=\"400\"} 1\n"))
            #expect(response.text.contains("temper_time_to_first_token_seconds_count 1\n"))
        }
    }
}

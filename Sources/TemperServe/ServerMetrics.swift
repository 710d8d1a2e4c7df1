import Foundation
import TemperEngine

/// What the server counts itself (the engine counts tokens and cache use): responses by status and
/// the time from a request's arrival to its first token, as seen by the client.
public final class ServerMetrics: Sendable {
    /// Upper bounds of the time-to-first-token histogram, seconds.
    public static let timeToFirstTokenBuckets: [Double] = [
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]

    struct Counts: Sendable {
        var responses: [Int: Int] = [:]
        var firstTokenBuckets = [Int](repeating: 0, count: ServerMetrics.timeToFirstTokenBuckets.count)
        var firstTokenCount = 0
        var firstTokenSum = 0.0
    }

    private let counts = Locked(Counts())

    public init() {}

    /// Counts one answered `/v1` request.
    public func recordResponse(status: Int) {
        counts.withLock { $0.responses[status, default: 0] += 1 }
    }

    public func recordTimeToFirstToken(seconds: Double) {
        counts.withLock { counts in
            counts.firstTokenCount += 1
            counts.firstTokenSum += seconds
            for (index, bound) in Self.timeToFirstTokenBuckets.enumerated() where seconds <= bound {
                counts.firstTokenBuckets[index] += 1
            }
        }
    }

    var snapshot: Counts { counts.withLock { $0 } }

    /// The Prometheus text exposition (format 0.0.4) of these counts and an engine snapshot.
    public func prometheusText(engine: EngineMetrics) -> String {
        let counts = snapshot
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ value: Double) {
            out += "\(name) \(Self.format(value))\n"
        }
        func sample(_ name: String, labels: String, _ value: Double) {
            out += "\(name){\(labels)} \(Self.format(value))\n"
        }

        family("temper_requests_total", "counter", "Answered /v1 requests by HTTP status.")
        for status in counts.responses.keys.sorted() {
            sample("temper_requests_total", labels: "status=\"\(status)\"", Double(counts.responses[status] ?? 0))
        }
        family("temper_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.")
        sample("temper_prompt_tokens_total", Double(engine.promptTokens))
        family("temper_prompt_tokens_cached_total", "counter", "Prompt tokens found in the prefix cache.")
        sample("temper_prompt_tokens_cached_total", Double(engine.cachedPromptTokens))
        family("temper_generation_tokens_total", "counter", "Tokens generated.")
        sample("temper_generation_tokens_total", Double(engine.generatedTokens))
        family("temper_requests_finished_total", "counter", "Engine requests finished.")
        sample("temper_requests_finished_total", Double(engine.requestsFinished))
        family("temper_requests_cancelled_total", "counter", "Engine requests cancelled (client gone).")
        sample("temper_requests_cancelled_total", Double(engine.requestsCancelled))
        family("temper_requests_running", "gauge", "Sequences being decoded.")
        sample("temper_requests_running", Double(engine.runningSequences))
        family("temper_requests_waiting", "gauge", "Requests waiting for admission.")
        sample("temper_requests_waiting", Double(engine.waitingRequests))
        family("temper_kv_blocks_used", "gauge", "KV cache blocks in use.")
        sample("temper_kv_blocks_used", Double(engine.kvBlocksUsed))
        family("temper_kv_blocks_cached", "gauge", "KV cache blocks held only by the prefix cache.")
        sample("temper_kv_blocks_cached", Double(engine.kvBlocksCached))
        family("temper_kv_blocks_total", "gauge", "KV cache blocks in all.")
        sample("temper_kv_blocks_total", Double(engine.kvBlocksTotal))
        family(
            "temper_time_to_first_token_seconds", "histogram",
            "Seconds from a request's arrival to its first generated token.")
        for (index, bound) in Self.timeToFirstTokenBuckets.enumerated() {
            sample(
                "temper_time_to_first_token_seconds_bucket", labels: "le=\"\(Self.format(bound))\"",
                Double(counts.firstTokenBuckets[index]))
        }
        sample("temper_time_to_first_token_seconds_bucket", labels: "le=\"+Inf\"", Double(counts.firstTokenCount))
        sample("temper_time_to_first_token_seconds_sum", counts.firstTokenSum)
        sample("temper_time_to_first_token_seconds_count", Double(counts.firstTokenCount))
        family(
            "temper_decode_tokens_per_second", "gauge",
            "Tokens generated per second of decoding, since the start (all sequences together).")
        sample(
            "temper_decode_tokens_per_second",
            engine.decodeSeconds > 0 ? Double(engine.generatedTokens) / engine.decodeSeconds : 0)
        return out
    }

    /// Integers without a fraction; other values in Swift's shortest round-trip form.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String(value)
    }
}

/// A value behind a lock, for state shared across request tasks.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // Safe: `value` is only read or written inside `withLock`, under `lock`.
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

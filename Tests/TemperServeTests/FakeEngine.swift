import Foundation
import Hummingbird
import HummingbirdTesting
import TemperEngine
import TemperModels
@testable import TemperServe

/// A scripted engine with a character-level tokenizer: id = the Unicode scalar's value, id 0 is the
/// end-of-sequence token `</s>`. Each sample i answers `reply` (as one token per character), with
/// alternatives `x`, `y`, `z`… when log-probs are asked for, then an end-of-sequence token.
final class FakeEngine: ServingEngine {
    let contextLength: Int
    let adapterNames: [String]
    let vocabularySize = 0x3000
    let endOfSequenceTokenIDs: Set<Int> = [0]
    let reply: String
    /// Thrown by `submit` instead of answering.
    let refusal: EngineError?
    /// Whether the stream stays open after the first token (for cancellation tests).
    let hangs: Bool
    /// A pause before each event (for shutdown tests).
    let delay: Duration
    let submitted = Locked<[EngineRequest]>([])
    let cancelled = Locked(0)
    let shutDown = Locked(false)

    init(
        contextLength: Int = 64, adapterNames: [String] = ["tuned"], reply: String = "Hi!",
        refusal: EngineError? = nil, hangs: Bool = false, delay: Duration = .zero
    ) {
        self.delay = delay
        self.contextLength = contextLength
        self.adapterNames = adapterNames
        self.reply = reply
        self.refusal = refusal
        self.hangs = hangs
    }

    var requests: [EngineRequest] { submitted.withLock { $0 } }

    func encodeChat(_ messages: [LanguageModel.Message]) throws -> [Int] {
        let text = messages.map { "\($0.role): \($0.content)\n" }.joined() + "assistant: "
        return text.unicodeScalars.map { Int($0.value) }
    }

    func encodeCompletionPrompt(_ text: String) -> [Int] { text.unicodeScalars.map { Int($0.value) } }

    func tokenBytes(_ id: Int) -> [UInt8] {
        if id == 0 { return Array("</s>".utf8) }
        return Array(String(UnicodeScalar(UInt32(id)).map(Character.init) ?? "?").utf8)
    }

    func events(for request: EngineRequest) -> [EngineEvent] {
        var events: [EngineEvent] = [.started(promptTokens: request.prompt.count, cachedTokens: 2)]
        let ids = reply.unicodeScalars.map { Int($0.value) }.prefix(request.maxNewTokens)
        for sample in 0..<request.sampleCount {
            for (position, id) in ids.enumerated() {
                events.append(
                    .token(
                        GeneratedToken(
                            sample: sample, token: id, text: String(UnicodeScalar(UInt32(id))!), logProb: -0.5,
                            rawLogProb: -0.25 * Float(position + 1),
                            alternatives: (0..<request.sampling.alternatives).map {
                                TokenLogProb(token: Int(UnicodeScalar("x").value) + $0, logProb: -1 - Float($0))
                            })))
            }
            let stops = ids.count < request.maxNewTokens
            if stops {
                events.append(
                    .token(GeneratedToken(sample: sample, token: 0, text: "", logProb: 0, rawLogProb: -0.1, alternatives: [])))
            }
            events.append(
                .finished(
                    FinishedSample(
                        sample: sample, reason: stops ? .stop : .length, text: "",
                        tokens: Array(ids) + (stops ? [0] : []), stop: nil)))
        }
        return events
    }

    func submit(_ request: EngineRequest) throws -> AsyncStream<EngineEvent> {
        if let refusal { throw refusal }
        submitted.withLock { $0.append(request) }
        let events = events(for: request)
        let hangs = hangs
        let cancelled = cancelled
        let delay = delay
        return AsyncStream { continuation in
            continuation.onTermination = { termination in
                if case .cancelled = termination { cancelled.withLock { $0 += 1 } }
            }
            let sent = Array(events.dropLast(hangs ? events.count - 2 : 0))
            if delay == .zero {
                for event in sent { continuation.yield(event) }
                if !hangs { continuation.finish() }
            } else {
                Task {
                    for event in sent {
                        try? await Task.sleep(for: delay)
                        continuation.yield(event)
                    }
                    if !hangs { continuation.finish() }
                }
            }
        }
    }

    func metrics() -> EngineMetrics {
        var metrics = EngineMetrics()
        metrics.runningSequences = 3
        metrics.waitingRequests = 1
        metrics.kvBlocksUsed = 10
        metrics.kvBlocksTotal = 64
        metrics.kvBlocksCached = 4
        metrics.promptTokens = 120
        metrics.cachedPromptTokens = 16
        metrics.generatedTokens = 50
        metrics.decodeSeconds = 2
        metrics.requestsFinished = 7
        metrics.requestsCancelled = 1
        return metrics
    }

    func shutdown() async { shutDown.withLock { $0 = true } }
}

/// A router app over an engine, as the server builds it.
func testApp(
    _ engine: FakeEngine, keys: [String] = [], maxRequestBytes: Int = 4 << 20
) -> some ApplicationProtocol {
    let configuration = ServeConfiguration(
        servedModelName: "base", apiKeys: keys, maxRequestBytes: maxRequestBytes, maxSamples: 8)
    return Application(router: TemperServer.buildRouter(engine: engine, configuration: configuration))
}

extension TestClientProtocol {
    func post(_ uri: String, _ json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json))
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// `error` of an OpenAI error body, with nulls as NSNull.
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }

    /// The JSON objects of a server-sent event stream, and whether it ended with `[DONE]`.
    var events: (chunks: [[String: Any]], done: Bool) {
        var chunks: [[String: Any]] = []
        var done = false
        for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
            guard block.hasPrefix("data: ") else { continue }
            let payload = String(block.dropFirst(6))
            if payload == "[DONE]" {
                done = true
            } else if let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] {
                chunks.append(object)
            }
        }
        return (chunks, done)
    }
}

import Foundation
import Hummingbird
import TemperEngine

/// The OpenAI endpoints: decode and validate a body, submit it to the engine, and answer with one
/// JSON response or a stream of server-sent events. A client that goes away (its connection closes)
/// cancels the request: the engine stream is dropped, which frees the request's KV blocks.
struct CompletionsController<Engine: ServingEngine>: Sendable {
    let engine: Engine
    let configuration: ServeConfiguration
    let metrics: ServerMetrics
    /// When the server started (`created` of the models).
    let started = Int(Date().timeIntervalSince1970)

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/chat/completions") { request, _ in try await chatCompletions(request) }
        router.post("/v1/completions") { request, _ in try await completions(request) }
        router.get("/v1/models") { _, _ in models() }
        router.get("/v1/models/{id}") { _, context in try model(context.parameters.require("id")) }
    }

    // MARK: /v1/chat/completions

    func chatCompletions(_ request: Request) async throws -> Response {
        let arrival = ContinuousClock.now
        var request = request
        let body = try RequestDecoding.decode(ChatCompletionRequest.self, from: try await readBody(&request))
        let model = try RequestValidation.resolveModel(body.model, configuration: configuration, engine: engine)
        guard !body.messages.isEmpty else {
            throw APIError.invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param: "messages", code: "empty_array")
        }
        if let top = body.topLogprobs {
            guard (0...20).contains(top) else {
                throw APIError.invalid(
                    "Invalid 'top_logprobs': expected a value in [0, 20], but got \(top) instead.",
                    param: "top_logprobs", code: "invalid_value")
            }
            guard body.logprobs else {
                throw APIError.invalid(
                    "Invalid 'top_logprobs': 'logprobs' must be true to use 'top_logprobs'.", param: "top_logprobs",
                    code: "invalid_value")
            }
        }
        let prompt: [Int]
        do {
            prompt = try engine.encodeChat(body.messages)
        } catch {
            throw APIError.invalid(
                "The model's chat template could not render these messages: \(error)", param: "messages",
                code: "chat_template_error")
        }
        let plan = try RequestValidation.plan(
            sampling: body.sampling, prompt: prompt, promptParam: "messages", model: model,
            logprobs: body.logprobs ? (body.topLogprobs ?? 0) : nil,
            defaultMaxTokens: .remainingContext(cap: configuration.defaultMaxTokensCap), configuration: configuration,
            engine: engine)
        let shape = ChatShape(
            identity: ResponseIdentity(prefix: "chatcmpl-", model: plan.modelName),
            includeUsage: plan.stream && plan.includeUsage, logprobsRequested: plan.logprobs != nil)
        return try await respond(plan: plan, shape: shape, request: request, arrival: arrival, promptParam: "messages")
    }

    // MARK: /v1/completions

    func completions(_ request: Request) async throws -> Response {
        let arrival = ContinuousClock.now
        var request = request
        let body = try RequestDecoding.decode(CompletionRequest.self, from: try await readBody(&request))
        let model = try RequestValidation.resolveModel(body.model, configuration: configuration, engine: engine)
        let prompt: [Int]
        switch body.prompt {
        case .text(let text):
            prompt = engine.encodeCompletionPrompt(text)
        case .tokens(let ids):
            try RequestValidation.checkTokenIDs(ids, engine: engine)
            prompt = ids
        }
        // OpenAI's legacy default is 16 new tokens.
        let plan = try RequestValidation.plan(
            sampling: body.sampling, prompt: prompt, promptParam: "prompt", model: model, logprobs: body.logprobs,
            defaultMaxTokens: .fixed(16), configuration: configuration, engine: engine)
        let shape = CompletionShape(
            identity: ResponseIdentity(prefix: "cmpl-", model: plan.modelName),
            includeUsage: plan.stream && plan.includeUsage, logprobsRequested: plan.logprobs != nil)
        return try await respond(plan: plan, shape: shape, request: request, arrival: arrival, promptParam: "prompt")
    }

    // MARK: /v1/models

    func models() -> Response {
        jsonResponse(JSONText.encode(ModelList(data: modelEntries())))
    }

    func model(_ id: String) throws -> Response {
        guard let entry = modelEntries().first(where: { $0.id == id }) else { throw APIError.modelNotFound(id) }
        return jsonResponse(JSONText.encode(entry))
    }

    func modelEntries() -> [ModelList.Model] {
        let base = configuration.servedModelName
        let context = engine.contextLength
        return [ModelList.Model(id: base, created: started, parent: nil, max_model_len: context)]
            + engine.adapterNames.sorted().map {
                ModelList.Model(id: $0, created: started, parent: base, max_model_len: context)
            }
    }

    // MARK: generation

    func readBody(_ request: inout Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.collectBody(upTo: configuration.maxRequestBytes)
            return Array(buffer.readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            // NIO's "too many bytes" error.
            throw APIError.bodyTooLarge(limit: configuration.maxRequestBytes)
        }
    }

    func respond(
        plan: GenerationPlan, shape: some ResponseShape, request: Request, arrival: ContinuousClock.Instant,
        promptParam: String
    ) async throws -> Response {
        let events: AsyncStream<EngineEvent>
        do {
            events = try engine.submit(plan.request)
        } catch let error as EngineError {
            throw APIError.engine(error, promptParam: promptParam)
        }
        let run = GenerationRun(plan: plan, engine: engine, metrics: metrics, arrival: arrival)
        // Watching for the client's hang-up (Hummingbird's `consumeWithCancellationOnInboundClose`)
        // ends the connection's request stream when the watch stops (NIO finishes a sequence whose
        // `next()` is cancelled), so the connection cannot carry another request: say so, and
        // clients open a new one instead of failing on a closed one.
        if plan.stream {
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache", .connection: "close",
                ],
                body: ResponseBody { writer in
                    try await request.body.consumeWithCancellationOnInboundClose { _ in
                        try await run.stream(events, shape: shape, to: &writer)
                    }
                    try await writer.finish(nil)
                })
        }
        let (choices, usage) = try await request.body.consumeWithCancellationOnInboundClose { _ in
            try await run.collect(events)
        }
        var response = jsonResponse(shape.whole(choices, usage: usage))
        response.headers[.connection] = "close"
        return response
    }

    func jsonResponse(_ bytes: [UInt8]) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// One submitted request's events, written out.
struct GenerationRun<Engine: ServingEngine>: Sendable {
    let plan: GenerationPlan
    let engine: Engine
    let metrics: ServerMetrics
    let arrival: ContinuousClock.Instant

    func translator() -> GenerationTranslator {
        GenerationTranslator(plan: plan, tokenBytes: { [engine] in engine.tokenBytes($0) })
    }

    func noteFirstToken(_ event: EngineEvent, _ translator: GenerationTranslator) {
        if case .token = event, !translator.sawToken {
            let elapsed = arrival.duration(to: .now)
            metrics.recordTimeToFirstToken(
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
    }

    /// Every event, into whole choices. Ends early (throwing) if the task is cancelled.
    func collect(_ events: AsyncStream<EngineEvent>) async throws -> ([CollectedChoice], Usage) {
        var translator = translator()
        var choices = [CollectedChoice](repeating: CollectedChoice(), count: plan.request.sampleCount)
        for await event in events {
            noteFirstToken(event, translator)
            CollectedChoice.collect(translator.updates(for: event), into: &choices)
        }
        try Task.checkCancellation()
        CollectedChoice.collect(translator.unfinished(), into: &choices)
        return (choices, translator.usage)
    }

    /// Every event as a server-sent event, then the usage chunk if asked for, then `[DONE]`.
    func stream(
        _ events: AsyncStream<EngineEvent>, shape: some ResponseShape, to writer: inout any ResponseBodyWriter
    ) async throws {
        var translator = translator()
        var offsets = [Int](repeating: 0, count: plan.request.sampleCount)
        for chunk in shape.openingChunks(choices: plan.request.sampleCount) {
            try await writer.write(ByteBuffer(bytes: ServerSentEvents.event(chunk)))
        }
        func encode(_ updates: [ChoiceUpdate]) -> [UInt8] {
            var bytes: [UInt8] = []
            for update in updates {
                let (index, text): (Int, String) =
                    switch update {
                    case .token(let index, let text, _), .finish(let index, let text, _): (index, text)
                    }
                let offset = offsets.indices.contains(index) ? offsets[index] : 0
                if let chunk = shape.chunk(update, textOffset: offset) { bytes += ServerSentEvents.event(chunk) }
                if offsets.indices.contains(index) { offsets[index] += text.unicodeScalars.count }
            }
            return bytes
        }
        for await event in events {
            noteFirstToken(event, translator)
            let bytes = encode(translator.updates(for: event))
            if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
        }
        try Task.checkCancellation()
        var tail = encode(translator.unfinished())
        if plan.includeUsage { tail += ServerSentEvents.event(shape.usageChunk(translator.usage)) }
        tail += ServerSentEvents.done
        try await writer.write(ByteBuffer(bytes: tail))
    }
}

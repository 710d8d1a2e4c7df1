import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTokenizers

/// The step-wise generation engine: requests join and leave between decode steps (continuous
/// batching) over a paged KV cache. One background thread owns the model; everything else talks to
/// it through `submit` (a stream of events per request), `cancel` and `metrics`.
///
/// Each engine step runs up to `prefillChunk` prompt tokens of admitted requests (oldest first,
/// one forward pass per sequence), then one decode forward over every sequence that has a token to
/// feed, then samples each row with its own sampler. A sequence's finished state frees its blocks at
/// once. When the pool runs out mid-decode the newest sequence is preempted: its blocks are freed and
/// it is recomputed later from its tokens (prefix-cache hits make that cheap).
public final class InferenceEngine: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Bytes of KV cache (all layers, keys and values); admission waits while they are in use.
        public var kvCacheBytes: Int
        /// Tokens per KV block.
        public var blockSize: Int
        /// Sequences decoded together at most.
        public var maxRunningSequences: Int
        /// Requests waiting for admission at most; more are refused with `EngineError.queueFull`.
        public var maxWaitingRequests: Int
        /// Prompt tokens prefilled per engine step (a longer prompt takes several steps, the running
        /// sequences decoding between them).
        public var prefillChunk: Int
        /// Keep full blocks for reuse by later prompts with the same prefix (and adapter).
        public var prefixCaching: Bool
        /// Tokens per sequence at most (prompt and output); nil: the model's context length.
        public var contextLength: Int?

        public init(
            kvCacheBytes: Int = 1 << 30, blockSize: Int = 16, maxRunningSequences: Int = 64,
            maxWaitingRequests: Int = 1024, prefillChunk: Int = 256, prefixCaching: Bool = true,
            contextLength: Int? = nil
        ) {
            self.kvCacheBytes = kvCacheBytes
            self.blockSize = blockSize
            self.maxRunningSequences = maxRunningSequences
            self.maxWaitingRequests = maxWaitingRequests
            self.prefillChunk = prefillChunk
            self.prefixCaching = prefixCaching
            self.contextLength = contextLength
        }
    }

    public let model: LanguageModel
    public let configuration: Configuration
    /// Tokens per sequence at most.
    public let contextLength: Int

    private let cache: PagedKVCache
    private let lock = NSCondition()
    // Shared with submitters, under `lock`.
    private var submissions: [RequestState] = []
    private var cancelledIDs: Set<Int> = []
    private var nextRequestID = 0
    private var stopping = false
    private var threadEnded = false
    private var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    private var snapshot = EngineMetrics()
    private var adapters: [String: URL] = [:]
    // Engine thread only.
    private var waiting: [RequestState] = []
    private var preempted: [Sequence] = []
    private var running: [Sequence] = []
    private var admissions = 0
    private var totals = EngineMetrics()

    public init(model: LanguageModel, configuration: Configuration = .init()) {
        self.model = model
        self.configuration = configuration
        let network = model.network.configuration
        contextLength = configuration.contextLength ?? network.maxPositionEmbeddings
        let perBlock = PagedKVCache.bytesPerBlock(network, blockSize: configuration.blockSize)
        let blocks = max(configuration.kvCacheBytes / perBlock, 2)
        // MLX streams belong to threads: whatever the engine thread reads must be materialized here.
        eval(Array(model.network.parameters().values))
        cache = PagedKVCache(configuration: network, blockSize: configuration.blockSize, blockCount: blocks)
        totals.kvBlocksTotal = blocks
        totals.blockSize = configuration.blockSize
        snapshot = totals
        // The thread keeps the engine alive until `shutdown`.
        let thread = Thread { self.loop() }
        thread.name = "temper-engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    // MARK: public API

    /// Bytes of one KV block of `blockSize` tokens over all layers (float32 keys and values).
    public static func bytesPerBlock(_ configuration: ModelConfiguration, blockSize: Int) -> Int {
        PagedKVCache.bytesPerBlock(configuration, blockSize: blockSize)
    }

    /// Names of the adapters requests may select.
    public var adapterNames: [String] { lock.withLock { adapters.keys.sorted() } }

    /// Loads a PEFT LoRA adapter that requests select by `name`; before the first `submit` (the
    /// engine thread reads the model without a lock).
    public func registerAdapter(name: String, directory: URL) throws {
        try lock.withLock {
            precondition(nextRequestID == 0, "registerAdapter after requests were submitted")
            _ = try PEFTAdapter.loadServed(named: name, into: model.network, from: directory)
            adapters[name] = directory
        }
    }

    /// Queues a request; its events arrive on the returned stream. Dropping the stream (or
    /// cancelling the task iterating it) cancels the request and frees its KV blocks at the next step.
    public func submit(_ request: EngineRequest) throws -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream()
        let id = try enqueue(request) { event in
            continuation.yield(event)
        } onEnd: {
            continuation.finish()
        }
        continuation.onTermination = { [weak self] reason in
            if case .cancelled = reason { self?.cancel(id) }
        }
        return stream
    }

    /// Runs one request to the end on the calling thread's behalf (blocking it), calling `onEvent`
    /// from the engine thread as events arrive; returns each sample's end, in sample order.
    public func generate(_ request: EngineRequest, onEvent: @escaping @Sendable (EngineEvent) -> Void = { _ in })
        throws -> [FinishedSample]
    {
        let done = DispatchSemaphore(value: 0)
        let finished = LockedBox<[FinishedSample]>([])
        _ = try enqueue(request) { event in
            if case .finished(let sample) = event { finished.mutate { $0.append(sample) } }
            onEvent(event)
        } onEnd: {
            done.signal()
        }
        done.wait()
        return finished.value.sorted { $0.sample < $1.sample }
    }

    /// Runs every request together (continuous batching), blocking the caller until all have
    /// finished; `onEvent` gets each event with its request's index. Each request's sample ends, in
    /// sample order; the first error of any request is thrown.
    public func generate(
        all requests: [EngineRequest], onEvent: @escaping @Sendable (Int, EngineEvent) -> Void = { _, _ in }
    ) throws -> [[FinishedSample]] {
        let results = LockedBox([[FinishedSample]](repeating: [], count: requests.count))
        let failure = LockedBox<Error?>(nil)
        let group = DispatchGroup()
        for (index, request) in requests.enumerated() {
            group.enter()
            DispatchQueue.global().async {
                do {
                    let finished = try self.generate(request) { onEvent(index, $0) }
                    results.mutate { $0[index] = finished }
                } catch {
                    failure.mutate { $0 = $0 ?? error }
                }
                group.leave()
            }
        }
        group.wait()
        if let error = failure.value { throw error }
        return results.value
    }

    /// Cancels a request: its sequences are dropped at the next step and its stream ends.
    public func cancel(_ requestID: Int) {
        lock.withLock {
            cancelledIDs.insert(requestID)
            lock.signal()
        }
    }

    public func metrics() -> EngineMetrics { lock.withLock { snapshot } }

    /// Stops admitting requests; returns once the running and waiting ones have finished and the
    /// engine thread has ended.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = lock.withLock {
                stopping = true
                if threadEnded { return true }
                shutdownWaiters.append(continuation)
                lock.signal()
                return false
            }
            if ended { continuation.resume() }
        }
    }

    /// ``shutdown()`` for synchronous callers (a trainer's rollouts): blocks until the thread has ended.
    public func shutdownAndWait() {
        let ended = DispatchSemaphore(value: 0)
        Task.detached {
            await self.shutdown()
            ended.signal()
        }
        ended.wait()
    }

    // MARK: submission

    private func enqueue(
        _ request: EngineRequest, onEvent: @escaping (EngineEvent) -> Void, onEnd: @escaping () -> Void
    ) throws -> Int {
        try validate(request)
        return try lock.withLock {
            if stopping { throw EngineError.shuttingDown }
            if let adapter = request.adapter, adapters[adapter] == nil { throw EngineError.unknownAdapter(adapter) }
            if snapshot.waitingRequests + submissions.count >= configuration.maxWaitingRequests {
                throw EngineError.queueFull(retryAfter: 1)
            }
            nextRequestID += 1
            submissions.append(RequestState(id: nextRequestID, request: request, onEvent: onEvent, onEnd: onEnd))
            lock.signal()
            return nextRequestID
        }
    }

    private func validate(_ request: EngineRequest) throws {
        if request.prompt.isEmpty { throw EngineError.emptyPrompt }
        let vocabulary = model.network.configuration.vocabularySize
        if let bad = request.prompt.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw EngineError.invalidParameter("prompt token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        if request.prompt.count >= contextLength {
            throw EngineError.promptTooLong(tokens: request.prompt.count, limit: contextLength)
        }
        if request.maxNewTokens < 1 { throw EngineError.invalidParameter("max_tokens must be at least 1") }
        if request.sampleCount < 1 || request.sampleCount > configuration.maxRunningSequences {
            throw EngineError.invalidParameter("n must be between 1 and \(configuration.maxRunningSequences)")
        }
        let blocksNeeded = (request.prompt.count + configuration.blockSize) / configuration.blockSize + request.sampleCount
        if blocksNeeded > cache.blockCount {
            throw EngineError.promptTooLong(tokens: request.prompt.count, limit: cache.blockCount * configuration.blockSize)
        }
    }

    // MARK: the engine thread

    private func loop() {
        while true {
            lock.lock()
            while submissions.isEmpty && cancelledIDs.isEmpty && running.isEmpty && waiting.isEmpty
                && preempted.isEmpty && !(stopping && !shutdownWaiters.isEmpty)
            {
                lock.wait()
            }
            waiting += submissions
            submissions = []
            let cancelled = cancelledIDs
            cancelledIDs = []
            let idle = running.isEmpty && waiting.isEmpty && preempted.isEmpty
            if stopping && idle {
                let waiters = shutdownWaiters
                shutdownWaiters = []
                threadEnded = true
                lock.unlock()
                waiters.forEach { $0.resume() }
                return
            }
            lock.unlock()
            if !cancelled.isEmpty { drop(cancelled) }
            step()
            publishMetrics()
        }
    }

    private func publishMetrics() {
        var current = totals
        current.runningSequences = running.count
        current.waitingRequests = waiting.count + preempted.count
        current.kvBlocksUsed = cache.usedBlocks
        current.kvBlocksCached = cache.cachedBlocks
        lock.withLock { snapshot = current }
    }

    /// Removes the sequences and queued requests of cancelled requests.
    private func drop(_ ids: Set<Int>) {
        for sequence in running + preempted where ids.contains(sequence.request.id) {
            finish(sequence, reason: .cancelled, stop: nil)
        }
        for request in waiting where ids.contains(request.id) {
            request.end()
            totals.requestsCancelled += 1
        }
        waiting.removeAll { ids.contains($0.id) }
    }

    private func step() {
        admit()
        let prefillStart = Date()
        var budget = configuration.prefillChunk
        for sequence in running where sequence.pendingTokens > 1 && budget > 0 {
            // An earlier prefill in this loop may have preempted it.
            guard running.contains(where: { $0 === sequence }) else { continue }
            let count = min(sequence.pendingTokens - 1, budget)
            budget -= count
            if !prefill(sequence, count: count) { break }
        }
        // A prompt's last token runs with the decode batch when its prefill is done.
        totals.prefillSeconds += Date().timeIntervalSince(prefillStart)
        decode()
    }

    /// Admits preempted sequences, then queued requests, while sequences and blocks allow.
    private func admit() {
        // Keep a block per running sequence in hand so admissions do not force preemptions.
        func affordable(_ tokens: Int, extra: Int) -> Bool {
            let need = (tokens + configuration.blockSize - 1) / configuration.blockSize + extra
            return need + running.count <= cache.availableBlocks
        }
        while let sequence = preempted.first, running.count < configuration.maxRunningSequences,
            affordable(sequence.tokens.count, extra: 1)
        {
            preempted.removeFirst()
            start(sequence)
        }
        guard preempted.isEmpty else { return }
        while let request = waiting.first,
            running.count + request.request.sampleCount <= configuration.maxRunningSequences,
            affordable(request.request.prompt.count, extra: request.request.sampleCount)
        {
            waiting.removeFirst()
            let sequence = Sequence(request: request, sample: 0, model: model, contextLength: contextLength)
            start(sequence)
        }
    }

    /// Makes a sequence running: reuses cached blocks of its prefix, leaving at least its last
    /// token to compute (its logits are needed).
    private func start(_ sequence: Sequence) {
        precondition(sequence.blocks.isEmpty && sequence.cachedCount == 0, "a sequence started twice")
        admissions += 1
        sequence.admission = admissions
        if configuration.prefixCaching {
            let reusable = (sequence.tokens.count - 1) / configuration.blockSize
            var hash: PrefixHash?
            for index in 0..<reusable {
                let next = PrefixHash.chain(hash, tokens: sequence.blockTokens(index, size: configuration.blockSize), adapter: sequence.request.request.adapter)
                guard let block = cache.lookUp(next) else { break }
                hash = next
                sequence.blocks.append(block)
            }
            sequence.cachedCount = sequence.blocks.count * configuration.blockSize
            sequence.registeredBlocks = sequence.blocks.count
            sequence.lastHash = hash
        }
        if sequence.sample == 0 && !sequence.request.started {
            sequence.request.started = true
            totals.promptTokens += sequence.promptCount
            totals.cachedPromptTokens += sequence.cachedCount
            sequence.request.onEvent(.started(promptTokens: sequence.promptCount, cachedTokens: sequence.cachedCount))
        }
        running.append(sequence)
    }

    /// Gives `sequence` blocks for `count` more tokens, preempting newer sequences if the pool is
    /// full; false when it was itself preempted.
    private func reserve(_ sequence: Sequence, count: Int) -> Bool {
        let needed = (sequence.cachedCount + count + configuration.blockSize - 1) / configuration.blockSize
        while sequence.blocks.count < needed {
            if let block = cache.allocate() {
                sequence.blocks.append(block)
                continue
            }
            guard let victim = running.max(by: { $0.admission < $1.admission }) else { return false }
            preempt(victim)
            if victim === sequence { return false }
        }
        return true
    }

    private func preempt(_ sequence: Sequence) {
        sequence.blocks.forEach(cache.release)
        sequence.blocks = []
        sequence.cachedCount = 0
        sequence.registeredBlocks = 0
        sequence.lastHash = nil
        running.removeAll { $0 === sequence }
        preempted.insert(sequence, at: 0)
    }

    /// Runs `count` of the sequence's pending tokens (not its last one); false if it was preempted.
    private func prefill(_ sequence: Sequence, count: Int) -> Bool {
        guard reserve(sequence, count: count) else { return false }
        let start = sequence.cachedCount
        let ids = Tensor(sequence.tokens[start..<(start + count)].map(Int32.init), shape: [1, count])
        let layout = TokenLayout.contiguous(batch: 1, length: count, offset: start)
        let batch = cache.batch(blockTables: [sequence.blocks], keyCounts: [start + count], newTokens: count)
        let hidden = withAdapters([sequence]) { model.network.hiddenStates(ids, layout: layout, cache: batch) }
        // The pools' writes need every layer; the final norm's output is not needed.
        eval(cache.tensors + [hidden])
        advance(sequence, by: count)
        return true
    }

    /// One decode forward over every running sequence with exactly one token to feed.
    private func decode() {
        var rows = running.filter { $0.pendingTokens == 1 }
        guard !rows.isEmpty else { return }
        // A reservation may preempt a row accepted before it, so membership is checked last.
        for sequence in rows where running.contains(where: { $0 === sequence }) { _ = reserve(sequence, count: 1) }
        rows = rows.filter { sequence in running.contains { $0 === sequence } }
        guard !rows.isEmpty else { return }
        let start = Date()
        let ids = Tensor(rows.map { Int32($0.tokens[$0.cachedCount]) }, shape: [rows.count, 1])
        let positions = rows.map(\.cachedCount)
        let layout = TokenLayout(
            positions: Tensor(positions.map(Int32.init), shape: [rows.count, 1]),
            sharedOffset: Set(positions).count == 1 ? positions[0] : nil)
        let batch = cache.batch(blockTables: rows.map(\.blocks), keyCounts: positions.map { $0 + 1 }, newTokens: 1)
        let logits = withAdapters(rows) {
            model.network(ids, layout: layout, cache: batch).reshaped(rows.count, -1).asType(.float32)
        }
        eval([logits] + cache.tensors)
        rows.forEach { advance($0, by: 1) }
        totals.decodeSteps += 1
        sample(rows, logits: logits)
        totals.decodeSeconds += Date().timeIntervalSince(start)
    }

    /// Runs `body` with each row's adapter selected (rows without one use the base).
    private func withAdapters<T>(_ rows: [Sequence], _ body: () -> T) -> T {
        let names = rows.map { $0.request.request.adapter }
        guard names.contains(where: { $0 != nil }) else { return body() }
        return AdapterRouting.$current.withValue(AdapterRouting.Rows(names)) { body() }
    }

    /// Marks `count` more tokens as cached and offers newly filled blocks to the prefix cache.
    private func advance(_ sequence: Sequence, by count: Int) {
        sequence.cachedCount += count
        guard configuration.prefixCaching else { return }
        let size = configuration.blockSize
        while sequence.registeredBlocks < sequence.cachedCount / size {
            let index = sequence.registeredBlocks
            let hash = PrefixHash.chain(sequence.lastHash, tokens: sequence.blockTokens(index, size: size), adapter: sequence.request.request.adapter)
            cache.register(sequence.blocks[index], hash: hash)
            sequence.lastHash = hash
            sequence.registeredBlocks += 1
        }
    }

    /// Samples each row's next token (forking a request's other samples off its first one when its
    /// prompt is done), emits the events and retires finished sequences.
    private func sample(_ rows: [Sequence], logits: Tensor) {
        var samplers = rows.map(\.sampler)
        let forks = rows.filter { $0.sample == 0 && $0.request.request.sampleCount > 1 && !$0.request.forked }
        var hostRows: [Float] = []
        if !forks.isEmpty { hostRows = logits.toArray(Float.self) }
        let tokens = RequestSampler.sample(logits: logits, requests: &samplers)
        let vocabulary = logits.dim(1)
        for (index, sequence) in rows.enumerated() {
            sequence.sampler = samplers[index]
            if forks.contains(where: { $0 === sequence }) {
                sequence.request.forked = true
                let row = Array(hostRows[(index * vocabulary)..<((index + 1) * vocabulary)])
                for sample in 1..<sequence.request.request.sampleCount {
                    let sibling = fork(sequence, sample: sample)
                    emit(sibling, sibling.sampler.sample(logits: row))
                }
            }
            emit(sequence, tokens[index])
        }
    }

    /// A new sample of `parent`'s request sharing its prompt blocks (the partly filled last block is
    /// copied, since both will write into it).
    private func fork(_ parent: Sequence, sample: Int) -> Sequence {
        let sibling = Sequence(request: parent.request, sample: sample, model: model, contextLength: contextLength)
        sibling.cachedCount = parent.cachedCount
        sibling.registeredBlocks = parent.registeredBlocks
        sibling.lastHash = parent.lastHash
        let size = configuration.blockSize
        let partial = parent.cachedCount % size
        let shared = partial == 0 ? parent.blocks : Array(parent.blocks.dropLast())
        shared.forEach(cache.retain)
        sibling.blocks = shared
        if partial > 0 {
            // Admission kept a block per sample in hand, so this does not fail.
            let block = cache.allocate()!
            cache.copy(block: parent.blocks.last!, to: block, tokens: partial)
            sibling.blocks.append(block)
        }
        admissions += 1
        sibling.admission = admissions
        running.append(sibling)
        return sibling
    }

    private func emit(_ sequence: Sequence, _ sampled: SampledToken) {
        let request = sequence.request
        sequence.tokens.append(sampled.token)
        totals.generatedTokens += 1
        let token = sampled.token
        let isStopToken = request.request.stopTokenIDs.contains(token)
            || (request.request.stopAtEndOfSequence && model.eosTokenIDs.contains(token))
        let text = isStopToken ? StopStringMatcher.Output(text: "") : sequence.stops.feed(sequence.detokenizer.append(token))
        request.onEvent(.token(GeneratedToken(
            sample: sequence.sample, token: token, text: text.text, logProb: sampled.logProb,
            rawLogProb: sampled.rawLogProb, alternatives: sampled.alternatives)))
        if isStopToken {
            finish(sequence, reason: .stop, stop: nil)
        } else if let stop = text.stop {
            finish(sequence, reason: .stop, stop: stop)
        } else if sequence.generatedCount >= request.request.maxNewTokens || sequence.tokens.count >= contextLength {
            finish(sequence, reason: .length, stop: nil)
        }
    }

    private func finish(_ sequence: Sequence, reason: EngineFinishReason, stop: String?) {
        sequence.blocks.forEach(cache.release)
        sequence.blocks = []
        running.removeAll { $0 === sequence }
        preempted.removeAll { $0 === sequence }
        let request = sequence.request
        var rest = ""
        if reason != .cancelled && stop == nil {
            rest = sequence.stops.feed(sequence.detokenizer.finish()).text + sequence.stops.finish().text
        }
        request.onEvent(.finished(FinishedSample(
            sample: sequence.sample, reason: reason, text: rest,
            tokens: Array(sequence.tokens[sequence.promptCount...]), stop: stop)))
        request.liveSamples -= 1
        // Samples fork off the first one before it can finish, so no sample count is missed here.
        if request.liveSamples == 0 {
            if reason == .cancelled { totals.requestsCancelled += 1 } else { totals.requestsFinished += 1 }
            request.end()
        }
    }
}

/// One request's shared state: its callbacks and how many of its samples have ended.
final class RequestState {
    let id: Int
    let request: EngineRequest
    let onEvent: (EngineEvent) -> Void
    private let onEnd: () -> Void
    var started = false
    var forked = false
    /// Samples admitted and not finished (preempted ones included).
    var liveSamples = 0
    private var ended = false

    init(id: Int, request: EngineRequest, onEvent: @escaping (EngineEvent) -> Void, onEnd: @escaping () -> Void) {
        self.id = id
        self.request = request
        self.onEvent = onEvent
        self.onEnd = onEnd
    }

    func end() {
        guard !ended else { return }
        ended = true
        onEnd()
    }
}

/// One sample being generated: its tokens, how many are in the cache, its blocks and its sampler.
final class Sequence {
    let request: RequestState
    let sample: Int
    let promptCount: Int
    var tokens: [Int]
    /// Tokens whose keys and values are in the cache; the rest are fed by the next forward passes.
    var cachedCount = 0
    var blocks: [Int] = []
    var sampler: RequestSampler
    var detokenizer: StreamingDetokenizer
    var stops: StopStringMatcher
    /// Full blocks already offered to the prefix cache, and the hash of the last one.
    var registeredBlocks = 0
    var lastHash: PrefixHash?
    /// Admission order: the newest is preempted first.
    var admission = 0

    init(request: RequestState, sample: Int, model: LanguageModel, contextLength: Int) {
        self.request = request
        self.sample = sample
        request.liveSamples += 1
        tokens = request.request.prompt
        promptCount = tokens.count
        sampler = RequestSampler(
            parameters: request.request.sampling, seed: request.request.seed &+ UInt64(sample), prompt: tokens)
        detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer, skipSpecialTokens: true)
        stops = StopStringMatcher(stops: request.request.stopStrings)
    }

    var pendingTokens: Int { tokens.count - cachedCount }
    var generatedCount: Int { tokens.count - promptCount }

    func blockTokens(_ index: Int, size: Int) -> ArraySlice<Int> { tokens[(index * size)..<((index + 1) * size)] }
}

/// A value shared between threads under a lock (what `generate`'s callbacks, which run on the
/// engine thread, gather for the caller).
public final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { stored = value }

    public var value: Value { lock.withLock { stored } }
    public func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

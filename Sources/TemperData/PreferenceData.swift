import Foundation
import TemperTokenizers

/// Field names of preference records (TRL's `prompt`/`chosen`/`rejected` by default); the first
/// present name of each list is used.
public struct PreferenceColumns: Codable, Sendable, Equatable {
    public var prompt = ["prompt"]
    public var chosen = ["chosen"]
    public var rejected = ["rejected"]
    /// Roles and content keys inside message lists.
    public var messages = ColumnMapping()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case prompt, chosen, rejected
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func names(_ key: CodingKeys, _ fallback: [String]) throws -> [String] {
            if let single = try? c.decode(String.self, forKey: key) { return [single] }
            return try c.decodeIfPresent([String].self, forKey: key) ?? fallback
        }
        prompt = try names(.prompt, prompt)
        chosen = try names(.chosen, chosen)
        rejected = try names(.rejected, rejected)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(chosen, forKey: .chosen)
        try c.encode(rejected, forKey: .rejected)
    }
}

/// A prompt or a completion: plain text (TRL's standard format) or messages (conversational).
public enum PreferenceText: Sendable, Hashable {
    case text(String)
    case messages([ChatMessage])

    var isEmpty: Bool {
        switch self {
        case .text(let text): text.allSatisfy(\.isWhitespace)
        case .messages(let messages): messages.isEmpty || messages.allSatisfy { $0.content.allSatisfy(\.isWhitespace) }
        }
    }
}

/// One validated preference pair: the chosen completion is preferred to the rejected one.
public struct PreferenceExample: Sendable, Hashable {
    public var prompt: PreferenceText
    public var chosen: PreferenceText
    public var rejected: PreferenceText
    public var source: SourceLocation

    public init(prompt: PreferenceText, chosen: PreferenceText, rejected: PreferenceText, source: SourceLocation) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.source = source
    }
}

/// Reads TRL's preference formats: explicit `prompt` + `chosen` + `rejected` as strings
/// (standard) or message lists (conversational: the prompt's turns, then the assistant turns of
/// each completion), and the implicit-prompt form where `chosen` and `rejected` are whole
/// conversations (or texts) sharing a prefix, which becomes the prompt as TRL's
/// `extract_prompt` takes it.
public enum PreferenceReader {
    public static func read(_ url: URL, columns: PreferenceColumns = PreferenceColumns()) throws -> (
        examples: [PreferenceExample], issues: [DataIssue]
    ) {
        parse(try JSONRecords.contents(of: url), path: url.path, columns: columns)
    }

    public static func parse(_ bytes: [UInt8], path: String, columns: PreferenceColumns = PreferenceColumns()) -> (
        examples: [PreferenceExample], issues: [DataIssue]
    ) {
        let (examples, issues) = JSONRecords.objects(bytes, path: path) { example($0, columns: columns, source: $1) }
        return (examples, issues)
    }

    /// One record as a validated pair.
    public static func example(
        _ object: JinjaObject, columns: PreferenceColumns = PreferenceColumns(), source: SourceLocation
    ) -> Result<PreferenceExample, DataIssue.Reason> {
        do throws(DataIssue.Reason) {
            let chosen = try field(object, columns.chosen, columns: columns, required: true)!
            let rejected = try field(object, columns.rejected, columns: columns, required: true)!
            var prompt = try field(object, columns.prompt, columns: columns, required: false)
            var (chosenPart, rejectedPart) = (chosen, rejected)
            if prompt == nil {
                (prompt, chosenPart, rejectedPart) = try extractPrompt(chosen: chosen, rejected: rejected, columns: columns)
            }
            guard let prompt else { throw .missingField(names: columns.prompt) }
            switch (prompt, chosenPart, rejectedPart) {
            case (.text, .text, .text), (.messages, .messages, .messages): break
            default:
                throw .wrongType(
                    field: columns.chosen[0], expected: "the same kind as the prompt (all strings or all message lists)",
                    found: "a mix")
            }
            if prompt.isEmpty { throw .emptyField(columns.prompt[0]) }
            if chosenPart.isEmpty { throw .emptyField(columns.chosen[0] + " completion") }
            if rejectedPart.isEmpty { throw .emptyField(columns.rejected[0] + " completion") }
            if chosenPart == rejectedPart { throw .identicalPair }
            if case .messages(let turns) = chosenPart, turns.contains(where: { $0.role != "assistant" }) {
                throw .roleOrder("the chosen completion must hold assistant turns only")
            }
            if case .messages(let turns) = rejectedPart, turns.contains(where: { $0.role != "assistant" }) {
                throw .roleOrder("the rejected completion must hold assistant turns only")
            }
            if case .messages(let turns) = prompt, turns.last?.role == "assistant" {
                throw .roleOrder("the prompt ends with an assistant turn")
            }
            return .success(PreferenceExample(prompt: prompt, chosen: chosenPart, rejected: rejectedPart, source: source))
        } catch {
            return .failure(error)
        }
    }

    /// The shared prefix of two conversations (whole messages) or texts becomes the prompt, as
    /// TRL's `extract_prompt`: for texts, up to the first differing character, backed off to the
    /// start of a trailing space.
    static func extractPrompt(chosen: PreferenceText, rejected: PreferenceText, columns: PreferenceColumns)
        throws(DataIssue.Reason) -> (PreferenceText, PreferenceText, PreferenceText)
    {
        switch (chosen, rejected) {
        case (.messages(let a), .messages(let b)):
            var shared = 0
            while shared < min(a.count, b.count), a[shared] == b[shared] { shared += 1 }
            guard shared > 0 else { throw .missingField(names: columns.prompt) }
            return (.messages(Array(a[..<shared])), .messages(Array(a[shared...])), .messages(Array(b[shared...])))
        case (.text(let a), .text(let b)):
            let x = Array(a), y = Array(b)
            var index = 0
            while index < min(x.count, y.count), x[index] == y[index] { index += 1 }
            if index < min(x.count, y.count), index > 0, x[index - 1] == " " { index -= 1 }
            guard index > 0 else { throw .missingField(names: columns.prompt) }
            return (.text(String(x[..<index])), .text(String(x[index...])), .text(String(y[index...])))
        default:
            throw .wrongType(field: columns.rejected[0], expected: "the same kind as chosen", found: "a mix")
        }
    }

    static func field(_ object: JinjaObject, _ keys: [String], columns: PreferenceColumns, required: Bool)
        throws(DataIssue.Reason) -> PreferenceText?
    {
        for key in keys {
            switch object[key] {
            case nil, .none?, .undefined?: continue
            case .string(let text)?: return .text(text)
            case .array(let items)?:
                // A message list, or (TRL's conversational completions) a list of one message.
                return .messages(try DatasetReader.messages(in: .array(items), key: key, columns: columns.messages))
            case let other?:
                throw .wrongType(field: key, expected: "a string or a list of messages", found: DatasetReader.typeName(other))
            }
        }
        if required { throw .missingField(names: keys) }
        return nil
    }
}

/// Which end of an over-long sequence is kept (TRL's `truncation_mode`).
public enum TruncationMode: String, Codable, Sendable, CaseIterable {
    case keepStart = "keep_start"
    case keepEnd = "keep_end"
}

/// A pair as token ids: the prompt once, and each completion to follow it.
public struct TokenizedPair: Codable, Sendable, Equatable {
    public var prompt: [Int]
    public var chosen: [Int]
    public var rejected: [Int]
    public var source: SourceLocation

    public init(prompt: [Int], chosen: [Int], rejected: [Int], source: SourceLocation) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.source = source
    }

    /// The longer of prompt + chosen and prompt + rejected.
    public var longestRow: Int { prompt.count + max(chosen.count, rejected.count) }
}

/// Tokenizes pairs as TRL 1.16's DPO trainer does. A conversational prompt is rendered by the chat
/// template with the generation prompt and each completion as the template's rendering of prompt +
/// completion; a standard (text) completion gets the EOS text appended unless it ends with it, and
/// text is tokenized with the tokenizer's special tokens. The completion starts where the tokenized
/// prompt and the tokenized prompt + completion diverge (templates and merges across the boundary
/// can make them differ). Temper's additions: `maxPromptLength` keeps the prompt's end,
/// `maxCompletionLength` each completion's start. `maxLength` applies to each prompt + completion row
/// when batched (``PreferenceBatcher``), keeping its start or end as `truncationMode` says; with
/// `keepStart` a prompt that fills it leaves nothing to compare and is an issue (TRL drops it silently).
public struct PreferenceEncoder {
    public var tokenizer: Tokenizer
    public var chatTemplate: ChatTemplate?
    public var maxPromptLength: Int?
    public var maxCompletionLength: Int?
    public var maxLength: Int?
    public var truncationMode: TruncationMode

    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate?, maxPromptLength: Int? = nil, maxCompletionLength: Int? = nil,
        maxLength: Int? = nil, truncationMode: TruncationMode = .keepStart
    ) {
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.maxPromptLength = maxPromptLength
        self.maxCompletionLength = maxCompletionLength
        self.maxLength = maxLength
        self.truncationMode = truncationMode
    }

    public func encode(_ example: PreferenceExample) -> Result<TokenizedPair, DataIssue.Reason> {
        do throws(DataIssue.Reason) {
            let (promptIDs, withChosen, withRejected) = try tokenize(example)
            func sharedPrefix(_ a: [Int], _ b: [Int]) -> Int {
                var n = 0
                while n < min(a.count, b.count), a[n] == b[n] { n += 1 }
                return n
            }
            let promptLength = min(sharedPrefix(promptIDs, withChosen), sharedPrefix(promptIDs, withRejected))
            var prompt = Array(promptIDs[..<promptLength])
            var chosen = Array(withChosen[promptLength...])
            var rejected = Array(withRejected[promptLength...])
            if let maxPromptLength, prompt.count > maxPromptLength { prompt = Array(prompt.suffix(maxPromptLength)) }
            if let maxCompletionLength {
                chosen = Array(chosen.prefix(maxCompletionLength))
                rejected = Array(rejected.prefix(maxCompletionLength))
            }
            if chosen.isEmpty || rejected.isEmpty { throw .emptyField(chosen.isEmpty ? "chosen completion" : "rejected completion") }
            if let maxLength, truncationMode == .keepStart, prompt.count >= maxLength {
                throw .noTrainedTokenWithinLimit(promptTokens: prompt.count, maxLength: maxLength)
            }
            if chosen == rejected { throw .identicalPair }
            return .success(TokenizedPair(prompt: prompt, chosen: chosen, rejected: rejected, source: example.source))
        } catch {
            return .failure(error)
        }
    }

    /// Token ids of the prompt, prompt + chosen and prompt + rejected.
    func tokenize(_ example: PreferenceExample) throws(DataIssue.Reason) -> ([Int], [Int], [Int]) {
        switch (example.prompt, example.chosen, example.rejected) {
        case (.text(let p), .text(let c), .text(let r)):
            let eos = tokenizer.eosToken ?? ""
            func ended(_ text: String) -> String { text.hasSuffix(eos) ? text : text + eos }
            return (
                tokenizer.encode(p, addSpecialTokens: true), tokenizer.encode(p + ended(c), addSpecialTokens: true),
                tokenizer.encode(p + ended(r), addSpecialTokens: true))
        case (.messages(let p), .messages(let c), .messages(let r)):
            guard let chatTemplate else { throw .template("the model has no chat template for conversational pairs") }
            func ids(_ messages: [ChatMessage], _ generationPrompt: Bool) throws(DataIssue.Reason) -> [Int] {
                tokenizer.encode(try render(chatTemplate, messages, generationPrompt: generationPrompt), addSpecialTokens: false)
            }
            return (try ids(p, true), try ids(p + c, false), try ids(p + r, false))
        default:
            throw .wrongType(field: "chosen", expected: "the same kind as the prompt", found: "a mix")
        }
    }

    func render(_ template: ChatTemplate, _ messages: [ChatMessage], generationPrompt: Bool) throws(DataIssue.Reason) -> String {
        do {
            let values = try messages.map { try JinjaValue.parseJSON(JSONEncoder().encode($0)) }
            return try template.render(
                messages: values, addGenerationPrompt: generationPrompt, bosToken: tokenizer.bosToken,
                eosToken: tokenizer.eosToken)
        } catch {
            throw .template("\(error)")
        }
    }
}

/// Preference pairs read, validated and tokenized, with the train/eval split.
public struct PreferenceDataset: Sendable {
    public var train: [TokenizedPair]
    public var eval: [TokenizedPair]
    /// Records left out under `.skip`, with their reasons.
    public var skipped: [DataIssue]

    /// Reads `trainFiles` (and `evalFiles`, or holds out `evalFraction` of the train pairs by `seed`).
    /// Under `.abort` any bad record throws ``DataError/invalidRecords(_:)`` naming each file:line.
    public static func prepare(
        trainFiles: [URL], evalFiles: [URL] = [], encoder: PreferenceEncoder, columns: PreferenceColumns = PreferenceColumns(),
        invalidRecordPolicy: InvalidRecordPolicy = .abort, evalFraction: Double = 0, seed: UInt64 = 0
    ) throws -> PreferenceDataset {
        var issues: [DataIssue] = []
        func load(_ files: [URL]) throws -> [TokenizedPair] {
            var pairs: [TokenizedPair] = []
            for file in files {
                let (examples, fileIssues) = try PreferenceReader.read(file, columns: columns)
                issues += fileIssues
                for example in examples {
                    switch encoder.encode(example) {
                    case .success(let pair): pairs.append(pair)
                    case .failure(let reason): issues.append(DataIssue(example.source, reason))
                    }
                }
            }
            return pairs
        }
        var train = try load(trainFiles)
        var eval = try load(evalFiles)
        if !issues.isEmpty && invalidRecordPolicy == .abort { throw DataError.invalidRecords(issues) }
        guard !train.isEmpty else { throw DataError.noSamples(paths: trainFiles.map(\.path)) }
        if evalFiles.isEmpty, evalFraction > 0 {
            (train, eval) = try Shuffling.split(train, evalFraction: evalFraction, seed: seed)
        }
        return PreferenceDataset(train: train, eval: eval, skipped: issues)
    }
}

/// Batches of preference pairs, shuffled per epoch from a seed and resumable from a cursor (as
/// ``DataLoader``). A batch of P pairs is 2P rows, the P prompt + chosen rows first, then the P
/// prompt + rejected rows (TRL's layout, so chosen and rejected of a pair run in one forward), each
/// cut to `maxLength` (keeping its start or end), labelled on completion tokens only and
/// right-padded to the longest row.
public struct PreferenceLoader: Sendable {
    public let pairs: [TokenizedPair]
    public let batchSize: Int
    public let maxLength: Int?
    public let truncationMode: TruncationMode
    public let shuffle: Bool
    public let seed: UInt64
    public let padTokenID: Int
    public let epochs: Int?
    public private(set) var cursor: DataCursor

    public init(
        pairs: [TokenizedPair], batchSize: Int, maxLength: Int?, truncationMode: TruncationMode = .keepStart,
        shuffle: Bool = true, seed: UInt64 = 0, padTokenID: Int, epochs: Int? = nil, cursor: DataCursor = DataCursor()
    ) throws {
        guard batchSize > 0 else { throw DataError.invalidOption("batchSize must be positive, got \(batchSize)") }
        self.pairs = pairs
        self.batchSize = batchSize
        self.maxLength = maxLength
        self.truncationMode = truncationMode
        self.shuffle = shuffle
        self.seed = seed
        self.padTokenID = padTokenID
        self.epochs = epochs
        self.cursor = cursor
    }

    public var batchesPerEpoch: Int { (pairs.count + batchSize - 1) / batchSize }

    func order(epoch: Int) -> [Int] {
        shuffle ? Shuffling.permutation(count: pairs.count, seed: Shuffling.epochSeed(seed, epoch: epoch)) : Array(pairs.indices)
    }

    /// The next batch's pair indices, or nil after `epochs` epochs.
    public mutating func nextIndices() -> [Int]? {
        guard !pairs.isEmpty else { return nil }
        if let epochs, cursor.epoch >= epochs { return nil }
        let order = order(epoch: cursor.epoch)
        let taken = Array(order[cursor.index..<min(cursor.index + batchSize, order.count)])
        cursor.index += taken.count
        if cursor.index >= order.count { cursor = DataCursor(epoch: cursor.epoch + 1, index: 0) }
        return taken
    }

    public mutating func next() -> Batch? { nextIndices().map(makeBatch) }

    /// One row: prompt + completion, cut to `maxLength`; labels are the completion's tokens.
    func row(_ prompt: [Int], _ completion: [Int]) -> (ids: [Int32], labels: [Int32]) {
        var ids = (prompt + completion).map(Int32.init)
        var labels = [Int32](repeating: Int32(ignoredLabel), count: prompt.count) + completion.map(Int32.init)
        if let maxLength, ids.count > maxLength {
            switch truncationMode {
            case .keepStart:
                ids = Array(ids.prefix(maxLength))
                labels = Array(labels.prefix(maxLength))
            case .keepEnd:
                ids = Array(ids.suffix(maxLength))
                labels = Array(labels.suffix(maxLength))
            }
        }
        return (ids, labels)
    }

    public func makeBatch(_ indices: [Int]) -> Batch {
        let rows = indices.map { row(pairs[$0].prompt, pairs[$0].chosen) } + indices.map { row(pairs[$0].prompt, pairs[$0].rejected) }
        let length = rows.map(\.ids.count).max() ?? 0
        var batch = Batch(
            ids: [], labels: [], positions: [], segments: [], trainedTokenCount: 0, tokenCount: 0,
            sampleIndices: (indices + indices).map { [$0] })
        for (ids, labels) in rows {
            let padding = length - ids.count
            batch.ids.append(ids + [Int32](repeating: Int32(padTokenID), count: padding))
            batch.labels.append(labels + [Int32](repeating: Int32(ignoredLabel), count: padding))
            batch.positions.append((0..<Int32(ids.count)).map { $0 } + [Int32](repeating: 0, count: padding))
            batch.segments.append([Int32](repeating: 0, count: ids.count) + [Int32](repeating: -1, count: padding))
            batch.trainedTokenCount += labels.reduce(0) { $0 + ($1 == Int32(ignoredLabel) ? 0 : 1) }
            batch.tokenCount += ids.count
        }
        return batch
    }
}

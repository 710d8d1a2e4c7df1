import Foundation
import TemperTokenizers

/// What to do with records that fail validation.
public enum InvalidRecordPolicy: String, Codable, Sendable, CaseIterable {
    /// Throw `DataError.invalidRecords` listing all of them, before training starts.
    case abort
    /// Leave them out and count them in the report.
    case skip
}

/// Options of the SFT data pipeline (part of a recipe's config).
public struct DataConfig: Codable, Sendable, Equatable {
    /// Forces the record layout of every file; nil detects it per file.
    public var format: DatasetFormat?
    public var columns: ColumnMapping
    public var maxLength: Int
    public var lengthPolicy: LengthPolicy
    public var invalidRecordPolicy: InvalidRecordPolicy
    public var trainOnPrompt: Bool
    /// Share of the training samples held out for evaluation when no eval files are given.
    public var evalFraction: Double
    /// Seed of the eval split (the loader has its own).
    public var seed: UInt64

    public init(
        format: DatasetFormat? = nil, columns: ColumnMapping = ColumnMapping(), maxLength: Int = 2048,
        lengthPolicy: LengthPolicy = .truncate, invalidRecordPolicy: InvalidRecordPolicy = .abort,
        trainOnPrompt: Bool = false, evalFraction: Double = 0, seed: UInt64 = 0
    ) {
        self.format = format
        self.columns = columns
        self.maxLength = maxLength
        self.lengthPolicy = lengthPolicy
        self.invalidRecordPolicy = invalidRecordPolicy
        self.trainOnPrompt = trainOnPrompt
        self.evalFraction = evalFraction
        self.seed = seed
    }

    /// Keys missing from the JSON keep their defaults; out-of-range values throw
    /// `DecodingError.dataCorrupted` naming the key.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = DataConfig()
        format = try container.decodeIfPresent(DatasetFormat.self, forKey: .format)
        columns = try container.decodeIfPresent(ColumnMapping.self, forKey: .columns) ?? defaults.columns
        maxLength = try container.decodeIfPresent(Int.self, forKey: .maxLength) ?? defaults.maxLength
        lengthPolicy = try container.decodeIfPresent(LengthPolicy.self, forKey: .lengthPolicy) ?? defaults.lengthPolicy
        invalidRecordPolicy =
            try container.decodeIfPresent(InvalidRecordPolicy.self, forKey: .invalidRecordPolicy)
            ?? defaults.invalidRecordPolicy
        trainOnPrompt = try container.decodeIfPresent(Bool.self, forKey: .trainOnPrompt) ?? defaults.trainOnPrompt
        evalFraction = try container.decodeIfPresent(Double.self, forKey: .evalFraction) ?? defaults.evalFraction
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed
        guard maxLength > 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .maxLength, in: container, debugDescription: "maxLength must be positive, got \(maxLength)")
        }
        guard evalFraction >= 0, evalFraction < 1 else {
            throw DecodingError.dataCorruptedError(
                forKey: .evalFraction, in: container, debugDescription: "evalFraction must be in [0, 1), got \(evalFraction)")
        }
    }
}

/// Token counts over a set of samples.
public struct TokenStatistics: Codable, Sendable, Equatable {
    public var samples = 0
    public var tokens = 0
    public var trainedTokens = 0
    public var minLength = 0
    public var maxLength = 0

    public init() {}

    public init(_ samples: [TokenizedSample]) {
        self.samples = samples.count
        tokens = samples.reduce(0) { $0 + $1.count }
        trainedTokens = samples.reduce(0) { $0 + $1.trainedTokenCount }
        minLength = samples.map(\.count).min() ?? 0
        maxLength = samples.map(\.count).max() ?? 0
    }

    public var meanLength: Double { samples == 0 ? 0 : Double(tokens) / Double(samples) }
}

/// What preparing the data found and did.
public struct DatasetReport: Codable, Sendable, Equatable {
    public struct FileSummary: Codable, Sendable, Equatable {
        public var path: String
        public var format: DatasetFormat?
        public var records: Int
        public var invalid: Int
    }

    public var files: [FileSummary] = []
    /// Valid records by format (`chat`, `instruction`, `text`).
    public var recordsByFormat: [String: Int] = [:]
    /// Records left out, by reason kind (`DataIssue.Reason.kind`), plus "too long (dropped)".
    public var skipped: [String: Int] = [:]
    /// Every invalid record that was skipped.
    public var issues: [DataIssue] = []
    public var droppedTooLong = 0
    public var truncated = 0
    public var train = TokenStatistics()
    public var eval = TokenStatistics()

    public init() {}

    /// A few lines for logs and the CLI.
    public var summary: String {
        var lines = files.map { "\($0.path): \($0.records) records (\($0.format?.rawValue ?? "empty")), \($0.invalid) invalid" }
        lines.append(
            "train: \(train.samples) samples, \(train.tokens) tokens (\(train.trainedTokens) trained), "
                + "length \(train.minLength)…\(train.maxLength), mean \(String(format: "%.1f", train.meanLength))")
        if eval.samples > 0 { lines.append("eval: \(eval.samples) samples, \(eval.tokens) tokens") }
        if truncated > 0 { lines.append("truncated: \(truncated)") }
        for (reason, count) in skipped.sorted(by: { $0.key < $1.key }) { lines.append("skipped (\(reason)): \(count)") }
        return lines.joined(separator: "\n")
    }
}

/// Tokenized train and eval samples, ready for a `DataLoader`.
public struct PreparedDataset: Sendable {
    public var train: [TokenizedSample]
    public var eval: [TokenizedSample]
    public var report: DatasetReport

    /// Reads, validates and tokenizes the files. All files are validated before anything is
    /// thrown, so one run reports every bad record.
    /// - Parameters:
    ///   - trainFiles: JSON or JSONL files, concatenated in order.
    ///   - evalFiles: separate eval files; when empty, `config.evalFraction` of the training samples
    ///     are held out (chosen by `config.seed`).
    ///   - chatTemplate: the model's template; needed for chat data, optional for instruction data
    ///     (without it the Alpaca prompt format is used), unused for text.
    /// - Throws: `DataError` (invalid records under `.abort`, unreadable files, unknown format,
    ///   missing chat template, no samples, bad options).
    public static func prepare(
        trainFiles: [URL], evalFiles: [URL] = [], config: DataConfig, tokenizer: Tokenizer,
        chatTemplate: ChatTemplate?
    ) throws -> PreparedDataset {
        guard config.maxLength > 0 else {
            throw DataError.invalidOption("maxLength must be positive, got \(config.maxLength)")
        }
        guard config.evalFraction >= 0, config.evalFraction < 1 else {
            throw DataError.invalidOption("evalFraction must be in [0, 1), got \(config.evalFraction)")
        }
        let encoder = SampleEncoder(
            tokenizer: tokenizer, chatTemplate: chatTemplate, maxLength: config.maxLength,
            lengthPolicy: config.lengthPolicy, trainOnPrompt: config.trainOnPrompt)
        var report = DatasetReport()
        var issues: [DataIssue] = []
        func load(_ files: [URL]) throws -> [TokenizedSample] {
            var samples: [TokenizedSample] = []
            for url in files {
                let file = try DatasetReader.read(url, format: config.format, columns: config.columns)
                if file.format == .chat && chatTemplate == nil { throw DataError.missingChatTemplate(path: file.path) }
                var invalid = file.issues.count
                issues += file.issues
                for example in file.examples {
                    switch encoder.encode(example) {
                    case .sample(let sample, let truncated):
                        samples.append(sample)
                        report.recordsByFormat[example.format.rawValue, default: 0] += 1
                        if truncated { report.truncated += 1 }
                    case .dropped:
                        report.droppedTooLong += 1
                        report.skipped["too long (dropped)", default: 0] += 1
                    case .invalid(let issue):
                        issues.append(issue)
                        invalid += 1
                    }
                }
                report.files.append(
                    .init(path: file.path, format: file.format, records: file.recordCount, invalid: invalid))
            }
            return samples
        }
        var train = try load(trainFiles)
        var eval = try load(evalFiles)
        if !issues.isEmpty {
            if config.invalidRecordPolicy == .abort { throw DataError.invalidRecords(issues) }
            report.issues = issues
            for issue in issues { report.skipped[issue.reason.kind, default: 0] += 1 }
        }
        guard !train.isEmpty else { throw DataError.noSamples(paths: trainFiles.map(\.path)) }
        if evalFiles.isEmpty, config.evalFraction > 0 {
            (train, eval) = try Shuffling.split(train, evalFraction: config.evalFraction, seed: config.seed)
        }
        report.train = TokenStatistics(train)
        report.eval = TokenStatistics(eval)
        return PreparedDataset(train: train, eval: eval, report: report)
    }
}

extension DataLoader {
    /// The id to pad rows with: the tokenizer's pad token, else EOS, else 0. Padding is never
    /// trained (-100) and never attended (segment -1), so the value only has to be a valid id.
    public static func padTokenID(for tokenizer: Tokenizer) -> Int {
        tokenizer.padTokenID ?? tokenizer.eosTokenID ?? 0
    }
}

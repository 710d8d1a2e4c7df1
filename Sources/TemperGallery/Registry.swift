import Foundation
import GRDB

/// The gallery's registry: base models, datasets, jobs, outputs, tokens and the lineage edges between
/// them, in SQLite (WAL) through GRDB, with versioned migrations. Every write is one transaction, so a
/// crash leaves each row either written whole or not at all.
public final class Registry: Sendable {
    let database: DatabasePool

    /// Opens (creating if needed) the registry at `path` and brings its schema up to date.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "model") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("path", .text).notNull()
                t.column("architecture", .text).notNull()
                t.column("parameters", .integer).notNull()
                t.column("contextLength", .integer).notNull()
                t.column("license", .text)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "dataset") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("format", .text).notNull()
                t.column("rows", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("bytes", .integer).notNull()
                t.column("path", .text).notNull()
                t.column("statistics", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "job") { t in
                t.primaryKey("id", .text)
                t.column("method", .text).notNull()
                t.column("modelID", .text).notNull().references("model")
                t.column("datasetID", .text).notNull().references("dataset")
                t.column("parentOutputID", .text)
                t.column("recipe", .text).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("createdAt", .datetime).notNull()
                t.column("startedAt", .datetime)
                t.column("finishedAt", .datetime)
                t.column("exitReason", .text)
                t.column("pid", .integer)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("cancelRequested", .boolean).notNull().defaults(to: false)
            }
            try db.create(table: "output") { t in
                t.primaryKey("id", .text)
                t.column("jobID", .text).notNull().references("job")
                t.column("kind", .text).notNull()
                t.column("path", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("bytes", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            // The files of a model or an output, each a blob of the artifact store.
            try db.create(table: "artifactFile") { t in
                t.column("ownerID", .text).notNull().indexed()
                t.column("name", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("bytes", .integer).notNull()
                t.primaryKey(["ownerID", "name"])
            }
            try db.create(table: "lineage") { t in
                t.column("fromID", .text).notNull().indexed()
                t.column("toID", .text).notNull().indexed()
                t.column("relation", .text).notNull()
                t.primaryKey(["fromID", "toID"])
            }
            try db.create(table: "token") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("sha256", .text).notNull().unique()
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2-deployments") { db in
            try db.create(table: "deployment") { t in
                t.primaryKey("id", .text)
                t.column("modelID", .text).notNull().references("model")
                t.column("outputIDs", .text).notNull()
                t.column("url", .text)
                t.column("state", .text).notNull().indexed()
                t.column("createdAt", .datetime).notNull()
                t.column("pid", .integer)
                t.column("port", .integer)
                t.column("exitReason", .text)
            }
        }
        return migrator
    }

    // MARK: Writes and reads

    public func insert(_ model: ModelRecord, files: [ArtifactFile]) throws {
        try database.write { db in
            try model.insert(db)
            for file in files { try file.insert(db) }
        }
    }

    public func insert(_ dataset: DatasetRecord) throws {
        try database.write { db in try dataset.insert(db) }
    }

    /// Queues a job and records where it comes from (its model, dataset and, for a follow-up job, the
    /// output it starts from).
    public func insert(_ job: JobRecord) throws {
        try database.write { db in
            try job.insert(db)
            try LineageEdge(fromID: job.modelID, toID: job.id, relation: "base_model").insert(db)
            try LineageEdge(fromID: job.datasetID, toID: job.id, relation: "dataset").insert(db)
            if let parent = job.parentOutputID {
                let relation = switch job.method {
                case .eval: "evaluated_by"
                case .compress: "compressed_by"
                default: "starts_from"
                }
                try LineageEdge(fromID: parent, toID: job.id, relation: relation).insert(db)
            }
        }
    }

    /// Marks the job succeeded and registers its output, in one transaction.
    public func succeed(jobID: String, output: OutputRecord, files: [ArtifactFile]) throws {
        try database.write { db in
            try output.insert(db)
            for file in files { try file.insert(db) }
            try LineageEdge(fromID: jobID, toID: output.id, relation: "produced").insert(db)
            try db.execute(
                sql: "UPDATE job SET state = ?, finishedAt = ?, pid = NULL, exitReason = NULL WHERE id = ?",
                arguments: [JobState.succeeded.rawValue, Date(), jobID])
        }
    }

    public func models() throws -> [ModelRecord] {
        try database.read { db in try ModelRecord.order(Column("createdAt")).fetchAll(db) }
    }
    public func model(_ id: String) throws -> ModelRecord? {
        try database.read { db in try ModelRecord.fetchOne(db, key: id) }
    }
    public func datasets() throws -> [DatasetRecord] {
        try database.read { db in try DatasetRecord.order(Column("createdAt")).fetchAll(db) }
    }
    public func dataset(_ id: String) throws -> DatasetRecord? {
        try database.read { db in try DatasetRecord.fetchOne(db, key: id) }
    }
    public func jobs() throws -> [JobRecord] {
        try database.read { db in try JobRecord.order(Column("createdAt").desc).fetchAll(db) }
    }
    public func job(_ id: String) throws -> JobRecord? {
        try database.read { db in try JobRecord.fetchOne(db, key: id) }
    }
    public func outputs() throws -> [OutputRecord] {
        try database.read { db in try OutputRecord.order(Column("createdAt")).fetchAll(db) }
    }
    public func output(_ id: String) throws -> OutputRecord? {
        try database.read { db in try OutputRecord.fetchOne(db, key: id) }
    }
    public func output(ofJob jobID: String) throws -> OutputRecord? {
        try database.read { db in try OutputRecord.filter(Column("jobID") == jobID).fetchOne(db) }
    }
    public func files(of ownerID: String) throws -> [ArtifactFile] {
        try database.read { db in try ArtifactFile.filter(Column("ownerID") == ownerID).order(Column("name")).fetchAll(db) }
    }
    /// Every file the registry knows, for checking the store against it.
    public func allFiles() throws -> [ArtifactFile] {
        try database.read { db in try ArtifactFile.fetchAll(db) }
    }

    /// The edges that lead to `id`, transitively: everything it was made from.
    public func ancestry(of id: String) throws -> [LineageEdge] {
        try database.read { db in
            var edges: [LineageEdge] = [], frontier = [id], seen: Set<String> = [id]
            while let next = frontier.popLast() {
                for edge in try LineageEdge.filter(Column("toID") == next).order(Column("relation")).fetchAll(db) {
                    edges.append(edge)
                    if seen.insert(edge.fromID).inserted { frontier.append(edge.fromID) }
                }
            }
            return edges
        }
    }

    /// The edges that start at `id`: what was made from it.
    public func descendants(of id: String) throws -> [LineageEdge] {
        try database.read { db in try LineageEdge.filter(Column("fromID") == id).fetchAll(db) }
    }

    // MARK: The job queue

    /// Claims the oldest queued job for this worker: marks it running (one more attempt) in the same
    /// transaction that found it, so two claims never get the same job.
    public func claimNextJob() throws -> JobRecord? {
        try database.write { db in
            guard var job = try JobRecord.filter(Column("state") == JobState.queued.rawValue)
                .order(Column("createdAt"), Column("id")).fetchOne(db)
            else { return nil }
            job.state = .running
            job.startedAt = job.startedAt ?? Date()
            job.attempts += 1
            try job.update(db)
            return job
        }
    }

    public func setPID(_ pid: Int32?, jobID: String) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE job SET pid = ? WHERE id = ?", arguments: [pid.map { Int($0) }, jobID])
        }
    }

    /// Ends a job that did not succeed (failed or cancelled).
    public func finish(jobID: String, state: JobState, reason: String?) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE job SET state = ?, finishedAt = ?, pid = NULL, exitReason = ? WHERE id = ?",
                arguments: [state.rawValue, Date(), reason, jobID])
        }
    }

    /// Asks for a job to stop: a queued job is cancelled at once; a running one is flagged, and its
    /// worker interrupts the process (which checkpoints) and records it cancelled. Returns the job.
    public func requestCancel(jobID: String) throws -> JobRecord? {
        try database.write { db in
            guard var job = try JobRecord.fetchOne(db, key: jobID) else { return nil }
            switch job.state {
            case .queued:
                job.state = .cancelled
                job.finishedAt = Date()
                job.exitReason = "cancelled before it started"
            case .running:
                job.cancelRequested = true
            default:
                break
            }
            try job.update(db)
            return job
        }
    }

    /// Jobs left running by a worker that is gone (the service crashed or was killed): queued again,
    /// to resume from their last checkpoint. Returns their ids.
    public func requeueOrphanedJobs() throws -> [String] {
        try database.write { db in
            let orphans = try JobRecord.filter(Column("state") == JobState.running.rawValue).fetchAll(db)
            for var job in orphans {
                job.state = job.cancelRequested ? .cancelled : .queued
                job.pid = nil
                if job.cancelRequested { job.finishedAt = Date(); job.exitReason = "cancelled" }
                try job.update(db)
            }
            return orphans.filter { !$0.cancelRequested }.map(\.id)
        }
    }

    // MARK: Deployments

    public func save(_ deployment: DeploymentRecord) throws {
        try database.write { db in try deployment.save(db) }
    }
    public func deployments() throws -> [DeploymentRecord] {
        try database.read { db in try DeploymentRecord.order(Column("createdAt").desc).fetchAll(db) }
    }
    public func deployment(_ id: String) throws -> DeploymentRecord? {
        try database.read { db in try DeploymentRecord.fetchOne(db, key: id) }
    }

    // MARK: Tokens

    public func insert(_ token: TokenRecord) throws {
        try database.write { db in try token.insert(db) }
    }

    public func token(withHash sha256: String) throws -> TokenRecord? {
        try database.read { db in try TokenRecord.filter(Column("sha256") == sha256).fetchOne(db) }
    }

    public func tokenCount() throws -> Int {
        try database.read { db in try TokenRecord.fetchCount(db) }
    }
}

// MARK: Records

public enum JobState: String, Codable, Sendable, DatabaseValueConvertible {
    case queued, running, succeeded, failed, cancelled
}

/// What a job runs: a trainer (`temper sft|dpo|grpo`), an evaluation (`temper eval`) or a compression
/// (`temper compress`).
public enum JobMethod: String, Codable, Sendable, CaseIterable {
    case sft, dpo, grpo, eval, compress
}

public struct ModelRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "model"
    public var id: String
    public var name: String
    /// The model's folder (its files linked from the artifact store).
    public var path: String
    public var architecture: String
    public var parameters: Int
    public var contextLength: Int
    public var license: String?
    public var createdAt: Date
}

public struct DatasetRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "dataset"
    public var id: String
    public var name: String
    /// What it can train: `chat`, `instruction` or `text` (SFT), `preference` (DPO), `prompt` (GRPO).
    public var format: String
    public var rows: Int
    public var sha256: String
    public var bytes: Int
    public var path: String
    /// JSON: counts and lengths (see ``DatasetInspection``).
    public var statistics: String
    public var createdAt: Date
}

public struct JobRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "job"
    public var id: String
    public var method: JobMethod
    public var modelID: String
    public var datasetID: String
    public var parentOutputID: String?
    /// The resolved recipe the job runs, as JSON.
    public var recipe: String
    public var state: JobState
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var exitReason: String?
    public var pid: Int?
    public var attempts: Int
    public var cancelRequested: Bool
}

public struct OutputRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "output"
    public var id: String
    public var jobID: String
    /// `adapter` (PEFT LoRA), `model` (full weights) or `gguf` (a compressed file for llama.cpp).
    public var kind: String
    public var path: String
    /// The hash of its manifest: the sorted `name sha256` lines of its files.
    public var sha256: String
    public var bytes: Int
    public var createdAt: Date
}

public struct ArtifactFile: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "artifactFile"
    public var ownerID: String
    public var name: String
    public var sha256: String
    public var bytes: Int
}

public struct LineageEdge: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "lineage"
    public var fromID: String
    public var toID: String
    /// `base_model`, `dataset`, `starts_from` (into a job), `evaluated_by` / `compressed_by` (an
    /// output into its evaluation or compression job) or `produced` (job to output).
    public var relation: String
}

public enum DeploymentState: String, Codable, Sendable, DatabaseValueConvertible {
    case starting, running, stopped, failed
}

/// A managed `temper serve` process: a base model with any number of its adapter outputs (served under
/// their output ids), or a full-model output.
public struct DeploymentRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "deployment"
    public var id: String
    public var modelID: String
    public var outputIDs: [String]
    /// The OpenAI base URL (`http://127.0.0.1:PORT/v1`) once it is up.
    public var url: String?
    public var state: DeploymentState
    public var createdAt: Date
    public var pid: Int?
    public var port: Int?
    public var exitReason: String?
}

public struct TokenRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "token"
    public var id: String
    public var name: String
    /// Only the hash of a token is stored.
    public var sha256: String
    public var createdAt: Date
}

/// Short ids with a kind prefix (`m-`, `d-`, `j-`, `o-`, `t-`), so an id in a log says what it names.
public func makeID(_ prefix: String) -> String {
    prefix + "-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
}

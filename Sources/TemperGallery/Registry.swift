import Foundation

/// The gallery's registry: base models, datasets, jobs, outputs, deployments, tokens and the lineage
/// edges between them, in SQLite (WAL) in the data folder or on a PostgreSQL server, with versioned
/// migrations. The SQL is written once for both. Every write is one transaction, so a crash leaves each
/// row either written whole or not at all.
///
/// Each registry is one worker, named by a random `workerKey` that it stamps on the jobs and
/// deployments it runs; a running job whose worker is no longer alive is an orphan, queued again.
public final class Registry: Sendable {
    public let database: any SQLDatabase
    public let workerKey: Int32

    /// Opens (creating if needed) the SQLite registry at `path` and brings its schema up to date.
    public convenience init(path: String) throws {
        try self.init(database: SQLiteDatabase(path: path))
    }

    public init(database: any SQLDatabase) throws {
        self.database = database
        workerKey = Int32.random(in: 1...Int32.max)
        try Self.migrate(database)
        try database.holdWorkerLock(workerKey)
    }

    /// The schema, one step per version; each applied in its own transaction and recorded in
    /// `schemaMigration`, so a registry of any earlier version is brought up to date. Types are those
    /// SQLite and PostgreSQL both take: TEXT, BIGINT, DOUBLE PRECISION (dates: seconds since 1970),
    /// BOOLEAN.
    static let migrations: [(id: String, statements: [String])] = [
        ("v1", [
            #"CREATE TABLE "model" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "path" TEXT NOT NULL, "architecture" TEXT NOT NULL, "parameters" BIGINT NOT NULL, "contextLength" BIGINT NOT NULL, "license" TEXT, "createdAt" DOUBLE PRECISION NOT NULL)"#,
            #"CREATE TABLE "dataset" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "format" TEXT NOT NULL, "rows" BIGINT NOT NULL, "sha256" TEXT NOT NULL, "bytes" BIGINT NOT NULL, "path" TEXT NOT NULL, "statistics" TEXT NOT NULL, "createdAt" DOUBLE PRECISION NOT NULL)"#,
            #"CREATE TABLE "job" ("id" TEXT PRIMARY KEY, "method" TEXT NOT NULL, "modelID" TEXT NOT NULL REFERENCES "model"("id"), "datasetID" TEXT NOT NULL REFERENCES "dataset"("id"), "parentOutputID" TEXT, "recipe" TEXT NOT NULL, "state" TEXT NOT NULL, "createdAt" DOUBLE PRECISION NOT NULL, "startedAt" DOUBLE PRECISION, "finishedAt" DOUBLE PRECISION, "exitReason" TEXT, "pid" BIGINT, "attempts" BIGINT NOT NULL DEFAULT 0, "cancelRequested" BOOLEAN NOT NULL DEFAULT FALSE, "workerKey" BIGINT)"#,
            #"CREATE INDEX "job_state" ON "job"("state", "createdAt")"#,
            #"CREATE TABLE "output" ("id" TEXT PRIMARY KEY, "jobID" TEXT NOT NULL REFERENCES "job"("id"), "kind" TEXT NOT NULL, "path" TEXT NOT NULL, "sha256" TEXT NOT NULL, "bytes" BIGINT NOT NULL, "createdAt" DOUBLE PRECISION NOT NULL)"#,
            #"CREATE INDEX "output_job" ON "output"("jobID")"#,
            // The files of a model or an output, each a blob of the artifact store.
            #"CREATE TABLE "artifactFile" ("ownerID" TEXT NOT NULL, "name" TEXT NOT NULL, "sha256" TEXT NOT NULL, "bytes" BIGINT NOT NULL, PRIMARY KEY ("ownerID", "name"))"#,
            #"CREATE TABLE "lineage" ("fromID" TEXT NOT NULL, "toID" TEXT NOT NULL, "relation" TEXT NOT NULL, PRIMARY KEY ("fromID", "toID"))"#,
            #"CREATE INDEX "lineage_to" ON "lineage"("toID")"#,
            #"CREATE TABLE "token" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "sha256" TEXT NOT NULL UNIQUE, "createdAt" DOUBLE PRECISION NOT NULL)"#,
            #"CREATE TABLE "deployment" ("id" TEXT PRIMARY KEY, "modelID" TEXT NOT NULL REFERENCES "model"("id"), "outputIDs" TEXT NOT NULL, "url" TEXT, "state" TEXT NOT NULL, "createdAt" DOUBLE PRECISION NOT NULL, "pid" BIGINT, "port" BIGINT, "exitReason" TEXT, "workerKey" BIGINT)"#,
        ]),
        // Data-parallel jobs: how many processes (`temper launch --ranks`).
        ("v2-ranks", [#"ALTER TABLE "job" ADD COLUMN "ranks" BIGINT NOT NULL DEFAULT 1"#]),
        // Data-parallel jobs spread over the gallery's launch hosts: one address per rank.
        ("v3-hosts", [#"ALTER TABLE "job" ADD COLUMN "hosts" TEXT"#]),
    ]

    static func migrate(_ database: any SQLDatabase) throws {
        try database.write { db in
            // Several PostgreSQL workers may start at once: one migrates, the others wait for it.
            try database.lockForMigration.map { try db.execute($0) }
            if try !db.rows(database.tableExistsSQL, [.text("grdb_migrations")]).isEmpty,
                try db.rows(database.tableExistsSQL, [.text("schemaMigration")]).isEmpty
            {
                throw GalleryError(
                    status: 0, "\(database.location) is a registry of an earlier Temper (its GRDB schema); move it aside to start a new one")
            }
            try db.execute(#"CREATE TABLE IF NOT EXISTS "schemaMigration" ("id" TEXT PRIMARY KEY, "appliedAt" DOUBLE PRECISION NOT NULL)"#)
            let applied = Set(try db.rows(#"SELECT "id" FROM "schemaMigration""#, []).compactMap { row -> String? in
                if case .text(let id)? = row["id"] { id } else { nil }
            })
            for migration in migrations where !applied.contains(migration.id) {
                for statement in migration.statements { try db.execute(statement) }
                try db.execute(#"INSERT INTO "schemaMigration" ("id", "appliedAt") VALUES (?, ?)"#, [.text(migration.id), .real(Date().timeIntervalSince1970)])
            }
        }
    }

    // MARK: Writes and reads

    public func insert(_ model: ModelRecord, files: [ArtifactFile]) throws {
        try database.write { db in
            try db.insert(model, into: "model")
            for file in files { try db.insert(file, into: "artifactFile") }
        }
    }

    public func insert(_ dataset: DatasetRecord) throws {
        try database.write { db in try db.insert(dataset, into: "dataset") }
    }

    /// Queues a job and records where it comes from (its model, dataset and, for a follow-up job, the
    /// output it starts from).
    public func insert(_ job: JobRecord) throws {
        try database.write { db in
            try db.insert(job, into: "job")
            try db.insert(LineageEdge(fromID: job.modelID, toID: job.id, relation: "base_model"), into: "lineage")
            try db.insert(LineageEdge(fromID: job.datasetID, toID: job.id, relation: "dataset"), into: "lineage")
            if let parent = job.parentOutputID {
                let relation = switch job.method {
                case .eval: "evaluated_by"
                case .compress: "compressed_by"
                default: "starts_from"
                }
                try db.insert(LineageEdge(fromID: parent, toID: job.id, relation: relation), into: "lineage")
            }
        }
    }

    /// Marks the job succeeded and registers its output, in one transaction.
    public func succeed(jobID: String, output: OutputRecord, files: [ArtifactFile]) throws {
        try database.write { db in
            try db.insert(output, into: "output")
            for file in files { try db.insert(file, into: "artifactFile") }
            try db.insert(LineageEdge(fromID: jobID, toID: output.id, relation: "produced"), into: "lineage")
            try db.execute(
                #"UPDATE "job" SET "state" = ?, "finishedAt" = ?, "pid" = NULL, "workerKey" = NULL, "exitReason" = NULL WHERE "id" = ?"#,
                [.text(JobState.succeeded.rawValue), .real(Date().timeIntervalSince1970), .text(jobID)])
        }
    }

    func all<Record: Decodable>(_ type: Record.Type, _ sql: String, _ arguments: [SQLValue] = []) throws -> [Record] {
        try database.read { db in try db.fetch(type, sql, arguments) }
    }
    func one<Record: Decodable>(_ type: Record.Type, _ sql: String, _ arguments: [SQLValue] = []) throws -> Record? {
        try database.read { db in try db.fetchOne(type, sql, arguments) }
    }

    public func models() throws -> [ModelRecord] { try all(ModelRecord.self, #"SELECT * FROM "model" ORDER BY "createdAt", "id""#) }
    public func model(_ id: String) throws -> ModelRecord? { try one(ModelRecord.self, #"SELECT * FROM "model" WHERE "id" = ?"#, [.text(id)]) }
    public func datasets() throws -> [DatasetRecord] { try all(DatasetRecord.self, #"SELECT * FROM "dataset" ORDER BY "createdAt", "id""#) }
    public func dataset(_ id: String) throws -> DatasetRecord? { try one(DatasetRecord.self, #"SELECT * FROM "dataset" WHERE "id" = ?"#, [.text(id)]) }
    public func jobs() throws -> [JobRecord] { try all(JobRecord.self, #"SELECT * FROM "job" ORDER BY "createdAt" DESC, "id" DESC"#) }
    public func job(_ id: String) throws -> JobRecord? { try one(JobRecord.self, #"SELECT * FROM "job" WHERE "id" = ?"#, [.text(id)]) }
    public func outputs() throws -> [OutputRecord] { try all(OutputRecord.self, #"SELECT * FROM "output" ORDER BY "createdAt", "id""#) }
    public func output(_ id: String) throws -> OutputRecord? { try one(OutputRecord.self, #"SELECT * FROM "output" WHERE "id" = ?"#, [.text(id)]) }
    public func output(ofJob jobID: String) throws -> OutputRecord? {
        try one(OutputRecord.self, #"SELECT * FROM "output" WHERE "jobID" = ?"#, [.text(jobID)])
    }
    public func files(of ownerID: String) throws -> [ArtifactFile] {
        try all(ArtifactFile.self, #"SELECT * FROM "artifactFile" WHERE "ownerID" = ? ORDER BY "name""#, [.text(ownerID)])
    }
    /// Every file the registry knows, for checking the store against it.
    public func allFiles() throws -> [ArtifactFile] { try all(ArtifactFile.self, #"SELECT * FROM "artifactFile" ORDER BY "ownerID", "name""#) }

    /// The edges that lead to `id`, transitively: everything it was made from.
    public func ancestry(of id: String) throws -> [LineageEdge] {
        try database.read { db in
            var edges: [LineageEdge] = [], frontier = [id], seen: Set<String> = [id]
            while let next = frontier.popLast() {
                for edge in try db.fetch(LineageEdge.self, #"SELECT * FROM "lineage" WHERE "toID" = ? ORDER BY "relation", "fromID""#, [.text(next)]) {
                    edges.append(edge)
                    if seen.insert(edge.fromID).inserted { frontier.append(edge.fromID) }
                }
            }
            return edges
        }
    }

    /// The edges that start at `id`: what was made from it.
    public func descendants(of id: String) throws -> [LineageEdge] {
        try all(LineageEdge.self, #"SELECT * FROM "lineage" WHERE "fromID" = ? ORDER BY "toID""#, [.text(id)])
    }

    // MARK: The job queue

    /// Claims the oldest queued job for this worker: marks it running (one more attempt) in the same
    /// transaction that found it. On PostgreSQL the row stays locked until then and other workers skip
    /// it, so two claims never get the same job.
    public func claimNextJob() throws -> JobRecord? {
        try database.write { db in
            guard var job = try db.fetchOne(
                JobRecord.self, #"SELECT * FROM "job" WHERE "state" = ? ORDER BY "createdAt", "id" LIMIT 1"# + database.lockForClaim,
                [.text(JobState.queued.rawValue)])
            else { return nil }
            job.state = .running
            job.startedAt = job.startedAt ?? Date()
            job.attempts += 1
            job.workerKey = Int(workerKey)
            try db.execute(
                #"UPDATE "job" SET "state" = ?, "startedAt" = ?, "attempts" = ?, "workerKey" = ? WHERE "id" = ?"#,
                [.text(job.state.rawValue), .real(job.startedAt!.timeIntervalSince1970), .integer(job.attempts), .integer(Int(workerKey)), .text(job.id)])
            return job
        }
    }

    public func setPID(_ pid: Int32?, jobID: String) throws {
        try database.write { db in
            try db.execute(#"UPDATE "job" SET "pid" = ? WHERE "id" = ?"#, [pid.map { .integer(Int($0)) } ?? .null, .text(jobID)])
        }
    }

    /// Ends a job's run: failed or cancelled, or queued again (the service is stopping).
    public func finish(jobID: String, state: JobState, reason: String?) throws {
        try database.write { db in
            try db.execute(
                #"UPDATE "job" SET "state" = ?, "finishedAt" = ?, "pid" = NULL, "workerKey" = NULL, "exitReason" = ? WHERE "id" = ?"#,
                [.text(state.rawValue), .real(Date().timeIntervalSince1970), reason.map { .text($0) } ?? .null, .text(jobID)])
        }
    }

    /// Asks for a job to stop: a queued job is cancelled at once; a running one is flagged, and its
    /// worker interrupts the process (which checkpoints) and records it cancelled. Returns the job.
    public func requestCancel(jobID: String) throws -> JobRecord? {
        try database.write { db in
            try db.execute(
                #"UPDATE "job" SET "state" = ?, "finishedAt" = ?, "exitReason" = ? WHERE "id" = ? AND "state" = ?"#,
                [.text(JobState.cancelled.rawValue), .real(Date().timeIntervalSince1970), .text("cancelled before it started"), .text(jobID),
                 .text(JobState.queued.rawValue)])
            try db.execute(
                #"UPDATE "job" SET "cancelRequested" = ? WHERE "id" = ? AND "state" = ?"#,
                [.bool(true), .text(jobID), .text(JobState.running.rawValue)])
            return try db.fetchOne(JobRecord.self, #"SELECT * FROM "job" WHERE "id" = ?"#, [.text(jobID)])
        }
    }

    /// Running jobs whose worker is gone (its service crashed or was killed, here or on another
    /// machine sharing the database).
    public func orphanedJobs() throws -> [JobRecord] {
        let live = try database.liveWorkerKeys(own: workerKey)
        return try all(JobRecord.self, #"SELECT * FROM "job" WHERE "state" = ? ORDER BY "createdAt", "id""#, [.text(JobState.running.rawValue)])
            .filter { job in job.workerKey.map { !live.contains(Int32(truncatingIfNeeded: $0)) } ?? true }
    }

    /// Queues orphaned jobs again, to resume from their last checkpoint (a job whose cancel was asked
    /// for is recorded cancelled instead). A job another worker took over meanwhile is left alone.
    /// Returns the ids queued.
    public func requeue(_ orphans: [JobRecord]) throws -> [String] {
        try database.write { db in
            var queued: [String] = []
            for job in orphans {
                let state: JobState = job.cancelRequested ? .cancelled : .queued
                let updated = try db.rows(
                    #"UPDATE "job" SET "state" = ?, "pid" = NULL, "workerKey" = NULL, "finishedAt" = ?, "exitReason" = ? "#
                        + #"WHERE "id" = ? AND "state" = ? AND COALESCE("workerKey", 0) = ? RETURNING "id""#,
                    [.text(state.rawValue), job.cancelRequested ? .real(Date().timeIntervalSince1970) : .null,
                     job.cancelRequested ? .text("cancelled") : .null, .text(job.id), .text(JobState.running.rawValue), .integer(job.workerKey ?? 0)])
                if !updated.isEmpty, state == .queued { queued.append(job.id) }
            }
            return queued
        }
    }

    // MARK: Deployments

    public func save(_ deployment: DeploymentRecord) throws {
        try database.write { db in try db.save(deployment, into: "deployment", key: "id") }
    }
    public func deployments() throws -> [DeploymentRecord] {
        try all(DeploymentRecord.self, #"SELECT * FROM "deployment" ORDER BY "createdAt" DESC, "id" DESC"#)
    }
    public func deployment(_ id: String) throws -> DeploymentRecord? {
        try one(DeploymentRecord.self, #"SELECT * FROM "deployment" WHERE "id" = ?"#, [.text(id)])
    }

    /// Deployments that should be up but whose worker is gone: the next worker to start serves them.
    public func orphanedDeployments() throws -> [DeploymentRecord] {
        let live = try database.liveWorkerKeys(own: workerKey)
        return try deployments().filter { record in
            (record.state == .running || record.state == .starting)
                && (record.workerKey.map { !live.contains(Int32(truncatingIfNeeded: $0)) } ?? true)
        }
    }

    // MARK: Tokens

    public func insert(_ token: TokenRecord) throws {
        try database.write { db in try db.insert(token, into: "token") }
    }

    public func token(withHash sha256: String) throws -> TokenRecord? {
        try one(TokenRecord.self, #"SELECT * FROM "token" WHERE "sha256" = ?"#, [.text(sha256)])
    }

    public func tokenCount() throws -> Int {
        try database.read { db in
            guard case .integer(let count)? = try db.rows(#"SELECT COUNT(*) AS "count" FROM "token""#, []).first?["count"] else { return 0 }
            return count
        }
    }
}

// MARK: Records

public enum JobState: String, Codable, Sendable {
    case queued, running, succeeded, failed, cancelled
}

/// What a job runs: a trainer (`temper sft|dpo|grpo`), an evaluation (`temper eval`) or a compression
/// (`temper compress`).
public enum JobMethod: String, Codable, Sendable, CaseIterable {
    case sft, dpo, grpo, eval, compress
}

public struct ModelRecord: Codable, Sendable, Equatable {
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

public struct DatasetRecord: Codable, Sendable, Equatable {
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

public struct JobRecord: Codable, Sendable, Equatable {
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
    /// The worker running it (``Registry/workerKey``), while it runs.
    public var workerKey: Int? = nil
    /// Its processes: more than 1 runs it data-parallel through `temper launch --ranks`.
    public var ranks: Int = 1
    /// The launch hosts its ranks run on, comma-separated, one per rank (`temper launch --hosts`);
    /// nil runs them on the worker's machine.
    public var hosts: String? = nil
}

public struct OutputRecord: Codable, Sendable, Equatable {
    public var id: String
    public var jobID: String
    /// `adapter` (PEFT LoRA), `model` (full weights), `gguf` (a compressed file for llama.cpp) or
    /// `quantized` (a folder in the engine's int8 or q4 format, for `temper serve`).
    public var kind: String
    public var path: String
    /// The hash of its manifest: the sorted `name sha256` lines of its files.
    public var sha256: String
    public var bytes: Int
    public var createdAt: Date
}

public struct ArtifactFile: Codable, Sendable, Equatable {
    public var ownerID: String
    public var name: String
    public var sha256: String
    public var bytes: Int
}

public struct LineageEdge: Codable, Sendable, Equatable {
    public var fromID: String
    public var toID: String
    /// `base_model`, `dataset`, `starts_from` (into a job), `evaluated_by` / `compressed_by` (an
    /// output into its evaluation or compression job) or `produced` (job to output).
    public var relation: String
}

public enum DeploymentState: String, Codable, Sendable {
    case starting, running, stopped, failed
}

/// A managed `temper serve` process: a base model with any number of its adapter outputs (served under
/// their output ids), or a full-model output.
public struct DeploymentRecord: Codable, Sendable, Equatable {
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
    /// The worker whose process serves it.
    public var workerKey: Int? = nil
}

public struct TokenRecord: Codable, Sendable, Equatable {
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

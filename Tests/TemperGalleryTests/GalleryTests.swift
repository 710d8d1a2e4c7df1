import Foundation
import Synchronization
import Hummingbird
import HummingbirdTesting
import Testing
import TemperTestSupport

@testable import TemperGallery

/// A gallery in a fresh temporary folder.
func makeGallery() throws -> Gallery {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gallery-test-\(UUID().uuidString)")
    return try Gallery(dataDirectory: folder)
}

let tinyLlama = TestPaths.fixtures.appendingPathComponent("models/llama-tied-llama3rope")
let chatLines = """
    {"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]}
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}

    """

@Suite struct ArtifactStoreTests {
    @Test func storesFilesUnderTheirSHA256AndDetectsCorruption() throws {
        let gallery = try makeGallery()
        let (sha256, bytes) = try gallery.store.put(data: Data("hello\n".utf8))
        // sha256sum of "hello\n"
        #expect(sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
        #expect(bytes == 6)
        #expect(try String(contentsOf: gallery.store.blobURL(sha256), encoding: .utf8) == "hello\n")
        #expect(try gallery.store.verify(sha256))
        // The same content again is the same blob; the temporary folder is left empty.
        #expect(try gallery.store.put(data: Data("hello\n".utf8)).sha256 == sha256)
        #expect(try FileManager.default.contentsOfDirectory(atPath: gallery.store.root.appendingPathComponent("tmp").path).isEmpty)
        try Data("hellO\n".utf8).write(to: gallery.store.blobURL(sha256))
        #expect(try !gallery.store.verify(sha256))
    }

    @Test func manifestHashDependsOnNamesAndContentsNotOrder() {
        let a = ArtifactFile(ownerID: "o", name: "a", sha256: "11", bytes: 1)
        let b = ArtifactFile(ownerID: "o", name: "b", sha256: "22", bytes: 1)
        #expect(ArtifactStore.manifestHash([a, b]) == ArtifactStore.manifestHash([b, a]))
        #expect(ArtifactStore.manifestHash([a, b]) != ArtifactStore.manifestHash([a]))
        // sha256 of "a 11\nb 22\n"
        #expect(ArtifactStore.manifestHash([a, b]) == sha256Hex("a 11\nb 22\n"))
    }
}

@Suite struct DatasetInspectionTests {
    @Test func detectsEachMethodsFormat() throws {
        #expect(try DatasetInspection.inspect(Array(chatLines.utf8), name: "chat.jsonl").format == "chat")
        let preference = #"{"prompt": "Hi", "chosen": "Hello.", "rejected": "Go away."}"#
        let pairs = try DatasetInspection.inspect(Array(preference.utf8), name: "pairs.jsonl")
        #expect(pairs.format == "preference")
        #expect(pairs.rows == 1)
        let prompts = #"{"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"}"#
        #expect(try DatasetInspection.inspect(Array(prompts.utf8), name: "p.jsonl").format == "prompt")
        let alpaca = #"[{"instruction": "Say hi", "output": "Hi"}]"#
        #expect(try DatasetInspection.inspect(Array(alpaca.utf8), name: "a.json").format == "instruction")
    }

    @Test func namesTheBadLines() throws {
        let text = chatLines + "{\"messages\": [\n"
        let inspection = try DatasetInspection.inspect(Array(text.utf8), name: "chat.jsonl")
        #expect(inspection.rows == 2)
        #expect(inspection.issues.count == 1)
        #expect(inspection.issues[0].hasPrefix("chat.jsonl:3: "))
        #expect(throws: GalleryError.self) { try DatasetInspection.inspect(Array("{}".utf8), name: "x.jsonl", format: "csv") }
    }
}

/// Where a registry test keeps its registry: every registry test runs on both.
enum RegistryBackend: String, CaseIterable, Sendable {
    case sqlite, postgres
}

/// A gallery in a fresh folder with its registry on `backend` (a PostgreSQL server of its own, stopped
/// after `body`). `body` also gets a way to open another worker's registry on the same database.
func withGallery<T>(_ backend: RegistryBackend, _ body: (Gallery, _ anotherWorker: () throws -> Registry) throws -> T) throws -> T {
    let server = backend == .postgres ? try PostgresServer() : nil
    defer { server?.stop() }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gallery-test-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let gallery = try Gallery(dataDirectory: folder, database: server?.url)
    return try body(gallery) {
        try Registry(database: server.map { try PostgresDatabase(url: $0.url) } ?? SQLiteDatabase(path: folder.appendingPathComponent("registry.sqlite").path))
    }
}

/// A model and a dataset row to hang jobs on (the registry checks its foreign keys).
func seedRows(_ registry: Registry) throws -> (ModelRecord, DatasetRecord) {
    let created = Date(timeIntervalSince1970: 1_780_000_000.25)
    let model = ModelRecord(
        id: makeID("m"), name: "tiny", path: "/m", architecture: "llama", parameters: 1234, contextLength: 512, license: nil, createdAt: created)
    let dataset = DatasetRecord(
        id: makeID("d"), name: "chat.jsonl", format: "chat", rows: 2, sha256: String(repeating: "a", count: 64), bytes: 10, path: "/d",
        statistics: "{}", createdAt: created)
    try registry.insert(model, files: [ArtifactFile(ownerID: model.id, name: "config.json", sha256: String(repeating: "b", count: 64), bytes: 3)])
    try registry.insert(dataset)
    return (model, dataset)
}

func queuedJob(_ model: ModelRecord, _ dataset: DatasetRecord, createdAt: Date, parent: String? = nil, method: JobMethod = .sft) -> JobRecord {
    JobRecord(
        id: makeID("j"), method: method, modelID: model.id, datasetID: dataset.id, parentOutputID: parent, recipe: "{}", state: .queued,
        createdAt: createdAt, startedAt: nil, finishedAt: nil, exitReason: nil, pid: nil, attempts: 0, cancelRequested: false)
}

/// The same registry tests on SQLite and on a real PostgreSQL server.
@Suite struct RegistryTests {
    @Test(arguments: RegistryBackend.allCases) func importsAModelWithItsCardAndFiles(_ backend: RegistryBackend) throws {
        try withGallery(backend) { gallery, _ in
            let model = try gallery.importModel(from: tinyLlama, name: "tiny")
            #expect(model.architecture == "llama")
            #expect(model.name == "tiny")
            // Dates are stored as seconds since 1970 (a double): equal to well under a microsecond.
            var stored = try #require(try gallery.registry.model(model.id))
            #expect(abs(stored.createdAt.timeIntervalSince(model.createdAt)) < 1e-6)
            stored.createdAt = model.createdAt
            #expect(stored == model)
            let files = try gallery.registry.files(of: model.id)
            #expect(files.map(\.name) == ["config.json", "expected.json", "expected.safetensors", "generation_config.json", "model.safetensors"])
            for file in files {
                #expect(try ArtifactStore.hash(of: tinyLlama.appendingPathComponent(file.name)) == file.sha256)
                #expect(try ArtifactStore.hash(of: URL(fileURLWithPath: model.path).appendingPathComponent(file.name)) == file.sha256)
            }
            #expect(try gallery.corruptArtifacts().isEmpty)
            let error = #expect(throws: GalleryError.self) { try gallery.importModel(from: TestPaths.fixtures) }
            #expect(error?.message.contains("has no config.json") == true)
        }
    }

    @Test(arguments: RegistryBackend.allCases) func queuesClaimsCancelsAndRequeuesJobs(_ backend: RegistryBackend) throws {
        try withGallery(backend) { gallery, anotherWorker in
            let model = try gallery.importModel(from: tinyLlama)
            let dataset = try gallery.addDataset(name: "chat.jsonl", contents: Data(chatLines.utf8))
            #expect(dataset.format == "chat")
            #expect(dataset.rows == 2)
            let first = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: ["max_steps": .number(1)])
            let second = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: [:], ranks: 2)
            // Two ranks: stored, and run through `temper launch`.
            #expect(try gallery.registry.job(second.id)?.ranks == 2)
            #expect(try gallery.registry.job(first.id)?.ranks == 1)
            let recipeFile = gallery.jobFolder(second.id).appendingPathComponent("recipe.json").path
            #expect(try JobRunner.arguments(for: second, folder: gallery.jobFolder(second.id), resume: true, cluster: nil)
                == ["launch", "--ranks", "2", "--", "temper", "sft", "--recipe", recipeFile, "--resume"])
            #expect(try JobRunner.arguments(for: first, folder: gallery.jobFolder(first.id), resume: false, cluster: nil)
                == ["sft", "--recipe", gallery.jobFolder(first.id).appendingPathComponent("recipe.json").path])
            // The recipe file is the resolved one: the gallery's paths plus the caller's fields.
            let recipe = try JSONSerialization.jsonObject(with: Data(first.recipe.utf8)) as? [String: Any]
            #expect(recipe?["max_steps"] as? Int == 1)
            #expect(recipe?["data"] as? String == dataset.path)
            #expect(recipe?["output"] as? String == gallery.jobFolder(first.id).appendingPathComponent("run").path)

            // Another worker claims the oldest job.
            var worker: Registry? = try anotherWorker()
            let claimed = try #require(try worker?.claimNextJob())
            #expect(claimed.id == first.id)
            #expect(claimed.state == .running)
            #expect(claimed.attempts == 1)
            #expect(claimed.workerKey == worker.map { Int($0.workerKey) })
            let seen = try #require(try gallery.registry.job(first.id))
            #expect(seen.state == .running && seen.attempts == 1 && seen.workerKey == claimed.workerKey && seen.startedAt != nil)
            #expect(try gallery.registry.requestCancel(jobID: second.id)?.state == .cancelled)
            #expect(try gallery.registry.claimNextJob() == nil)
            switch backend {
            case .sqlite:
                // One worker per SQLite registry: any job running under another key was left by a dead one.
                #expect(try gallery.registry.orphanedJobs().map(\.id) == [first.id])
            case .postgres:
                // That worker's connection holds its lock: its job is not an orphan while it lives.
                #expect(try gallery.registry.orphanedJobs().isEmpty)
            }
            worker = nil
            // Its worker gone, the job is queued again, with its attempts kept.
            let orphans = try gallery.registry.orphanedJobs()
            #expect(orphans.map(\.id) == [first.id])
            #expect(try gallery.registry.requeue(orphans) == [first.id])
            #expect(try gallery.registry.requeue(orphans).isEmpty, "requeued once only")
            let again = try #require(try gallery.registry.claimNextJob())
            #expect(again.id == first.id)
            #expect(again.attempts == 2)
            #expect(again.workerKey == Int(gallery.registry.workerKey))
            #expect(try gallery.registry.orphanedJobs().isEmpty, "a live worker's own job")
            // A cancel asked of a running job is a flag its worker acts on.
            #expect(try gallery.registry.requestCancel(jobID: first.id)?.cancelRequested == true)
            try gallery.registry.finish(jobID: first.id, state: .cancelled, reason: "cancelled")
            let ended = try #require(try gallery.registry.job(first.id))
            #expect(ended.state == .cancelled && ended.pid == nil && ended.workerKey == nil && ended.exitReason == "cancelled")
            let lineage = try gallery.registry.ancestry(of: first.id)
            #expect(Set(lineage.map(\.relation)) == ["base_model", "dataset"])
            #expect(Set(lineage.map(\.fromID)) == [model.id, dataset.id])
        }
    }

    @Test(arguments: RegistryBackend.allCases) func refusesJobsThatCannotRun(_ backend: RegistryBackend) throws {
        try withGallery(backend) { gallery, _ in
            let model = try gallery.importModel(from: tinyLlama)
            let chat = try gallery.addDataset(name: "chat.jsonl", contents: Data(chatLines.utf8))
            func message(_ body: () throws -> Void) -> String? {
                (#expect(throws: GalleryError.self) { try body() })?.description
            }
            #expect(message { _ = try gallery.submitJob(method: .dpo, modelID: model.id, datasetID: chat.id, recipe: [:]) }
                == "dataset: dataset \(chat.id) is chat data; dpo trains on preference data")
            #expect(message { _ = try gallery.submitJob(method: .sft, modelID: "m-nope", datasetID: chat.id, recipe: [:]) }
                == "no model 'm-nope'")
            let typo = message { _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: chat.id, recipe: ["learning_rat": .number(1)]) }
            #expect(typo?.hasPrefix("recipe: unknown field 'learning_rat'") == true, "\(typo ?? "")")
            #expect(message { _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: chat.id, recipe: ["output": .string("/tmp")]) }
                == "recipe.output: the gallery sets 'output' itself; leave it out of the recipe")
            #expect(message { _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: chat.id, recipe: [:], ranks: 65) }
                == "ranks: ranks must be in 1...64, got 65")
            #expect(message { _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: chat.id, recipe: [:], ranks: 0) }
                == "ranks: ranks must be in 1...64, got 0")
            #expect(try gallery.registry.jobs().isEmpty)
        }
    }

    @Test(arguments: RegistryBackend.allCases) func keepsEveryRecordWithItsLineage(_ backend: RegistryBackend) throws {
        try withGallery(backend) { gallery, _ in
            let registry = gallery.registry
            let (model, dataset) = try seedRows(registry)
            #expect(try registry.models() == [model])
            #expect(try registry.datasets() == [dataset])
            let sft = queuedJob(model, dataset, createdAt: Date(timeIntervalSince1970: 1_780_000_001))
            try registry.insert(sft)
            _ = try registry.claimNextJob()
            let adapter = OutputRecord(
                id: makeID("o"), jobID: sft.id, kind: "adapter", path: "/o", sha256: String(repeating: "c", count: 64), bytes: 42,
                createdAt: Date(timeIntervalSince1970: 1_780_000_002.5))
            let file = ArtifactFile(ownerID: adapter.id, name: "adapter_model.safetensors", sha256: String(repeating: "d", count: 64), bytes: 42)
            try registry.succeed(jobID: sft.id, output: adapter, files: [file])
            #expect(try registry.output(adapter.id) == adapter)
            #expect(try registry.output(ofJob: sft.id) == adapter)
            #expect(try registry.files(of: adapter.id) == [file])
            #expect(try registry.allFiles().count == 2)
            let succeeded = try #require(try registry.job(sft.id))
            #expect(succeeded.state == .succeeded && succeeded.finishedAt != nil && succeeded.workerKey == nil)

            // SFT -> DPO: the second job starts from the first one's output.
            let dpo = queuedJob(model, dataset, createdAt: Date(timeIntervalSince1970: 1_780_000_003), parent: adapter.id, method: .dpo)
            try registry.insert(dpo)
            #expect(try registry.jobs().map(\.id) == [dpo.id, sft.id], "newest first")
            let ancestry = try registry.ancestry(of: dpo.id)
            #expect(Set(ancestry.map { "\($0.fromID) \($0.relation) \($0.toID)" }) == [
                "\(model.id) base_model \(dpo.id)", "\(dataset.id) dataset \(dpo.id)", "\(adapter.id) starts_from \(dpo.id)",
                "\(sft.id) produced \(adapter.id)", "\(model.id) base_model \(sft.id)", "\(dataset.id) dataset \(sft.id)",
            ])
            #expect(try registry.descendants(of: adapter.id).map(\.toID) == [dpo.id])

            // A deployment saved again is updated in place, a cleared field included.
            var deployment = DeploymentRecord(
                id: makeID("dep"), modelID: model.id, outputIDs: [adapter.id, "o-second"], url: nil, state: .starting,
                createdAt: Date(timeIntervalSince1970: 1_780_000_004), pid: 4321, port: nil, exitReason: nil, workerKey: Int(registry.workerKey))
            try registry.save(deployment)
            #expect(try registry.deployment(deployment.id) == deployment)
            deployment.state = .stopped
            deployment.pid = nil
            deployment.url = "http://127.0.0.1:9/v1"
            try registry.save(deployment)
            #expect(try registry.deployments() == [deployment])
            #expect(try registry.orphanedDeployments().isEmpty)

            #expect(try registry.tokenCount() == 0)
            let token = TokenRecord(id: makeID("t"), name: "ci", sha256: String(repeating: "e", count: 64), createdAt: Date(timeIntervalSince1970: 1_780_000_005))
            try registry.insert(token)
            #expect(try registry.tokenCount() == 1)
            #expect(try registry.token(withHash: token.sha256) == token)
            #expect(try registry.token(withHash: String(repeating: "f", count: 64)) == nil)
            // A second row with the same hash breaks a constraint: the insert fails and nothing changes.
            #expect(throws: (any Error).self) { try registry.insert(TokenRecord(id: makeID("t"), name: "dup", sha256: token.sha256, createdAt: Date())) }
            #expect(try registry.tokenCount() == 1)
        }
    }

    /// Four workers claim 24 jobs at once: each job is claimed exactly once. On PostgreSQL each worker
    /// is its own registry and connection (as separate processes are); on SQLite, one registry's
    /// threads (its one worker process).
    @Test(arguments: RegistryBackend.allCases) func workersClaimEachJobOnce(_ backend: RegistryBackend) throws {
        try withGallery(backend) { gallery, anotherWorker in
            let (model, dataset) = try seedRows(gallery.registry)
            let jobs = (0..<24).map { queuedJob(model, dataset, createdAt: Date(timeIntervalSince1970: 1_780_000_000 + Double($0))) }
            for job in jobs { try gallery.registry.insert(job) }
            let workers = try (0..<4).map { _ in backend == .postgres ? try anotherWorker() : gallery.registry }
            let claims = Mutex<[String: [String]]>([:])
            DispatchQueue.concurrentPerform(iterations: workers.count) { index in
                while let job = try? workers[index].claimNextJob() {
                    claims.withLock { $0[job.id, default: []].append("\(index)") }
                }
            }
            let claimed = claims.withLock { $0 }
            #expect(Set(claimed.keys) == Set(jobs.map(\.id)))
            #expect(claimed.values.allSatisfy { $0.count == 1 }, "\(claimed.filter { $0.value.count > 1 })")
            #expect(try gallery.registry.jobs().allSatisfy { $0.state == .running && $0.attempts == 1 })
        }
    }

    /// `gallery serve --launch-hosts`: a job names one host per rank and runs through `temper launch
    /// --hosts … --through …` on a port block of its own; hosts the gallery lacks are a 422 naming them.
    @Test func spreadsJobsOverItsLaunchHosts() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gallery-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cluster = LaunchCluster(hosts: ["10.0.0.1", "10.0.0.2"], through: "ssh -p 2222 {host}", port: 29500)
        let gallery = try Gallery(dataDirectory: folder, cluster: cluster)
        let model = try gallery.importModel(from: tinyLlama)
        let dataset = try gallery.addDataset(name: "chat.jsonl", contents: Data(chatLines.utf8))
        let job = try gallery.submitJob(
            method: .sft, modelID: model.id, datasetID: dataset.id, recipe: [:], ranks: 3, hosts: ["10.0.0.1", "10.0.0.2", "10.0.0.2"])
        #expect(try gallery.registry.job(job.id)?.hosts == "10.0.0.1,10.0.0.2,10.0.0.2")
        let arguments = try JobRunner.arguments(for: job, folder: gallery.jobFolder(job.id), resume: false, cluster: cluster)
        let port = try #require(arguments.firstIndex(of: "--port").flatMap { Int(arguments[$0 + 1]) })
        #expect((port - 29500) % LaunchCluster.portsPerJob == 0 && (29500..<(29500 + 64 * 128)).contains(port), "\(port)")
        #expect(try JobRunner.arguments(for: job, folder: gallery.jobFolder(job.id), resume: true, cluster: cluster)
            == ["launch", "--ranks", "3", "--hosts", "10.0.0.1,10.0.0.2,10.0.0.2", "--through", "ssh -p 2222 {host}", "--port", String(port),
                "--", "temper", "sft", "--recipe", gallery.jobFolder(job.id).appendingPathComponent("recipe.json").path, "--resume"])
        // Restarted without --launch-hosts, the worker cannot start it: it says why.
        let noCluster = #expect(throws: GalleryError.self) { try JobRunner.arguments(for: job, folder: folder, resume: false, cluster: nil) }
        #expect(noCluster?.description == "hosts: job \(job.id) runs on launch hosts (10.0.0.1,10.0.0.2,10.0.0.2), and this gallery has none: start it with --launch-hosts")

        func message(_ gallery: Gallery, ranks: Int, hosts: [String]) -> String? {
            (#expect(throws: GalleryError.self) {
                _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: [:], ranks: ranks, hosts: hosts)
            })?.description
        }
        #expect(message(gallery, ranks: 2, hosts: ["10.0.0.1", "10.0.0.9"])
            == "hosts: '10.0.0.9' is not one of this gallery's launch hosts (10.0.0.1, 10.0.0.2)")
        #expect(message(gallery, ranks: 2, hosts: ["10.0.0.1"]) == "hosts: hosts names 1 hosts for 2 ranks: give one per rank")
        let plain = try Gallery(dataDirectory: folder.appendingPathComponent("plain"))
        #expect(message(plain, ranks: 2, hosts: ["10.0.0.1", "10.0.0.2"])?.hasPrefix("hosts: this gallery has no launch hosts") == true)
    }

    @Test func migratesOnceAndRefusesAnOlderSchema() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gallery-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("registry.sqlite").path
        let (model, _) = try seedRows(try Registry(path: path))
        let reopened = try Registry(path: path)
        #expect(try reopened.models() == [model])
        let applied = { try reopened.database.read { try $0.rows(#"SELECT "id" FROM "schemaMigration" ORDER BY "id""#, []) } }
        #expect(try applied() == [["id": .text("v1")], ["id": .text("v2-ranks")], ["id": .text("v3-hosts")]])

        // A registry from before v2 (no job.ranks): its job rows get ranks 1 when it is opened.
        let job = queuedJob(model, try #require(try reopened.datasets().first), createdAt: Date(timeIntervalSince1970: 1_780_000_009))
        try reopened.insert(job)
        try reopened.database.write { db in
            try db.execute(#"ALTER TABLE "job" DROP COLUMN "ranks""#, [])
            try db.execute(#"DELETE FROM "schemaMigration" WHERE "id" = 'v2-ranks'"#, [])
        }
        #expect(try applied() == [["id": .text("v1")], ["id": .text("v3-hosts")]])
        let upgraded = try Registry(path: path)
        #expect(try upgraded.job(job.id)?.ranks == 1)
        #expect(try applied() == [["id": .text("v1")], ["id": .text("v2-ranks")], ["id": .text("v3-hosts")]])

        let old = folder.appendingPathComponent("old.sqlite").path
        try SQLiteDatabase(path: old).write { try $0.execute("CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)", []) }
        let error = #expect(throws: GalleryError.self) { try Registry(path: old) }
        #expect(error?.message == "\(old) is a registry of an earlier Temper (its GRDB schema); move it aside to start a new one")
    }

    @Test func refusesADatabaseURLItCannotUse() throws {
        let error = #expect(throws: GalleryError.self) { try PostgresDatabase(url: "mysql://x@127.0.0.1/db") }
        #expect(error?.message == "--database mysql://x@127.0.0.1/db: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        // Nothing listens on port 9 (discard): the error names where it tried.
        let refused = #expect(throws: GalleryError.self) { try PostgresDatabase(url: "postgres://temper@127.0.0.1:9/temper") }
        #expect(refused?.message.hasPrefix("PostgreSQL at postgres://temper@127.0.0.1:9/temper: ") == true, "\(refused?.message ?? "")")
    }
}

@Suite struct GalleryAPITests {
    @Test func answersTheCatalogueAndErrorsAsJSON() async throws {
        let gallery = try makeGallery()
        let app = Application(router: GalleryAPI.buildRouter(gallery: gallery, requireTokens: false))
        try await app.test(.router) { client in
            let body = ByteBuffer(string: #"{"path": "\#(tinyLlama.path)", "name": "tiny"}"#)
            let created = try await client.execute(uri: "/api/models", method: .post, body: body)
            #expect(created.status == .created)
            let model = try JSONDecoder.gallery.decode(ModelRecord.self, from: Data(buffer: created.body))
            #expect(model.name == "tiny")
            let list = try await client.execute(uri: "/api/models", method: .get)
            #expect(try JSONDecoder.gallery.decode([ModelRecord].self, from: Data(buffer: list.body)).map(\.id) == [model.id])

            let bad = try await client.execute(
                uri: "/api/datasets?name=chat.jsonl", method: .post, body: ByteBuffer(string: chatLines + "not json\n"))
            #expect(bad.status == .unprocessableContent)
            let text = String(buffer: bad.body)
            #expect(text.contains("1 bad record: chat.jsonl:3: "))
            #expect(text.contains(#""field" : "file""#))

            let missing = try await client.execute(uri: "/api/jobs", method: .post, body: ByteBuffer(string: #"{"method": "sft"}"#))
            #expect(missing.status == .badRequest)
            #expect(String(buffer: missing.body).contains("missing field 'dataset'"))
            let unknown = try await client.execute(uri: "/api/jobs/j-nope", method: .get)
            #expect(unknown.status == .notFound)
            #expect(String(buffer: unknown.body).contains("no job 'j-nope'"))
        }
    }

    @Test func requiresATokenBeyondLoopback() async throws {
        let gallery = try makeGallery()
        let token = try GalleryService.createToken(dataDirectory: gallery.dataDirectory, name: "ci")
        #expect(token.hasPrefix("tg_") && token.count == 67)
        // Only the hash is stored.
        let stored = try String(contentsOf: gallery.dataDirectory.appendingPathComponent("registry.sqlite"), encoding: .isoLatin1)
        #expect(!stored.contains(token))
        let app = Application(router: GalleryAPI.buildRouter(gallery: gallery, requireTokens: true))
        try await app.test(.router) { client in
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/api/models", method: .get).status == .unauthorized)
            let wrong = try await client.execute(uri: "/api/models", method: .get, headers: [.authorization: "Bearer tg_nope"])
            #expect(wrong.status == .unauthorized)
            let right = try await client.execute(uri: "/api/models", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(right.status == .ok)
        }
    }
}

extension JSONDecoder {
    static var gallery: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

@Suite struct GalleryWebTests {
    /// A gallery with one finished SFT job (its run folder written by hand) and its output.
    func finishedJob() throws -> (Gallery, JobRecord, OutputRecord) {
        let gallery = try makeGallery()
        let model = try gallery.importModel(from: tinyLlama, name: "tiny")
        let dataset = try gallery.addDataset(name: "chat.jsonl", contents: Data(chatLines.utf8))
        _ = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: ["max_steps": .number(2)])
        let job = try #require(try gallery.registry.claimNextJob())
        let run = gallery.jobFolder(job.id).appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA"}"#.utf8).write(to: run.appendingPathComponent("adapter_config.json"))
        try Data([1, 2, 3]).write(to: run.appendingPathComponent("adapter_model.safetensors"))
        try Data("{\"step\":1,\"loss\":2.5}\n{\"step\":2,\"loss\":2.0}\n".utf8).write(to: run.appendingPathComponent("metrics.jsonl"))
        let output = try gallery.registerOutput(of: job)
        return (gallery, try #require(try gallery.registry.job(job.id)), output)
    }

    @Test func registersOnlyTheOutputFilesWithTheirHashes() throws {
        let (gallery, job, output) = try finishedJob()
        #expect(job.state == .succeeded)
        #expect(output.kind == "adapter")
        let files = try gallery.registry.files(of: output.id)
        #expect(files.map(\.name) == ["adapter_config.json", "adapter_model.safetensors"])
        #expect(files.last?.sha256 == "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81")  // sha256 of 01 02 03
        #expect(output.sha256 == ArtifactStore.manifestHash(files))
        #expect(output.bytes == 21 + 3)
    }

    @Test func rendersThePagesAndFollowsAJob() async throws {
        let (gallery, job, output) = try finishedJob()
        let app = Application(router: GalleryAPI.buildRouter(gallery: gallery, requireTokens: false))
        try await app.test(.router) { client in
            let catalogue = String(buffer: try await client.execute(uri: "/", method: .get).body)
            #expect(catalogue.contains(#"<strong>tiny</strong>"#))
            #expect(catalogue.contains("llama · 0.1M parameters · context 512"))
            #expect(catalogue.contains(#"<a href="/outputs/\#(output.id)">"#))
            let train = String(buffer: try await client.execute(uri: "/train?output=\(output.id)", method: .get).body)
            #expect(train.contains(#"<option value="\#(output.id)" selected>"#))
            #expect(train.contains("<strong>GRPO</strong>: needs prompts only"))
            let jobs = String(buffer: try await client.execute(uri: "/jobs", method: .get).body)
            #expect(jobs.contains(#"<td class="state-succeeded">succeeded</td>"#))
            // A job from a base model names no output it started from.
            let jobPage = String(buffer: try await client.execute(uri: "/jobs/\(job.id)", method: .get).body)
            #expect(jobPage.contains("sft of <a href=\"/\">\(job.modelID)</a> on \(job.datasetID) ·"), "\(jobPage.prefix(3000))")
            #expect(!jobPage.contains("from output"))
            // No exit reason: its separator is hidden with it.
            #expect(jobPage.contains(#"<span id="reason-part" hidden> · <span id="reason" class="muted"></span></span>"#), "\(jobPage.prefix(3000))")
            let page = String(buffer: try await client.execute(uri: "/outputs/\(output.id)", method: .get).body)
            #expect(page.contains(#"aria-label="lineage of \#(output.id)""#))
            #expect(page.contains("<title>produced</title>"))
            #expect(page.contains("sft job, succeeded"))
            // A finished job's events: its detail once, then the end.
            let events = String(buffer: try await client.execute(uri: "/api/jobs/\(job.id)/events", method: .get).body)
            #expect(events.hasPrefix("data: {"))
            #expect(events.contains(#""loss":2.5"#))
            #expect(events.hasSuffix("event: end\ndata: {}\n\n"))
            #expect(try await client.execute(uri: "/jobs/j-nope", method: .get).status == .notFound)
        }
    }
}

@Suite struct S3SignerTests {
    /// AWS's own example (S3 API reference, "Signature Calculations for the Authorization Header",
    /// GET Object): the same Authorization header.
    @Test func signsAWSsExampleGetObject() throws {
        let signer = S3Signer(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let headers = signer.sign(
            method: "GET", url: URL(string: "https://examplebucket.s3.amazonaws.com/test.txt")!, headers: ["Range": "bytes=0-9"],
            payloadSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", date: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(headers["x-amz-date"] == "20130524T000000Z")
        #expect(headers["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func parsesTheStoreURL() throws {
        let bucket = try S3Bucket(
            storeURL: "s3://artifacts?endpoint=http://127.0.0.1:9000&region=eu-west-1",
            environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"])
        #expect(bucket.objectURL("sha256/ab").absoluteString == "http://127.0.0.1:9000/artifacts/sha256/ab")
        #expect(bucket.signer.region == "eu-west-1")
        let missing = #expect(throws: GalleryError.self) { try S3Bucket(storeURL: "s3://artifacts", environment: [:]) }
        #expect(missing?.message == "--store s3://… needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
        #expect(throws: GalleryError.self) { try S3Bucket(storeURL: "/tmp/x", environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]) }
    }
}

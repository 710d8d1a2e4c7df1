import Foundation
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

@Suite struct RegistryTests {
    @Test func importsAModelWithItsCardAndFiles() throws {
        let gallery = try makeGallery()
        let model = try gallery.importModel(from: tinyLlama, name: "tiny")
        #expect(model.architecture == "llama")
        #expect(model.name == "tiny")
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

    @Test func queuesClaimsCancelsAndRequeuesJobs() throws {
        let gallery = try makeGallery()
        let model = try gallery.importModel(from: tinyLlama)
        let dataset = try gallery.addDataset(name: "chat.jsonl", contents: Data(chatLines.utf8))
        #expect(dataset.format == "chat")
        #expect(dataset.rows == 2)
        let first = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: ["max_steps": .number(1)])
        let second = try gallery.submitJob(method: .sft, modelID: model.id, datasetID: dataset.id, recipe: [:])
        // The recipe file is the resolved one: the gallery's paths plus the caller's fields.
        let recipe = try JSONSerialization.jsonObject(with: Data(first.recipe.utf8)) as? [String: Any]
        #expect(recipe?["max_steps"] as? Int == 1)
        #expect(recipe?["data"] as? String == dataset.path)
        #expect(recipe?["output"] as? String == gallery.jobFolder(first.id).appendingPathComponent("run").path)

        let claimed = try #require(try gallery.registry.claimNextJob())
        #expect(claimed.id == first.id)
        #expect(claimed.state == .running)
        #expect(claimed.attempts == 1)
        #expect(try gallery.registry.requestCancel(jobID: second.id)?.state == .cancelled)
        #expect(try gallery.registry.claimNextJob() == nil)
        // A service that died with the job running: queued again, with its attempts kept.
        #expect(try gallery.registry.requeueOrphanedJobs() == [first.id])
        let again = try #require(try gallery.registry.claimNextJob())
        #expect(again.id == first.id)
        #expect(again.attempts == 2)
        let lineage = try gallery.registry.ancestry(of: first.id)
        #expect(Set(lineage.map(\.relation)) == ["base_model", "dataset"])
        #expect(Set(lineage.map(\.fromID)) == [model.id, dataset.id])
    }

    @Test func refusesJobsThatCannotRun() throws {
        let gallery = try makeGallery()
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
        #expect(try gallery.registry.jobs().isEmpty)
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

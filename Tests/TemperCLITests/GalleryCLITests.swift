import Foundation
import FoundationNetworking
import TemperTestSupport
import Testing

/// `temper gallery serve` end to end on the real SmolLM2: import the model, upload datasets, an SFT job
/// through the API, a DPO job from its output (lineage SFT -> DPO), cancel, and a `kill -9` of the
/// service during a job that then resumes from its checkpoint with every artifact intact.
@Suite(.serialized) struct GalleryCLITests {
    /// A gallery service over a data folder, talked to over HTTP.
    final class Gallery {
        let server: ServerProcess
        let dataDirectory: URL

        init(dataDirectory: URL, options: [String] = []) throws {
            self.dataDirectory = dataDirectory
            server = try ServerProcess(["--data-dir", dataDirectory.path] + options, command: ["gallery", "serve"])
        }

        init(server: ServerProcess, dataDirectory: URL) {
            self.server = server
            self.dataDirectory = dataDirectory
        }

        func request(_ method: String, _ path: String, json: String? = nil, body: Data? = nil) async throws -> (Int, [String: Any]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)\(path)")!)
            request.httpMethod = method
            request.httpBody = json.map { Data($0.utf8) } ?? body
            let (data, response) = try await URLSession.shared.data(for: request)
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? ["text": String(decoding: data, as: UTF8.self)]
            return ((response as! HTTPURLResponse).statusCode, object)
        }

        func created(_ path: String, json: String? = nil, body: Data? = nil) async throws -> String {
            let (status, object) = try await request("POST", path, json: json, body: body)
            #expect(status == 201, "\(path): \(object)")
            return try #require(object["id"] as? String)
        }

        /// Polls a job until it leaves queued/running (at most `seconds`); returns its detail.
        func finished(_ job: String, seconds: Double = 300) async throws -> [String: Any] {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let (_, detail) = try await request("GET", "/api/jobs/\(job)")
                let state = (detail["job"] as? [String: Any])?["state"] as? String
                if state != "queued" && state != "running" { return detail }
                try await Task.sleep(for: .milliseconds(500))
            }
            Issue.record("job \(job) did not finish in \(seconds) s")
            return [:]
        }
    }

    static func lines(_ file: String, _ count: Int) throws -> Data {
        let text = try String(contentsOf: ModelCLITests.root.appendingPathComponent(file), encoding: .utf8)
        return Data((text.split(separator: "\n").prefix(count).joined(separator: "\n") + "\n").utf8)
    }

    @Test func trainsRegistersAndResumesJobsThroughTheAPI() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gallery-\(UUID())")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("gallery")
        // Launch hosts: this machine, reached through `sh -c` (the path ssh takes, without a server).
        var gallery = try Gallery(dataDirectory: data, options: ["--launch-hosts", "127.0.0.1", "--launch-through", "sh -c"])
        // A failed expectation must not leave the service (and its deployments) running.
        defer { _ = gallery.server.stop() }

        // The GGUF itself: the gallery converts it to a Hugging Face folder.
        let modelID = try await gallery.created("/api/models", json: #"{"path": "\#(ModelCLITests.gguf.path)", "name": "SmolLM2-135M-Instruct"}"#)
        let model = data.appendingPathComponent("models/\(modelID)")
        let (_, card) = try await gallery.request("GET", "/api/models/\(modelID)")
        #expect((card["model"] as? [String: Any])?["parameters"] as? Int == 134_515_008)
        #expect((card["model"] as? [String: Any])?["architecture"] as? String == "llama")
        let chat = try await gallery.created("/api/datasets?name=chat.jsonl", body: Self.lines("Data/sft-demo.jsonl", 8))
        let pairs = try await gallery.created("/api/datasets?name=pairs.jsonl", body: Self.lines("Data/dpo-demo.jsonl", 4))
        let (badStatus, bad) = try await gallery.request(
            "POST", "/api/datasets?name=broken.jsonl", body: Self.lines("Data/sft-demo.jsonl", 2) + Data("{oops\n".utf8))
        #expect(badStatus == 422)
        #expect(((bad["error"] as? [String: Any])?["message"] as? String)?.contains("broken.jsonl:3: ") == true, "\(bad)")

        // SFT (LoRA, 2 steps, data-parallel over 2 processes on the launch hosts), then DPO from its output.
        let sft = try await gallery.created(
            "/api/jobs",
            json: #"{"method": "sft", "model": "\#(modelID)", "dataset": "\#(chat)", "ranks": 2, "hosts": ["127.0.0.1", "127.0.0.1"], "recipe": {"method": "lora", "max_steps": 2, "batch_size": 2}}"#)
        let sftDetail = try await gallery.finished(sft)
        #expect((sftDetail["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(sftDetail)")
        #expect((sftDetail["job"] as? [String: Any])?["ranks"] as? Int == 2)
        // Rank 0 alone writes the metrics; the log has both ranks' lines.
        #expect((sftDetail["metrics"] as? [[String: Any]])?.compactMap { $0["step"] as? Int } == [1, 2])
        // The resource samples cover the ranks, not only the launcher (each rank holds the model).
        let sftMemory = ((sftDetail["resources"] as? [[String: Any]]) ?? []).compactMap { $0["rss_mb"] as? Double }.max() ?? 0
        #expect(sftMemory > 600, "largest RSS sample \(sftMemory) MB")
        let (_, sftLog) = try await gallery.request("GET", "/api/jobs/\(sft)/logs")
        let sftLogText = sftLog["text"] as? String ?? ""
        #expect(sftLogText.contains("temper launch --ranks 2 --hosts 127.0.0.1,127.0.0.1 --through sh -c --port ")
            && sftLogText.contains("[rank 1] step 2/2"), "\(sftLogText.suffix(2000))")
        let sftOutput = try #require((sftDetail["output"] as? [String: Any])?["id"] as? String)
        let download = try await URLSession.shared.data(
            from: URL(string: "http://127.0.0.1:\(gallery.server.port)/api/outputs/\(sftOutput)/files/adapter_config.json")!)
        #expect(download.0 == FileManager.default.contents(atPath: data.appendingPathComponent("outputs/\(sftOutput)/adapter_config.json").path))
        #expect((download.1 as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Disposition") == #"attachment; filename="adapter_config.json""#)
        #expect((sftDetail["output"] as? [String: Any])?["kind"] as? String == "adapter")
        let dpo = try await gallery.created(
            "/api/jobs", json: #"{"method": "dpo", "dataset": "\#(pairs)", "output": "\#(sftOutput)", "recipe": {"max_steps": 1, "batch_size": 2}}"#)
        let dpoDetail = try await gallery.finished(dpo)
        #expect((dpoDetail["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(dpoDetail)")
        let dpoOutput = try #require((dpoDetail["output"] as? [String: Any])?["id"] as? String)
        let (_, outputCard) = try await gallery.request("GET", "/api/outputs/\(dpoOutput)")
        let edges = Set(((outputCard["lineage"] as? [[String: Any]]) ?? []).map { "\($0["fromID"]!) \($0["relation"]!) \($0["toID"]!)" })
        #expect(edges == [
            "\(dpo) produced \(dpoOutput)", "\(modelID) base_model \(dpo)", "\(pairs) dataset \(dpo)", "\(sftOutput) starts_from \(dpo)",
            "\(sft) produced \(sftOutput)", "\(modelID) base_model \(sft)", "\(chat) dataset \(sft)",
        ])

        // Evaluate the SFT output against its base on the data it was trained on: a lower loss.
        let evaluation = try await gallery.created(
            "/api/evaluations", json: #"{"output": "\#(sftOutput)", "dataset": "\#(chat)", "kind": "loss", "compare_base": true}"#)
        let evaluated = try await gallery.finished(evaluation)
        #expect((evaluated["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(evaluated)")
        let result = evaluated["evaluation"] as? [String: Any]
        let tuned = ((result?["scores"] as? [String: Any])?["metrics"] as? [String: Any])?["loss"] as? Double ?? .nan
        let original = ((result?["base"] as? [String: Any])?["metrics"] as? [String: Any])?["loss"] as? Double ?? .nan
        #expect(result?["records"] as? Int == 8)
        #expect(tuned < original, "loss \(tuned) vs base \(original)")
        let (wrongKind, wrong) = try await gallery.request(
            "POST", "/api/evaluations", json: #"{"output": "\#(sftOutput)", "dataset": "\#(chat)", "kind": "preference"}"#)
        #expect(wrongKind == 422)
        #expect(((wrong["error"] as? [String: Any])?["message"] as? String)?.contains("a preference evaluation needs preference data") == true)

        // Compress the SFT output (merged) to a q8_0 GGUF, its quality measured on a text dataset.
        let text = try String(contentsOf: ModelCLITests.root.appendingPathComponent("Data/perplexity-text.txt"), encoding: .utf8)
        let textLines = try text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            .map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }.joined(separator: "\n")
        let heldOut = try await gallery.created("/api/datasets?name=heldout.jsonl", body: Data(textLines.utf8))
        let compression = try await gallery.created(
            "/api/compressions", json: #"{"output": "\#(sftOutput)", "dataset": "\#(heldOut)", "format": "q8_0"}"#)
        let compressed = try await gallery.finished(compression)
        #expect((compressed["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(compressed)")
        let report = compressed["compression"] as? [String: Any]
        let before = report?["bytes_before"] as? Int ?? 0, after = report?["bytes_after"] as? Int ?? 0
        #expect(after > 0 && Double(after) < 0.3 * Double(before), "\(before) -> \(after)")
        let q8 = (report?["quality"] as? [[String: Any]])?.last
        #expect((q8?["perplexityChange"] as? Double).map { abs($0) < 0.02 } == true, "\(String(describing: q8))")
        #expect((q8?["greedyAgreement"] as? Double).map { $0 > 0.9 } == true, "\(String(describing: q8))")
        let gguf = try #require((compressed["output"] as? [String: Any])?["id"] as? String)
        #expect((compressed["output"] as? [String: Any])?["kind"] as? String == "gguf")
        let (_, ggufCard) = try await gallery.request("GET", "/api/outputs/\(gguf)")
        let ggufEdges = Set(((ggufCard["lineage"] as? [[String: Any]]) ?? []).map { "\($0["fromID"]!) \($0["relation"]!) \($0["toID"]!)" })
        #expect(ggufEdges.isSuperset(of: ["\(sftOutput) compressed_by \(compression)", "\(compression) produced \(gguf)"]))
        #expect(try await gallery.request("POST", "/api/deployments", json: #"{"output": "\#(gguf)"}"#).0 == 422)

        // The same output in the engine's int8 format: a model folder `temper serve` loads as it is, its
        // quality measured on those very weights; it deploys, but is no base to train.
        let engineCompression = try await gallery.created(
            "/api/compressions", json: #"{"output": "\#(sftOutput)", "dataset": "\#(heldOut)", "format": "int8"}"#)
        let engineCompressed = try await gallery.finished(engineCompression)
        #expect((engineCompressed["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(engineCompressed)")
        let engineReport = engineCompressed["compression"] as? [String: Any]
        let int8 = (engineReport?["quality"] as? [[String: Any]])?.last
        #expect((int8?["perplexityChange"] as? Double).map { abs($0) < 0.02 } == true, "\(String(describing: int8))")
        #expect((int8?["greedyAgreement"] as? Double).map { $0 > 0.9 } == true, "\(String(describing: int8))")
        #expect((engineReport?["bytes_after"] as? Int ?? .max) < (engineReport?["bytes_before"] as? Int ?? 0) / 2, "\(String(describing: engineReport))")
        let quantized = try #require((engineCompressed["output"] as? [String: Any])?["id"] as? String)
        #expect((engineCompressed["output"] as? [String: Any])?["kind"] as? String == "quantized")
        let (refusedStatus, refused) = try await gallery.request(
            "POST", "/api/jobs", json: #"{"method": "sft", "dataset": "\#(chat)", "output": "\#(quantized)", "recipe": {"max_steps": 1}}"#)
        #expect(refusedStatus == 422)
        #expect(((refused["error"] as? [String: Any])?["message"] as? String)?.contains("is quantized for serving") == true, "\(refused)")
        let quantizedFolder = data.appendingPathComponent("outputs/\(quantized)")
        let quantizedAnswer = try TemperProcess.run(["generate", "--model", quantizedFolder.path, "--prompt", "The capital of France is", "--max-tokens", "8"])
        #expect(quantizedAnswer.exitCode == 0 && !quantizedAnswer.standardOutput.isEmpty, "\(quantizedAnswer.standardError)")
        let (deployedStatus, deployedQuantized) = try await gallery.request("POST", "/api/deployments", json: #"{"output": "\#(quantized)"}"#)
        #expect(deployedStatus == 201, "\(deployedQuantized)")
        let quantizedDeployment = try #require(deployedQuantized["id"] as? String)
        var completion = URLRequest(url: URL(string: "\(try #require(deployedQuantized["url"] as? String))/completions")!)
        completion.httpMethod = "POST"
        completion.setValue("application/json", forHTTPHeaderField: "Content-Type")
        completion.httpBody = Data(#"{"model": "\#(quantized)", "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}"#.utf8)
        let completed = try JSONSerialization.jsonObject(with: try await URLSession.shared.data(for: completion).0) as? [String: Any]
        // `temper generate` ends its answer with a newline.
        #expect(((completed?["choices"] as? [[String: Any]])?.first?["text"] as? String).map { $0 + "\n" } == quantizedAnswer.standardOutput,
                "\(String(describing: completed))")
        #expect(try await gallery.request("POST", "/api/deployments/\(quantizedDeployment)/stop").0 == 202)

        // Deploy the SFT adapter (`temper gallery deploy`) and chat with it through the openai client:
        // the same greedy answer as `temper generate` with that adapter.
        let deploy = try TemperProcess.run(["gallery", "deploy", sftOutput, "--gallery", "http://127.0.0.1:\(gallery.server.port)"])
        try #require(deploy.exitCode == 0, "\(deploy.standardError)")
        let deploymentURL = deploy.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(deploymentURL.hasPrefix("http://127.0.0.1:") && deploymentURL.hasSuffix("/v1"))
        let venv = try runProgram("Tools/make-venv.sh", [".venv-serve-test", "Tools/serve-test/requirements.txt"], in: ModelCLITests.root)
        try #require(venv.exitCode == 0, "\(venv.standardError)")
        let python = venv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let prompt = "What is the capital of France?"
        let answer = try runProgram(python, ["Tools/gallery-test/openai_chat.py", deploymentURL, sftOutput, prompt, "12"], in: ModelCLITests.root)
        #expect(answer.exitCode == 0, "\(answer.standardError)")
        let expected = try TemperProcess.run([
            "generate", "--model", model.path, "--adapter", data.appendingPathComponent("outputs/\(sftOutput)").path, "--chat",
            "--prompt", prompt, "--max-tokens", "12",
        ])
        #expect(!expected.standardOutput.isEmpty)
        #expect(answer.standardOutput == expected.standardOutput)
        let listed = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(gallery.server.port)/api/deployments")!).0
        let deployments = try #require(try JSONSerialization.jsonObject(with: listed) as? [[String: Any]])
        // Newest first: the adapter's server, running; the int8 output's, stopped.
        #expect(deployments.count == 2)
        #expect(deployments.last?["state"] as? String == "stopped", "\(deployments)")
        #expect(deployments.first?["state"] as? String == "running", "\(deployments)")
        #expect(deployments.first?["outputIDs"] as? [String] == [sftOutput])
        #expect(deployments.first?["url"] as? String == deploymentURL)

        // The web UI in headless Chromium: catalogue, a validation error in the Train form, the job's
        // curve, the lineage graph and the playground; screenshots land in .build/gallery-ui/.
        let driver = try runProgram("Tools/gallery-test/setup-chromium.sh", [], in: ModelCLITests.root)
        try #require(driver.exitCode == 0, "\(driver.standardError)")
        let uiVenv = try runProgram("Tools/make-venv.sh", [".venv-gallery-ui", "Tools/gallery-test/requirements-ui.txt"], in: ModelCLITests.root)
        try #require(uiVenv.exitCode == 0, "\(uiVenv.standardError)")
        let ui = try runProgram(
            uiVenv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines),
            [
                "Tools/gallery-test/ui_check.py", "http://127.0.0.1:\(gallery.server.port)",
                driver.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), ".build/gallery-ui", sft, dpoOutput,
                try #require(deployments.first?["id"] as? String), expected.standardOutput,
            ], in: ModelCLITests.root)
        #expect(ui.exitCode == 0, "\(ui.standardOutput)\(ui.standardError)")
        #expect(ui.standardOutput.components(separatedBy: "ok: ").count == 8, "\(ui.standardOutput)")

        // Cancel: the trainer checkpoints and stops.
        let long = #"{"method": "sft", "model": "\#(modelID)", "dataset": "\#(chat)", "recipe": {"max_steps": 40, "batch_size": 2, "save_every": 2}}"#
        let cancelled = try await gallery.created("/api/jobs", json: long)
        try await Self.waitForCheckpoint(data.appendingPathComponent("jobs/\(cancelled)/run/checkpoints"))
        #expect(try await gallery.request("POST", "/api/jobs/\(cancelled)/cancel").0 == 202)
        let cancelledDetail = try await gallery.finished(cancelled)
        #expect((cancelledDetail["job"] as? [String: Any])?["state"] as? String == "cancelled", "\(cancelledDetail)")

        // kill -9 of the service while a job runs; the restarted service resumes it from its checkpoint.
        let resumed = try await gallery.created(
            "/api/jobs", json: #"{"method": "sft", "model": "\#(modelID)", "dataset": "\#(chat)", "recipe": {"max_steps": 6, "batch_size": 2, "save_every": 2}}"#)
        try await Self.waitForCheckpoint(data.appendingPathComponent("jobs/\(resumed)/run/checkpoints"))
        kill(gallery.server.process.processIdentifier, SIGKILL)
        gallery.server.process.waitUntilExit()
        gallery = try Gallery(dataDirectory: data)
        let resumedDetail = try await gallery.finished(resumed)
        let job = resumedDetail["job"] as? [String: Any]
        #expect(job?["state"] as? String == "succeeded", "\(resumedDetail)")
        #expect(job?["attempts"] as? Int == 2)
        let (_, log) = try await gallery.request("GET", "/api/jobs/\(resumed)/logs")
        #expect((log["text"] as? String)?.contains("resumed from step-") == true)
        #expect((resumedDetail["metrics"] as? [[String: Any]])?.last?["step"] as? Int == 6)
        #expect(((resumedDetail["resources"] as? [[String: Any]]) ?? []).contains { ($0["rss_mb"] as? Double ?? 0) > 100 })

        // Every artifact still hashes to what the registry says (the unit tests check the hashing).
        let stopped = gallery.server.stop()
        #expect(stopped.status == 0, "\(stopped.log)")
        let check = try TemperProcess.run(["gallery", "verify", "--data-dir", data.path])
        #expect(check.exitCode == 0, "\(check.standardError)")
        #expect(check.standardOutput.hasPrefix("all "))
        #expect(check.standardOutput.contains(" artifacts match their sha256"))
    }

    @Test func refusesToServeBeyondLoopbackWithoutATokenThenRequiresIt() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gallery-\(UUID())")
        defer { try? FileManager.default.removeItem(at: data) }
        let refused = try TemperProcess.run(["gallery", "serve", "--data-dir", data.path, "--host", "0.0.0.0", "--port", "0"])
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("--host 0.0.0.0 is not a loopback address: create a token first"))
        let token = try TemperProcess.run(["gallery", "token", "create", "--data-dir", data.path, "--name", "ci"])
        #expect(token.exitCode == 0)
        let secret = token.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("tg_"))
        let server = try ServerProcess(["--data-dir", data.path, "--host", "0.0.0.0"], command: ["gallery", "serve"])
        defer { _ = server.stop() }
        // One service per data folder (its SQLite registry has one job worker).
        let second = try TemperProcess.run(["gallery", "serve", "--data-dir", data.path, "--port", "0"])
        #expect(second.exitCode == 1)
        #expect(second.standardError.contains("another gallery is serving \(data.path)"), "\(second.standardError)")
        func status(_ key: String?) async throws -> Int {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)/api/jobs")!)
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            return (try await URLSession.shared.data(for: request).1 as! HTTPURLResponse).statusCode
        }
        #expect(try await status(nil) == 401)
        #expect(try await status("tg_wrong") == 401)
        #expect(try await status(secret) == 200)
    }

    /// Schemathesis (pinned in Tools/gallery-test/requirements.txt) fuzzes every operation of the served
    /// OpenAPI document: no 5xx, and every response matches the document.
    @Test func fuzzedAPIAnswersAsDocumented() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gallery-fuzz-\(UUID())")
        defer { try? FileManager.default.removeItem(at: data) }
        let venv = try runProgram("Tools/make-venv.sh", [".venv-gallery-test", "Tools/gallery-test/requirements.txt"], in: ModelCLITests.root)
        try #require(venv.exitCode == 0, "\(venv.standardError)")
        let server = try ServerProcess(["--data-dir", data.path], command: ["gallery", "serve"])
        defer { _ = server.stop() }
        let fuzz = try runProgram(
            "Tools/gallery-test/schemathesis_check.sh",
            ["http://127.0.0.1:\(server.port)", venv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)],
            in: ModelCLITests.root)
        #expect(fuzz.exitCode == 0, "\(fuzz.standardOutput.suffix(4000))\(fuzz.standardError.suffix(2000))")
        let summary = fuzz.standardOutput.components(separatedBy: "\n").first { $0.contains(" generated, ") } ?? ""
        let counts = summary.split(separator: " ").compactMap { Int($0) }
        #expect(counts.count == 2 && counts[0] == counts[1] && counts[0] > 500, "\(summary)")
    }

    /// With `--store s3://…` (moto's S3 server, pinned in Tools/gallery-test/requirements-s3.txt), every
    /// artifact is in the bucket too: with the data folder's blobs deleted, `verify` fetches them back.
    @Test func keepsArtifactsInAnS3Bucket() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gallery-s3-\(UUID())")
        defer { try? FileManager.default.removeItem(at: work) }
        let venv = try runProgram("Tools/make-venv.sh", [".venv-gallery-s3", "Tools/gallery-test/requirements-s3.txt"], in: ModelCLITests.root)
        try #require(venv.exitCode == 0, "\(venv.standardError)")
        let python = URL(fileURLWithPath: venv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), relativeTo: ModelCLITests.root)
        let s3 = try ServerProcess([], command: [ModelCLITests.root.appendingPathComponent("Tools/gallery-test/s3_server.py").path], program: python)
        defer { _ = s3.stop() }
        let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"]
        let store = "s3://temper-artifacts?endpoint=http://127.0.0.1:\(s3.port)"
        let data = work.appendingPathComponent("gallery")
        let server = try ServerProcess(["--data-dir", data.path, "--store", store], command: ["gallery", "serve"], environment: credentials)
        let gallery = try Gallery(server: server, dataDirectory: data)
        let tiny = ModelCLITests.root.appendingPathComponent("Tests/Fixtures/models/llama-tied-llama3rope")
        _ = try await gallery.created("/api/models", json: #"{"path": "\#(tiny.path)"}"#)
        _ = try await gallery.created("/api/datasets?name=chat.jsonl", body: Self.lines("Data/sft-demo.jsonl", 4))
        #expect(server.stop().status == 0)

        // Every blob of the data folder gone: the bucket has them all.
        let artifacts = data.appendingPathComponent("artifacts")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: artifacts.path).filter { $0 != "tmp" }
        #expect(!blobs.isEmpty)
        for folder in blobs { try FileManager.default.removeItem(at: artifacts.appendingPathComponent(folder)) }
        let withoutBucket = try TemperProcess.run(["gallery", "verify", "--data-dir", data.path])
        #expect(withoutBucket.exitCode == 1)
        #expect(withoutBucket.standardError.contains("is missing or does not match"))
        let restored = try TemperProcess.run(["gallery", "verify", "--data-dir", data.path, "--store", store], environment: credentials)
        #expect(restored.exitCode == 0, "\(restored.standardError)")
        #expect(restored.standardOutput == "all 6 artifacts match their sha256, here and in the bucket\n")
        #expect(try TemperProcess.run(["gallery", "verify", "--data-dir", data.path]).exitCode == 0)
        let noKeys = try TemperProcess.run(["gallery", "verify", "--data-dir", data.path, "--store", store], environment: ["AWS_ACCESS_KEY_ID": ""])
        #expect(noKeys.exitCode != 0)
    }

    /// Two galleries share a PostgreSQL registry (a real server, started here) and a data folder: each
    /// claims its own job; one is killed with -9 mid-job, and the other takes the job over and resumes
    /// it from its checkpoint.
    @Test func workersShareAPostgreSQLRegistryAndTakeOverADeadOnesJob() async throws {
        let postgres = try PostgresServer()
        defer { postgres.stop() }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gallery-pg-\(UUID())")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("gallery")
        func worker() throws -> Gallery {
            let server = try ServerProcess(
                ["--data-dir", data.path, "--database", postgres.url, "--recovery-interval", "1"], command: ["gallery", "serve"])
            return Gallery(server: server, dataDirectory: data)
        }
        let first = try worker(), second = try worker()
        defer {
            _ = first.server.stop()
            _ = second.server.stop()
        }
        let modelID = try await first.created("/api/models", json: #"{"path": "\#(ModelCLITests.gguf.path)"}"#)
        let chat = try await first.created("/api/datasets?name=chat.jsonl", body: Self.lines("Data/sft-demo.jsonl", 8))
        let recipe = #"{"method": "sft", "model": "\#(modelID)", "dataset": "\#(chat)", "recipe": {"method": "lora", "max_steps": 8, "batch_size": 1, "save_every": 2}}"#
        let jobs = [try await first.created("/api/jobs", json: recipe), try await second.created("/api/jobs", json: recipe)]

        // Both running at once, one on each worker (each runs one job at a time); either API sees both.
        var running: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(120)
        while running.count < 2 && Date() < deadline {
            for job in jobs {
                let (_, detail) = try await second.request("GET", "/api/jobs/\(job)")
                let record = detail["job"] as? [String: Any]
                if record?["state"] as? String == "running", let key = record?["workerKey"] as? Int { running[job] = key }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(running.count == 2, "\(running)")
        #expect(Set(running.values).count == 2, "each worker claimed one job: \(running)")

        // kill -9 of the worker running the first job (the trainer's parent process), once it has a
        // checkpoint: the other takes the job over when its own is done.
        let orphan = jobs[0]
        let (_, orphanDetail) = try await second.request("GET", "/api/jobs/\(orphan)")
        let trainer = try #require((orphanDetail["job"] as? [String: Any])?["pid"] as? Int)
        let parent = try Self.parentProcess(of: trainer)
        let (victim, survivor) = parent == first.server.process.processIdentifier ? (first, second) : (second, first)
        #expect(parent == victim.server.process.processIdentifier)
        try await Self.waitForCheckpoint(data.appendingPathComponent("jobs/\(orphan)/run/checkpoints"))
        kill(victim.server.process.processIdentifier, SIGKILL)
        victim.server.process.waitUntilExit()
        for job in jobs {
            let detail = try await survivor.finished(job)
            #expect((detail["job"] as? [String: Any])?["state"] as? String == "succeeded", "\(detail)")
            #expect((detail["metrics"] as? [[String: Any]])?.last?["step"] as? Int == 8)
        }
        let (_, taken) = try await survivor.request("GET", "/api/jobs/\(orphan)")
        #expect((taken["job"] as? [String: Any])?["attempts"] as? Int == 2)
        let (_, log) = try await survivor.request("GET", "/api/jobs/\(orphan)/logs")
        let text = log["text"] as? String ?? ""
        #expect(text.contains("resumed from step-"), "\(text.suffix(2000))")
        #expect(text.contains("== attempt 2 on worker \(running[jobs[1]]!):"), "\(text.suffix(2000))")

        #expect(survivor.server.stop().status == 0)
        let check = try TemperProcess.run(["gallery", "verify", "--data-dir", data.path, "--database", postgres.url])
        #expect(check.exitCode == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains(" artifacts match their sha256"))
    }

    /// The parent of a process, from /proc/PID/stat (its fourth field).
    static func parentProcess(of pid: Int) throws -> Int32 {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // The name (second field) is in parentheses and may hold spaces: count from after it.
        let fields = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
        return Int32(fields[1])!
    }

    static func waitForCheckpoint(_ folder: URL) async throws {
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            if ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains(where: { $0.hasPrefix("step-") }) {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("no checkpoint in \(folder.path)")
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// A `temper serve` child process: started on a free loopback port, stopped with SIGTERM.
final class ServerProcess {
    let process = Process()
    let port: Int
    private let errors = Pipe()

    /// `temper <command> --port 0 <arguments>`: `serve` by default, `gallery serve` too; `program`
    /// replaces `temper` (with `command` as its whole arguments) for another server that prints the line.
    init(
        _ arguments: [String], command: [String] = ["serve"], program: URL = TemperProcess.executable,
        environment: [String: String] = [:]
    ) throws {
        process.executableURL = program
        process.arguments = program == TemperProcess.executable ? command + ["--port", "0"] + arguments : command
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // The one stdout line names the bound port.
        var seen = Data()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, !String(decoding: seen, as: UTF8.self).contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += chunk
        }
        let line = String(decoding: seen, as: UTF8.self)
        guard let range = line.range(of: "listening on http://"),
            let colon = line[range.upperBound...].prefix(while: { $0 != "\n" }).lastIndex(of: ":"),
            let port = Int(line[line.index(after: colon)...].prefix { $0.isNumber })
        else {
            process.terminate()
            throw ServerError(message: "no listening line: '\(line)'")
        }
        self.port = port
    }

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// SIGTERM; the exit status and everything the server wrote to stderr.
    func stop() -> (status: Int32, log: String) {
        if process.isRunning { process.terminate() }
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, log)
    }

    struct ServerError: Error { var message: String }
}

/// Runs a program (a path relative to `directory`, or absolute) in `directory`.
func runProgram(_ path: String, _ arguments: [String], in directory: URL) throws -> TemperProcess {
    try TemperProcess.run(arguments, program: URL(fileURLWithPath: path, relativeTo: directory), currentDirectory: directory)
}

/// `temper serve` on the real SmolLM2 with a LoRA adapter trained here, driven by the real `openai`
/// Python client (pinned in Tools/serve-test/requirements.txt; the venv is made on first use).
@Suite(.serialized) struct ServeCLITests {
    static let root = ModelCLITests.root

    @Test func openAIClientChatStreamingAdaptersAndLoad() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("temper-serve-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = work.appendingPathComponent("SmolLM2"), adapter = work.appendingPathComponent("adapter")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        let data = work.appendingPathComponent("sft.jsonl")
        let lines = try String(contentsOf: Self.root.appendingPathComponent("Data/sft-demo.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(12)
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let sft = try TemperProcess.run([
            "sft", "--model", model.path, "--data", data.path, "--output", adapter.path, "--method", "lora",
            "--lora-rank", "8", "--learning-rate", "3e-3", "--batch-size", "2", "--max-length", "128",
            "--max-steps", "6", "--save-every", "100",
        ])
        try #require(sft.exitCode == 0, "\(sft.standardError)")

        // What `temper generate` answers, greedy, for the client script's prompt.
        func generate(_ extra: [String]) throws -> String {
            let result = try TemperProcess.run(
                ["generate", "--model", model.path, "--chat", "--prompt", "Say hello in five words.", "--max-tokens", "8"] + extra)
            #expect(result.exitCode == 0, "\(result.standardError)")
            return String(result.standardOutput.dropLast())
        }
        let baseAnswer = try generate([]), adapterAnswer = try generate(["--adapter", adapter.path])
        #expect(baseAnswer != adapterAnswer, "the trained adapter should change the greedy answer")

        let venv = try runProgram("Tools/make-venv.sh", [".venv-serve-test", "Tools/serve-test/requirements.txt"], in: Self.root)
        try #require(venv.exitCode == 0, "\(venv.standardError)")
        let python = venv.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)

        let server = try ServerProcess(["--model", model.path, "--adapter", "tuned=\(adapter.path)", "--max-running", "32"])
        let checks = try runProgram(
            python, ["Tools/serve-test/openai_client_checks.py", "--base-url", server.baseURL, "--model", "SmolLM2", "--adapter-name", "tuned"],
            in: Self.root)
        let load = try runProgram(
            python, ["Tools/serve-test/load_test.py", "--base-url", server.baseURL, "--model", "SmolLM2", "--requests", "64", "--disconnects", "8"],
            in: Self.root)
        let (status, log) = server.stop()
        #expect(status == 0, "\(log)")
        #expect(log.contains("server stopped"))

        let report = try JSONSerialization.jsonObject(with: Data(checks.standardOutput.utf8)) as? [String: Any]
        let results = try #require(report?["checks"] as? [String: [String: Any]], "\(checks.standardOutput)\n\(checks.standardError)")
        for (name, result) in results { #expect(result["ok"] as? Bool == true, "\(name): \(result)") }
        #expect(report?["openai_version"] as? String == "3.60.0")
        // Through the server, greedy answers equal `temper generate`'s, base and adapter alike...
        #expect(results["chat"]?["text"] as? String == baseAnswer)
        #expect(results["chat_stream"]?["text"] as? String == baseAnswer)
        #expect(results["adapter"]?["text"] as? String == adapterAnswer)
        // ...and transformers' greedy tokens (Tests/Fixtures/smollm2, "chat": 8 tokens, EOS last).
        #expect(results["capital"]?["text"] as? String == "The capital of France is Paris.")
        #expect(results["capital"]?["completion_tokens"] as? Int == 8)
        #expect(results["capital"]?["logprob_tokens"] as? [String] == ["The", " capital", " of", " France", " is", " Paris", "."])
        #expect((results["chat_n2"]?["texts"] as? [String])?.count == 2)

        let loadReport = try JSONSerialization.jsonObject(with: Data(load.standardOutput.utf8)) as? [String: Any]
        #expect(loadReport?["ok"] as? Bool == true, "\(load.standardOutput)\n\(load.standardError)")
        #expect((loadReport?["errors"] as? [String])?.isEmpty == true)
        #expect(loadReport?["incomplete"] as? Int == 0)
        let final = loadReport?["final"] as? [String: Double]
        #expect(final?["temper_kv_blocks_used"] == 0)
        #expect(final?["temper_requests_running"] == 0)
        #expect(final?["temper_requests_cancelled_total"] == 8)
    }

    @Test func keysAreRequiredOffLoopbackAndChecked() async throws {
        let refused = try TemperProcess.run(["serve", "--model", "/nonexistent", "--host", "0.0.0.0"])
        #expect(refused.exitCode == 2)
        #expect(refused.standardError.contains("--host 0.0.0.0 is not a loopback address: refusing to serve it without --api-key-file"))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("temper-serve-keys-\(UUID())")
        defer { try? FileManager.default.removeItem(at: work) }
        let model = work.appendingPathComponent("SmolLM2"), keys = work.appendingPathComponent("keys.txt")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        try "# test keys\nsecret-one\n".write(to: keys, atomically: true, encoding: .utf8)
        let server = try ServerProcess(["--model", model.path, "--api-key-file", keys.path])
        defer { _ = server.stop() }
        func get(_ path: String, key: String?) async throws -> (Int, String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)\(path)")!)
            if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
            let (body, response) = try await URLSession.shared.data(for: request)
            return ((response as! HTTPURLResponse).statusCode, String(decoding: body, as: UTF8.self))
        }
        let (missing, missingBody) = try await get("/v1/models", key: nil)
        #expect(missing == 401)
        #expect(missingBody.contains("\"error\""))
        #expect(try await get("/v1/models", key: "wrong").0 == 401)
        let (allowed, models) = try await get("/v1/models", key: "secret-one")
        #expect(allowed == 200)
        #expect(models.contains("\"SmolLM2\""))
        #expect(try await get("/health", key: nil).0 == 200)
    }
}

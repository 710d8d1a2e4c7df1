import ArgumentParser
import Dispatch
import Foundation
import TemperEngine
import TemperServe

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over an OpenAI-compatible HTTP API.",
        discussion: """
            Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, \
            GET /metrics (Prometheus). Requests pick the base model by its served name and an adapter \
            by its NAME. Prints one line, `listening on http://HOST:PORT`, once the port is bound; \
            SIGTERM or SIGINT stops accepting, lets requests in flight finish, and exits 0. Binds \
            loopback by default; any other host needs --api-key-file.
            """)

    @Option(help: "A Hugging Face model folder.") var model: String
    @Option(
        parsing: .singleValue,
        help: ArgumentHelp("A LoRA adapter (PEFT folder) that requests select with model=NAME (repeatable).", valueName: "name=dir"))
    var adapter: [String] = []
    @Option(help: "Weights for inference: int8 (symmetric) or q4 (affine 4-bit) in groups of 64, bf16, or f32 (float32 through the fused decode kernel).")
    var quantize: String?
    @Option(help: "The address to bind.") var host = "127.0.0.1"
    @Option(help: "The port to bind; 0 picks a free one (the line printed names it).") var port = 8000
    @Option(help: "A file of API keys, one per line: /v1 requests then need `Authorization: Bearer <key>`.")
    var apiKeyFile: String?
    @Option(help: "The base model's name in requests and /v1/models (default: the model folder's name).")
    var servedModelName: String?
    @Option(name: .customLong("kv-cache-mb"), help: "MB of KV cache (default: the engine's, 1024).")
    var kvCacheMB: Int?
    @Option(help: "Sequences decoded together at most (default: the engine's).") var maxRunning: Int?
    @Option(help: "Requests waiting for admission at most; more get 429 (default: the engine's).") var maxWaiting: Int?

    /// `--adapter` values as (name, folder).
    var adapters: [(name: String, directory: String)] {
        adapter.map { value in
            let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts.first ?? "", parts.count == 2 ? parts[1] : "")
        }
    }

    var modelName: String {
        servedModelName ?? URL(fileURLWithPath: model).standardizedFileURL.lastPathComponent
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        if let quantize { _ = try inferenceFormat(quantize) }
        if !ServeSecurity.isLoopback(host: host) && apiKeyFile == nil {
            throw ValidationError(
                "--host \(host) is not a loopback address: refusing to serve it without --api-key-file "
                    + "(a file of bearer keys, one per line)")
        }
        if let kvCacheMB, kvCacheMB <= 0 { throw ValidationError("--kv-cache-mb must be positive, got \(kvCacheMB)") }
        if let maxRunning, maxRunning <= 0 { throw ValidationError("--max-running must be positive, got \(maxRunning)") }
        if let maxWaiting, maxWaiting < 0 { throw ValidationError("--max-waiting must be 0 or more, got \(maxWaiting)") }
        if let servedModelName, servedModelName.isEmpty { throw ValidationError("--served-model-name must not be empty") }
        var names: Set<String> = []
        for (index, (name, directory)) in adapters.enumerated() {
            guard !name.isEmpty, !directory.isEmpty else {
                throw ValidationError("--adapter takes NAME=DIR, got '\(adapter[index])'")
            }
            guard name != modelName else {
                throw ValidationError("--adapter name '\(name)' is the served model's name; pick another")
            }
            guard names.insert(name).inserted else { throw ValidationError("--adapter name '\(name)' is given twice") }
        }
    }

    func run() throws {
        let keys = try apiKeyFile.map(Self.readKeys) ?? []
        let lm = try loadLanguageModel(model, quantize: quantize)
        var engineConfiguration = InferenceEngine.Configuration()
        if let kvCacheMB { engineConfiguration.kvCacheBytes = kvCacheMB << 20 }
        if let maxRunning { engineConfiguration.maxRunningSequences = maxRunning }
        if let maxWaiting { engineConfiguration.maxWaitingRequests = maxWaiting }
        let engine = InferenceEngine(model: lm, configuration: engineConfiguration)
        for (name, directory) in adapters {
            try engine.registerAdapter(name: name, directory: URL(fileURLWithPath: directory))
            log("adapter \(name): \(directory)")
        }
        let configuration = ServeConfiguration(
            host: host, port: port, servedModelName: modelName, apiKeys: keys)
        log("serving \(modelName) (context \(engine.contextLength) tokens)\(keys.isEmpty ? "" : ", API keys required")")
        try Self.runBlocking {
            try await TemperServer.run(engine: engine, configuration: configuration) { host, port in
                FileHandle.standardOutput.write(Data(TemperServer.listeningLine(TemperServer.url(host: host, port: port)).utf8))
            }
        }
        log("server stopped")
    }

    static func readKeys(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--api-key-file \(path) cannot be read")
        }
        let keys = ServeSecurity.parseKeys(String(decoding: data, as: UTF8.self))
        guard !keys.isEmpty else { throw ValidationError("--api-key-file \(path) holds no keys (one per line)") }
        return keys
    }

    /// Runs async work to its end from this synchronous command (the root command is not async).
    static func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }

    /// The error of `runBlocking`'s task.
    private final class Outcome: @unchecked Sendable {
        // Safe: written only by the task before it signals the semaphore, read only after `wait()`
        // returns; the semaphore orders the two.
        var error: (any Error)?
    }
}

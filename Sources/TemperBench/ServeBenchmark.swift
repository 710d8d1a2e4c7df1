import Foundation
import TemperServe

/// Served throughput and time to first token: `temper serve` answering concurrent streamed chat
/// requests (continuous batching) against the same requests run through transformers' `generate`
/// in static batches, alternating in each round.
public struct ServeBenchmark {
    public struct Row: Codable, Sendable {
        public var system: String
        public var requests: Int
        public var completionTokens: Int
        public var tokensPerSecond: Double
        public var ttftP50: Double
        public var ttftP99: Double
        public var roundsKept: Int
        public var roundsDropped: Int
    }

    public struct Request: Codable, Sendable {
        public var messages: [[String: String]]
        public var max_tokens: Int
    }

    /// The temper executable that serves.
    public var executable: URL
    public var modelDirectory: URL
    public var requests: [Request]
    /// transformers' static batch size.
    public var peerBatchSize: Int
    public var rounds: Int
    /// Python with the `openai` client (the serve-test venv), and with transformers (the bench venv).
    public var clientPython: String
    public var clientScript: String
    public var peerPython: String?
    public var peerScript: String
    public var serverArguments: [String]
    public var contentionLimit: Double

    public init(
        executable: URL, modelDirectory: URL, requests: [Request], peerBatchSize: Int, rounds: Int,
        clientPython: String, clientScript: String, peerPython: String?, peerScript: String,
        serverArguments: [String], contentionLimit: Double
    ) {
        self.executable = executable
        self.modelDirectory = modelDirectory
        self.requests = requests
        self.peerBatchSize = peerBatchSize
        self.rounds = rounds
        self.clientPython = clientPython
        self.clientScript = clientScript
        self.peerPython = peerPython
        self.peerScript = peerScript
        self.serverArguments = serverArguments
        self.contentionLimit = contentionLimit
    }

    /// `count` chat requests from a JSONL file of {"messages": [...]} records (the user turns), with
    /// max_tokens cycling through `maxTokens`.
    public static func requests(from file: URL, count: Int, maxTokens: [Int]) throws -> [Request] {
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        var result: [Request] = []
        for line in lines where result.count < count {
            guard let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let messages = record["messages"] as? [[String: String]],
                let user = messages.first(where: { $0["role"] == "user" })
            else { continue }
            result.append(Request(messages: [user], max_tokens: maxTokens[result.count % maxTokens.count]))
        }
        return result
    }

    struct PeerJob: Encodable {
        var requests: [Request]
        var batch_size: Int
    }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let requestFile = FileManager.default.temporaryDirectory.appendingPathComponent("temper-serve-bench-\(UUID()).json")
        try JSONEncoder().encode(requests).write(to: requestFile)
        defer { try? FileManager.default.removeItem(at: requestFile) }
        let server = try ServedModel(executable: executable, arguments: ["--model", modelDirectory.path] + serverArguments)
        defer { server.stop() }
        let peer = try peerPython.map { try PeerProcess(python: $0, script: peerScript, arguments: [modelDirectory.path]) }
        let name = modelDirectory.standardizedFileURL.lastPathComponent

        var ours: [[String: Any]] = [], theirs: [[String: Any]] = []
        var dropped = (ours: 0, theirs: 0)
        for round in 0...rounds {
            var meter = ContentionMeter(peerProcess: server.process.processIdentifier)
            meter.countsReapedChildren = true
            meter.begin()
            let answer = try Self.runClient(
                clientPython, [clientScript, "--base-url", server.baseURL, "--model", name, "--requests", requestFile.path])
            let busy = meter.otherCores()
            var peerAnswer: [String: Any]?
            var peerBusy = 0.0
            if let peer {
                var peerMeter = ContentionMeter(peerProcess: peer.processIdentifier)
                peerMeter.begin()
                peerAnswer = try peer.request(PeerJob(requests: requests, batch_size: peerBatchSize))
                peerBusy = peerMeter.otherCores()
            }
            if round == 0 { continue }  // warm-up of both sides
            if busy > contentionLimit { dropped.ours += 1 } else { ours.append(answer) }
            if let peerAnswer {
                if peerBusy > contentionLimit { dropped.theirs += 1 } else { theirs.append(peerAnswer) }
            }
            progress(String(
                format: "round %d: temper %.1f tok/s (others %.2f cores)%@", round, Self.throughput(answer), busy,
                peerAnswer.map { String(format: "; transformers %.1f tok/s (others %.2f cores)", Self.throughput($0), peerBusy) } ?? ""))
        }
        var rows: [Row] = []
        if let row = Self.row("temper serve", ours, dropped: dropped.ours) { rows.append(row) }
        if let row = Self.row("transformers static batches of \(peerBatchSize)", theirs, dropped: dropped.theirs) { rows.append(row) }
        return rows
    }

    static func throughput(_ answer: [String: Any]) -> Double {
        Double(answer["completion_tokens"] as? Int ?? 0) / max(answer["wall_seconds"] as? Double ?? 1, 1e-9)
    }

    static func row(_ system: String, _ answers: [[String: Any]], dropped: Int) -> Row? {
        guard !answers.isEmpty else { return nil }
        let ttfts = answers.flatMap { ($0["ttft"] as? [Double]) ?? [] }.sorted()
        func percentile(_ p: Double) -> Double { ttfts.isEmpty ? 0 : ttfts[min(ttfts.count - 1, Int(p * Double(ttfts.count)))] }
        return Row(
            system: system, requests: (answers[0]["ttft"] as? [Double])?.count ?? 0,
            completionTokens: answers[0]["completion_tokens"] as? Int ?? 0,
            tokensPerSecond: median(answers.map(throughput)), ttftP50: percentile(0.5), ttftP99: percentile(0.99),
            roundsKept: answers.count, roundsDropped: dropped)
    }

    static func runClient(_ python: String, _ arguments: [String]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw BenchmarkError.peer("the serve client failed: \(String(decoding: data, as: UTF8.self))") }
        return object
    }

    public static func table(_ rows: [Row]) -> String {
        let base = rows.last { $0.system != "temper serve" }
        let header = ["system", "requests", "tokens", "tok/s", "× transformers", "TTFT p50 s", "TTFT p99 s", "rounds"]
        let body = rows.map { row -> [String] in
            [row.system, "\(row.requests)", "\(row.completionTokens)", String(format: "%.1f", row.tokensPerSecond),
             base.map { String(format: "%.2f", row.tokensPerSecond / $0.tokensPerSecond) } ?? "-",
             String(format: "%.2f", row.ttftP50), String(format: "%.2f", row.ttftP99),
             "\(row.roundsKept)/\(row.roundsKept + row.roundsDropped)"]
        }
        return formatTable(header: header, rows: body)
    }
}

/// `temper serve` as a child process on a free loopback port.
final class ServedModel {
    let process = Process()
    let baseURL: String

    init(executable: URL, arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = ["serve", "--port", "0"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let (url, line) = TemperServer.readListeningURL(from: output.fileHandleForReading)
        guard let url else {
            process.terminate()
            throw BenchmarkError.peer("temper serve did not start: \(line)")
        }
        baseURL = url + "/v1"
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

import Foundation

/// A long-running peer benchmark (a Python script) that answers one JSON line per request line,
/// so measurements of ours and the peer's can alternate within one run.
final class PeerProcess {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    /// Starts `python script` and waits for its `{"ready": true, …}` line.
    init(python: String, script: String, arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let greeting = try readLine()
        guard greeting["ready"] as? Bool == true else {
            throw BenchmarkError.peer("unexpected first line from \(script): \(greeting)")
        }
        info = greeting
    }

    /// What the peer said about itself (library versions, threads).
    private(set) var info: [String: Any] = [:]

    var processIdentifier: Int32 { process.processIdentifier }

    func request(_ object: some Encodable) throws -> [String: Any] {
        var line = try JSONEncoder().encode(object)
        line.append(0x0A)
        input.fileHandleForWriting.write(line)
        return try readLine()
    }

    private func readLine() throws -> [String: Any] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<newline]
                buffer.removeSubrange(buffer.startIndex...newline)
                guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw BenchmarkError.peer("not a JSON object: \(String(decoding: line, as: UTF8.self))")
                }
                return object
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw BenchmarkError.peer("the peer process exited") }
            buffer.append(chunk)
        }
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

public enum BenchmarkError: Error, CustomStringConvertible {
    case peer(String)

    public var description: String {
        switch self {
        case .peer(let message): "peer benchmark: \(message)"
        }
    }
}

import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Testing
@testable import TemperServe

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain HTTP/1.1 client over one loopback socket, so a test can hang up mid-response.
final class RawConnection: @unchecked Sendable {
    // Safe: each test uses its connection from one task at a time, awaiting every call.
    private let socketDescriptor: Int32

    init(port: Int) throws {
        #if canImport(Glibc)
        socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        socketDescriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socketDescriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(socketDescriptor)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(socketDescriptor, $0.baseAddress, $0.count) }
    }

    func post(_ path: String, json: String) {
        send(
            "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
    }

    /// Reads until `marker` has arrived, the peer closes, or 10 s pass; returns all read so far.
    func read(until marker: String? = nil) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socketDescriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[..<count]
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    func hangUp() { close(socketDescriptor) }
}

/// Runs blocking socket work off the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// Waits up to `seconds` for `condition`.
func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// The real server on a free loopback port, under a service group as `temper serve` runs it.
func withLiveServer(
    _ engine: FakeEngine, _ body: @Sendable (_ port: Int, _ group: ServiceGroup) async throws -> Void
) async throws {
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let configuration = ServeConfiguration(host: "127.0.0.1", port: 0, servedModelName: "base")
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let app = TemperServer.buildApplication(engine: engine, configuration: configuration, logger: logger) { host, port in
        #expect(host == "127.0.0.1")
        portContinuation.yield(port)
    }
    let group = ServiceGroup(configuration: .init(services: [EngineService(engine: engine), app], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        #expect(port > 0)
        try await body(port, group)
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

@Suite(.serialized) struct LifecycleTests {
    static let chat = #"{"messages": [{"role": "user", "content": "hi"}], "stream": true}"#

    @Test(.timeLimit(.minutes(1))) func streamingClientThatHangsUpCancelsTheRequest() async throws {
        let engine = FakeEngine(reply: "Hello", hangs: true)
        try await withLiveServer(engine) { port, _ in
            let head = try await offPool {
                let connection = try RawConnection(port: port)
                connection.post("/v1/chat/completions", json: Self.chat)
                let text = connection.read(until: "\"content\":\"H\"")
                connection.hangUp()
                return text
            }
            #expect(head.hasPrefix("HTTP/1.1 200 OK"))
            #expect(head.contains("text/event-stream"))
            #expect(await eventually { engine.cancelled.withLock { $0 } == 1 })
        }
    }

    @Test(.timeLimit(.minutes(1))) func wholeResponseClientThatHangsUpCancelsTheRequest() async throws {
        let engine = FakeEngine(reply: "Hello", hangs: true)
        try await withLiveServer(engine) { port, _ in
            try await offPool {
                let connection = try RawConnection(port: port)
                connection.post("/v1/chat/completions", json: #"{"messages": [{"role": "user", "content": "hi"}]}"#)
                Thread.sleep(forTimeInterval: 0.3)
                connection.hangUp()
            }
            #expect(await eventually { engine.cancelled.withLock { $0 } == 1 })
        }
    }

    /// A completion's connection ends after its response (see `CompletionsController.respond`); the
    /// response says so, and the next request on a new connection is served.
    @Test(.timeLimit(.minutes(1))) func completionResponsesCloseTheirConnection() async throws {
        let engine = FakeEngine(reply: "Hi!")
        try await withLiveServer(engine) { port, _ in
            for _ in 0..<2 {
                let (response, afterwards) = try await offPool { () -> (String, String) in
                    let connection = try RawConnection(port: port)
                    connection.post("/v1/chat/completions", json: #"{"messages": [{"role": "user", "content": "hi"}]}"#)
                    let response = connection.read(until: "total_tokens")
                    connection.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    let afterwards = connection.read()
                    connection.hangUp()
                    return (response, afterwards)
                }
                #expect(response.hasPrefix("HTTP/1.1 200 OK"))
                #expect(response.lowercased().contains("connection: close"))
                #expect(response.contains(#""content":"Hi!""#))
                #expect(afterwards.isEmpty)
            }
            // Other routes keep the connection.
            let health = try await offPool { () -> String in
                let connection = try RawConnection(port: port)
                connection.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                _ = connection.read(until: "ok\"}")
                connection.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let second = connection.read(until: "ok\"}")
                connection.hangUp()
                return second
            }
            #expect(health.hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    @Test(.timeLimit(.minutes(1))) func aPortInUseFailsTheRun() async throws {
        try await withLiveServer(FakeEngine()) { port, _ in
            let second = FakeEngine()
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            await #expect(throws: (any Error).self) {
                try await TemperServer.run(
                    engine: second, configuration: ServeConfiguration(port: port, servedModelName: "base"),
                    logger: logger, onListening: { _, _ in Issue.record("listened on a port in use") })
            }
            #expect(second.shutDown.withLock { $0 })
        }
    }

    @Test(.timeLimit(.minutes(1))) func gracefulShutdownFinishesStreamsThenStopsTheEngine() async throws {
        let engine = FakeEngine(reply: "Hello", delay: .milliseconds(100))
        let servedPort = Locked(0)
        try await withLiveServer(engine) { port, group in
            servedPort.withLock { $0 = port }
            let connection = try await offPool { try RawConnection(port: port) }
            let first = try await offPool {
                connection.post("/v1/chat/completions", json: Self.chat)
                return connection.read(until: "\"content\":\"H\"")
            }
            #expect(first.contains("\"content\":\"H\""))
            // SIGTERM's path: the group shuts down while the stream is still being written.
            await group.triggerGracefulShutdown()
            let rest = try await offPool { connection.read() }
            connection.hangUp()
            #expect(rest.contains("\"finish_reason\":\"stop\""))
            #expect(rest.contains("data: [DONE]"))
            #expect(engine.cancelled.withLock { $0 } == 0)
            #expect(await eventually { engine.shutDown.withLock { $0 } })
        }
        // The listener is closed.
        #expect(throws: (any Error).self) { try RawConnection(port: servedPort.withLock { $0 }) }
    }
}

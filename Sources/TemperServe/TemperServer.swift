import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The composition root of `temper serve`: routes, middleware, the application and its lifecycle.
public enum TemperServer {
    /// Every route: `/v1/*` (OpenAI's API, behind the key check when there are keys), `/health` and
    /// `/metrics`. Errors, unknown routes included, are answered in OpenAI's error shape.
    public static func buildRouter<Engine: ServingEngine>(
        engine: Engine, configuration: ServeConfiguration, metrics: ServerMetrics = ServerMetrics()
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware(metrics: metrics, maxRequestBytes: configuration.maxRequestBytes))
        if !configuration.apiKeys.isEmpty { router.add(middleware: APIKeyMiddleware(keys: configuration.apiKeys)) }
        router.get("/health") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.prometheusText(engine: engine.metrics()))))
        }
        CompletionsController(engine: engine, configuration: configuration, metrics: metrics).addRoutes(to: router)
        return router
    }

    /// The HTTP application; `onListening` gets the host and the bound port (the real one for port 0).
    public static func buildApplication<Engine: ServingEngine>(
        engine: Engine, configuration: ServeConfiguration, metrics: ServerMetrics = ServerMetrics(),
        logger: Logger = defaultLogger, onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let host = bindHost(configuration.host)
        return Application(
            router: buildRouter(engine: engine, configuration: configuration, metrics: metrics),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "temper"),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: the listener closes, requests in
    /// flight (streams included) finish, then the engine stops. Returns normally after that.
    public static func run<Engine: ServingEngine>(
        engine: Engine, configuration: ServeConfiguration, logger: Logger = defaultLogger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void
    ) async throws {
        let app = buildApplication(
            engine: engine, configuration: configuration, logger: logger, onListening: onListening)
        // A group shuts its services down in reverse order: the HTTP server first (it stops
        // accepting and waits for its connections), then the engine.
        let group = ServiceGroup(
            configuration: .init(
                services: [EngineService(engine: engine), app], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// Logs to standard error, so standard output holds only the `listening on` line.
    public static let defaultLogger: Logger = {
        var logger = Logger(label: "temper.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .notice
        return logger
    }()

    /// The address to bind: IPv6 literals without brackets.
    static func bindHost(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// The one line a server (`temper serve`, `temper gallery serve`) writes to standard output, once its
    /// port is bound: `listening on http://HOST:PORT`.
    public static func listeningLine(_ url: String) -> String { "listening on \(url)\n" }

    /// Reads a child server's standard output up to its ``listeningLine(_:)``: the base URL, or nil when
    /// the child closed its output (exited) first; `line` is what it wrote, for an error message.
    public static func readListeningURL(from output: FileHandle) -> (url: String?, line: String) {
        var seen = Data()
        while !seen.contains(UInt8(ascii: "\n")) {
            let chunk = output.availableData
            if chunk.isEmpty { break }
            seen += chunk
        }
        let line = String(decoding: seen, as: UTF8.self)
        guard let range = line.range(of: "listening on ") else { return (nil, line) }
        let url = line[range.upperBound...].prefix { $0 != "\n" }.trimmingCharacters(in: .whitespaces)
        return (url.isEmpty ? nil : url, line)
    }

    /// `http://host:port`, IPv6 literals in brackets.
    public static func url(host: String, port: Int) -> String {
        let host = bindHost(host)
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }
}

/// Keeps the engine until the group shuts down, then lets its requests finish.
struct EngineService<Engine: ServingEngine>: Service {
    let engine: Engine

    func run() async throws {
        try? await gracefulShutdown()
        await engine.shutdown()
    }
}

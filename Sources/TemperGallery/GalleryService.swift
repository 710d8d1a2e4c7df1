import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TemperServe

/// `temper gallery serve`: the API and the job worker in one process, until SIGTERM or SIGINT.
public enum GalleryService {
    public struct Settings: Sendable {
        public var dataDirectory: URL
        /// `s3://BUCKET?endpoint=…` for artifacts in an S3-compatible bucket too.
        public var store: String?
        /// `postgres://USER@HOST:PORT/DATABASE` for a registry shared by several galleries; nil: SQLite in
        /// the data folder.
        public var database: String?
        public var host: String
        public var port: Int
        public var worker: JobRunner.Settings
        /// Machines data-parallel jobs may spread over.
        public var cluster: LaunchCluster?

        public init(
            dataDirectory: URL, store: String? = nil, database: String? = nil, host: String = "127.0.0.1", port: Int = 8080,
            worker: JobRunner.Settings, cluster: LaunchCluster? = nil
        ) {
            self.cluster = cluster
            self.dataDirectory = dataDirectory
            self.store = store
            self.database = database
            self.host = host
            self.port = port
            self.worker = worker
        }
    }

    /// Bound beyond loopback, the gallery requires tokens and refuses to start until one exists.
    public static func run(
        _ settings: Settings, onListening: @escaping @Sendable (_ url: String) -> Void,
        log: @escaping @Sendable (String) -> Void
    ) async throws {
        let gallery = try Gallery(
            dataDirectory: settings.dataDirectory, store: settings.store, database: settings.database, cluster: settings.cluster)
        // SQLite has one worker per data folder; galleries sharing PostgreSQL may share the folder too.
        let lock = settings.database == nil ? try lockDataDirectory(gallery.dataDirectory) : nil
        defer { lock.map { _ = close($0) } }
        let requireTokens = !ServeSecurity.isLoopback(host: settings.host)
        if requireTokens, try gallery.registry.tokenCount() == 0 {
            throw GalleryError(
                status: 0,
                "--host \(settings.host) is not a loopback address: create a token first "
                    + "(temper gallery token create --data-dir \(settings.dataDirectory.path)); requests then need it as a bearer token")
        }
        let runner = JobRunner(gallery: gallery, settings: settings.worker)
        let deployments = DeploymentManager(gallery: gallery, executable: settings.worker.executable)
        let resumed = try await runner.recover()
        if !resumed.isEmpty { log("resuming \(resumed.count) job(s) left running: \(resumed.joined(separator: ", "))") }
        var logger = Logger(label: "temper.gallery") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .notice
        let host = settings.host.hasPrefix("[") ? String(settings.host.dropFirst().dropLast()) : settings.host
        let app = Application(
            router: GalleryAPI.buildRouter(gallery: gallery, deployments: deployments, requireTokens: requireTokens),
            configuration: .init(address: .hostname(host, port: settings.port), serverName: "temper-gallery"),
            onServerRunning: { channel in onListening(TemperServer.url(host: host, port: channel.localAddress?.port ?? settings.port)) },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [app, WorkerService(runner: runner, deployments: deployments)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// One service per data folder: its SQLite registry has a single job worker. The lock is the kernel's
    /// (flock), so it goes with a killed process; close-on-exec keeps it out of job processes.
    static func lockDataDirectory(_ folder: URL) throws -> Int32 {
        let path = folder.appendingPathComponent("gallery.lock").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw GalleryError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw GalleryError(status: 0, "another gallery is serving \(folder.path) (\(path) is locked); stop it first")
        }
        return descriptor
    }

    /// A new bearer token for the gallery at `dataDirectory`: printed once, stored hashed.
    public static func createToken(dataDirectory: URL, database: String? = nil, name: String) throws -> String {
        let gallery = try Gallery(dataDirectory: dataDirectory, database: database)
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        let token = "tg_" + hex(bytes)
        try gallery.registry.insert(TokenRecord(id: makeID("t"), name: name, sha256: sha256Hex(token), createdAt: Date()))
        return token
    }
}

/// Runs the worker until the group shuts down; running jobs are then interrupted (they checkpoint)
/// and left queued, to resume at the next start. Deployments are restarted at start and stopped at
/// shutdown (their records stay running, so the next start restores them).
struct WorkerService: Service {
    let runner: JobRunner
    let deployments: DeploymentManager

    func run() async throws {
        await deployments.restore()
        let work = Task { await runner.run() }
        try? await gracefulShutdown()
        work.cancel()
        await work.value
        await deployments.shutdown()
    }
}

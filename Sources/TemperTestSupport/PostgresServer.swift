import Foundation

/// A throwaway PostgreSQL server on loopback for one test (Tools/gallery-test/postgres.sh: Debian's
/// package, installed on first use). Stop it with ``stop()``; its folder is removed then. It also stops
/// by itself once this process is gone, so a crash (or an exit before cleanup) leaves no server behind.
public final class PostgresServer: Sendable {
    /// `postgres://temper@127.0.0.1:PORT/temper`
    public let url: String
    let folder: URL

    public init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-postgres-\(UUID().uuidString)")
        url = try Self.script("start", folder, owner: getpid()).trimmingCharacters(in: .whitespacesAndNewlines)
        guard url.hasPrefix("postgres://") else { throw ServiceScriptError(message: "postgres.sh start printed '\(url)'") }
    }

    public func stop() {
        _ = try? Self.script("stop", folder)
        try? FileManager.default.removeItem(at: folder)
    }

    static func script(_ command: String, _ folder: URL, owner: pid_t? = nil) throws -> String {
        try runServiceScript("Tools/gallery-test/postgres.sh", [command, folder.path] + (owner.map { [String($0)] } ?? []))
    }
}

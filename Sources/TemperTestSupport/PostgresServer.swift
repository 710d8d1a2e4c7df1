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
        guard url.hasPrefix("postgres://") else { throw ScriptError(message: "postgres.sh start printed '\(url)'") }
    }

    public func stop() {
        _ = try? Self.script("stop", folder)
        try? FileManager.default.removeItem(at: folder)
    }

    struct ScriptError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Runs the script with its output in files and waits with `waitpid`: the server it starts keeps
    /// running, and Foundation's `Process` was seen waiting forever on such a script.
    static func script(_ command: String, _ folder: URL, owner: pid_t? = nil) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("postgres-\(UUID().uuidString).out")
        let errors = output.appendingPathExtension("err")
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: errors)
        }
        let program = TestPaths.repositoryRoot.appendingPathComponent("Tools/gallery-test/postgres.sh").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errors.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let folderPath: String = folder.path
        let strings: [String] = [program, command, folderPath] + (owner.map { [String($0)] } ?? [])
        let arguments: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, nil, arguments, environ)
        guard spawned == 0 else { throw ScriptError(message: "cannot run \(program): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let complaints = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw ScriptError(message: "postgres.sh \(command) failed (wait status \(status)): \(complaints)")
        }
        return printed
    }
}

import Foundation

/// Runs one of the repository's service scripts (`Tools/…/postgres.sh`, `sshd.sh`) to its end and
/// returns what it printed. Its output goes to files and it is waited for with `waitpid`: the server
/// it starts keeps running, and Foundation's `Process` was seen waiting forever on such a script.
public func runServiceScript(_ path: String, _ arguments: [String]) throws -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("service-\(UUID().uuidString).out")
    let errors = output.appendingPathExtension("err")
    defer {
        try? FileManager.default.removeItem(at: output)
        try? FileManager.default.removeItem(at: errors)
    }
    let program = TestPaths.repositoryRoot.appendingPathComponent(path).path
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errors.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let strings: [String] = [program] + arguments
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, program, &actions, nil, pointers, environ)
    guard spawned == 0 else { throw ServiceScriptError(message: "cannot run \(program): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    guard status == 0 else {
        let complaints = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        throw ServiceScriptError(message: "\(path) \(arguments.joined(separator: " ")) failed (wait status \(status)): \(complaints)")
    }
    return printed
}

public struct ServiceScriptError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A throwaway OpenSSH server on loopback for one test (Tools/dist-test/sshd.sh: Debian's package,
/// installed on first use), letting in only its own key. Stop it with ``stop()``; it also stops by
/// itself once this process is gone.
public final class SSHServer: Sendable {
    /// What `temper launch --through` runs a rank with: `ssh -F FOLDER/ssh_config {host}`.
    public let through: String
    let folder: URL

    public init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-sshd-\(UUID().uuidString)")
        through = try runServiceScript("Tools/dist-test/sshd.sh", ["start", folder.path, String(getpid())])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard through.hasPrefix("ssh ") else { throw ServiceScriptError(message: "sshd.sh start printed '\(through)'") }
    }

    public func stop() {
        _ = try? runServiceScript("Tools/dist-test/sshd.sh", ["stop", folder.path])
        try? FileManager.default.removeItem(at: folder)
    }
}

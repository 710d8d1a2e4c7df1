import Foundation
import Synchronization
import TemperCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reward computed by an external program in any language, speaking JSON lines.
///
/// The command starts once, when this is created, and lives until ``close()`` (or deinit). For each batch
/// it receives one JSON object per input on stdin, one per line:
/// `{"prompt": …, "completion": …, "completion_tokens": …, "truncated": …, <every row field>}` (the four
/// named keys win over row fields of the same name), and must answer with exactly one line per input, in
/// order: a JSON number, `null` (not applicable), or `{"reward": number|null}`. It must flush its output
/// after each batch (the child runs with `PYTHONUNBUFFERED=1`); what it writes to stderr is drained and its
/// last lines go into error messages.
///
/// Any failure (the command exits early, overruns the timeout, prints a malformed or extra line) stops it
/// and throws an error naming the command; the next batch starts it afresh.
public final class CommandReward: RewardFunction {
    public let name: String
    /// The program and its arguments; the program is found on PATH unless it contains a `/`.
    public let command: [String]
    /// The seconds one batch may take, writing the inputs and reading the answers.
    public let timeout: TimeInterval
    private let child: Mutex<CommandProcess?>

    /// Starts the command.
    /// - Parameter name: the metric name; by default the program's file name without extension, or the
    ///   script's for an interpreter such as `python3 score.py`.
    /// - Throws: ``RewardError/commandCannotStart(command:reason:)``.
    public init(command: [String], name: String? = nil, timeout: TimeInterval = 60) throws {
        self.command = command
        self.name = name ?? Self.defaultName(command)
        self.timeout = timeout
        child = Mutex(try CommandProcess(command))
    }

    deinit { close() }

    /// Closes the command's stdin and waits a moment for it to exit, then terminates it (and its
    /// process group). A later batch starts the command again.
    public func close() {
        child.withLock { child in
            child?.stop()
            child = nil
        }
    }

    /// - Throws: ``RewardError`` naming the command: it cannot start, exited, timed out, or printed a
    ///   bad line.
    public func rewards(_ inputs: [RewardInput]) throws -> [Double?] {
        guard !inputs.isEmpty else { return [] }
        var request: [UInt8] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for input in inputs {
            var object = input.fields
            object["prompt"] = .string(input.prompt)
            object["completion"] = .string(input.completion)
            object["completion_tokens"] = .number(Double(input.completionTokens))
            object["truncated"] = .bool(input.truncated)
            request += try encoder.encode(JSONValue.object(object))
            request.append(0x0A)
        }
        return try child.withLock { child in
            let running = try child ?? CommandProcess(command)
            child = nil
            do {
                let rewards = try running.exchange(request, expected: inputs.count, timeout: timeout)
                child = running
                return rewards
            } catch {
                running.stop()
                throw error
            }
        }
    }

    static func defaultName(_ command: [String]) -> String {
        let interpreters: Set = ["python", "python3", "node", "ruby", "perl", "bash", "sh", "zsh", "deno", "bun"]
        func fileName(_ path: String) -> String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }
        guard let program = command.first else { return "command" }
        if interpreters.contains(fileName(program)),
            let script = command.dropFirst().first(where: { !$0.hasPrefix("-") })
        {
            return fileName(script)
        }
        return fileName(program)
    }
}

/// A running reward command: its pipes, the stdout bytes not yet read as lines, and stderr's tail.
/// Used under ``CommandReward``'s lock only.
private final class CommandProcess {
    /// How much of stderr is kept for error messages, and how many of its lines they show.
    static let errorTailBytes = 8192
    static let errorTailLines = 10

    let process = Process()
    let commandLine: String
    let pipes = (input: Pipe(), output: Pipe(), error: Pipe())
    /// Our ends of the pipes (kept as numbers: a closed FileHandle has none).
    let inputFD: Int32
    let outputFD: Int32
    let errorFD: Int32
    var inputOpen = true
    var outputOpen = true
    var errorOpen = true
    var pending: [UInt8] = []
    var errorTail: [UInt8] = []

    init(_ command: [String]) throws {
        commandLine = command.joined(separator: " ")
        inputFD = pipes.input.fileHandleForWriting.fileDescriptor
        outputFD = pipes.output.fileHandleForReading.fileDescriptor
        errorFD = pipes.error.fileHandleForReading.fileDescriptor
        guard let program = command.first else {
            throw RewardError.commandCannotStart(command: commandLine, reason: "the command is empty")
        }
        process.executableURL = try Self.executable(program, commandLine: commandLine)
        process.arguments = Array(command.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        process.standardInput = pipes.input
        process.standardOutput = pipes.output
        process.standardError = pipes.error
        // Our ends: not inherited by later children (a sibling holding this stdin open would keep it
        // from seeing EOF), and non-blocking, so one poll loop moves all three streams.
        for fd in [inputFD, outputFD, errorFD] {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        #if canImport(Darwin)
        _ = fcntl(inputFD, F_SETNOSIGPIPE, 1)
        #endif
        do {
            try process.run()
        } catch {
            // Foundation wraps the errno of the failed exec, which says more than its own message.
            var reason = error.localizedDescription
            if let cause = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
                cause.domain == NSPOSIXErrorDomain
            {
                reason = String(cString: strerror(Int32(cause.code)))
                if cause.code == Int(ENOEXEC) {
                    reason += " (a script needs a #! line, or run it through its interpreter)"
                }
            }
            throw RewardError.commandCannotStart(command: commandLine, reason: "\(program): \(reason)")
        }
    }

    /// The program to run: a path when it contains a `/` (relative to the working directory), else the
    /// first executable of that name on PATH.
    static func executable(_ program: String, commandLine: String) throws -> URL {
        let files = FileManager.default
        func isProgram(_ path: String) -> Bool {
            var isDirectory: ObjCBool = false
            return files.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
                && files.isExecutableFile(atPath: path)
        }
        if program.contains("/") {
            let url = URL(fileURLWithPath: program)
            guard files.fileExists(atPath: url.path) else {
                throw RewardError.commandCannotStart(command: commandLine, reason: "no such file \(url.path)")
            }
            guard isProgram(url.path) else {
                throw RewardError.commandCannotStart(
                    command: commandLine,
                    reason: "\(url.path) is not an executable file (chmod +x it, or run it through its interpreter)")
            }
            return url
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where isProgram("\(directory)/\(program)") {
            return URL(fileURLWithPath: "\(directory)/\(program)")
        }
        throw RewardError.commandCannotStart(command: commandLine, reason: "no program '\(program)' on PATH")
    }

    /// Sends one batch and reads its answers.
    func exchange(_ request: [UInt8], expected: Int, timeout: TimeInterval) throws -> [Double?] {
        var nothing = ArraySlice<UInt8>()
        // Whatever arrived since the last batch answered nothing: the conversation is out of step.
        _ = try pump(&nothing, deadline: .now) { false }
        if !pending.isEmpty { throw strayOutput("printed output between batches") }

        let deadline = ContinuousClock.now + .seconds(timeout)
        var toWrite = request[...]
        var rewards: [Double?] = []
        let finished = try pump(&toWrite, deadline: deadline) {
            while rewards.count < expected, let line = nextLine() {
                rewards.append(try parsedReward(line, number: rewards.count + 1))
            }
            return rewards.count == expected || !outputOpen
        }
        if rewards.count == expected {
            if !pending.isEmpty { throw strayOutput("printed more lines than the \(expected) inputs it was sent") }
            return rewards
        }
        guard finished else {
            throw RewardError.commandTimedOut(
                command: commandLine, seconds: timeout, answered: rewards.count, expected: expected)
        }
        // Its stdout closed: collect the rest of stderr and the exit status.
        _ = try? pump(&nothing, deadline: .now + .seconds(2)) { !errorOpen }
        guard waitForExit(within: .seconds(2)) else {
            throw RewardError.commandFailed(
                command: commandLine,
                reason: "closed its stdout after answering \(rewards.count) of \(expected) inputs but kept running")
        }
        throw RewardError.commandExited(
            command: commandLine, status: process.terminationStatus,
            signaled: process.terminationReason == .uncaughtSignal, answered: rewards.count, expected: expected,
            standardError: errorLines())
    }

    /// The next complete stdout line without its newline (a last unterminated line once stdout closed).
    func nextLine() -> [UInt8]? {
        if let newline = pending.firstIndex(of: 0x0A) {
            let line = Array(pending[..<newline])
            pending.removeFirst(newline + 1)
            return line
        }
        guard !outputOpen, !pending.isEmpty else { return nil }
        defer { pending.removeAll() }
        return pending
    }

    func parsedReward(_ line: [UInt8], number: Int) throws -> Double? {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        switch value {
        case .number(let reward)?: return reward
        case .null?: return nil
        case .object(let object)?:
            switch object["reward"] {
            case .number(let reward)?: return reward
            case .null?: return nil
            default: break
            }
        default: break
        }
        throw RewardError.commandBadOutput(command: commandLine, line: number, text: Self.shortened(text))
    }

    func strayOutput(_ what: String) -> RewardError {
        let line = pending.split(separator: 0x0A).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return .commandFailed(command: commandLine, reason: "\(what): '\(Self.shortened(line))'")
    }

    static func shortened(_ text: String) -> String { text.count > 120 ? text.prefix(120) + "…" : text }

    func errorLines() -> [String] {
        let lines = String(decoding: errorTail, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
        return Array(lines.suffix(Self.errorTailLines))
    }

    /// Moves bytes between the pipes until `done()` or the deadline: writes `toWrite` to stdin, appends
    /// stdout to `pending`, keeps the tail of stderr (drained so the child never blocks on it). Returns
    /// false when the deadline passed first; with a deadline of now it polls once.
    func pump(
        _ toWrite: inout ArraySlice<UInt8>, deadline: ContinuousClock.Instant, until done: () throws -> Bool
    ) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if try done() { return true }
            var descriptors: [pollfd] = []
            if inputOpen, !toWrite.isEmpty {
                descriptors.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0))
            }
            if outputOpen { descriptors.append(pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)) }
            if errorOpen { descriptors.append(pollfd(fd: errorFD, events: Int16(POLLIN), revents: 0)) }
            let remaining = (deadline - .now).components
            // Short waits, so that a caller waiting on the process itself (not a pipe) looks again soon.
            let milliseconds = remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(max(0, min(100, milliseconds))))
            if ready < 0, errno != EINTR {
                throw RewardError.commandFailed(command: commandLine, reason: "could not be polled (errno \(errno))")
            }
            for descriptor in descriptors where ready > 0 && descriptor.revents != 0 {
                if descriptor.fd == inputFD {
                    let (written, error) = withSIGPIPEBlocked {
                        (toWrite.withUnsafeBytes { write(inputFD, $0.baseAddress, $0.count) }, errno)
                    }
                    if written > 0 { toWrite.removeFirst(written) }
                    // Its stdin closed (it exited, most likely): stop writing and read what it left.
                    if written < 0, error != EAGAIN, error != EINTR { inputOpen = false }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
                if count < 0, errno == EAGAIN || errno == EINTR { continue }
                if descriptor.fd == outputFD {
                    if count > 0 { pending += buffer[..<count] } else { outputOpen = false }
                } else if count > 0 {
                    errorTail += buffer[..<count]
                    errorTail.removeFirst(max(0, errorTail.count - Self.errorTailBytes))
                } else {
                    errorOpen = false
                }
            }
            if ContinuousClock.now >= deadline { return try done() }
        }
    }

    func waitForExit(within limit: Duration) -> Bool {
        var nothing = ArraySlice<UInt8>()
        _ = try? pump(&nothing, deadline: .now + limit) { !process.isRunning }
        return !process.isRunning
    }

    /// Closes stdin (a well-behaved command exits on EOF), then sends SIGTERM and at last SIGKILL to the
    /// command's process group (a shell script's children too).
    func stop() {
        try? pipes.input.fileHandleForWriting.close()
        inputOpen = false
        for signal in [0, SIGTERM, SIGKILL] {
            if signal != 0, process.isRunning {
                let pid = process.processIdentifier
                _ = kill(getpgid(pid) == pid ? -pid : pid, signal)
            }
            if waitForExit(within: .seconds(1)) { break }
        }
        try? pipes.output.fileHandleForReading.close()
        try? pipes.error.fileHandleForReading.close()
        outputOpen = false
        errorOpen = false
    }
}

/// Runs `body` with SIGPIPE blocked on this thread, so that writing to a pipe whose reader has gone
/// fails with EPIPE instead of ending the whole process; a SIGPIPE that `body` raised is consumed before
/// the mask is restored. (On Darwin the pipe carries F_SETNOSIGPIPE instead.)
private func withSIGPIPEBlocked<R>(_ body: () -> R) -> R {
    #if canImport(Glibc)
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
    var pendingBefore = sigset_t()
    sigpending(&pendingBefore)
    let result = body()
    var pendingAfter = sigset_t()
    sigpending(&pendingAfter)
    if sigismember(&previous, SIGPIPE) == 0, sigismember(&pendingBefore, SIGPIPE) == 0,
        sigismember(&pendingAfter, SIGPIPE) == 1
    {
        var immediately = timespec(tv_sec: 0, tv_nsec: 0)
        _ = sigtimedwait(&pipeSignal, nil, &immediately)
    }
    pthread_sigmask(SIG_SETMASK, &previous, nil)
    return result
    #else
    return body()
    #endif
}

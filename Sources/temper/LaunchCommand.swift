import ArgumentParser
import Foundation
import TemperCore

/// `temper launch --ranks N -- temper …`: the ranks of a data-parallel job joined by MLX's ring
/// backend: local processes over loopback, or one per `--hosts` address, started through `--through`
/// (ssh by default; `ip netns exec …` in the two-namespace test). Each gets MLX_RANK, the ranks'
/// addresses (MLX_HOSTFILE, a JSON list with one `HOST:PORT` per rank; on other hosts as
/// TEMPER_HOSTS_JSON, written to a file there by the rank's `temper` at start) and TEMPER_RANK / TEMPER_WORLD_SIZE; their
/// output lines are prefixed `[rank i]`. When a rank fails, the others get `--timeout` seconds to stop
/// on their own (a collective with a dead peer fails or hangs), then are terminated; the exit status
/// names the rank.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Run a command as the ranks of a data-parallel job (MLX's ring backend over loopback).",
        discussion: """
            Example: temper launch --ranks 2 -- temper bench allreduce. Where `mpirun` is installed, \
            `mpirun -np N temper …` starts the ranks as well (MLX's MPI backend).
            """)

    @Option(help: "Processes to start.") var ranks: Int = 2
    @Option(help: "One address per rank, comma-separated: the ranks run there (through --through) and listen on --port + rank.")
    var hosts: String?
    @Option(help: "With --hosts: the command that runs a rank's shell command line there; {host} and {rank} are replaced.")
    var through = "ssh {host}"
    @Option(help: "With --hosts: the first rank's port (rank i listens on port + i).") var port = 29500
    @Option(help: "Seconds the other ranks get to stop after one fails, before they are terminated.") var timeout: Double = 30
    @Option(help: "Seconds a rank waits in a collective for the others before it gives up (a rank that hung); 0 waits forever.")
    var collectiveTimeout: Double = 600
    @Argument(parsing: .captureForPassthrough, help: "The command each rank runs (after --).") var command: [String] = []

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1, got \(ranks)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive, got \(timeout)") }
        guard collectiveTimeout >= 0 else { throw ValidationError("--collective-timeout must not be negative, got \(collectiveTimeout)") }
        if let hosts, hostList(hosts).count != ranks {
            throw ValidationError("--hosts names \(hostList(hosts).count) addresses for \(ranks) ranks: give one per rank")
        }
        if command.first == "--" { return }
        guard !command.isEmpty else { throw ValidationError("give the command to run after --, e.g. temper launch --ranks 2 -- temper bench allreduce") }
    }

    func run() throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        guard let program = arguments.first else { throw ValidationError("give the command to run after --") }
        let hostfile = FileManager.default.temporaryDirectory.appendingPathComponent("temper-ranks-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let addresses = try hosts.map { list in hostList(list).enumerated().map { "\($0.element):\(port + $0.offset)" } }
            ?? (0..<ranks).map { _ in "127.0.0.1:\(try Self.freeLoopbackPort())" }
        let hostsJSON = try JSONSerialization.data(withJSONObject: addresses.map { [$0] })
        try hostsJSON.write(to: hostfile)

        let executable = program == "temper" ? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() : Self.resolve(program)
        var processes: [Process] = []
        // Ranks started elsewhere: their launcher's orders, written to their standard input (ssh
        // carries it where it carries no signals); closed, it tells them the launcher is gone.
        var controls: [Int: FileHandle] = [:]
        for rank in 0..<ranks {
            let process = Process()
            var environment = ProcessInfo.processInfo.environment
            let rankEnvironment = [
                "MLX_RANK": String(rank), "TEMPER_RANK": String(rank), "TEMPER_WORLD_SIZE": String(ranks),
                "TEMPER_COLLECTIVE_TIMEOUT": String(collectiveTimeout),
            ]
            environment.merge(rankEnvironment) { $1 }
            if let hosts {
                // Elsewhere: one shell command line, run through --through; the rank writes the host
                // list to a file of its own.
                let host = hostList(hosts)[rank]
                let remote = ["TEMPER_HOSTS_JSON": String(decoding: hostsJSON, as: UTF8.self), "TEMPER_LAUNCH_CONTROL": "stdin"]
                let assignments = (rankEnvironment.merging(remote) { $1 })
                    .sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.shellQuoted($0.value))" }
                let line = "cd \(Self.shellQuoted(FileManager.default.currentDirectoryPath)) && exec env "
                    + (assignments + ([executable.path] + arguments.dropFirst()).map(Self.shellQuoted)).joined(separator: " ")
                let prefix = through.replacingOccurrences(of: "{host}", with: host).replacingOccurrences(of: "{rank}", with: String(rank))
                    .split(separator: " ").map(String.init)
                guard let first = prefix.first else { throw ValidationError("--through is empty") }
                process.executableURL = Self.resolve(first)
                process.arguments = Array(prefix.dropFirst()) + [line]
                environment["MLX_HOSTFILE"] = nil
                let control = Pipe()
                process.standardInput = control
                controls[rank] = control.fileHandleForWriting
            } else {
                process.executableURL = executable
                process.arguments = Array(arguments.dropFirst())
                environment["MLX_HOSTFILE"] = hostfile.path
            }
            process.environment = environment
            process.standardOutput = Self.prefixing(FileHandle.standardOutput, rank: rank)
            process.standardError = Self.prefixing(FileHandle.standardError, rank: rank)
            try process.run()
            processes.append(process)
        }

        // A rank gone before its order is written: the write fails rather than ending the launcher
        // (set after the ranks started, which would inherit it).
        signal(SIGPIPE, SIG_IGN)
        // Ctrl-C or a cancel (SIGINT, SIGTERM) goes to every rank: they stop together at a step boundary
        // and rank 0 checkpoints.
        var forwarders: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                for (rank, process) in processes.enumerated() where process.isRunning {
                    if let control = controls[rank] {
                        try? control.write(contentsOf: Data((signalNumber == SIGINT ? "interrupt\n" : "terminate\n").utf8))
                    } else {
                        kill(process.processIdentifier, signalNumber)
                    }
                }
            }
            source.resume()
            forwarders.append(source)
        }
        defer { for source in forwarders { source.cancel() } }

        // The first rank to fail starts the others' countdown.
        var failure: (rank: Int, status: Int32)?
        var deadline: Date?
        while processes.contains(where: \.isRunning) {
            if failure == nil, let rank = processes.indices.first(where: { !processes[$0].isRunning && processes[$0].terminationStatus != 0 }) {
                failure = (rank, processes[rank].terminationStatus)
                deadline = Date().addingTimeInterval(timeout)
                log("rank \(rank) exited with status \(processes[rank].terminationStatus); the others get \(Int(timeout)) s to stop")
            }
            if let deadline, Date() > deadline {
                for (rank, process) in processes.enumerated() where process.isRunning {
                    log("rank \(rank) still running \(Int(timeout)) s after rank \(failure!.rank) failed: terminating it")
                    try? controls[rank]?.close()
                    process.terminate()
                }
                Thread.sleep(forTimeInterval: 2)
                for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        for process in processes { process.waitUntilExit() }
        if failure == nil, let rank = processes.indices.first(where: { processes[$0].terminationStatus != 0 }) {
            failure = (rank, processes[rank].terminationStatus)
        }
        if let failure {
            log("launch failed: rank \(failure.rank) of \(ranks) exited with status \(failure.status)")
            throw ExitCode(failure.status == 0 ? 1 : failure.status)
        }
    }

    /// A rank `--hosts` started elsewhere gets the ranks' addresses in TEMPER_HOSTS_JSON; MLX's ring
    /// backend reads them from the file MLX_HOSTFILE names, written here before anything joins.
    static func writeHostFileFromEnvironment() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["MLX_HOSTFILE"] == nil, let hosts = environment["TEMPER_HOSTS_JSON"] else { return }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("temper-hosts-\(getpid()).json").path
        guard FileManager.default.createFile(atPath: path, contents: Data(hosts.utf8)) else { return }
        setenv("MLX_HOSTFILE", path, 1)
    }

    /// A rank started elsewhere follows its launcher's orders on standard input: "interrupt" and
    /// "terminate" raise SIGINT and SIGTERM here (ssh forwards no signals), and the end of the input
    /// means the launcher or its connection is gone, so the rank exits rather than linger.
    static func followLauncherControl() {
        guard ProcessInfo.processInfo.environment["TEMPER_LAUNCH_CONTROL"] == "stdin" else { return }
        Thread.detachNewThread {
            while let line = readLine(strippingNewline: true) {
                if line == "interrupt" { kill(getpid(), SIGINT) }
                if line == "terminate" { kill(getpid(), SIGTERM) }
            }
            FileHandle.standardError.write(Data(
                "rank \(ProcessInfo.processInfo.environment["TEMPER_RANK"] ?? "?"): the launcher is gone (standard input closed; --through must pass it on, as ssh does and ssh -n does not): stopping\n".utf8))
            _exit(1)
        }
    }

    func hostList(_ list: String) -> [String] { list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    /// `value` in single quotes for a POSIX shell.
    static func shellQuoted(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A port nothing listens on now (the kernel's pick for port 0; the ranks bind it a moment later).
    static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ValidationError("cannot open a socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw ValidationError("cannot bind a loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A program name found on PATH (or a path as it is).
    static func resolve(_ program: String) -> URL {
        if program.contains("/") { return URL(fileURLWithPath: program) }
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(program)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return URL(fileURLWithPath: program)
    }

    /// A pipe whose lines reach `destination` as `[rank i] line`.
    static func prefixing(_ destination: FileHandle, rank: Int) -> Pipe {
        let pipe = Pipe()
        let pending = LockedBuffer()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            let lines = pending.append(data, flush: data.isEmpty)
            for line in lines { destination.write(Data("[rank \(rank)] ".utf8) + line + Data("\n".utf8)) }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        return pipe
    }

    /// Bytes not yet ended by a newline.
    final class LockedBuffer: @unchecked Sendable {
        let lock = NSLock()
        var bytes = Data()

        /// The complete lines in `bytes` + `data` (and, with `flush`, the unfinished rest).
        func append(_ data: Data, flush: Bool) -> [Data] {
            lock.lock()
            defer { lock.unlock() }
            bytes += data
            var lines: [Data] = []
            while let newline = bytes.firstIndex(of: 0x0A) {
                lines.append(bytes[bytes.startIndex..<newline])
                bytes = Data(bytes[(newline + 1)...])
            }
            if flush, !bytes.isEmpty {
                lines.append(bytes)
                bytes = Data()
            }
            return lines
        }
    }
}

/// `temper bench allreduce`: joins the ranks `temper launch` started and times `all_sum`, checking its
/// result (rank r contributes r + 1 in every element: the sum is n(n+1)/2).
struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time MLX's all_sum across the ranks of `temper launch` and check its result.")

    @Option(help: "float32 elements per all_sum.") var elements: Int = 1_000_000
    @Option(help: "Timed all_sums.") var rounds: Int = 5

    func validate() throws {
        guard elements > 0 else { throw ValidationError("--elements must be positive, got \(elements)") }
        guard rounds > 0 else { throw ValidationError("--rounds must be positive, got \(rounds)") }
    }

    func run() throws {
        let group = try Distributed.join(backend: "any", strict: true)
        let contribution = Tensor.full([elements], value: Double(group.rank + 1))
        var seconds: [Double] = []
        var total: Float = 0
        for _ in 0..<(rounds + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            let sum = Distributed.allSum(contribution)
            eval([sum])
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            total = sum[0].item(Float.self)
        }
        let expected = Float(group.size * (group.size + 1) / 2)
        guard total == expected else { throw ValidationError("all_sum gave \(total), expected \(expected)") }
        let median = seconds.dropFirst().sorted()[rounds / 2]
        // A ring all-reduce sends 2 (n − 1) / n of the buffer from each rank.
        let sent = Double(elements * 4) * 2 * Double(group.size - 1) / Double(group.size)
        print(String(format: "rank %d of %d: all_sum of %d floats = %.0f (correct), median %.2f ms, %.1f MB sent per rank (%.0f MB/s)",
                     group.rank, group.size, elements, total, median * 1e3, sent / 1e6, sent / 1e6 / median))
    }
}

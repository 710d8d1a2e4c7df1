import Foundation

/// The worker: claims queued jobs from the registry and runs each as its own `temper <method> --recipe`
/// process (so a crash or out-of-memory of a job never takes the service down), at most `concurrency`
/// at a time, with the job's output in `jobs/<id>/log.txt`. Cancelling interrupts the process, which
/// checkpoints and stops; a job that was running when the service died is queued again at start and
/// resumes from its last checkpoint (`--resume`).
public actor JobRunner {
    public struct Settings: Sendable {
        /// The `temper` executable the jobs run.
        public var executable: URL
        public var concurrency: Int
        /// CPU threads per job (TEMPER_KERNEL_THREADS, OPENBLAS_NUM_THREADS); nil leaves the defaults.
        public var threadsPerJob: Int?
        public var pollInterval: Duration

        public init(executable: URL, concurrency: Int = 1, threadsPerJob: Int? = nil, pollInterval: Duration = .milliseconds(500)) {
            self.executable = executable
            self.concurrency = concurrency
            self.threadsPerJob = threadsPerJob
            self.pollInterval = pollInterval
        }
    }

    struct RunningJob {
        let job: JobRecord
        let process: Process
        let started: ContinuousClock.Instant
        var interrupted = false
        var lastSample: (time: ContinuousClock.Instant, cpuTicks: Int)?
    }

    let gallery: Gallery
    let settings: Settings
    var running: [String: RunningJob] = [:]

    public init(gallery: Gallery, settings: Settings) {
        self.gallery = gallery
        self.settings = settings
    }

    /// Stops jobs a dead service left behind and queues them again; returns their ids.
    public func recover() throws -> [String] {
        for job in try gallery.registry.jobs() where job.state == .running {
            if let pid = job.pid, isLiveProcess(pid: pid_t(pid), tagged: Self.tag(job.id)) {
                kill(pid_t(pid), SIGKILL)
                while isLiveProcess(pid: pid_t(pid), tagged: Self.tag(job.id)) { usleep(20_000) }
            }
        }
        return try gallery.registry.requeueOrphanedJobs()
    }

    /// Runs until the task is cancelled; then interrupts the running jobs (they checkpoint) and waits
    /// for them, leaving them queued to resume when the service starts again.
    public func run() async {
        while !Task.isCancelled {
            do {
                try poll()
            } catch {
                FileHandle.standardError.write(Data("gallery worker: \(error)\n".utf8))
            }
            try? await Task.sleep(for: settings.pollInterval)
        }
        for job in running.values where job.process.isRunning { job.process.interrupt() }
        for job in running.values {
            job.process.waitUntilExit()
            try? gallery.registry.finish(jobID: job.job.id, state: .queued, reason: "service stopped; resumes at restart")
        }
        running.removeAll()
    }

    /// One round: finished processes recorded, cancellations delivered, resources sampled, free
    /// places filled from the queue.
    func poll() throws {
        for (id, var entry) in running {
            if !entry.process.isRunning {
                running[id] = nil
                try complete(entry)
                continue
            }
            if !entry.interrupted, try gallery.registry.job(id)?.cancelRequested == true {
                entry.process.interrupt()
                entry.interrupted = true
            }
            sample(&entry)
            running[id] = entry
        }
        while running.count < settings.concurrency, let job = try gallery.registry.claimNextJob() {
            do {
                running[job.id] = try start(job)
            } catch {
                try gallery.registry.finish(jobID: job.id, state: .failed, reason: "could not start: \(error)")
            }
        }
    }

    func start(_ job: JobRecord) throws -> RunningJob {
        let folder = gallery.jobFolder(job.id)
        let log = folder.appendingPathComponent("log.txt")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: log.path) else { throw GalleryError.io("cannot write \(log.path)") }
        handle.seekToEndOfFile()
        let checkpoints = folder.appendingPathComponent("run/checkpoints")
        let resume = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []).contains { $0.hasPrefix("step-") }
        var arguments = [job.method.rawValue, "--recipe", folder.appendingPathComponent("recipe.json").path]
        if job.method == .eval || job.method == .compress {
            arguments += ["--output", folder.appendingPathComponent("run").path]
        } else if resume {
            arguments.append("--resume")
        }
        handle.write(Data("== attempt \(job.attempts): temper \(arguments.joined(separator: " ")) ==\n".utf8))
        let process = Process()
        process.executableURL = settings.executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        if let threads = settings.threadsPerJob {
            environment["TEMPER_KERNEL_THREADS"] = String(threads)
            environment["OPENBLAS_NUM_THREADS"] = String(threads)
        }
        environment[Self.tag(job.id).name] = job.id
        process.environment = environment
        try process.run()
        try? handle.close()
        try gallery.registry.setPID(process.processIdentifier, jobID: job.id)
        return RunningJob(job: job, process: process, started: .now)
    }

    func complete(_ entry: RunningJob) throws {
        let id = entry.job.id, status = entry.process.terminationStatus
        let cancelRequested = try gallery.registry.job(id)?.cancelRequested ?? false
        let cancelled = entry.interrupted || cancelRequested
        if status == 0 && !cancelled && entry.job.method == .eval {
            try gallery.registry.finish(jobID: id, state: .succeeded, reason: nil)
        } else if status == 0 && !cancelled {
            do {
                _ = try gallery.registerOutput(of: entry.job)
            } catch {
                try gallery.registry.finish(jobID: id, state: .failed, reason: "output not registered: \(error)")
            }
        } else if cancelled {
            try gallery.registry.finish(jobID: id, state: .cancelled, reason: "cancelled (checkpointed)")
        } else {
            let reason = entry.process.terminationReason == .uncaughtSignal
                ? "killed by signal \(status)" : "exit status \(status): \(lastLine(of: gallery.jobFolder(id).appendingPathComponent("log.txt")))"
            try gallery.registry.finish(jobID: id, state: .failed, reason: reason)
        }
    }

    /// CPU cores used since the last sample and resident memory, appended to `resources.jsonl`.
    func sample(_ entry: inout RunningJob) {
        let now = ContinuousClock.Instant.now
        if let last = entry.lastSample, now - last.time < .seconds(2) { return }
        let pid = entry.process.processIdentifier
        guard let usage = Self.processUsage(pid: pid) else { return }
        if let last = entry.lastSample {
            let seconds = Double((now - last.time).components.attoseconds) / 1e18 + Double((now - last.time).components.seconds)
            let cores = Double(usage.cpuTicks - last.cpuTicks) / Double(sysconf(Int32(_SC_CLK_TCK))) / max(seconds, 1e-3)
            let elapsed = now - entry.started
            let line = String(
                format: #"{"elapsed_seconds":%.1f,"cpu_cores":%.3f,"rss_mb":%.1f}"#,
                Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, cores, usage.rssMB) + "\n"
            let url = gallery.jobFolder(entry.job.id).appendingPathComponent("resources.jsonl")
            if let handle = FileHandle(forWritingAtPath: url.path) ?? {
                _ = FileManager.default.createFile(atPath: url.path, contents: nil)
                return FileHandle(forWritingAtPath: url.path)
            }() {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                try? handle.close()
            }
        }
        entry.lastSample = (now, usage.cpuTicks)
    }

    /// utime + stime (clock ticks) and VmRSS of a process, from /proc.
    static func processUsage(pid: pid_t) -> (cpuTicks: Int, rssMB: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        var rss = 0.0
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        {
            rss = kilobytes / 1024
        }
        return (user + system, rss)
    }

    /// The environment variable that marks a job's process, so a restarted gallery finds it.
    static func tag(_ id: String) -> (name: String, value: String) { ("TEMPER_GALLERY_JOB", id) }

    public func runningJobIDs() -> [String] { Array(running.keys) }
}

/// The last non-empty line of a text file (a failed job's reason), at most 300 characters.
func lastLine(of url: URL) -> String {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return "" }
    let line = text.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
    return String(line.prefix(300))
}

/// Whether `pid` is alive (not a zombie) and its environment has `tagged` (a process the gallery
/// started: a pid alone may have been reused by an unrelated process since).
func isLiveProcess(pid: pid_t, tagged: (name: String, value: String)) -> Bool {
    guard kill(pid, 0) == 0, let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z") { return false }
    let entry = "\(tagged.name)=\(tagged.value)"
    return environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == entry }
}

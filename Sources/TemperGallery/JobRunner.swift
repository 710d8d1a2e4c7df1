import Foundation
import TemperCore

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
        /// How often to look for jobs of workers that died (other machines sharing the registry).
        public var recoveryInterval: Duration

        public init(
            executable: URL, concurrency: Int = 1, threadsPerJob: Int? = nil, pollInterval: Duration = .milliseconds(500),
            recoveryInterval: Duration = .seconds(10)
        ) {
            self.executable = executable
            self.concurrency = concurrency
            self.threadsPerJob = threadsPerJob
            self.pollInterval = pollInterval
            self.recoveryInterval = recoveryInterval
        }
    }

    struct RunningJob {
        let job: JobRecord
        let process: Process
        let started: ContinuousClock.Instant
        var interrupted = false
        var lastSample: (time: ContinuousClock.Instant, cpuTicks: Double)?
    }

    let gallery: Gallery
    let settings: Settings
    var running: [String: RunningJob] = [:]

    public init(gallery: Gallery, settings: Settings) {
        self.gallery = gallery
        self.settings = settings
    }

    /// Stops jobs a dead worker left behind and queues them again; returns their ids. Run at start,
    /// and now and then after, for workers on other machines sharing a PostgreSQL registry.
    public func recover() throws -> [String] {
        let orphans = try gallery.registry.orphanedJobs()
        for job in orphans {
            if let pid = job.pid { killOrphan(pid: pid_t(pid), tagged: Self.tag(job.id)) }
        }
        return try gallery.registry.requeue(orphans)
    }

    /// Runs until the task is cancelled; then interrupts the running jobs (they checkpoint) and waits
    /// for them, leaving them queued to resume when the service starts again.
    public func run() async {
        var lastRecovery = ContinuousClock.now
        while !Task.isCancelled {
            do {
                if ContinuousClock.now - lastRecovery > settings.recoveryInterval {
                    lastRecovery = .now
                    let resumed = try recover()
                    if !resumed.isEmpty { FileHandle.standardError.write(Data("gallery worker: queued again the jobs of a worker that is gone: \(resumed.joined(separator: ", "))\n".utf8)) }
                }
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

    /// The `temper` command line a job runs: its method with the recipe, `--resume` after a checkpoint,
    /// and through `temper launch --ranks N` when it has several ranks (`--hosts` on the cluster's
    /// machines when it names them).
    static func arguments(for job: JobRecord, folder: URL, resume: Bool, cluster: LaunchCluster?) throws -> [String] {
        var arguments = [job.method.rawValue, "--recipe", folder.appendingPathComponent("recipe.json").path]
        if job.method == .eval || job.method == .compress {
            arguments += ["--output", folder.appendingPathComponent("run").path]
        } else if resume {
            arguments.append("--resume")
        }
        guard let hosts = job.hosts else {
            return job.ranks > 1 ? ["launch", "--ranks", String(job.ranks), "--", "temper"] + arguments : arguments
        }
        guard let cluster else {
            throw GalleryError.invalid("job \(job.id) runs on launch hosts (\(hosts)), and this gallery has none: start it with --launch-hosts", field: "hosts")
        }
        return ["launch", "--ranks", String(job.ranks), "--hosts", hosts, "--through", cluster.through, "--port", String(cluster.port(for: job.id)),
                "--", "temper"] + arguments
    }

    func start(_ job: JobRecord) throws -> RunningJob {
        let folder = gallery.jobFolder(job.id)
        let handle = try appendingHandle(folder.appendingPathComponent("log.txt"))
        let checkpoints = folder.appendingPathComponent("run/checkpoints")
        let resume = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []).contains { $0.hasPrefix("step-") }
        let arguments = try Self.arguments(for: job, folder: folder, resume: resume, cluster: gallery.cluster)
        handle.write(Data("== attempt \(job.attempts) on worker \(gallery.registry.workerKey): temper \(arguments.joined(separator: " ")) ==\n".utf8))
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

    /// CPU cores used since the last sample and resident memory, of the job's process and its
    /// descendants (a data-parallel job's ranks), appended to `resources.jsonl`.
    func sample(_ entry: inout RunningJob) {
        let now = ContinuousClock.Instant.now
        if let last = entry.lastSample, now - last.time < .seconds(2) { return }
        guard let (ticks, residentBytes) = ProcessUsage.treeUsage(of: entry.process.processIdentifier) else { return }
        if let last = entry.lastSample {
            let cores = max(0, ticks - last.cpuTicks) / ProcessUsage.ticksPerSecond / max(seconds(now - last.time), 1e-3)
            let rssMB = Double(residentBytes) / 1_048_576
            let line = String(
                format: #"{"elapsed_seconds":%.1f,"cpu_cores":%.3f,"rss_mb":%.1f}"#, seconds(now - entry.started), cores, rssMB) + "\n"
            if let handle = try? appendingHandle(gallery.jobFolder(entry.job.id).appendingPathComponent("resources.jsonl")) {
                handle.write(Data(line.utf8))
                try? handle.close()
            }
        }
        entry.lastSample = (now, ticks)
    }

    /// The environment variable that marks a job's process, so a restarted gallery finds it.
    static func tag(_ id: String) -> (name: String, value: String) { ("TEMPER_GALLERY_JOB", id) }
}

/// The last non-empty line of a text file (a failed job's reason), at most 300 characters.
func lastLine(of url: URL) -> String {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return "" }
    let line = text.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
    return String(line.prefix(300))
}

/// A file opened for appending, created if missing (job logs, resource samples).
func appendingHandle(_ url: URL) throws -> FileHandle {
    if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
    guard let handle = FileHandle(forWritingAtPath: url.path) else { throw GalleryError.io("cannot write \(url.path)") }
    handle.seekToEndOfFile()
    return handle
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Stops a process a dead gallery left behind (if `pid` is still that process) and waits until it is gone.
func killOrphan(pid: pid_t, tagged: (name: String, value: String)) {
    guard isLiveProcess(pid: pid, tagged: tagged) else { return }
    kill(pid, SIGKILL)
    while isLiveProcess(pid: pid, tagged: tagged) { usleep(20_000) }
}

/// Whether `pid` is alive (not a zombie) and its environment has `tagged` (a process the gallery
/// started: a pid alone may have been reused by an unrelated process since).
func isLiveProcess(pid: pid_t, tagged: (name: String, value: String)) -> Bool {
    guard kill(pid, 0) == 0, let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z") { return false }
    let entry = "\(tagged.name)=\(tagged.value)"
    return environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == entry }
}

import Foundation
import TemperServe
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One-click deploy: each deployment is a `temper serve` process on loopback that the gallery starts,
/// health-checks, records and stops. Adapter outputs of one base model share one server: deploying
/// another adapter of a deployed base restarts that server with every adapter (each served under its
/// output id; the base under its model id). A full-model output gets a server of its own.
public actor DeploymentManager {
    let gallery: Gallery
    let executable: URL
    var processes: [String: Process] = [:]

    public init(gallery: Gallery, executable: URL) {
        self.gallery = gallery
        self.executable = executable
    }

    /// Deploys an output (or a base model alone) and waits until it answers `/health`.
    public func deploy(outputID: String?, modelID: String?) async throws -> DeploymentRecord {
        let origin = try gallery.startingPoint(outputID: outputID, modelID: modelID, ggufAdvice: "deploy the output it was compressed from", servesQuantized: true)
        let (model, output) = (origin.base, origin.output)
        if let output, output.kind == "adapter",
            var shared = try gallery.registry.deployments().first(where: { $0.modelID == model.id && $0.state == .running && Self.isAdapterServer($0, gallery) })
        {
            if shared.outputIDs.contains(output.id) { return shared }
            shared.outputIDs.append(output.id)
            stopProcess(shared.id)
            return try await start(shared)
        }
        let record = DeploymentRecord(
            id: makeID("dep"), modelID: model.id, outputIDs: output.map { [$0.id] } ?? [], url: nil, state: .starting,
            createdAt: Date(), pid: nil, port: nil, exitReason: nil)
        return try await start(record)
    }

    /// Stops a deployment's server (SIGTERM: requests in flight finish first).
    public func stop(_ id: String) throws -> DeploymentRecord {
        guard var record = try gallery.registry.deployment(id) else { throw GalleryError.notFound("deployment", id) }
        stopProcess(id)
        if let pid = record.pid, processes[id] == nil, isLiveProcess(pid: pid_t(pid), tagged: Self.tag(id)) { kill(pid_t(pid), SIGTERM) }
        record.state = .stopped
        record.pid = nil
        try gallery.registry.save(record)
        return record
    }

    /// Stops every server this process started (the gallery is shutting down); they are started
    /// again by ``restore()``.
    public func shutdown() {
        for id in processes.keys { stopProcess(id) }
    }

    /// Starts again the deployments that were running when their gallery stopped (or died).
    public func restore() async {
        for record in (try? gallery.registry.orphanedDeployments()) ?? [] {
            if let pid = record.pid { killOrphan(pid: pid_t(pid), tagged: Self.tag(record.id)) }
            _ = try? await start(record)
        }
    }

    static func isAdapterServer(_ record: DeploymentRecord, _ gallery: Gallery) -> Bool {
        record.outputIDs.allSatisfy { (try? gallery.registry.output($0))??.kind == "adapter" }
    }

    func arguments(for record: DeploymentRecord) throws -> [String] {
        guard let model = try gallery.registry.model(record.modelID) else { throw GalleryError.notFound("model", record.modelID) }
        let outputs = try record.outputIDs.map { id in
            guard let output = try gallery.registry.output(id) else { throw GalleryError.notFound("output", id) }
            return output
        }
        if let full = outputs.first(where: { $0.kind == "model" || $0.kind == "quantized" }) {
            return ["serve", "--model", full.path, "--served-model-name", full.id, "--host", "127.0.0.1", "--port", "0"]
        }
        return ["serve", "--model", model.path, "--served-model-name", model.id, "--host", "127.0.0.1", "--port", "0"]
            + outputs.flatMap { ["--adapter", "\($0.id)=\($0.path)"] }
    }

    func start(_ record: DeploymentRecord) async throws -> DeploymentRecord {
        var record = record
        let folder = gallery.dataDirectory.appendingPathComponent("deployments").appendingPathComponent(record.id)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let logURL = folder.appendingPathComponent("log.txt")
        let log = try appendingHandle(logURL)
        let process = Process(), output = Pipe()
        process.executableURL = executable
        process.arguments = try arguments(for: record)
        process.standardOutput = output
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        environment[Self.tag(record.id).name] = record.id
        process.environment = environment
        try process.run()
        try? log.close()
        processes[record.id] = process
        record.state = .starting
        record.pid = Int(process.processIdentifier)
        record.workerKey = Int(gallery.registry.workerKey)
        try gallery.registry.save(record)

        // Its one stdout line names the bound port (read off the actor's executor: it blocks).
        let (base, _) = await Task.detached { TemperServer.readListeningURL(from: output.fileHandleForReading) }.value
        guard let base, let port = URL(string: base)?.port else {
            process.waitUntilExit()
            processes[record.id] = nil
            record.state = .failed
            record.pid = nil
            record.exitReason = "temper serve exited with status \(process.terminationStatus): \(lastLine(of: logURL))"
            try gallery.registry.save(record)
            throw GalleryError(status: 500, "deployment \(record.id) did not start: \(record.exitReason ?? "")")
        }
        record.port = port
        record.url = "\(base)/v1"
        record.state = try await Self.healthy(URL(string: "\(base)/health")!) ? .running : .failed
        if record.state == .failed { record.exitReason = "no answer from /health" }
        try gallery.registry.save(record)
        return record
    }

    func stopProcess(_ id: String) {
        guard let process = processes.removeValue(forKey: id) else { return }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    static func healthy(_ url: URL) async throws -> Bool {
        for _ in 0..<50 {
            if let (_, response) = try? await URLSession.shared.data(from: url), (response as? HTTPURLResponse)?.statusCode == 200 {
                return true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The environment variable that marks a deployment's server, so a restarted gallery finds it.
    static func tag(_ id: String) -> (name: String, value: String) { ("TEMPER_GALLERY_DEPLOYMENT", id) }
}

import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TemperGallery
import TemperServe

struct GalleryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "The self-hosted gallery: model registry with lineage, artifacts, training jobs and their API.",
        subcommands: [
            GalleryServeCommand.self, GalleryTokenCommand.self, GalleryVerifyCommand.self, GalleryDeployCommand.self,
            GalleryUndeployCommand.self,
        ])
}

struct GalleryServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the gallery's API and run its job queue.",
        discussion: """
            Keeps everything under --data-dir: registry.sqlite (the registry, unless --database), artifacts/ (content-addressed \
            files), models/ and outputs/ (folders linked from them), datasets/ and jobs/<id>/ (recipe, log, \
            resources, the trainer's output and checkpoints). Each job runs as its own `temper sft|dpo|grpo \
            --recipe` process; jobs left running by a crash are resumed from their last checkpoint at start. \
            Binds to loopback by default; on any other address every request needs a bearer token from \
            `temper gallery token create`. Put TLS in a reverse proxy in front of it. Prints one line, \
            `listening on http://HOST:PORT`, once the port is bound.
            """)

    @Option(help: "The gallery's data folder.") var dataDir = "gallery-data"
    @Option(help: "Also keep artifacts in an S3-compatible bucket: s3://BUCKET?endpoint=http://HOST:PORT[&region=R] (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
    var store: String?
    @Option(help: "Keep the registry on a PostgreSQL server instead of registry.sqlite: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE. Several galleries sharing it (and the --store) each run jobs, claiming them with row locks.")
    var database: String?
    @Option(help: "The address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(help: "The port to bind; 0 picks a free one (the line printed names it).") var port = 8080
    @Option(help: "Jobs run at once.") var concurrency = 1
    @Option(help: "CPU threads per job (default: all).") var threadsPerJob: Int?
    @Option(help: "Seconds between looks for jobs and deployments of workers that died (with --database: other galleries sharing it).")
    var recoveryInterval = 10.0
    @Option(help: "Machines data-parallel jobs may spread over, comma-separated (a job names one per rank); they need the same temper and the data folder at the same path.")
    var launchHosts: String?
    @Option(help: "With --launch-hosts: how a rank's command runs on a host ({host} and {rank} are replaced).")
    var launchThrough = "ssh {host}"
    @Option(help: "With --launch-hosts: the first port jobs' ranks listen on (each job a block of 64 from here).")
    var launchPort = 29500

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        if let threadsPerJob, threadsPerJob < 1 { throw ValidationError("--threads-per-job must be at least 1, got \(threadsPerJob)") }
        guard recoveryInterval > 0 else { throw ValidationError("--recovery-interval must be positive, got \(recoveryInterval)") }
        if let launchHosts, launchHosts.split(separator: ",").isEmpty { throw ValidationError("--launch-hosts names no host") }
        guard (1...(65535 - LaunchCluster.portsPerJob * LaunchCluster.portBlocks)).contains(launchPort) else {
            throw ValidationError(
                "--launch-port must leave room for \(LaunchCluster.portBlocks) blocks of \(LaunchCluster.portsPerJob) ports, got \(launchPort)")
        }
    }

    func run() throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let settings = GalleryService.Settings(
            dataDirectory: URL(fileURLWithPath: dataDir), store: store, database: database, host: host, port: port,
            worker: .init(
                executable: executable, concurrency: concurrency, threadsPerJob: threadsPerJob,
                recoveryInterval: .milliseconds(Int(recoveryInterval * 1000))),
            cluster: launchHosts.map {
                LaunchCluster(
                    hosts: $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, through: launchThrough, port: launchPort)
            })
        try ServeCommand.runBlocking {
            try await GalleryService.run(settings, onListening: { url in
                FileHandle.standardOutput.write(Data(TemperServer.listeningLine(url).utf8))
            }, log: { log($0) })
        }
        log("gallery stopped")
    }
}

struct GalleryTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage the gallery's bearer tokens.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a bearer token; it is printed once and only its SHA-256 is stored.")
        @Option(help: "The gallery's data folder.") var dataDir = "gallery-data"
        @Option(help: "The gallery's PostgreSQL registry (as given to gallery serve).") var database: String?
        @Option(help: "A name to remember it by.") var name = "default"

        func run() throws {
            print(try GalleryService.createToken(dataDirectory: URL(fileURLWithPath: dataDir), database: database, name: name))
        }
    }
}

struct GalleryVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Hash every artifact the registry lists and report any that is missing or changed (exit 1); with --store, also check the bucket has each and fetch any missing here from it.")
    @Option(help: "The gallery's data folder.") var dataDir = "gallery-data"
    @Option(help: "The gallery's S3 store (as given to gallery serve).") var store: String?
    @Option(help: "The gallery's PostgreSQL registry (as given to gallery serve).") var database: String?

    func run() throws {
        let gallery = try Gallery(dataDirectory: URL(fileURLWithPath: dataDir), store: store, database: database)
        let files = try gallery.registeredBlobs()
        let corrupt = try gallery.corruptArtifacts()
        guard corrupt.isEmpty else {
            for file in corrupt { log("\(file.ownerID)/\(file.name): blob \(file.sha256) is missing or does not match") }
            throw ExitCode(1)
        }
        print("all \(files.count) artifacts match their sha256" + (store == nil ? "" : ", here and in the bucket"))
    }
}

/// Where a running gallery listens, and its token (for the commands that talk to it over HTTP).
struct GalleryClientOptions: ParsableArguments {
    @Option(help: "The gallery's address.") var gallery = "http://127.0.0.1:8080"
    @Option(help: "A bearer token (default: $TEMPER_GALLERY_TOKEN; needed when the gallery is not on loopback).")
    var token: String?

    /// POSTs `body` to `path`; the response's JSON object, or an error with the gallery's message.
    func post(_ path: String, body: [String: String]) throws -> [String: Any] {
        guard let url = URL(string: gallery + path) else { throw ValidationError("--gallery \(gallery) is not a URL") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token = token ?? ProcessInfo.processInfo.environment["TEMPER_GALLERY_TOKEN"] {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        let status: Int, data: Data
        do {
            (status, data) = try sendAndWait(request)
        } catch {
            throw ValidationError("cannot reach the gallery at \(gallery): \(error.localizedDescription)")
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard (200..<300).contains(status) else {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? "status \(status)"
            throw ValidationError("the gallery refused: \(message)")
        }
        return object
    }
}

struct GalleryDeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Deploy an output (o-...) or a base model (m-...) of a running gallery as an OpenAI-compatible API; prints its base URL.")
    @Argument(help: "An output id, or a model id to serve the base alone.") var id: String
    @OptionGroup var client: GalleryClientOptions

    func run() throws {
        let body = id.hasPrefix("m-") ? ["model": id] : ["output": id]
        let deployment = try client.post("/api/deployments", body: body)
        log("deployment \(deployment["id"] as? String ?? "?"): \(deployment["state"] as? String ?? "?")")
        print(deployment["url"] as? String ?? "")
    }
}

struct GalleryUndeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undeploy", abstract: "Stop a deployment (dep-...).")
    @Argument(help: "The deployment id.") var id: String
    @OptionGroup var client: GalleryClientOptions

    func run() throws {
        let deployment = try client.post("/api/deployments/\(id)/stop", body: [:])
        print(deployment["state"] as? String ?? "")
    }
}

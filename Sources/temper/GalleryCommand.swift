import ArgumentParser
import Foundation
import TemperGallery

struct GalleryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "The self-hosted gallery: model registry with lineage, artifacts, training jobs and their API.",
        subcommands: [GalleryServeCommand.self, GalleryTokenCommand.self, GalleryVerifyCommand.self])
}

struct GalleryServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the gallery's API and run its job queue.",
        discussion: """
            Keeps everything under --data-dir: registry.sqlite (the registry), artifacts/ (content-addressed \
            files), models/ and outputs/ (folders linked from them), datasets/ and jobs/<id>/ (recipe, log, \
            resources, the trainer's output and checkpoints). Each job runs as its own `temper sft|dpo|grpo \
            --recipe` process; jobs left running by a crash are resumed from their last checkpoint at start. \
            Binds to loopback by default; on any other address every request needs a bearer token from \
            `temper gallery token create`. Put TLS in a reverse proxy in front of it. Prints one line, \
            `listening on http://HOST:PORT`, once the port is bound.
            """)

    @Option(help: "The gallery's data folder.") var dataDir = "gallery-data"
    @Option(help: "The address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(help: "The port to bind; 0 picks a free one (the line printed names it).") var port = 8080
    @Option(help: "Jobs run at once.") var concurrency = 1
    @Option(help: "CPU threads per job (default: all).") var threadsPerJob: Int?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        if let threadsPerJob, threadsPerJob < 1 { throw ValidationError("--threads-per-job must be at least 1, got \(threadsPerJob)") }
    }

    func run() throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let settings = GalleryService.Settings(
            dataDirectory: URL(fileURLWithPath: dataDir), host: host, port: port,
            worker: .init(executable: executable, concurrency: concurrency, threadsPerJob: threadsPerJob))
        try ServeCommand.runBlocking {
            try await GalleryService.run(settings, onListening: { url in
                FileHandle.standardOutput.write(Data("listening on \(url)\n".utf8))
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
        @Option(help: "A name to remember it by.") var name = "default"

        func run() throws {
            print(try GalleryService.createToken(dataDirectory: URL(fileURLWithPath: dataDir), name: name))
        }
    }
}

struct GalleryVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Hash every artifact the registry lists and report any that is missing or changed (exit 1).")
    @Option(help: "The gallery's data folder.") var dataDir = "gallery-data"

    func run() throws {
        let gallery = try Gallery(dataDirectory: URL(fileURLWithPath: dataDir))
        let files = try gallery.registry.allFiles()
        let corrupt = try gallery.corruptArtifacts()
        guard corrupt.isEmpty else {
            for file in corrupt { log("\(file.ownerID)/\(file.name): blob \(file.sha256) is missing or does not match") }
            throw ExitCode(1)
        }
        print("all \(files.count) artifacts match their sha256")
    }
}

import Foundation
import Hummingbird
import Mustache
import TemperCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The web UI: server-rendered pages over the registry (Mustache, ``GalleryTemplates``) with small
/// scripts that call the JSON API; a job's page follows it live through server-sent events.
enum GalleryWeb {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in GalleryTemplates.all {
            // The templates are constants of this file's module: a parse error is a bug caught by the tests.
            try! library.register(text, named: name)
        }
        return library
    }()

    static let guides: [[String: String]] = [
        ["name": "SFT", "text": "needs examples of the answers you want: chat (`messages`) or instruction/output pairs. The easiest to set up and the usual first step: it teaches format, style and knowledge."],
        ["name": "DPO", "text": "needs preference pairs: a prompt with a chosen and a rejected answer. No reward model; the frozen reference is the starting model, so run it after SFT (continue from the SFT output). Good for tone, safety and concision."],
        ["name": "GRPO", "text": "needs prompts only (plus fields such as `answer` for the reward functions): the model samples several answers per prompt and learns from rewards such as a math checker. The hardest to set up and the slowest, but it needs no written answers and improves checkable skills."],
    ]

    static func addRoutes(to router: Router<BasicRequestContext>, gallery: Gallery, deployments: DeploymentManager) {
        let registry = gallery.registry
        router.get("/") { _, _ in
            let models = try registry.models().map { model -> [String: Any] in
                let files = try registry.files(of: model.id)
                return [
                    "id": model.id, "name": model.name, "architecture": model.architecture,
                    "parametersText": String(format: "%.1fM", Double(model.parameters) / 1e6), "contextLength": model.contextLength,
                    "license": model.license ?? "", "fileCount": files.count,
                    "sizeText": String(format: "%.1f MB", Double(files.reduce(0) { $0 + $1.bytes }) / 1e6),
                ]
            }
            let datasets = try registry.datasets().map { d -> [String: Any] in
                ["id": d.id, "name": d.name, "format": d.format, "rows": d.rows, "bytes": d.bytes, "shortHash": String(d.sha256.prefix(16))]
            }
            let outputs = try registry.outputs().map { o -> [String: Any] in ["id": o.id, "kind": o.kind, "jobID": o.jobID, "bytes": o.bytes] }
            let deployed = try registry.deployments().map { d -> [String: Any] in
                ["id": d.id, "modelID": d.modelID, "outputIDs": d.outputIDs, "state": d.state.rawValue, "url": d.url ?? ""]
            }
            return page("catalogue", title: "Catalogue", ["models": models, "datasets": datasets, "outputs": outputs, "deployments": deployed])
        }
        router.get("/train") { request, _ in
            let chosenModel = request.uri.queryParameters.get("model"), chosenOutput = request.uri.queryParameters.get("output")
            let models = try registry.models().map { m -> [String: Any] in ["id": m.id, "name": m.name, "selected": m.id == chosenModel] }
            let outputs = try registry.outputs().map { o -> [String: Any] in
                ["id": o.id, "kind": o.kind, "jobID": o.jobID, "selected": o.id == chosenOutput]
            }
            let datasets = try registry.datasets().map { d -> [String: Any] in ["id": d.id, "name": d.name, "format": d.format, "rows": d.rows] }
            var context: [String: Any] = ["models": models, "outputs": outputs, "datasets": datasets, "guides": guides]
            if let cluster = gallery.cluster { context["launchHosts"] = cluster.hosts.joined(separator: ", ") }
            return page("train", title: "Train", context)
        }
        router.get("/jobs") { _, _ in
            let jobs = try registry.jobs().map { j -> [String: Any] in
                [
                    "id": j.id, "method": j.method.rawValue, "modelID": j.modelID, "datasetID": j.datasetID, "state": j.state.rawValue,
                    "created": ISO8601DateFormatter().string(from: j.createdAt), "exitReason": j.exitReason ?? "",
                ]
            }
            return page("jobs", title: "Jobs", ["jobs": jobs])
        }
        router.get("/jobs/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let job = try registry.job(id) else { throw GalleryError.notFound("job", id) }
            return page("job", title: "Job \(id)", [
                "id": job.id, "method": job.method.rawValue, "modelID": job.modelID, "datasetID": job.datasetID,
                "parentOutputID": job.parentOutputID.map { [$0] } ?? [String](), "state": job.state.rawValue, "attempts": job.attempts,
                "exitReason": job.exitReason ?? "", "hasExitReason": !(job.exitReason ?? "").isEmpty, "recipe": job.recipe, "outputID": try registry.output(ofJob: id)?.id ?? "",
            ])
        }
        router.get("/outputs/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let output = try registry.output(id) else { throw GalleryError.notFound("output", id) }
            let files = try registry.files(of: id).map { f -> [String: Any] in ["name": f.name, "bytes": f.bytes, "sha256": f.sha256, "outputID": id] }
            return page("output", title: "Output \(id)", [
                "id": output.id, "kind": output.kind, "bytes": output.bytes, "sha256": output.sha256, "jobID": output.jobID,
                "files": files, "lineageSVG": try LineageGraph.svg(for: id, registry: registry),
            ])
        }
        router.get("/playground") { _, _ in
            let running = try registry.deployments().filter { $0.state == .running }.map { d -> [String: Any] in
                ["models": ([d.modelID] + d.outputIDs).map { ["deployment": d.id, "model": $0] }]
            }
            return page("playground", title: "Playground", ["deployments": running])
        }

        // A job as server-sent events: its detail (as GET /api/jobs/{id}) whenever it changes, then `end`.
        router.get("/api/jobs/:id/events") { _, context in
            let id = try context.parameters.require("id")
            guard try registry.job(id) != nil else { throw GalleryError.notFound("job", id) }
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    var last = Data()
                    while true {
                        let detail = try GalleryAPI.jobDetail(id, gallery: gallery)
                        let data = try JSONEncoder.gallery.encode(detail)
                        if data != last {
                            try await writer.write(ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n"))
                            last = data
                        }
                        if ![.queued, .running].contains(detail.job.state) { break }
                        try await Task.sleep(for: .seconds(1))
                    }
                    try await writer.write(ByteBuffer(string: "event: end\ndata: {}\n\n"))
                    try await writer.finish(nil)
                })
        }

        // The playground's chat goes through the gallery (same origin, and the token stays here).
        router.post("/api/deployments/:id/chat") { request, context in
            let id = try context.parameters.require("id")
            guard let deployment = try registry.deployment(id) else { throw GalleryError.notFound("deployment", id) }
            guard deployment.state == .running, let url = deployment.url else {
                throw GalleryError(status: 409, "deployment \(id) is not running")
            }
            let body = try await request.body.collect(upTo: 1 << 20)
            var forward = URLRequest(url: URL(string: url + "/chat/completions")!)
            forward.httpMethod = "POST"
            forward.httpBody = Data(body.readableBytesView)
            forward.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let (data, response) = try await URLSession.shared.data(for: forward)
            return Response(
                status: .init(code: (response as? HTTPURLResponse)?.statusCode ?? 502), headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    static func page(_ template: String, title: String, _ values: [String: Any]) -> Response {
        var context = values
        context["title"] = title
        context["here_" + template] = true  // the current page in the navigation bar
        let html = library.render(context, withTemplate: template) ?? "template \(template) is missing"
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// The lineage of an output as an SVG: every node it descends from, in columns by depth (models and
/// datasets first, then jobs and their outputs), with arrows along the edges.
enum LineageGraph {
    static func svg(for id: String, registry: Registry) throws -> String {
        let edges = try registry.ancestry(of: id)
        var depth: [String: Int] = [id: 0]
        // Longest distance from a source: repeat relaxations (the graph is small and acyclic).
        var nodes = Set(edges.flatMap { [$0.fromID, $0.toID] })
        nodes.insert(id)
        for _ in 0..<nodes.count {
            for edge in edges { depth[edge.toID] = max(depth[edge.toID] ?? 0, (depth[edge.fromID] ?? 0) + 1) }
        }
        let columns = Dictionary(grouping: nodes, by: { depth[$0] ?? 0 }).mapValues { $0.sorted() }
        let (boxWidth, boxHeight, columnGap, rowGap) = (170, 44, 60, 16)
        var position: [String: (x: Int, y: Int)] = [:]
        for (column, ids) in columns {
            for (row, node) in ids.enumerated() { position[node] = (20 + column * (boxWidth + columnGap), 20 + row * (boxHeight + rowGap)) }
        }
        let width = 40 + (columns.keys.max() ?? 0) * (boxWidth + columnGap) + boxWidth
        let height = 40 + (columns.values.map(\.count).max() ?? 1) * (boxHeight + rowGap)
        var svg = ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(width)" height="\##(height)" role="img" aria-label="lineage of \##(id)">"##
        svg += ##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667085"/></marker></defs>"##
        for edge in edges {
            guard let from = position[edge.fromID], let to = position[edge.toID] else { continue }
            svg += ##"<line x1="\##(from.x + boxWidth)" y1="\##(from.y + boxHeight / 2)" x2="\##(to.x)" y2="\##(to.y + boxHeight / 2)" stroke="#667085" marker-end="url(#arrow)"><title>\##(edge.relation)</title></line>"##
        }
        for node in nodes.sorted() {
            guard let at = position[node] else { continue }
            let (label, color, link) = try describe(node, registry: registry)
            let highlight = node == id ? ##" stroke-width="3""## : ""
            svg += ##"<a href="\##(link)"><rect x="\##(at.x)" y="\##(at.y)" width="\##(boxWidth)" height="\##(boxHeight)" rx="6" fill="\##(color)" stroke="#1d2330"\##(highlight)/>"##
            svg += ##"<text x="\##(at.x + 8)" y="\##(at.y + 18)">\##(escape(label))</text><text x="\##(at.x + 8)" y="\##(at.y + 34)" fill="#475467">\##(node)</text></a>"##
        }
        return svg + "</svg>"
    }

    static func describe(_ id: String, registry: Registry) throws -> (label: String, color: String, link: String) {
        if let model = try registry.model(id) { return ("model " + model.name.prefix(18), "#e7f5ff", "/") }
        if let dataset = try registry.dataset(id) { return ("data " + dataset.name.prefix(19), "#fff9db", "/") }
        if let job = try registry.job(id) { return ("\(job.method.rawValue) job, \(job.state.rawValue)", "#f3f0ff", "/jobs/\(id)") }
        if let output = try registry.output(id) { return ("\(output.kind) output", "#ebfbee", "/outputs/\(id)") }
        return (id, "#ffffff", "/")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

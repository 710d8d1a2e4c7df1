import Foundation
import Hummingbird
import TemperCore
import TemperTraining

/// The gallery's JSON API under `/api` (the web UI and scripts use it) and `/health`. Errors answer
/// `{"error": {"message", "field", "status"}}` with the status of the problem.
public enum GalleryAPI {
    public static let maxUploadBytes = 1 << 30
    static let maxJSONBytes = 1 << 20

    public static func buildRouter(
        gallery: Gallery, deployments: DeploymentManager? = nil, requireTokens: Bool
    ) -> Router<BasicRequestContext> {
        let deployments = deployments ?? DeploymentManager(gallery: gallery, executable: URL(fileURLWithPath: "/proc/self/exe"))
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: GalleryErrorMiddleware())
        if requireTokens { router.add(middleware: GalleryTokenMiddleware(registry: gallery.registry)) }
        router.get("/health") { _, _ in try json(["status": "ok"]) }
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: GalleryOpenAPI.document)))
        }

        router.get("/api/models") { _, _ in try json(gallery.registry.models()) }
        router.post("/api/models") { request, context in
            let body = try await decode(ImportModelRequest.self, from: request, context: context)
            guard !body.path.isEmpty else { throw GalleryError.invalid("path is required", field: "path") }
            return try json(gallery.importModel(from: URL(fileURLWithPath: body.path), name: body.name), status: .created)
        }
        router.get("/api/models/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let model = try gallery.registry.model(id) else { throw GalleryError.notFound("model", id) }
            return try json(ModelCard(model: model, files: gallery.registry.files(of: id)))
        }

        router.get("/api/datasets") { _, _ in try json(gallery.registry.datasets()) }
        router.post("/api/datasets") { request, _ in
            guard let name = request.uri.queryParameters.get("name") else {
                throw GalleryError.invalid("give the file name as ?name=", field: "name")
            }
            let buffer = try await request.body.collect(upTo: maxUploadBytes)
            let bytes = Data(buffer.readableBytesView)
            let format = request.uri.queryParameters.get("format")
            return try json(gallery.addDataset(name: name, contents: bytes, format: format), status: .created)
        }
        router.get("/api/datasets/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let dataset = try gallery.registry.dataset(id) else { throw GalleryError.notFound("dataset", id) }
            return try json(dataset)
        }

        router.get("/api/jobs") { _, _ in try json(gallery.registry.jobs()) }
        router.post("/api/jobs") { request, context in
            let body = try await decode(SubmitJobRequest.self, from: request, context: context)
            guard let method = JobMethod(rawValue: body.method) else {
                throw GalleryError.invalid("unknown method '\(body.method)'; use sft, dpo or grpo", field: "method")
            }
            let job = try gallery.submitJob(
                method: method, modelID: body.model, datasetID: body.dataset, startingFrom: body.output,
                recipe: body.recipe ?? [:], ranks: body.ranks ?? 1, hosts: body.hosts)
            return try json(job, status: .created)
        }
        router.get("/api/jobs/:id") { _, context in
            try json(jobDetail(try context.parameters.require("id"), gallery: gallery))
        }
        router.get("/api/jobs/:id/logs") { _, context in
            let id = try context.parameters.require("id")
            guard try gallery.registry.job(id) != nil else { throw GalleryError.notFound("job", id) }
            let log = (try? Data(contentsOf: gallery.jobFolder(id).appendingPathComponent("log.txt"))) ?? Data()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: log)))
        }
        router.post("/api/jobs/:id/cancel") { _, context in
            let id = try context.parameters.require("id")
            guard let job = try gallery.registry.requestCancel(jobID: id) else { throw GalleryError.notFound("job", id) }
            return try json(job, status: .accepted)
        }

        router.post("/api/evaluations") { request, context in
            let body = try await decode(EvaluateRequest.self, from: request, context: context)
            guard let kind = EvaluationKind(rawValue: body.kind) else {
                throw GalleryError.invalid(
                    "unknown kind '\(body.kind)'; use \(EvaluationKind.allCases.map(\.rawValue).joined(separator: ", "))", field: "kind")
            }
            return try json(
                gallery.submitEvaluation(
                    outputID: body.output, modelID: body.model, datasetID: body.dataset, kind: kind,
                    compareBase: body.compareBase ?? false, limit: body.limit, maxNewTokens: body.maxNewTokens),
                status: .created)
        }
        router.post("/api/compressions") { request, context in
            let body = try await decode(CompressRequest.self, from: request, context: context)
            return try json(
                gallery.submitCompression(outputID: body.output, modelID: body.model, datasetID: body.dataset, format: body.format),
                status: .created)
        }
        router.get("/api/evaluations/:id") { _, context in
            let detail = try jobDetail(try context.parameters.require("id"), gallery: gallery)
            guard detail.job.method == .eval else { throw GalleryError.notFound("evaluation", detail.job.id) }
            return try json(detail)
        }

        router.get("/api/outputs") { _, _ in try json(gallery.registry.outputs()) }
        router.get("/api/outputs/:id/files/:name") { _, context in
            let id = try context.parameters.require("id"), name = try context.parameters.require("name")
            guard let file = try gallery.registry.files(of: id).first(where: { $0.name == name }) else {
                throw GalleryError.notFound("file", "\(id)/\(name)")
            }
            return try download(gallery.store.blobURL(file.sha256), name: file.name, bytes: file.bytes)
        }
        router.get("/api/outputs/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let output = try gallery.registry.output(id) else { throw GalleryError.notFound("output", id) }
            return try json(
                OutputCard(
                    output: output, files: gallery.registry.files(of: id), lineage: gallery.registry.ancestry(of: id),
                    usedBy: gallery.registry.descendants(of: id)))
        }
        GalleryWeb.addRoutes(to: router, gallery: gallery, deployments: deployments)
        router.get("/api/deployments") { _, _ in try json(gallery.registry.deployments()) }
        router.post("/api/deployments") { request, context in
            let body = try await decode(DeployRequest.self, from: request, context: context)
            return try json(try await deployments.deploy(outputID: body.output, modelID: body.model), status: .created)
        }
        router.get("/api/deployments/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let deployment = try gallery.registry.deployment(id) else { throw GalleryError.notFound("deployment", id) }
            return try json(deployment)
        }
        router.post("/api/deployments/:id/stop") { _, context in
            try json(try await deployments.stop(try context.parameters.require("id")), status: .accepted)
        }
        return router
    }

    // MARK: Bodies

    struct EvaluateRequest: Decodable {
        var output: String?
        var model: String?
        var dataset: String
        var kind: String
        var compareBase: Bool?
        var limit: Int?
        var maxNewTokens: Int?

        enum CodingKeys: String, CodingKey {
            case output, model, dataset, kind, limit
            case compareBase = "compare_base", maxNewTokens = "max_new_tokens"
        }
    }

    struct CompressRequest: Decodable {
        var output: String?
        var model: String?
        /// A text dataset for the quality measurement.
        var dataset: String
        var format: String
    }

    struct DeployRequest: Decodable {
        var output: String?
        var model: String?
    }

    struct ImportModelRequest: Decodable {
        var path: String
        var name: String?
    }

    struct SubmitJobRequest: Decodable {
        var method: String
        var model: String?
        var dataset: String
        /// An output to start from (SFT -> DPO -> GRPO).
        var output: String?
        var recipe: [String: JSONValue]?
        /// Data-parallel processes (`temper launch --ranks`).
        var ranks: Int?
        /// One of the gallery's launch hosts per rank (`temper launch --hosts`).
        var hosts: [String]?
    }

    struct ModelCard: Encodable {
        var model: ModelRecord
        var files: [ArtifactFile]
    }

    struct JobDetail: Encodable {
        var job: JobRecord
        var output: OutputRecord?
        var metrics: [JSONValue]
        var resources: [JSONValue]
        /// An evaluation job's result (`temper eval`'s JSON).
        var evaluation: JSONValue?
        /// A compression job's report (`temper compress`'s compression.json).
        var compression: JSONValue?
    }

    struct OutputCard: Encodable {
        var output: OutputRecord
        var files: [ArtifactFile]
        /// Everything it came from: job, base model, dataset and earlier outputs and their jobs.
        var lineage: [LineageEdge]
        var usedBy: [LineageEdge]
    }

    /// A job with its output, its metrics.jsonl and its resource samples.
    static func jobDetail(_ id: String, gallery: Gallery) throws -> JobDetail {
        guard let job = try gallery.registry.job(id) else { throw GalleryError.notFound("job", id) }
        let folder = gallery.jobFolder(id)
        return JobDetail(
            job: job, output: try gallery.registry.output(ofJob: id),
            metrics: jsonLines(folder.appendingPathComponent("run/metrics.jsonl")),
            resources: jsonLines(folder.appendingPathComponent("resources.jsonl")),
            evaluation: jsonFile(folder.appendingPathComponent("run/evaluation.json")),
            compression: jsonFile(folder.appendingPathComponent("run/compression.json")))
    }

    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: BasicRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: maxJSONBytes)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let DecodingError.keyNotFound(key, _) {
            throw GalleryError(status: 400, "missing field '\(key.stringValue)'", field: key.stringValue)
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw GalleryError(status: 400, "wrong type: \(context.debugDescription)", field: field)
        } catch {
            throw GalleryError(status: 400, "malformed JSON body: \(error)")
        }
    }

    /// A stored file as an attachment, streamed in chunks (models are hundreds of megabytes).
    static func download(_ url: URL, name: String, bytes: Int) throws -> Response {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { throw GalleryError.io("blob \(url.lastPathComponent) is missing") }
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream", .contentLength: String(bytes),
                .contentDisposition: "attachment; filename=\"\(name.replacingOccurrences(of: "\"", with: ""))\"",
            ],
            body: ResponseBody { writer in
                defer { try? handle.close() }
                while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                try await writer.finish(nil)
            })
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try prettyJSON(value))))
    }

    static func jsonFile(_ url: URL) -> JSONValue? {
        FileManager.default.contents(atPath: url.path).flatMap { try? JSONDecoder().decode(JSONValue.self, from: $0) }
    }

    /// The objects of a JSON-lines file (a line being written may be incomplete: skipped).
    static func jsonLines(_ url: URL) -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0)) }
    }
}

/// Errors as `{"error": {...}}` with their status.
struct GalleryErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as GalleryError {
            return Self.response(error)
        } catch let error as HTTPError {
            return Self.response(GalleryError(status: Int(error.status.code), error.body ?? error.status.reasonPhrase))
        } catch let error as any HTTPResponseError {
            return Self.response(GalleryError(status: Int(error.status.code), "\(error)"))
        } catch {
            return Self.response(GalleryError(status: 500, "\(error)"))
        }
    }

    static func response(_ error: GalleryError) -> Response {
        let detail: [String: JSONValue] = [
            "message": .string(error.message), "field": error.field.map(JSONValue.string) ?? .null,
            "status": .number(Double(error.status)),
        ]
        let data = (try? prettyJSON(["error": detail])) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return Response(
            status: .init(code: error.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Requires `Authorization: Bearer <token>` with a token made by `temper gallery token create` on
/// everything but `/health` and the API's description `/openapi.json`; tokens are compared by their SHA-256 (only hashes are stored).
struct GalleryTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let registry: Registry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if !["/health", "/openapi.json"].contains(request.uri.path) {
            guard let header = request.headers[.authorization] else {
                throw GalleryError(status: 401, "this gallery needs a bearer token (temper gallery token create)")
            }
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer",
                try registry.token(withHash: sha256Hex(String(parts[1]).trimmingCharacters(in: .whitespaces))) != nil
            else { throw GalleryError(status: 401, "invalid bearer token") }
        }
        return try await next(request, context)
    }
}

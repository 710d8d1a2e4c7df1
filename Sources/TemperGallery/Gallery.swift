import Foundation
import TemperBench
import TemperCore
import TemperData
import TemperModels
import TemperTraining

/// The gallery's operations over its data folder: the registry (`registry.sqlite`), the artifact store
/// (`artifacts/`), model and output folders linked from the store (`models/`, `outputs/`), uploaded
/// datasets (`datasets/`) and one folder per job (`jobs/<id>/`: recipe.json, log.txt, resources.jsonl
/// and the trainer's output folder `run/` with its checkpoints and metrics.jsonl).
public final class Gallery: Sendable {
    public let dataDirectory: URL
    public let registry: Registry
    public let store: ArtifactStore
    /// The machines data-parallel jobs may spread over (`gallery serve --launch-hosts`); nil: jobs run
    /// their ranks on the worker's machine only.
    public let cluster: LaunchCluster?

    /// `store`: nil keeps artifacts in the data folder only; `s3://BUCKET?endpoint=…` also keeps them in
    /// that bucket (created if missing). `database`: nil keeps the registry in `registry.sqlite`;
    /// `postgres://USER@HOST:PORT/DATABASE` puts it on a PostgreSQL server that several galleries share.
    public init(dataDirectory: URL, store: String? = nil, database: String? = nil, cluster: LaunchCluster? = nil) throws {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.cluster = cluster
        for folder in ["models", "outputs", "datasets", "jobs"] {
            try FileManager.default.createDirectory(
                at: self.dataDirectory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        registry = try Registry(
            database: database.map { try PostgresDatabase(url: $0) }
                ?? SQLiteDatabase(path: self.dataDirectory.appendingPathComponent("registry.sqlite").path))
        let bucket = try store.map { try S3Bucket(storeURL: $0) }
        try bucket?.create()
        self.store = try ArtifactStore(root: self.dataDirectory.appendingPathComponent("artifacts"), remote: bucket)
    }

    public func jobFolder(_ id: String) -> URL { dataDirectory.appendingPathComponent("jobs").appendingPathComponent(id) }

    // MARK: Models

    /// Imports a Hugging Face model folder (or a GGUF file, converted) from this machine: its files go
    /// into the store (hashed) and the registry gets a card read from config.json (and the license from
    /// README.md's front matter).
    public func importModel(from folder: URL, name: String? = nil) throws -> ModelRecord {
        if folder.pathExtension.lowercased() == "gguf" {
            // A GGUF (llama.cpp's file) becomes a Hugging Face folder first: float32 weights, its tokenizer
            // and chat template.
            guard FileManager.default.fileExists(atPath: folder.path) else { throw GalleryError.invalid("no file \(folder.path)", field: "path") }
            let converted = dataDirectory.appendingPathComponent("artifacts/tmp").appendingPathComponent(UUID().uuidString)
            defer { try? FileManager.default.removeItem(at: converted) }
            do {
                _ = try GGUFConversion.importModel(from: folder, to: converted)
            } catch {
                throw GalleryError.invalid("\(folder.path): \(error)", field: "path")
            }
            return try importModel(from: converted, name: name ?? folder.deletingPathExtension().lastPathComponent)
        }
        let configURL = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw GalleryError.invalid("\(folder.path) has no config.json: not a Hugging Face model folder", field: "path")
        }
        let configuration: ModelConfiguration
        do {
            configuration = try ModelConfiguration.load(configURL)
        } catch {
            throw GalleryError.invalid("\(configURL.path): \(error)", field: "path")
        }
        let names = try Self.plainFiles(in: folder)
        guard names.contains(where: { $0.hasSuffix(".safetensors") }) else {
            throw GalleryError.invalid("\(folder.path) has no .safetensors weights", field: "path")
        }
        let id = makeID("m")
        let destination = dataDirectory.appendingPathComponent("models").appendingPathComponent(id)
        let files = try storeFiles(names, of: folder, as: id, into: destination)
        let record = ModelRecord(
            id: id, name: name ?? folder.lastPathComponent, path: destination.path, architecture: configuration.modelType,
            parameters: Self.parameterCount(configuration), contextLength: configuration.maxPositionEmbeddings,
            license: Self.license(in: folder), createdAt: Date())
        try registry.insert(record, files: files)
        return record
    }

    /// Weights of a decoder of this shape: embeddings (and an untied head), attention, MLP and norms.
    static func parameterCount(_ c: ModelConfiguration) -> Int {
        let h = c.hiddenSize, q = c.headCount * c.headDimension, kv = c.keyValueHeadCount * c.headDimension
        var layer = h * q + 2 * h * kv + q * h + 3 * h * c.intermediateSize + 2 * h
        if c.attentionBias { layer += q + 2 * kv }
        if c.queryKeyNorm { layer += 2 * c.headDimension }
        return c.vocabularySize * h * (c.tieWordEmbeddings ? 1 : 2) + c.layerCount * layer + h
    }

    /// `license:` from the front matter of the folder's README.md (the model card), if any.
    static func license(in folder: URL) -> String? {
        guard let text = try? String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8),
            text.hasPrefix("---")
        else { return nil }
        for line in text.split(separator: "\n").dropFirst() {
            if line.hasPrefix("---") { break }
            if line.hasPrefix("license:") {
                return line.dropFirst("license:".count).trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    // MARK: Datasets

    /// Stores an uploaded JSON/JSONL dataset after checking every record: a file with any bad line is
    /// refused with the first problems listed as `name:line: reason`.
    public func addDataset(name: String, contents: Data, format: String? = nil) throws -> DatasetRecord {
        guard !name.isEmpty, !name.contains("/"), !name.contains("\0"), name.utf8.count <= 200, name != ".", name != ".." else {
            throw GalleryError.invalid("a dataset needs a file name of 1 to 200 bytes without '/'", field: "name")
        }
        let inspection = try DatasetInspection.inspect(Array(contents), name: name, format: format)
        if !inspection.issues.isEmpty {
            let shown = inspection.issues.prefix(5).joined(separator: "; ")
            throw GalleryError.invalid(
                "\(inspection.issues.count) bad record\(inspection.issues.count == 1 ? "" : "s"): \(shown)", field: "file")
        }
        let (sha256, bytes) = try store.put(data: contents)
        let id = makeID("d")
        let folder = dataDirectory.appendingPathComponent("datasets").appendingPathComponent(id)
        let fileName = name.hasSuffix(".json") || name.hasSuffix(".jsonl") ? name : name + ".jsonl"
        try store.materialize(sha256, as: fileName, in: folder)
        let statistics = String(decoding: try JSONEncoder().encode(inspection.statistics), as: UTF8.self)
        let record = DatasetRecord(
            id: id, name: name, format: inspection.format, rows: inspection.rows, sha256: sha256, bytes: bytes,
            path: folder.appendingPathComponent(fileName).path, statistics: statistics, createdAt: Date())
        try registry.insert(record)
        return record
    }

    // MARK: Jobs

    /// Resolves and validates a job's recipe, then queues it. `recipe` holds the method's hyperparameters
    /// in the CLI's recipe schema; the gallery fills in `model`, `data`, `output` (and `adapter` when
    /// the job starts from a LoRA output).
    public func submitJob(
        method: JobMethod, modelID: String?, datasetID: String, startingFrom outputID: String? = nil,
        recipe: [String: JSONValue], ranks: Int = 1, hosts: [String]? = nil
    ) throws -> JobRecord {
        guard method != .eval, method != .compress else {
            throw GalleryError.invalid("evaluations and compressions go to POST /api/evaluations and /api/compressions", field: "method")
        }
        guard (1...64).contains(ranks) else { throw GalleryError.invalid("ranks must be in 1...64, got \(ranks)", field: "ranks") }
        if let hosts { try LaunchCluster.check(hosts, ranks: ranks, against: cluster) }
        guard let dataset = try registry.dataset(datasetID) else { throw GalleryError.notFound("dataset", datasetID) }
        let expected = Self.formats(for: method)
        guard expected.contains(dataset.format) else {
            throw GalleryError.invalid(
                "dataset \(datasetID) is \(dataset.format) data; \(method.rawValue) trains on \(expected.joined(separator: " or ")) data",
                field: "dataset")
        }
        for reserved in ["model", "data", "output", "adapter"] where recipe[reserved] != nil {
            throw GalleryError.invalid("the gallery sets '\(reserved)' itself; leave it out of the recipe", field: "recipe.\(reserved)")
        }
        var resolved = recipe
        // The Train form's default length: one pass over the data.
        if resolved["max_steps"] == nil && resolved["epochs"] == nil { resolved["epochs"] = .number(1) }
        let start = try startingPoint(outputID: outputID, modelID: modelID, ggufAdvice: "start from the output it was compressed from")
        let base = start.base
        resolved["model"] = .string(start.modelPath)
        if let adapter = start.adapterPath { resolved["adapter"] = .string(adapter) }
        if let modelID, modelID != base.id {
            throw GalleryError.invalid("output \(outputID ?? "") was trained from \(base.id), not \(modelID)", field: "model")
        }
        let id = makeID("j")
        let folder = jobFolder(id)
        resolved["data"] = .string(dataset.path)
        resolved["output"] = .string(folder.appendingPathComponent("run").path)
        let json = try prettyJSON(JSONValue.object(resolved))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let recipeURL = folder.appendingPathComponent("recipe.json")
        try json.write(to: recipeURL, options: .atomic)
        do {
            try Self.validateRecipe(method: method, at: recipeURL)
        } catch {
            try? FileManager.default.removeItem(at: folder)
            let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
            throw GalleryError.invalid(message.replacingOccurrences(of: recipeURL.path + ": ", with: ""), field: "recipe")
        }
        let job = JobRecord(
            id: id, method: method, modelID: base.id, datasetID: datasetID, parentOutputID: outputID,
            recipe: String(decoding: json, as: UTF8.self), state: .queued, createdAt: Date(), startedAt: nil,
            finishedAt: nil, exitReason: nil, pid: nil, attempts: 0, cancelRequested: false, ranks: ranks,
            hosts: hosts?.joined(separator: ","))
        try registry.insert(job)
        return job
    }

    static func formats(for method: JobMethod) -> [String] {
        switch method {
        case .sft: ["chat", "instruction", "text"]
        case .dpo: ["preference"]
        case .grpo: ["prompt"]
        case .eval: ["chat", "instruction", "text", "preference", "prompt"]
        case .compress: ["text"]
        }
    }

    static func formats(for kind: EvaluationKind) -> [String] {
        switch kind {
        case .loss: ["chat", "instruction", "text"]
        case .preference: ["preference"]
        case .accuracy, .answers: ["prompt"]
        }
    }

    static func validateRecipe(method: JobMethod, at url: URL) throws {
        switch method {
        case .sft: try SFTRecipe.load(url).validate()
        case .dpo: try DPORecipe.load(url).validate()
        case .grpo: try GRPORecipe.load(url).validate()
        case .eval:
            guard let data = FileManager.default.contents(atPath: url.path) else { throw GalleryError.io("cannot read \(url.path)") }
            try JSONDecoder().decode(EvaluationSpec.self, from: data).validate()
        case .compress:
            break
        }
    }

    /// Queues an evaluation of an output (against its base with `compareBase`) or of a base model.
    public func submitEvaluation(
        outputID: String?, modelID: String?, datasetID: String, kind: EvaluationKind, compareBase: Bool, limit: Int?,
        maxNewTokens: Int?
    ) throws -> JobRecord {
        guard let dataset = try registry.dataset(datasetID) else { throw GalleryError.notFound("dataset", datasetID) }
        guard Self.formats(for: kind).contains(dataset.format) else {
            throw GalleryError.invalid(
                "dataset \(datasetID) is \(dataset.format) data; a \(kind.rawValue) evaluation needs \(Self.formats(for: kind).joined(separator: " or ")) data",
                field: "dataset")
        }
        var spec = EvaluationSpec(model: "", data: dataset.path, kind: kind, compareBase: compareBase, limit: limit)
        if let maxNewTokens { spec.maxNewTokens = maxNewTokens }
        let start = try startingPoint(outputID: outputID, modelID: modelID, ggufAdvice: "evaluate the output it was compressed from", servesQuantized: true)
        if compareBase && start.adapterPath == nil {
            throw GalleryError.invalid("compare_base needs an adapter output; evaluate the base model separately", field: "compare_base")
        }
        let base = start.base
        spec.model = start.modelPath
        spec.adapter = start.adapterPath
        do { try spec.validate() } catch { throw GalleryError.invalid((error as? LocalizedError)?.errorDescription ?? "\(error)", field: "evaluation") }
        return try queue(.eval, spec: spec, modelID: base.id, datasetID: datasetID, parentOutputID: outputID)
    }

    /// Queues a compression of an output (an adapter is merged into its base first) or of a base model
    /// to a q8_0 or q4_0 GGUF, its quality measured on a text dataset.
    public func submitCompression(outputID: String?, modelID: String?, datasetID: String, format: String) throws -> JobRecord {
        guard let dataset = try registry.dataset(datasetID) else { throw GalleryError.notFound("dataset", datasetID) }
        guard dataset.format == "text" else {
            throw GalleryError.invalid("dataset \(datasetID) is \(dataset.format) data; the quality measurement needs text data ({\"text\": ...} lines)", field: "dataset")
        }
        guard ModelCompression.formats.contains(format) else {
            throw GalleryError.invalid("format must be one of \(ModelCompression.formats.joined(separator: ", ")), got '\(format)'", field: "format")
        }
        var spec = ModelCompression.Spec(model: "", format: format, text: dataset.path)
        let start = try startingPoint(outputID: outputID, modelID: modelID, ggufAdvice: "it is compressed already")
        let base = start.base
        spec.model = start.modelPath
        spec.adapter = start.adapterPath
        return try queue(.compress, spec: spec, modelID: base.id, datasetID: datasetID, parentOutputID: outputID)
    }

    /// What a job starts from: a base model alone, or an output with the base it was trained from (the
    /// folder to load, and the adapter to apply for an adapter output). A GGUF output cannot be loaded.
    struct StartingPoint {
        var base: ModelRecord
        var output: OutputRecord?
        var modelPath: String
        var adapterPath: String?
    }

    /// `servesQuantized`: whether an output quantized for the engine will do (it serves and evaluates,
    /// but is no base to train or to quantize again).
    func startingPoint(outputID: String?, modelID: String?, ggufAdvice: String, servesQuantized: Bool = false) throws -> StartingPoint {
        guard let outputID else {
            guard let modelID else { throw GalleryError.invalid("give a model or an output to start from", field: "model") }
            guard let model = try registry.model(modelID) else { throw GalleryError.notFound("model", modelID) }
            return StartingPoint(base: model, output: nil, modelPath: model.path, adapterPath: nil)
        }
        guard let output = try registry.output(outputID) else { throw GalleryError.notFound("output", outputID) }
        guard output.kind != "gguf" else {
            throw GalleryError.invalid("output \(outputID) is a GGUF file for llama.cpp or Ollama; \(ggufAdvice)", field: "output")
        }
        guard output.kind != "quantized" || servesQuantized else {
            throw GalleryError.invalid("output \(outputID) is quantized for serving; \(ggufAdvice)", field: "output")
        }
        guard let job = try registry.job(output.jobID), let base = try registry.model(job.modelID) else {
            throw GalleryError.notFound("job of output", outputID)
        }
        return output.kind == "adapter"
            ? StartingPoint(base: base, output: output, modelPath: base.path, adapterPath: output.path)
            : StartingPoint(base: base, output: output, modelPath: output.path, adapterPath: nil)
    }

    /// Writes a job's recipe file and queues it.
    func queue(_ method: JobMethod, spec: some Encodable, modelID: String, datasetID: String, parentOutputID: String?) throws -> JobRecord {
        let id = makeID("j")
        let folder = jobFolder(id)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let json = try prettyJSON(spec)
        try json.write(to: folder.appendingPathComponent("recipe.json"), options: .atomic)
        let job = JobRecord(
            id: id, method: method, modelID: modelID, datasetID: datasetID, parentOutputID: parentOutputID,
            recipe: String(decoding: json, as: UTF8.self), state: .queued, createdAt: Date(), startedAt: nil,
            finishedAt: nil, exitReason: nil, pid: nil, attempts: 0, cancelRequested: false)
        try registry.insert(job)
        return job
    }

    /// A finished job's output folder (`run/` less checkpoints and logs) into the store and the registry.
    func registerOutput(of job: JobRecord) throws -> OutputRecord {
        let run = jobFolder(job.id).appendingPathComponent("run")
        let names = try Self.plainFiles(in: run).filter { $0 != "metrics.jsonl" }
        let id = makeID("o")
        let destination = dataDirectory.appendingPathComponent("outputs").appendingPathComponent(id)
        let files = try storeFiles(names, of: run, as: id, into: destination)
        guard !files.isEmpty else { throw GalleryError.io("job \(job.id) finished but wrote no files to \(run.path)") }
        let kind =
            if names.contains("adapter_model.safetensors") { "adapter" }
            else if names.contains(where: { $0.hasSuffix(".gguf") }) { "gguf" }
            else if job.method == .compress { "quantized" }
            else { "model" }
        let output = OutputRecord(
            id: id, jobID: job.id, kind: kind, path: destination.path, sha256: ArtifactStore.manifestHash(files),
            bytes: files.reduce(0) { $0 + $1.bytes }, createdAt: Date())
        try registry.succeed(jobID: job.id, output: output, files: files)
        return output
    }

    /// The names of a folder's regular files (no folders, nothing hidden), sorted.
    static func plainFiles(in folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { name in
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isDirectory)
            return exists && !isDirectory.boolValue && !name.hasPrefix(".")
        }.sorted()
    }

    /// Puts the named files of `source` into the store and links them into `destination`, as files of `ownerID`.
    func storeFiles(_ names: [String], of source: URL, as ownerID: String, into destination: URL) throws -> [ArtifactFile] {
        try names.map { name in
            let (sha256, bytes) = try store.put(source.appendingPathComponent(name))
            try store.materialize(sha256, as: name, in: destination)
            return ArtifactFile(ownerID: ownerID, name: name, sha256: sha256, bytes: bytes)
        }
    }

    /// Every blob the registry refers to: the files of models and outputs, and each dataset's file.
    public func registeredBlobs() throws -> [ArtifactFile] {
        try registry.allFiles() + registry.datasets().map { ArtifactFile(ownerID: $0.id, name: $0.name, sha256: $0.sha256, bytes: $0.bytes) }
    }

    /// Every registered blob that is missing or no longer hashes to its name.
    public func corruptArtifacts() throws -> [ArtifactFile] {
        try registeredBlobs().filter { file in
            !((try? store.verify(file.sha256)) ?? false)
        }
    }
}

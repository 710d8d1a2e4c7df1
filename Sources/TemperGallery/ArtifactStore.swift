import Crypto
import Foundation

/// Content-addressed files under `root/<first two hex digits>/<sha256>`. A file is copied to a temporary
/// name in the store while it is hashed and renamed to its hash only when complete, so a crash never
/// leaves a blob whose content does not match its name. Model and output folders are hard links to
/// the blobs (copies where links are impossible).
///
/// With a `remote` bucket, every blob is also uploaded (key `sha256/<hash>`) before the registry refers to
/// it, and a blob missing here is fetched from the bucket (and its hash checked) when it is needed, so
/// the bucket is the durable copy and the data folder a cache of it.
public struct ArtifactStore: Sendable {
    public let root: URL
    public let remote: S3Bucket?

    public init(root: URL, remote: S3Bucket? = nil) throws {
        self.root = root
        self.remote = remote
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
    }

    static func remoteKey(_ sha256: String) -> String { "sha256/\(sha256)" }

    public func blobURL(_ sha256: String) -> URL {
        root.appendingPathComponent(String(sha256.prefix(2))).appendingPathComponent(sha256)
    }

    /// Stores the file at `source`; returns its hash and size.
    @discardableResult
    public func put(_ source: URL) throws -> (sha256: String, bytes: Int) {
        guard let input = FileHandle(forReadingAtPath: source.path) else {
            throw GalleryError.io("cannot copy \(source.path) into the artifact store")
        }
        defer { try? input.close() }
        return try stage { output in
            var hasher = SHA256(), bytes = 0
            while let chunk = try input.read(upToCount: 1 << 22), !chunk.isEmpty {
                hasher.update(data: chunk)
                try output.write(contentsOf: chunk)
                bytes += chunk.count
            }
            return (hex(hasher.finalize()), bytes)
        }
    }

    /// Stores `data` (an upload) the same way.
    public func put(data: Data) throws -> (sha256: String, bytes: Int) {
        try stage { output in
            try output.write(contentsOf: data)
            return (hex(SHA256.hash(data: data)), data.count)
        }
    }

    /// Writes a blob to a temporary file of the store (`write` returns its hash and size), then commits
    /// it under its hash and, with a bucket, uploads it.
    private func stage(_ write: (FileHandle) throws -> (sha256: String, bytes: Int)) throws -> (sha256: String, bytes: Int) {
        let temporary = root.appendingPathComponent("tmp").appendingPathComponent(UUID().uuidString)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let output = FileHandle(forWritingAtPath: temporary.path)
        else { throw GalleryError.io("cannot write \(temporary.path)") }
        defer { try? FileManager.default.removeItem(at: temporary) }
        let blob: (sha256: String, bytes: Int)
        do {
            defer { try? output.close() }
            blob = try write(output)
            try output.synchronize()
        }
        try commit(temporary, as: blob.sha256)
        if let remote, try !remote.exists(Self.remoteKey(blob.sha256)) {
            try remote.put(Self.remoteKey(blob.sha256), file: blobURL(blob.sha256), sha256: blob.sha256)
        }
        return blob
    }

    /// Renames a complete, hashed temporary file to its blob name (a blob already there wins).
    func commit(_ temporary: URL, as sha256: String) throws {
        let destination = blobURL(sha256)
        guard !FileManager.default.fileExists(atPath: destination.path) else { return }
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        if rename(temporary.path, destination.path) != 0 {
            throw GalleryError.io("cannot move a blob into \(destination.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Makes sure the blob is here: fetched from the bucket (and its hash checked) when it is not.
    public func ensureLocal(_ sha256: String) throws {
        guard !FileManager.default.fileExists(atPath: blobURL(sha256).path), let remote else { return }
        let temporary = root.appendingPathComponent("tmp").appendingPathComponent(UUID().uuidString + ".fetch")
        defer { try? FileManager.default.removeItem(at: temporary) }
        try remote.get(Self.remoteKey(sha256), to: temporary)
        let fetched = try Self.hash(of: temporary)
        guard fetched == sha256 else { throw GalleryError.io("the bucket's copy of blob \(sha256) hashes to \(fetched)") }
        try commit(temporary, as: sha256)
    }

    /// Makes `folder/name` the blob `sha256` (a hard link, else a copy).
    public func materialize(_ sha256: String, as name: String, in folder: URL) throws {
        try ensureLocal(sha256)
        let target = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: target)
        if link(blobURL(sha256).path, target.path) != 0 {
            try FileManager.default.copyItem(at: blobURL(sha256), to: target)
        }
    }

    /// Whether the blob's bytes still hash to its name (fetched from the bucket if missing here) and,
    /// with a bucket, whether the bucket has it.
    public func verify(_ sha256: String) throws -> Bool {
        try ensureLocal(sha256)
        if let remote, try !remote.exists(Self.remoteKey(sha256)) { return false }
        return try Self.hash(of: blobURL(sha256)) == sha256
    }

    public static func hash(of url: URL) throws -> String {
        guard let input = FileHandle(forReadingAtPath: url.path) else { throw GalleryError.io("cannot read \(url.path)") }
        defer { try? input.close() }
        var hasher = SHA256()
        while let chunk = try input.read(upToCount: 1 << 22), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    /// The hash of a set of files: of their sorted `name sha256` lines.
    public static func manifestHash(_ files: [ArtifactFile]) -> String {
        let lines = files.sorted { $0.name < $1.name }.map { "\($0.name) \($0.sha256)\n" }.joined()
        return hex(SHA256.hash(data: Data(lines.utf8)))
    }
}

func hex(_ digest: some Sequence<UInt8>) -> String {
    digest.map { String(format: "%02x", $0) }.joined()
}

func sha256Hex(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

/// Why a gallery request or operation failed; `status` is the HTTP status it answers with.
public struct GalleryError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var message: String
    public var field: String?

    public init(status: Int, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }

    public static func io(_ message: String) -> GalleryError { GalleryError(status: 500, message) }
    public static func notFound(_ what: String, _ id: String) -> GalleryError { GalleryError(status: 404, "no \(what) '\(id)'") }
    public static func invalid(_ message: String, field: String? = nil) -> GalleryError {
        GalleryError(status: 422, message, field: field)
    }

    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// AWS Signature Version 4 for S3 requests (header-based, the payload's SHA-256 signed).
public struct S3Signer: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var region: String

    public init(accessKey: String, secretKey: String, region: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
    }

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256` and `Authorization`.
    /// `headers` are the request's other headers to sign (names in any case); `host` is taken from the URL.
    public func sign(
        method: String, url: URL, headers: [String: String] = [:], payloadSHA256: String, date: Date = Date()
    ) -> [String: String] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let amzDate = formatter.string(from: date), day = String(amzDate.prefix(8))
        var signed = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value.trimmingCharacters(in: .whitespaces)) })
        let port = url.port.map { ":\($0)" } ?? ""
        signed["host"] = (url.host ?? "") + port
        signed["x-amz-date"] = amzDate
        signed["x-amz-content-sha256"] = payloadSHA256
        let names = signed.keys.sorted()
        let path = url.path.isEmpty ? "/" : url.path
        let canonicalPath = path.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(String($0)) }.joined(separator: "/")
        let query = (URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems ?? [])
            .map { (Self.encode($0.name), Self.encode($0.value ?? "")) }.sorted { $0 < $1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let canonicalRequest = [
            method, canonicalPath, query, names.map { "\($0):\(signed[$0]!)\n" }.joined(), names.joined(separator: ";"), payloadSHA256,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/s3/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(secretKey)".utf8))
        for part in [day, region, "s3", "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        return [
            "x-amz-date": amzDate, "x-amz-content-sha256": payloadSHA256,
            "Authorization": "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope),SignedHeaders=\(names.joined(separator: ";")),Signature=\(signature)",
        ]
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (S3's rule).
    static func encode(_ text: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}

/// A bucket of an S3-compatible server, path-style (`endpoint/bucket/key`), for the artifact store:
/// `s3://BUCKET?endpoint=http://HOST:PORT&region=REGION`, credentials from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY. Blocking calls (the store is synchronous), each a signed request.
public struct S3Bucket: Sendable {
    public var endpoint: URL
    public var bucket: String
    public var signer: S3Signer

    public init(endpoint: URL, bucket: String, signer: S3Signer) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.signer = signer
    }

    /// Parses `s3://bucket?endpoint=…&region=…`.
    public init(storeURL text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let components = URLComponents(string: text), components.scheme == "s3", let bucket = components.host, !bucket.isEmpty else {
            throw GalleryError.invalid("--store must look like s3://BUCKET?endpoint=http://HOST:PORT, got '\(text)'", field: "store")
        }
        let items = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let endpoint = items["endpoint"] ?? "https://s3.\(items["region"] ?? "us-east-1").amazonaws.com"
        guard let url = URL(string: endpoint), url.scheme == "http" || url.scheme == "https" else {
            throw GalleryError.invalid("--store endpoint '\(endpoint)' is not an http(s) URL", field: "store")
        }
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], let secretKey = environment["AWS_SECRET_ACCESS_KEY"] else {
            throw GalleryError.invalid("--store s3://… needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment", field: "store")
        }
        self.init(
            endpoint: url, bucket: bucket,
            signer: S3Signer(accessKey: accessKey, secretKey: secretKey, region: items["region"] ?? environment["AWS_REGION"] ?? "us-east-1"))
    }

    func objectURL(_ key: String?) -> URL {
        var url = endpoint.appendingPathComponent(bucket)
        if let key { url = url.appendingPathComponent(key) }
        return url
    }

    /// Creates the bucket (an existing one of ours is fine).
    public func create() throws {
        let (status, body) = try send("PUT", objectURL(nil), body: nil)
        guard (200..<300).contains(status) || body.contains("BucketAlreadyOwnedByYou") else {
            throw GalleryError.io("S3 PUT bucket \(bucket): status \(status): \(body.prefix(300))")
        }
    }

    public func exists(_ key: String) throws -> Bool {
        let (status, body) = try send("HEAD", objectURL(key), body: nil)
        if status == 404 { return false }
        guard status == 200 else { throw GalleryError.io("S3 HEAD \(bucket)/\(key): status \(status) \(body.prefix(200))") }
        return true
    }

    /// Uploads a file (S3 makes a PUT visible only once complete).
    public func put(_ key: String, file: URL, sha256: String) throws {
        let data = try Data(contentsOf: file, options: .mappedIfSafe)
        let (status, body) = try send("PUT", objectURL(key), body: data, payloadSHA256: sha256)
        guard (200..<300).contains(status) else { throw GalleryError.io("S3 PUT \(bucket)/\(key): status \(status): \(body.prefix(300))") }
    }

    public func get(_ key: String, to file: URL) throws {
        let (status, data) = try sendForData("GET", objectURL(key), body: nil)
        guard status == 200 else { throw GalleryError.io("S3 GET \(bucket)/\(key): status \(status)") }
        try data.write(to: file)
    }

    func send(_ method: String, _ url: URL, body: Data?, payloadSHA256: String? = nil) throws -> (Int, String) {
        let (status, data) = try sendForData(method, url, body: body, payloadSHA256: payloadSHA256)
        return (status, String(decoding: data, as: UTF8.self))
    }

    func sendForData(_ method: String, _ url: URL, body: Data?, payloadSHA256: String? = nil) throws -> (Int, Data) {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.httpBody = body
        let payload = payloadSHA256 ?? hex(SHA256.hash(data: body ?? Data()))
        for (name, value) in signer.sign(method: method, url: url, payloadSHA256: payload) {
            request.setValue(value, forHTTPHeaderField: name)
        }
        do {
            return try sendAndWait(request)
        } catch {
            throw GalleryError.io("S3 \(method) \(url.absoluteString): \(error.localizedDescription)")
        }
    }
}

/// Sends a request and waits for the answer, for synchronous callers (the artifact store, CLI commands
/// that talk to a gallery). Not for an async context's thread: it blocks until the session answers.
public func sendAndWait(_ request: URLRequest) throws -> (status: Int, body: Data) {
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    URLSession.shared.dataTask(with: request) { data, response, error in
        outcome.set(data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0, error)
        done.signal()
    }.resume()
    done.wait()
    let (data, status, error) = outcome.get()
    if let error { throw error }
    return (status, data)
}

private final class Outcome: @unchecked Sendable {
    // Safe: set once by the session's callback before the semaphore is signalled, read after the wait.
    private var value: (Data, Int, (any Error)?) = (Data(), 0, nil)
    func set(_ data: Data, _ status: Int, _ error: (any Error)?) { value = (data, status, error) }
    func get() -> (Data, Int, (any Error)?) { value }
}

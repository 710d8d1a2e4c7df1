import Foundation

/// How the server listens and what it accepts.
public struct ServeConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (the real one is passed to `onListening`).
    public var port: Int
    /// The `model` name of the base model; adapters are served under their own names.
    public var servedModelName: String
    /// Bearer tokens accepted on `/v1`; empty means no authentication (loopback only).
    public var apiKeys: [String]
    /// Request bodies larger than this are refused with 413.
    public var maxRequestBytes: Int
    /// `max_tokens` when a request gives none: the context left after the prompt, capped here.
    public var defaultMaxTokensCap: Int
    /// Largest `n` (samples per request).
    public var maxSamples: Int

    public init(
        host: String = "127.0.0.1", port: Int = 8000, servedModelName: String, apiKeys: [String] = [],
        maxRequestBytes: Int = 4 << 20, defaultMaxTokensCap: Int = 4096, maxSamples: Int = 128
    ) {
        self.host = host
        self.port = port
        self.servedModelName = servedModelName
        self.apiKeys = apiKeys
        self.maxRequestBytes = maxRequestBytes
        self.defaultMaxTokensCap = defaultMaxTokensCap
        self.maxSamples = maxSamples
    }
}

/// Bind addresses and bearer tokens.
public enum ServeSecurity {
    /// Whether `host` names only this machine: `localhost`, 127.0.0.0/8 or ::1 (bracketed or not,
    /// IPv4-mapped included). Any other name or address, `0.0.0.0` and `::` among them, may be
    /// reachable from elsewhere.
    public static func isLoopback(host: String) -> Bool {
        var host = host.trimmingCharacters(in: .whitespaces).lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host == "localhost." { return true }
        if let v4 = ipv4Octets(host) { return v4[0] == 127 }
        if host.contains(":") {
            if host.hasPrefix("::ffff:"), let v4 = ipv4Octets(String(host.dropFirst(7))) { return v4[0] == 127 }
            return expandedIPv6(host) == [0, 0, 0, 0, 0, 0, 0, 1]
        }
        return false
    }

    static func ipv4Octets(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = Int(part), value <= 255
            else { return nil }
            octets.append(value)
        }
        return octets
    }

    /// The eight 16-bit groups of an IPv6 address, or nil if it is not one.
    static func expandedIPv6(_ text: String) -> [Int]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [Int]? {
            if part.isEmpty { return [] }
            var result: [Int] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = Int(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    /// The keys of a key file: one per line; blank lines and lines starting with `#` are skipped.
    public static func parseKeys(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Whether an `Authorization` header value carries one of `keys` as a bearer token. The
    /// comparison takes the same time wherever the first difference lies.
    public static func authorize(_ header: String?, keys: [String]) -> Bool {
        guard let header else { return false }
        let parts = header.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let token = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8)
        var found = false
        for key in keys where constantTimeEqual(Array(key.utf8), token) { found = true }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

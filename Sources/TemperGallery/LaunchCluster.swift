import Foundation

/// The machines a gallery's data-parallel jobs may spread over (`gallery serve --launch-hosts a,b
/// [--launch-through "ssh {host}"] [--launch-port P]`). A job names one of them per rank; its ranks
/// start there through `temper launch --hosts … --through …`, so every host needs the same `temper`
/// and sees the gallery's data folder at the same path (a shared file system).
public struct LaunchCluster: Sendable, Equatable {
    public var hosts: [String]
    /// How a rank's command line runs on a host; `{host}` and `{rank}` are replaced.
    public var through: String
    /// The first port of the ports jobs listen on (each job its own block of ``portsPerJob``).
    public var port: Int

    public static let portsPerJob = 64
    /// Blocks of ports jobs are spread over, so that jobs sharing a host rarely share ports.
    public static let portBlocks = 128

    public init(hosts: [String], through: String = "ssh {host}", port: Int = 29500) {
        self.hosts = hosts
        self.through = through
        self.port = port
    }

    /// A job's hosts, one per rank, each one of the cluster's (a host may take several ranks).
    static func check(_ hosts: [String], ranks: Int, against cluster: LaunchCluster?) throws {
        guard let cluster else {
            throw GalleryError.invalid(
                "this gallery has no launch hosts (start it with gallery serve --launch-hosts); leave hosts out to run the ranks here",
                field: "hosts")
        }
        guard hosts.count == ranks else {
            throw GalleryError.invalid("hosts names \(hosts.count) hosts for \(ranks) ranks: give one per rank", field: "hosts")
        }
        if let unknown = hosts.first(where: { !cluster.hosts.contains($0) }) {
            throw GalleryError.invalid(
                "'\(unknown)' is not one of this gallery's launch hosts (\(cluster.hosts.joined(separator: ", ")))", field: "hosts")
        }
    }

    /// The first port of `jobID`'s block: the same on every attempt, so a resumed job listens where
    /// it did.
    func port(for jobID: String) -> Int {
        let hash = jobID.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }
        return port + Int(hash % UInt32(Self.portBlocks)) * Self.portsPerJob
    }
}

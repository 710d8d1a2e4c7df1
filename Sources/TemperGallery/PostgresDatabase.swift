import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The registry on a PostgreSQL server (`--database postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`),
/// which several gallery processes, on one or more machines, share: each claims jobs with
/// `FOR UPDATE SKIP LOCKED` and marks itself alive with a session advisory lock, which the server drops
/// the moment the process or its connection dies.
///
/// One connection per process, used by one caller at a time; the registry's calls are synchronous, so
/// they wait on the connection's own event loop (never one of Hummingbird's).
public final class PostgresDatabase: SQLDatabase, @unchecked Sendable {
    public let location: String
    public var lockForClaim: String { " FOR UPDATE SKIP LOCKED" }
    public var lockForMigration: String? { "SELECT pg_advisory_xact_lock(\(Self.workerLockNamespace + 1))" }
    public var tableExistsSQL: String { "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?" }
    let configuration: PostgresConnection.Configuration
    let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let logger = Logger(label: "temper.gallery.postgres")
    let lock = NSLock()
    var connection: PostgresConnection?
    var workerKey: Int32?

    /// Advisory locks in this namespace (the first of the two keys) mark live gallery workers.
    static let workerLockNamespace = 7353

    public init(url: String) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty
        else {
            throw GalleryError(status: 0, "--database \(url): expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw GalleryError(status: 0, "--database \(url): no database name after the host") }
        let user = components.user?.removingPercentEncoding ?? NSUserName()
        let port = components.port ?? 5432
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: components.password?.removingPercentEncoding, database: database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        self.configuration = configuration
        location = "postgres://\(user)@\(host):\(port)/\(database)"
        lock.lock()
        defer { lock.unlock() }
        _ = try connected()
    }

    deinit {
        try? connection?.close().wait()
        try? eventLoops.syncShutdownGracefully()
    }

    /// The open connection, reconnecting (and taking the worker lock again) after it dropped. Called
    /// with `lock` held.
    func connected() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        let opened = try reported {
            try PostgresConnection.connect(on: eventLoops.next(), configuration: configuration, id: 1, logger: logger).wait()
        }
        connection = opened
        if let workerKey { try Connection(connection: opened, database: self).execute(Self.lockSQL, [.integer(Int(workerKey))]) }
        return opened
    }

    static let lockSQL = "SELECT pg_advisory_lock(\(workerLockNamespace), ?::integer)"

    /// A PostgreSQL error as a message with the server's own words and where the database is.
    func reported<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PSQLError {
            let detail = error.serverInfo.map { info in
                [info[.sqlState].map { "SQLSTATE \($0)" }, info[.message]].compactMap { $0 }.joined(separator: ": ")
            } ?? String(reflecting: error)
            throw GalleryError.io("PostgreSQL at \(location): \(detail)")
        }
    }

    struct Connection: SQLConnection {
        let connection: PostgresConnection
        let database: PostgresDatabase

        func execute(_ sql: String, _ arguments: [SQLValue]) throws { _ = try run(sql, arguments) }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            try run(sql, arguments).map { row in
                var values: SQLRow = [:]
                for cell in row { values[cell.columnName] = try Self.value(of: cell) }
                return values
            }
        }

        func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
            var binds = PostgresBindings(capacity: arguments.count)
            for argument in arguments {
                switch argument {
                case .null: binds.appendNull()
                case .text(let text): binds.append(text)
                case .integer(let int): binds.append(int)
                case .real(let double): binds.append(double)
                case .bool(let bool): binds.append(bool)
                }
            }
            let query = PostgresQuery(unsafeSQL: Self.numberingPlaceholders(sql), binds: binds)
            return try database.reported { try connection.query(query, logger: database.logger).wait() }
        }

        /// `?` placeholders as PostgreSQL's `$1, $2, …` (the registry's SQL has no `?` inside literals).
        static func numberingPlaceholders(_ sql: String) -> String {
            var result = "", number = 0
            for character in sql {
                if character == "?" {
                    number += 1
                    result += "$\(number)"
                } else {
                    result.append(character)
                }
            }
            return result
        }

        static func value(of cell: PostgresCell) throws -> SQLValue {
            guard cell.bytes != nil else { return .null }
            switch cell.dataType {
            case .int2, .int4, .int8: return .integer(try cell.decode(Int.self))
            case .float4, .float8: return .real(try cell.decode(Double.self))
            case .bool: return .bool(try cell.decode(Bool.self))
            default: return .text(try cell.decode(String.self))
            }
        }
    }

    public func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(Connection(connection: try connected(), database: self))
    }

    public func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let connection = Connection(connection: try connected(), database: self)
        try connection.execute("BEGIN")
        do {
            let result = try body(connection)
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    public func holdWorkerLock(_ key: Int32) throws {
        lock.lock()
        defer { lock.unlock() }
        workerKey = key
        try Connection(connection: try connected(), database: self).execute(Self.lockSQL, [.integer(Int(key))])
    }

    public func liveWorkerKeys(own key: Int32) throws -> Set<Int32> {
        let rows = try read { connection in
            try connection.rows(
                """
                SELECT objid::bigint AS "key" FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND classid = \(Self.workerLockNamespace)::oid AND objsubid = 2
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """, [])
        }
        var keys: Set<Int32> = [key]
        for row in rows { if case .integer(let value)? = row["key"], let key = Int32(exactly: value) { keys.insert(key) } }
        return keys
    }
}

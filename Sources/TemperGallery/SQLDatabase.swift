import Foundation
import GRDB

/// A value bound to, or read from, a registry column. Dates are stored as seconds since 1970 (a
/// `DOUBLE PRECISION` column), lists as JSON text.
public enum SQLValue: Sendable, Equatable {
    case null
    case text(String)
    case integer(Int)
    case real(Double)
    case bool(Bool)
}

/// One result row, by column name.
public typealias SQLRow = [String: SQLValue]

/// One connection inside a read or a transaction. SQL is written once, in the subset SQLite and
/// PostgreSQL share, with `?` placeholders and double-quoted identifiers (PostgreSQL folds unquoted
/// names to lower case).
public protocol SQLConnection {
    func execute(_ sql: String, _ arguments: [SQLValue]) throws
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
}

/// The registry's database: SQLite in the data folder (one worker process) or a PostgreSQL server
/// shared by several worker processes.
public protocol SQLDatabase: Sendable {
    /// `" FOR UPDATE SKIP LOCKED"` where claims from several processes must skip each other's rows.
    var lockForClaim: String { get }
    /// Taken at the start of the migration transaction, so concurrent starts migrate one at a time.
    var lockForMigration: String? { get }
    /// One row if the table named by the argument exists.
    var tableExistsSQL: String { get }
    /// Where the database is, for messages (no password).
    var location: String { get }
    func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// `body` in one transaction: all of its writes or none.
    func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T
    /// Declares this process a live worker with `key` until it exits (or its connection drops).
    func holdWorkerLock(_ key: Int32) throws
    /// The keys of the worker processes alive now.
    func liveWorkerKeys(own key: Int32) throws -> Set<Int32>
}

extension SQLConnection {
    func execute(_ sql: String) throws { try execute(sql, []) }

    func insert<Record: Encodable>(_ record: Record, into table: String) throws {
        let row = try SQLRowEncoder.encode(record)
        let names = row.keys.sorted()
        try execute(
            "INSERT INTO \"\(table)\" (\(names.map { "\"\($0)\"" }.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))",
            names.map { row[$0]! })
    }

    /// Inserts `record`, or replaces every column of the row with its primary key `key`.
    func save<Record: Encodable>(_ record: Record, into table: String, key: String) throws {
        let row = try SQLRowEncoder.encode(record)
        let names = row.keys.sorted()
        let updates = names.filter { $0 != key }.map { "\"\($0)\" = excluded.\"\($0)\"" }.joined(separator: ", ")
        try execute(
            "INSERT INTO \"\(table)\" (\(names.map { "\"\($0)\"" }.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", "))) "
                + "ON CONFLICT (\"\(key)\") DO UPDATE SET \(updates)",
            names.map { row[$0]! })
    }

    func fetch<Record: Decodable>(_ type: Record.Type, _ sql: String, _ arguments: [SQLValue] = []) throws -> [Record] {
        try rows(sql, arguments).map { try SQLRowDecoder.decode(type, from: $0) }
    }

    func fetchOne<Record: Decodable>(_ type: Record.Type, _ sql: String, _ arguments: [SQLValue] = []) throws -> Record? {
        try fetch(type, sql, arguments).first
    }
}

// MARK: SQLite

/// SQLite in WAL mode through GRDB. One gallery process holds the data folder (see
/// `GalleryService.lockDataDirectory`), so it is the only worker.
public final class SQLiteDatabase: SQLDatabase {
    let pool: DatabasePool
    public let location: String
    public var lockForClaim: String { "" }
    public var lockForMigration: String? { nil }
    public var tableExistsSQL: String { "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?" }

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        location = path
    }

    struct Connection: SQLConnection {
        let db: GRDB.Database

        func execute(_ sql: String, _ arguments: [SQLValue]) throws {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments)).map { row in
                var values: SQLRow = [:]
                for (name, value) in row {
                    values[name] = switch value.storage {
                    case .null: .null
                    case .int64(let int): .integer(Int(int))
                    case .double(let double): .real(double)
                    case .string(let string): .text(string)
                    case .blob(let data): .text(String(decoding: data, as: UTF8.self))
                    }
                }
                return values
            }
        }

        static func arguments(_ values: [SQLValue]) -> StatementArguments {
            StatementArguments(values.map { value -> (any DatabaseValueConvertible)? in
                switch value {
                case .null: nil
                case .text(let text): text
                case .integer(let int): int
                case .real(let double): double
                case .bool(let bool): bool ? 1 : 0
                }
            })
        }
    }

    public func read<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.read { db in try body(Connection(db: db)) }
    }

    public func write<T>(_ body: (any SQLConnection) throws -> T) throws -> T {
        try pool.write { db in try body(Connection(db: db)) }
    }

    public func holdWorkerLock(_ key: Int32) throws {}

    /// The data folder's lock makes this process the only worker.
    public func liveWorkerKeys(own key: Int32) throws -> Set<Int32> { [key] }
}

// MARK: Records as rows

/// A flat record as a row: strings, numbers, booleans and dates as themselves, string enums as their
/// raw value, anything else (a list) as JSON text.
enum SQLRowEncoder {
    static func encode<Record: Encodable>(_ record: Record) throws -> SQLRow {
        let encoder = RowEncoder()
        try record.encode(to: encoder)
        return encoder.storage.row
    }

    final class Storage { var row: SQLRow = [:] }

    struct RowEncoder: Encoder {
        let storage = Storage()
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Container<Key>(storage: storage))
        }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { preconditionFailure("a registry record is a keyed struct") }
        func singleValueContainer() -> any SingleValueEncodingContainer { preconditionFailure("a registry record is a keyed struct") }
    }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) throws { storage.row[key.stringValue] = .null }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            storage.row[key.stringValue] = try SQLRowEncoder.value(value)
        }

        // A nil is a NULL column (the defaults would leave the column out, and an update keep it).
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            storage.row[key.stringValue] = try value.map(SQLRowEncoder.value) ?? .null
        }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { storage.row[key.stringValue] = value.map { .text($0) } ?? .null }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { storage.row[key.stringValue] = value.map { .integer($0) } ?? .null }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { storage.row[key.stringValue] = value.map { .real($0) } ?? .null }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { storage.row[key.stringValue] = value.map { .bool($0) } ?? .null }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            preconditionFailure("registry records are flat")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { preconditionFailure("registry records are flat") }
        mutating func superEncoder() -> any Encoder { preconditionFailure("registry records are flat") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { preconditionFailure("registry records are flat") }
    }

    static func value<T: Encodable>(_ value: T) throws -> SQLValue {
        switch value {
        case let bool as Bool: return .bool(bool)
        case let string as String: return .text(string)
        case let int as Int: return .integer(int)
        case let double as Double: return .real(double)
        case let date as Date: return .real(date.timeIntervalSince1970)
        case let raw as any RawRepresentable:
            if let string = raw.rawValue as? String { return .text(string) }
        default: break
        }
        return .text(String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }
}

/// A row back into its record (the inverse of ``SQLRowEncoder``); a column of the wrong type is an
/// error that names it.
enum SQLRowDecoder {
    static func decode<Record: Decodable>(_ type: Record.Type, from row: SQLRow) throws -> Record {
        try Record(from: RowDecoder(row: row))
    }

    struct RowDecoder: Decoder {
        let row: SQLRow
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Container<Key>(row: row))
        }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw mismatch("a keyed struct") }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { throw mismatch("a keyed struct") }
        func mismatch(_ what: String) -> DecodingError {
            .typeMismatch(Any.self, .init(codingPath: [], debugDescription: "a registry row decodes only into \(what)"))
        }
    }

    struct Container<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: SQLRow
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { row.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { row[key.stringValue] != nil }

        func decodeNil(forKey key: Key) throws -> Bool { (row[key.stringValue] ?? .null) == .null }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let value = row[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: [key], debugDescription: "the row has no column \(key.stringValue)"))
            }
            let wrongType = DecodingError.typeMismatch(
                T.self, .init(codingPath: [key], debugDescription: "column \(key.stringValue) holds \(value), not \(T.self)"))
            switch (value, type) {
            case (.text(let text), is String.Type): return text as! T
            case (.integer(let int), is Int.Type): return int as! T
            case (.integer(let int), is Double.Type): return Double(int) as! T
            case (.real(let double), is Double.Type): return double as! T
            case (.bool(let bool), is Bool.Type): return bool as! T
            case (.integer(let int), is Bool.Type): return (int != 0) as! T
            case (.real(let seconds), is Date.Type): return Date(timeIntervalSince1970: seconds) as! T
            case (.integer(let seconds), is Date.Type): return Date(timeIntervalSince1970: Double(seconds)) as! T
            case (.text(let text), let raw as any (RawRepresentable & Decodable).Type):
                guard let decoded = Self.make(raw, from: text) else { throw wrongType }
                return decoded as! T
            case (.text(let text), _):
                do {
                    return try JSONDecoder().decode(T.self, from: Data(text.utf8))
                } catch {
                    throw wrongType
                }
            default:
                throw wrongType
            }
        }

        static func make<Raw: RawRepresentable>(_ type: Raw.Type, from text: String) -> Raw? {
            (text as? Raw.RawValue).flatMap(Raw.init(rawValue:))
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "registry records are flat"))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch(Any.self, .init(codingPath: [key], debugDescription: "registry records are flat"))
        }
        func superDecoder() throws -> any Decoder { RowDecoder(row: row) }
        func superDecoder(forKey key: Key) throws -> any Decoder { RowDecoder(row: row) }
    }
}

import Foundation
import TemperCore
import TemperData

/// What an uploaded dataset is and whether every record is usable, through the same readers the
/// trainers use (so a dataset the gallery accepts is one `temper sft|dpo|grpo` reads).
public struct DatasetInspection: Sendable {
    /// `chat`, `instruction`, `text` (SFT), `preference` (DPO) or `prompt` (GRPO).
    public var format: String
    public var rows: Int
    /// `name:line: reason` for each bad record.
    public var issues: [String]
    public var statistics: Statistics

    public struct Statistics: Codable, Sendable, Equatable {
        public var rows: Int
        public var bytes: Int
        public var meanRecordBytes: Double
    }

    /// Detects the format from the first record's keys (`chosen` and `rejected`: preference; a `prompt`
    /// that is a list of messages: prompt; otherwise what the SFT reader detects), or takes `format`.
    public static func inspect(_ bytes: [UInt8], name: String, format: String? = nil) throws -> DatasetInspection {
        let keys = firstRecord(bytes)
        let detected: String
        if let format {
            guard ["chat", "instruction", "text", "preference", "prompt"].contains(format) else {
                throw GalleryError.invalid(
                    "unknown format '\(format)'; use chat, instruction, text, preference or prompt", field: "format")
            }
            detected = format
        } else if let keys, keys["chosen"] != nil, keys["rejected"] != nil {
            detected = "preference"
        } else if let keys, let prompt = keys["prompt"] as? [Any], prompt.first is [String: Any] {
            detected = "prompt"
        } else {
            detected = ""
        }
        let rows: Int, issues: [DataIssue], sftFormat: String?
        switch detected {
        case "preference":
            let read = PreferenceReader.parse(bytes, path: name)
            (rows, issues, sftFormat) = (read.examples.count, read.issues, nil)
        case "prompt":
            let read = PromptReader.parse(bytes, path: name)
            (rows, issues, sftFormat) = (read.examples.count, read.issues, nil)
        default:
            let file: DatasetFile
            do {
                file = try DatasetReader.parse(bytes, path: name, format: detected.isEmpty ? nil : DatasetFormat(rawValue: detected))
            } catch {
                throw GalleryError.invalid("\(error)", field: "file")
            }
            (rows, issues, sftFormat) = (file.examples.count, file.issues, file.format?.rawValue)
        }
        guard rows + issues.count > 0 else { throw GalleryError.invalid("\(name) holds no records", field: "file") }
        let count = rows + issues.count
        return DatasetInspection(
            format: sftFormat ?? detected, rows: rows, issues: issues.map(\.description),
            statistics: Statistics(rows: rows, bytes: bytes.count, meanRecordBytes: Double(bytes.count) / Double(count)))
    }

    /// The keys of the first record (of a JSON array, or the first non-blank line of JSONL).
    static func firstRecord(_ bytes: [UInt8]) -> [String: Any]? {
        let data = Data(bytes)
        if bytes.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }) == UInt8(ascii: "[") {
            return ((try? JSONSerialization.jsonObject(with: data)) as? [Any])?.first as? [String: Any]
        }
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
            return (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
        }
        return nil
    }
}

/// The API's JSON of a value, indented (responses, recipe files).
func prettyJSON(_ value: some Encodable) throws -> Data {
    let encoder = JSONEncoder.gallery
    encoder.outputFormatting.insert(.prettyPrinted)
    return try encoder.encode(value)
}

extension JSONEncoder {
    /// The API's encoding: sorted keys, ISO 8601 dates, on one line (server-sent events need that).
    static var gallery: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

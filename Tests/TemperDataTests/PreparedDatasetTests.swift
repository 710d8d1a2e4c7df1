import Foundation
import TemperTestSupport
import TemperTokenizers
import Testing

@testable import TemperData

@Suite(.enabled(if: Qwen3.available, "needs .deps/assets/qwen3-tokenizer"))
struct PreparedDatasetTests {
    @Test func abortListsEveryBadRecordOfEveryFile() throws {
        let (tokenizer, template) = try Qwen3.load()
        let chatFile = fixture("broken-chat.jsonl")
        let instructionFile = fixture("broken-instructions.json")
        let error = #expect(throws: DataError.self) {
            try PreparedDataset.prepare(
                trainFiles: [chatFile, instructionFile], config: DataConfig(maxLength: 256), tokenizer: tokenizer,
                chatTemplate: template)
        }
        guard case .invalidRecords(let issues) = error else {
            Issue.record("expected invalidRecords, got \(String(describing: error))")
            return
        }
        #expect(issues.count == 13)
        #expect(issues.map(\.location.line) == [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 7, 10, 14])
        let message = try #require(error?.localizedDescription)
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 14)
        #expect(lines[0] == "13 invalid records (fix them, or set the invalid-record policy to skip):")
        #expect(lines[1] == "  \(chatFile.path):2: malformed JSON: unterminated array (line 2, column 91)")
        #expect(lines[13] == "  \(instructionFile.path):14: field 'output' must be a string, found a number")
    }

    @Test func abortMessageShowsTheFirst20AndCountsTheRest() {
        let issues = (1...25).map { DataIssue(SourceLocation(file: "d.jsonl", line: $0), .noAssistantTurn) }
        let message = DataError.invalidRecords(issues).localizedDescription
        let lines = message.split(separator: "\n")
        #expect(lines.count == 22)
        #expect(lines[0] == "25 invalid records (fix them, or set the invalid-record policy to skip):")
        #expect(lines[20] == "  d.jsonl:20: wrong role order: no assistant turn")
        #expect(lines[21] == "  … and 5 more")
    }

    @Test func skipLeavesBadRecordsOutAndCountsThem() throws {
        let (tokenizer, template) = try Qwen3.load()
        let config = DataConfig(maxLength: 256, invalidRecordPolicy: .skip)
        let data = try PreparedDataset.prepare(
            trainFiles: [fixture("broken-chat.jsonl"), fixture("broken-instructions.json")], config: config,
            tokenizer: tokenizer, chatTemplate: template)
        #expect(data.train.map(\.source.line) == [1, 13, 2, 18])
        #expect(data.eval.isEmpty)
        let report = data.report
        #expect(report.recordsByFormat == ["chat": 2, "instruction": 2])
        #expect(
            report.skipped == [
                "malformed JSON": 1, "missing field": 2, "wrong role order": 5, "empty field": 2, "unknown role": 1,
                "not an object": 1, "wrong field type": 1,
            ])
        #expect(report.issues.count == 13)
        #expect(report.files.map(\.records) == [12, 5])
        #expect(report.files.map(\.invalid) == [10, 3])
        #expect(report.train.samples == 4)
        #expect(report.train.tokens == data.train.reduce(0) { $0 + $1.count })
        #expect(report.train.trainedTokens == data.train.reduce(0) { $0 + $1.trainedTokenCount })
        #expect(report.summary.contains("skipped (wrong role order): 5"))
    }

    @Test func tooLongRecordsFollowTheLengthPolicy() throws {
        let (tokenizer, template) = try Qwen3.load()
        let file = fixture("too-long.jsonl")
        var config = DataConfig(maxLength: 64, lengthPolicy: .drop)
        let dropped = try PreparedDataset.prepare(
            trainFiles: [file], config: config, tokenizer: tokenizer, chatTemplate: template)
        #expect(dropped.train.map(\.source.line) == [3])
        #expect(dropped.report.droppedTooLong == 2)
        #expect(dropped.report.skipped == ["too long (dropped)": 2])

        config.lengthPolicy = .truncate
        config.invalidRecordPolicy = .skip
        let truncated = try PreparedDataset.prepare(
            trainFiles: [file], config: config, tokenizer: tokenizer, chatTemplate: template)
        #expect(truncated.train.map(\.source.line) == [1, 3])
        #expect(truncated.train[0].count == 64)
        #expect(truncated.report.truncated == 1)
        #expect(truncated.report.skipped == ["prompt fills maxLength": 1])

        config.lengthPolicy = .error
        config.invalidRecordPolicy = .abort
        let error = #expect(throws: DataError.self) {
            try PreparedDataset.prepare(trainFiles: [file], config: config, tokenizer: tokenizer, chatTemplate: template)
        }
        guard case .invalidRecords(let issues) = error else {
            Issue.record("expected invalidRecords")
            return
        }
        #expect(issues.map(\.location) == [SourceLocation(file: file.path, line: 1), SourceLocation(file: file.path, line: 2)])
        #expect(issues.allSatisfy { $0.reason.kind == "too long" })
    }

    @Test func evalSplitByFractionAndByFile() throws {
        let (tokenizer, template) = try Qwen3.load()
        let demo = TestPaths.repositoryRoot.appendingPathComponent("Data/sft-demo.jsonl")
        let all = try PreparedDataset.prepare(
            trainFiles: [demo], config: DataConfig(maxLength: 128), tokenizer: tokenizer, chatTemplate: template)
        let config = DataConfig(maxLength: 128, evalFraction: 0.1, seed: 3)
        let split = try PreparedDataset.prepare(
            trainFiles: [demo], config: config, tokenizer: tokenizer, chatTemplate: template)
        let evalCount = Int((0.1 * Double(all.train.count)).rounded())
        #expect(split.eval.count == evalCount)
        #expect(split.train.count == all.train.count - evalCount)
        #expect(Set(split.train.map(\.source.line)).isDisjoint(with: split.eval.map(\.source.line)))
        #expect(split.report.eval.samples == evalCount)
        let again = try PreparedDataset.prepare(
            trainFiles: [demo], config: config, tokenizer: tokenizer, chatTemplate: template)
        #expect(again.eval == split.eval)

        let separate = try PreparedDataset.prepare(
            trainFiles: [demo], evalFiles: [fixture("sharegpt.jsonl")], config: config, tokenizer: tokenizer,
            chatTemplate: template)
        #expect(separate.train.count == all.train.count)
        #expect(separate.eval.map(\.source.line) == [1, 2])
    }

    @Test func chatDataNeedsATemplate() throws {
        let (tokenizer, _) = try Qwen3.load()
        let file = fixture("sharegpt.jsonl")
        let error = #expect(throws: DataError.self) {
            try PreparedDataset.prepare(trainFiles: [file], config: DataConfig(), tokenizer: tokenizer, chatTemplate: nil)
        }
        #expect(error?.localizedDescription == "\(file.path): chat records need a chat template, and the tokenizer has none")
    }

    @Test func preparedSamplesFeedTheLoader() throws {
        let (tokenizer, template) = try Qwen3.load()
        let data = try PreparedDataset.prepare(
            trainFiles: [TestPaths.repositoryRoot.appendingPathComponent("Data/instructions-demo.json")],
            config: DataConfig(maxLength: 128), tokenizer: tokenizer, chatTemplate: template)
        var loader = try DataLoader(
            samples: data.train, batchSize: 2, maxLength: 128, padTokenID: try #require(tokenizer.padTokenID), epochs: 1)
        var trained = 0
        var rows = 0
        while let batch = loader.next() {
            trained += batch.trainedTokenCount
            rows += batch.rowCount
            #expect(batch.ids.allSatisfy { $0.count == 128 })
        }
        #expect(trained == data.report.train.trainedTokens)
        #expect(rows < data.train.count)
    }
}

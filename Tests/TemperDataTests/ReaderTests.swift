import Foundation
import TemperTestSupport
import TemperTokenizers
import Testing

@testable import TemperData

let dataFixtures = TestPaths.fixtures.appendingPathComponent("data")

func fixture(_ name: String) -> URL { dataFixtures.appendingPathComponent(name) }

@Suite struct ReaderTests {
    @Test func brokenChatRecordsAreReportedWithFileAndLine() throws {
        let url = fixture("broken-chat.jsonl")
        let file = try DatasetReader.read(url)
        let path = url.path
        #expect(file.format == .chat)
        #expect(file.examples.map(\.source.line) == [1, 13])
        #expect(file.issues.map(\.description) == [
            "\(path):2: malformed JSON: unterminated array (line 2, column 91)",
            "\(path):3: missing field 'messages[1].content' (or 'messages[1].value')",
            "\(path):4: wrong role order: messages[0] is 'assistant'; a conversation starts with 'user' (after an optional 'system')",
            "\(path):5: wrong role order: messages[1] is a second 'user' in a row",
            "\(path):7: wrong role order: no assistant turn",
            "\(path):8: empty assistant message messages[1].content",
            "\(path):9: unknown role 'robot' in messages[1] (expected system, user or assistant, or a mapped name)",
            "\(path):10: expected a JSON object, found an array",
            "\(path):11: wrong role order: messages[2] is 'system'; only messages[0] may be 'system'",
            "\(path):12: wrong role order: the conversation ends with a user turn",
        ])
        #expect(file.recordCount == 12)
        #expect(
            file.examples[0].content
                == .chat([
                    ChatMessage(role: "user", content: "What is the capital of France?"),
                    ChatMessage(role: "assistant", content: "Paris."),
                ]))
    }

    @Test func jsonArrayRecordsCarryTheLineTheyStartOn() throws {
        let url = fixture("broken-instructions.json")
        let file = try DatasetReader.read(url)
        #expect(file.format == .instruction)
        #expect(file.examples.map(\.source.line) == [2, 18])
        #expect(
            file.examples[0].content
                == .instruction(system: nil, instruction: "Reverse the word.", input: "swift", output: "tfiws"))
        #expect(file.issues.map(\.description) == [
            "\(url.path):7: missing field 'output' (or 'response', 'completion', 'answer')",
            "\(url.path):10: empty output",
            "\(url.path):14: field 'output' must be a string, found a number",
        ])
    }

    @Test func aBrokenArrayElementStopsTheFileAtItsLine() throws {
        let url = fixture("truncated-array.json")
        let file = try DatasetReader.read(url)
        #expect(file.examples.count == 1)
        #expect(file.issues.map(\.description) == [
            "\(url.path):4: malformed JSON: expected ',' or '}' in an object (line 4, column 3)"
        ])
    }

    @Test func formatIsDetectedPerFile() throws {
        #expect(try DatasetReader.read(fixture("sharegpt.jsonl")).format == .chat)
        #expect(try DatasetReader.read(fixture("prompt-completion.jsonl")).format == .instruction)
        #expect(try DatasetReader.read(fixture("text.jsonl")).format == .text)
        #expect(try DatasetReader.read(fixture("broken-instructions.json")).format == .instruction)
        #expect(try DatasetReader.read(TestPaths.repositoryRoot.appendingPathComponent("Data/sft-demo.jsonl")).format == .chat)
    }

    @Test func unknownFormatNamesTheFileLineAndKeys() throws {
        let url = fixture("unknown-format.jsonl")
        let error = #expect(throws: DataError.self) { try DatasetReader.read(url) }
        #expect(
            error?.localizedDescription
                == "\(url.path):1: cannot detect the dataset format from the keys [foo, bar]; expected 'messages' (chat), "
                + "'instruction' and 'output' (instruction) or 'text', or set a column mapping or force the format")
    }

    @Test func missingFileIsReported() {
        let url = dataFixtures.appendingPathComponent("nope.jsonl")
        let error = #expect(throws: DataError.self) { try DatasetReader.read(url) }
        #expect(error?.localizedDescription == "cannot read dataset \(url.path): no such file")
    }

    @Test func forcedFormatReportsTheMissingField() throws {
        let url = fixture("sharegpt.jsonl")
        let file = try DatasetReader.read(url, format: .text)
        #expect(file.examples.isEmpty)
        #expect(file.issues.map(\.description) == [
            "\(url.path):1: missing field 'text'", "\(url.path):2: missing field 'text'",
        ])
    }

    @Test func shareGPTConversationsMapRolesAndSystem() throws {
        let file = try DatasetReader.read(fixture("sharegpt.jsonl"))
        #expect(file.issues.isEmpty)
        #expect(file.examples.map(\.content) == [
            .chat([
                ChatMessage(role: "system", content: "You are terse."),
                ChatMessage(role: "user", content: "Capital of Italy?"),
                ChatMessage(role: "assistant", content: "Rome."),
            ]),
            .chat([
                ChatMessage(role: "user", content: "Capital of Spain?"),
                ChatMessage(role: "assistant", content: "Madrid."),
                ChatMessage(role: "user", content: "And Portugal?"),
                ChatMessage(role: "assistant", content: "Lisbon."),
            ]),
        ])
    }

    @Test func promptCompletionAndQuestionAnswerMapToInstructions() throws {
        let file = try DatasetReader.read(fixture("prompt-completion.jsonl"))
        #expect(file.examples.map(\.content) == [
            .instruction(system: nil, instruction: "Capital of Japan?", input: nil, output: "Tokyo."),
            .instruction(system: nil, instruction: "Capital of Egypt?", input: nil, output: "Cairo."),
        ])
    }

    @Test func customColumnMapping() throws {
        var columns = ColumnMapping()
        columns.instruction = ["task"]
        columns.output = ["reply"]
        let file = try DatasetReader.read(fixture("custom-columns.jsonl"), columns: columns)
        #expect(file.format == .instruction)
        #expect(file.examples.map(\.content) == [
            .instruction(system: nil, instruction: "Name the capital of Kenya.", input: nil, output: "Nairobi.")
        ])
        var roles = ColumnMapping()
        roles.roles = ["customer": "user", "agent": "assistant"]
        let chat = try DatasetReader.parse(
            Array(#"{"messages": [{"role": "customer", "content": "Hi"}, {"role": "agent", "content": "Hello."}]}"#.utf8),
            path: "inline.jsonl", columns: roles)
        #expect(chat.examples.map(\.content) == [
            .chat([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello.")])
        ])
    }

    @Test func emptyTextIsAnIssue() throws {
        let url = fixture("text.jsonl")
        let file = try DatasetReader.read(url)
        #expect(file.examples.map(\.content) == [
            .text("Temper trains language models in Swift."), .text("The quick brown fox jumps over the lazy dog."),
        ])
        #expect(file.issues.map(\.description) == ["\(url.path):3: empty text"])
    }

    @Test(arguments: [
        ([("user", "a"), ("assistant", "b")], nil),
        ([("system", "s"), ("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")], nil),
        ([("assistant", "b")], "wrong role order: messages[0] is 'assistant'; a conversation starts with 'user' (after an optional 'system')"),
        ([("system", "s"), ("assistant", "b")], "wrong role order: messages[1] is 'assistant'; a conversation starts with 'user' (after an optional 'system')"),
        ([("user", "a"), ("user", "b"), ("assistant", "c")], "wrong role order: messages[1] is a second 'user' in a row"),
        ([("user", "a"), ("assistant", "b"), ("assistant", "c")], "wrong role order: messages[2] is a second 'assistant' in a row"),
        ([("user", "a")], "wrong role order: no assistant turn"),
        ([("system", "s")], "wrong role order: no assistant turn"),
        ([], "wrong role order: no assistant turn"),
        ([("user", "a"), ("assistant", "b"), ("user", "c")], "wrong role order: the conversation ends with a user turn"),
        ([("user", " "), ("assistant", "b")], "empty user message messages[0].content"),
        ([("user", "a"), ("tool", "b")], "unknown role 'tool' in messages[1] (expected system, user or assistant, or a mapped name)"),
    ] as [([(String, String)], String?)])
    func roleOrder(turns: [(String, String)], problem: String?) {
        let messages = turns.map { ChatMessage(role: $0.0, content: $0.1) }
        #expect(Example.validateConversation(messages)?.description == problem)
    }
}

@Suite struct JSONRecordTests {
    @Test func stringsEscapesAndNumbers() throws {
        let records = JSONRecords.parse(Array(#"{"a": "x\n\u00e9\ud83d\ude00\"", "b": [1, -2.5e1, true, null], "c": {}}"#.utf8))
        let value = try #require(try records.first?.value.get())
        #expect(
            value
                == .object([
                    "a": .string("x\né😀\""), "b": .array([.int(1), .double(-25), .bool(true), .none]), "c": .object([:]),
                ]))
    }

    @Test func errorsCarryLineAndCharacterColumn() {
        let records = JSONRecords.parse(Array("{\"a\": 1}\n\n{\"é\": tru}\n{\"b\": 2} x\n".utf8))
        #expect(records.map(\.line) == [1, 3, 4])
        guard case .failure(let failure) = records[1].value, case .failure(let trailing) = records[2].value else {
            Issue.record("expected failures")
            return
        }
        #expect(failure == JSONParseFailure(message: "invalid literal (expected 'true')", line: 3, column: 10))
        #expect(trailing == JSONParseFailure(message: "unexpected characters after the value", line: 4, column: 10))
    }

    @Test func byteOrderMarkIsSkipped() {
        let records = JSONRecords.parse([0xEF, 0xBB, 0xBF] + Array("[{\"a\": 1}]".utf8))
        #expect(records.count == 1)
        #expect(records.first?.object != nil)
    }

    @Test func lastLineWithoutNewlineAndCRLF() {
        let records = JSONRecords.parse(Array("{\"a\": 1}\r\n{\"a\": 2}".utf8))
        #expect(records.map(\.line) == [1, 2])
        #expect(records.allSatisfy { $0.object != nil })
    }
}

@Suite struct ConfigTests {
    @Test func partialJSONKeepsDefaults() throws {
        let json = #"{"maxLength": 256, "lengthPolicy": "drop", "columns": {"output": ["reply"]}, "format": "chat"}"#
        let config = try JSONDecoder().decode(DataConfig.self, from: Data(json.utf8))
        var expected = DataConfig(format: .chat, maxLength: 256, lengthPolicy: .drop)
        expected.columns.output = ["reply"]
        #expect(config == expected)
        #expect(try JSONDecoder().decode(DataConfig.self, from: JSONEncoder().encode(expected)) == expected)
    }

    @Test func outOfRangeValuesThrow() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(DataConfig.self, from: Data(#"{"evalFraction": 1.5}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(DataConfig.self, from: Data(#"{"maxLength": 0}"#.utf8))
        }
    }
}

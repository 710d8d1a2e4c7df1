import Foundation
import TemperTestSupport
import Testing
@testable import TemperTokenizers

@Suite("Tokenizer loading")
struct TokenizerLoadingTests {
    private func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("temper-tok-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A tiny byte-level BPE: vocabulary "a", "b", "ab", "Ġ", "Ġab" and two merges.
    private func tinyTokenizerJSON(extra: String = "", merges: String = #"["a b", ["Ġ", "ab"]]"#) -> String {
        """
        {"version": "1.0", "added_tokens": [
           {"id": 5, "content": "<s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
           {"id": 6, "content": "<tool>", "special": false, "normalized": false, "lstrip": false, "rstrip": true, "single_word": false}],
         "normalizer": null,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
         "post_processor": {"type": "TemplateProcessing",
           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}},
         "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": \(merges)\(extra)}}
        """
    }

    @Test("a missing folder or one without tokenizer files is an error naming the folder")
    func missingFiles() throws {
        let dir = try scratch("empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: dir) }
        #expect(error == .missingFiles(directory: dir.path))
        #expect(error?.description.contains(dir.path) == true)
        let nowhere = dir.appendingPathComponent("nowhere")
        let missing = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: nowhere) }
        #expect(missing?.description.contains("nowhere") == true)
    }

    @Test("malformed JSON is an error naming the file")
    func malformed() throws {
        let dir = try scratch("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"model\": ".utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let error = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: dir) }
        #expect(error?.description.contains("tokenizer.json") == true)
        #expect(error?.description.contains("not valid JSON") == true)

        try Data(tinyTokenizerJSON().utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        try Data("[1, 2".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let config = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: dir) }
        #expect(config?.description.contains("tokenizer_config.json") == true)
    }

    @Test("a wrong field is an error naming file and field")
    func invalidField() throws {
        let dir = try scratch("invalid")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(tinyTokenizerJSON(merges: #"["a b c"]"#).utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let error = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: dir) }
        #expect(error?.description.contains("tokenizer.json") == true)
        #expect(error?.description.contains("model.merges[0]") == true)

        try Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let unigram = #expect(throws: TokenizerError.self) { try Tokenizer.load(directory: dir) }
        #expect(unigram?.description.contains("model.type") == true)
    }

    @Test("a small tokenizer.json: merges in both forms, added tokens with rstrip, template BOS")
    func tiny() throws {
        let dir = try scratch("tiny")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(tinyTokenizerJSON().utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let tokenizer = try Tokenizer.load(directory: dir)
        #expect(tokenizer.encode("ab ab") == [5, 2, 4])
        #expect(tokenizer.encode("ab ab", addSpecialTokens: false) == [2, 4])
        // rstrip: the whitespace after "<tool>" belongs to it.
        #expect(tokenizer.encode("ab<tool>   ab", addSpecialTokens: false) == [2, 6, 2])
        #expect(tokenizer.decode([5, 2, 4]) == "<s>ab ab")
        #expect(tokenizer.decode([5, 2, 4], skipSpecialTokens: true) == "ab ab")
        #expect(tokenizer.specialTokenIDs == [5])
        #expect(tokenizer.vocabularySize == 7)
        #expect(tokenizer.id(for: "<tool>") == 6)
        #expect(tokenizer.token(for: 4) == "Ġab")
        #expect(tokenizer.decode([999, 2]) == "ab")
    }

    @Test("tokenizer_config.json: add_bos_token rebuilds the post-processor; chat template forms")
    func config() throws {
        let dir = try scratch("config")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(tinyTokenizerJSON().utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let config = #"""
        {"add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": {"content": "<s>"},
         "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
        """#
        try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        var tokenizer = try Tokenizer.load(directory: dir)
        #expect(tokenizer.encode("ab") == [2, 5])
        #expect(tokenizer.chatTemplate == "D")
        #expect(tokenizer.eosToken == "<s>")
        try Data("{{ messages }}".utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
        tokenizer = try Tokenizer.load(directory: dir)
        #expect(tokenizer.chatTemplate == "{{ messages }}")
    }

    @Test("ignore_merges takes a whole word from the vocabulary")
    func ignoreMerges() throws {
        let dir = try scratch("ignore")
        defer { try? FileManager.default.removeItem(at: dir) }
        // "Ġab" is in the vocabulary but no merge builds it from "Ġ" + "ab".
        try Data(tinyTokenizerJSON(merges: #"["a b"]"#).utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        #expect(try Tokenizer.load(directory: dir).encode(" ab", addSpecialTokens: false) == [3, 2])
        let json = tinyTokenizerJSON(extra: #", "ignore_merges": true"#, merges: #"["a b"]"#)
        try Data(json.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        #expect(try Tokenizer.load(directory: dir).encode(" ab", addSpecialTokens: false) == [4])
    }
}

@Suite("Tokenizer pre-tokenizer regex")
struct TokenizerRegexTests {
    private func pieces(_ pattern: String, _ text: String) throws -> [String] {
        let regex = try SplitRegex(pattern)
        let scalars = Array(text.unicodeScalars)
        let properties = scalars.map(ScalarProperties.of)
        let ranges = scalars.withUnsafeBufferPointer { t in properties.withUnsafeBufferPointer { regex.matches(in: t, properties: $0) } }
        return ranges.map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    @Test("GPT-2's pattern")
    func gpt2() throws {
        #expect(try pieces(PreTokenizer.gpt2Pattern, "Hello world's  3.5\n\n  x") ==
                ["Hello", " world", "'s", " ", " 3", ".", "5", "\n\n ", " x"])
    }

    @Test("Llama 3's pattern: case-insensitive contractions, 3-digit groups, newlines")
    func llama3() throws {
        #expect(try pieces(GGUFTokenizerConversion.llama3Split, "I'LL pay 1234567 now!\n\n  ok") ==
                ["I", "'LL", " pay", " ", "123", "456", "7", " now", "!\n\n", " ", " ok"])
        #expect(try pieces(GGUFTokenizerConversion.llama3Split, "'ſ x") == ["'ſ", " x"])
    }

    @Test("Qwen2's pattern splits digits one by one and keeps CJK runs")
    func qwen2() throws {
        #expect(try pieces(GGUFTokenizerConversion.qwen2Split, "abc 123 日本語。") ==
                ["abc", " ", "1", "2", "3", " 日本語", "。"])
    }

    @Test("lazy and counted quantifiers, lookahead, classes")
    func syntax() throws {
        #expect(try pieces("a{2,3}", "aaaaaaa") == ["aaa", "aaa"])
        #expect(try pieces("a+?", "aaa") == ["a", "a", "a"])
        #expect(try pieces("x(?=y)", "xyxz") == ["x"])
        #expect(try pieces("[^\\S\\n]+", "a \t\nb") == [" \t"])
        #expect(try pieces("[a-c]+", "abcd") == ["abc"])
        #expect(throws: SplitRegex.ParseError.self) { try SplitRegex("(?<name>x)") }
    }

    @Test("patterns the native engine does not parse fall back to NSRegularExpression")
    func fallback() throws {
        let pattern = try Pattern.regex("(?<word>[a-z]+)", field: "test")
        guard case .foundation = pattern else {
            Issue.record("expected the Foundation fallback")
            return
        }
        let scalars = Array("ab 😀 cd".unicodeScalars)
        #expect(pattern.matches(in: scalars) == [0..<2, 5..<7])
    }
}

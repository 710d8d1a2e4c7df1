import Foundation
import TemperTestSupport
import Testing
@testable import TemperTokenizers

/// Our tokenizers against transformers 5.24 (ids, decoded text, special tokens) over the fixture corpus.
@Suite("Tokenizer fixtures")
struct TokenizerFixtureTests {
    static let names = ["smollm2-gguf", "llama3-gguf", "gpt2-gguf", "qwen2-gguf", "qwen3"]

    @Test("ids match transformers over the whole corpus", arguments: names)
    func ids(name: String) throws {
        let fixtures = TokenizerFixtures.shared
        let reference = try #require(fixtures.tokenizers[name])
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        for (index, text) in fixtures.corpus.enumerated() {
            #expect(tokenizer.encode(text) == reference.ids[index], "\(name) #\(index) \(text.debugDescription)")
            let plain = reference.ids_no_special?[index] ?? reference.ids[index]
            #expect(tokenizer.encode(text, addSpecialTokens: false) == plain, "\(name) #\(index)")
        }
    }

    @Test("decoded text matches transformers, with and without special tokens", arguments: names)
    func decoded(name: String) throws {
        let fixtures = TokenizerFixtures.shared
        let reference = try #require(fixtures.tokenizers[name])
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        for index in fixtures.corpus.indices {
            let ids = reference.ids[index]
            #expect(tokenizer.decode(ids) == reference.decoded[index], "\(name) #\(index)")
            #expect(tokenizer.decode(ids, skipSpecialTokens: true) == reference.decoded_skip_special[index],
                    "\(name) #\(index)")
        }
        // Partial UTF-8 decodes to U+FFFD exactly as HF's lossy decoding does.
        let stream = reference.stream_ids
        for k in 1...stream.count {
            #expect(tokenizer.decode(Array(stream[..<k])) == reference.stream_prefix_decodes[k - 1], "\(name) prefix \(k)")
        }
    }

    @Test("special tokens, vocabulary size and ids match transformers", arguments: names)
    func specialTokens(name: String) throws {
        let reference = try #require(TokenizerFixtures.shared.tokenizers[name])
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        #expect(tokenizer.vocabularySize == reference.vocab_size)
        #expect(tokenizer.bosToken == reference.bos_token)
        #expect(tokenizer.bosTokenID == reference.bos_token_id)
        #expect(tokenizer.eosToken == reference.eos_token)
        #expect(tokenizer.eosTokenID == reference.eos_token_id)
        #expect(tokenizer.padToken == reference.pad_token)
        #expect(tokenizer.padTokenID == reference.pad_token_id)
        #expect(tokenizer.unknownToken == reference.unk_token)
        #expect(tokenizer.specialTokenIDs.sorted() == reference.special_ids)
    }

    @Test("decode(encode(x)) gives back x (NFC of x where the tokenizer normalizes)", arguments: names)
    func roundTrip(name: String) throws {
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        for text in TokenizerFixtures.shared.corpus {
            let expected = name == "qwen3" ? text.precomposedStringWithCanonicalMapping : text
            #expect(tokenizer.decode(tokenizer.encode(text)) == expected, "\(name) \(text.debugDescription)")
        }
    }

    @Test("special tokens in text stay whole")
    func specialTokensNeverSplit() throws {
        let qwen = try #require(ReferenceTokenizers.all["qwen3"])
        #expect(qwen.encode("<|im_start|>user\nhi<|im_end|>") == [151644, 872, 198, 6023, 151645])
        let smol = try #require(ReferenceTokenizers.all["smollm2-gguf"])
        let ids = smol.encode("x<|im_start|><|im_end|>y<|endoftext|>")
        #expect(ids.contains(1) && ids.contains(2) && ids.contains(0))
        #expect(ids.count == 5)
        let llama = try #require(ReferenceTokenizers.all["llama3-gguf"])
        #expect(llama.encode("<|begin_of_text|><|eot_id|>") == [128000, 128009])
        // A broken marker is ordinary text.
        #expect(!qwen.encode("<|im_start").contains(151644))
    }

    @Test("Qwen3 from vocab.json + merges.txt + tokenizer_config.json tokenizes like tokenizer.json")
    func slowFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-qwen3-slow-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for file in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: ReferenceTokenizers.qwen3Directory.appendingPathComponent(file),
                                             to: folder.appendingPathComponent(file))
        }
        let slow = try Tokenizer.load(directory: folder)
        let reference = try #require(TokenizerFixtures.shared.tokenizers["qwen3"])
        for (index, text) in TokenizerFixtures.shared.corpus.enumerated() {
            #expect(slow.encode(text) == reference.ids[index], "#\(index)")
        }
        #expect(slow.vocabularySize == reference.vocab_size)
        #expect(slow.chatTemplate == ReferenceTokenizers.all["qwen3"]?.chatTemplate)
        #expect(slow.chatTemplate?.contains("<|im_start|>") == true)
    }
}

@Suite("Streaming detokenizer")
struct TokenizerStreamingTests {
    @Test("yields the full text incrementally and never broken UTF-8", arguments: TokenizerFixtureTests.names)
    func streaming(name: String) throws {
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        let samples = TokenizerFixtures.shared.corpus + [TokenizerFixtures.shared.stream_sample]
        for text in samples {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            var stream = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: false)
            var pieces: [String] = []
            for id in ids { pieces.append(stream.append(id)) }
            pieces.append(stream.finish())
            #expect(pieces.joined() == tokenizer.decode(ids), "\(name) \(text.debugDescription)")
            #expect(!pieces.contains { $0.contains("\u{FFFD}") }, "\(name) \(text.debugDescription)")
        }
    }

    @Test("holds back a multi-token emoji until its last byte arrives")
    func holdsBackEmoji() throws {
        let tokenizer = try #require(ReferenceTokenizers.all["gpt2-gguf"])
        let ids = tokenizer.encode("🤖")
        #expect(ids.count > 1)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let emitted = ids.map { stream.append($0) }
        #expect(emitted.dropLast().allSatisfy { $0.isEmpty })
        #expect(emitted.last == "🤖")
        #expect(stream.finish() == "")
    }

    @Test("skips special tokens by default")
    func skipsSpecial() throws {
        let tokenizer = try #require(ReferenceTokenizers.all["qwen3"])
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let text = tokenizer.encode("<|im_start|>assistant\nHi there<|im_end|>").map { stream.append($0) }.joined()
        #expect(text + stream.finish() == "assistant\nHi there")
    }
}

/// Tests/Fixtures/tokenizers/tokenizer_fixtures.json (written by Tools/fixtures/generate_tokenizer_fixtures.py).
struct TokenizerFixtures: Decodable, Sendable {
    struct Reference: Decodable, Sendable {
        var vocab_size: Int
        var bos_token: String?
        var bos_token_id: Int?
        var eos_token: String?
        var eos_token_id: Int?
        var pad_token: String?
        var pad_token_id: Int?
        var unk_token: String?
        var special_ids: [Int]
        var ids: [[Int]]
        var ids_no_special: [[Int]]?
        var decoded: [String]
        var decoded_skip_special: [String]
        var stream_ids: [Int]
        var stream_prefix_decodes: [String]
    }

    struct Saved: Decodable, Sendable {
        var vocab_count: Int
        var vocab_fnv1a64: String
        var merges_count: Int
        var merges_fnv1a64: String
        var added_tokens: [[AddedTokenField]]
        var config: [String: String?]
        var chat_template_fnv1a64: String?
    }

    enum AddedTokenField: Decodable, Sendable, Equatable {
        case int(Int), string(String), bool(Bool)
        init(from decoder: any Swift.Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int.self) { self = .int(i) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    var versions: [String: String]
    var corpus: [String]
    var stream_sample: String
    var tokenizers: [String: Reference]
    var saved: [String: Saved]

    static let shared: TokenizerFixtures = {
        let url = TestPaths.fixtures.appendingPathComponent("tokenizers/tokenizer_fixtures.json")
        return try! JSONDecoder().decode(TokenizerFixtures.self, from: Data(contentsOf: url))
    }()
}

/// The real inputs, and our tokenizers built from them (once per test process).
enum ReferenceTokenizers {
    static let ggufFiles: [String: String] = [
        "smollm2-gguf": "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "llama3-gguf": "llama.cpp/models/ggml-vocab-llama-bpe.gguf",
        "gpt2-gguf": "llama.cpp/models/ggml-vocab-gpt-2.gguf",
        "qwen2-gguf": "llama.cpp/models/ggml-vocab-qwen2.gguf",
    ]

    static var qwen3Directory: URL { TestPaths.assets.appendingPathComponent("qwen3-tokenizer") }

    /// Converted GGUF files, kept in memory: name → (tokenizer.json, tokenizer_config.json).
    static let converted: [String: (tokenizerJSON: Data, tokenizerConfigJSON: Data)] = {
        var result: [String: (Data, Data)] = [:]
        for (name, path) in ggufFiles {
            let metadata = try! GGUFMetadata.read(TestPaths.assets.appendingPathComponent(path))
            result[name] = try! GGUFTokenizerConversion.files(from: metadata)
        }
        return result
    }()

    /// Every fixture tokenizer: the GGUF ones through our conversion and a folder, Qwen3 from its folder.
    static let all: [String: Tokenizer] = {
        var result: [String: Tokenizer] = [:]
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("temper-tokenizer-tests-\(getpid())")
        for (name, files) in converted {
            let folder = base.appendingPathComponent(name)
            try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try! files.tokenizerJSON.write(to: folder.appendingPathComponent("tokenizer.json"))
            try! files.tokenizerConfigJSON.write(to: folder.appendingPathComponent("tokenizer_config.json"))
            result[name] = try! Tokenizer.load(directory: folder)
        }
        try? FileManager.default.removeItem(at: base)
        result["qwen3"] = try! Tokenizer.load(directory: qwen3Directory)
        return result
    }()
}

/// FNV-1a 64 of the UTF-8 of `text`, as the fixture script computes it.
func fnv1a64(_ text: String) -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01B3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

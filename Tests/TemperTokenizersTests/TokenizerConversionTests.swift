import Foundation
import TemperTestSupport
import Testing
@testable import TemperTokenizers

/// GGUF → tokenizer.json/tokenizer_config.json against what transformers' GGUF loader builds (and
/// saves), and llama.cpp's own test vectors.
@Suite("GGUF tokenizer conversion")
struct TokenizerConversionTests {
    static let names = ["smollm2-gguf", "llama3-gguf", "gpt2-gguf", "qwen2-gguf"]

    @Test("the written tokenizer.json has transformers' vocabulary, merges and added tokens", arguments: names)
    func matchesSavedTokenizer(name: String) throws {
        let saved = try #require(TokenizerFixtures.shared.saved[name])
        let files = try #require(ReferenceTokenizers.converted[name])
        let json = try #require(try JSONSerialization.jsonObject(with: files.tokenizerJSON) as? [String: Any])
        let model = try #require(json["model"] as? [String: Any])
        let vocab = try #require(model["vocab"] as? [String: Int])
        #expect(vocab.count == saved.vocab_count)
        let vocabText = vocab.sorted { $0.value < $1.value }.map { "\($0.key)\t\($0.value)" }.joined(separator: "\n")
        #expect(fnv1a64(vocabText) == saved.vocab_fnv1a64)
        let merges = try #require(model["merges"] as? [[String]])
        #expect(merges.count == saved.merges_count)
        #expect(fnv1a64(merges.map { $0.joined(separator: " ") }.joined(separator: "\n")) == saved.merges_fnv1a64)
        let added = try #require(json["added_tokens"] as? [[String: Any]])
        let ours: [[TokenizerFixtures.AddedTokenField]] = added.map {
            [.int($0["id"] as? Int ?? -1), .string($0["content"] as? String ?? ""), .bool($0["special"] as? Bool ?? false)]
        }
        #expect(ours == saved.added_tokens)

        let config = try #require(try JSONSerialization.jsonObject(with: files.tokenizerConfigJSON) as? [String: Any])
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            #expect((config[key] as? String) == (saved.config[key] ?? nil), "\(name) \(key)")
        }
        #expect((config["chat_template"] as? String).map(fnv1a64) == saved.chat_template_fnv1a64)
        #expect(config["tokenizer_class"] as? String == "TokenizersBackend")
        #expect(config["add_bos_token"] as? Bool == false)
    }

    @Test("pre-tokenizer follows tokenizer.ggml.pre as transformers maps it")
    func preTokenizers() throws {
        func preTokenizer(_ name: String) throws -> [String: Any] {
            let files = try #require(ReferenceTokenizers.converted[name])
            let json = try #require(try JSONSerialization.jsonObject(with: files.tokenizerJSON) as? [String: Any])
            return try #require(json["pre_tokenizer"] as? [String: Any])
        }
        // "smollm" and "gpt-2" are not in transformers' table: GPT-2's ByteLevel with its regex.
        for name in ["smollm2-gguf", "gpt2-gguf"] {
            let p = try preTokenizer(name)
            #expect(p["type"] as? String == "ByteLevel")
            #expect(p["use_regex"] as? Bool == true)
        }
        let llama = try preTokenizer("llama3-gguf")
        let split = try #require((llama["pretokenizers"] as? [[String: Any]])?.first)
        #expect((split["pattern"] as? [String: String])?["Regex"] == GGUFTokenizerConversion.llama3Split)
        let qwen = try preTokenizer("qwen2-gguf")
        let qwenSplit = try #require((qwen["pretokenizers"] as? [[String: Any]])?.first)
        #expect((qwenSplit["pattern"] as? [String: String])?["Regex"] == GGUFTokenizerConversion.qwen2Split)
    }

    @Test("SmolLM2's chat template and special tokens come through")
    func smolConfig() throws {
        let tokenizer = try #require(ReferenceTokenizers.all["smollm2-gguf"])
        #expect(tokenizer.chatTemplate?.contains("<|im_start|>") == true)
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == 2)
        #expect(tokenizer.padTokenID == 2)
        #expect(tokenizer.encode("Hello world") == [19556, 905])
    }

    @Test("add_bos_token in the GGUF makes the post-processor add BOS")
    func addBOS() throws {
        var metadata = try GGUFMetadata.read(TestPaths.assets.appendingPathComponent("llama.cpp/models/ggml-vocab-llama-bpe.gguf"))
        metadata.values["tokenizer.ggml.add_bos_token"] = .bool(true)
        let files = try GGUFTokenizerConversion.files(from: metadata)
        let tokenizer = try Tokenizer.load(tokenizerJSON: files.tokenizerJSON, tokenizerConfigJSON: files.tokenizerConfigJSON)
        #expect(tokenizer.encode("Hello world") == [128000, 9906, 1917])
        #expect(tokenizer.encode("Hello world", addSpecialTokens: false) == [9906, 1917])
    }

    @Test("a sentencepiece GGUF is refused with the field named")
    func unsupportedModel() throws {
        var metadata = try GGUFMetadata.read(TestPaths.assets.appendingPathComponent("llama.cpp/models/ggml-vocab-gpt-2.gguf"))
        metadata.values["tokenizer.ggml.model"] = .string("llama")
        let error = #expect(throws: TokenizerError.self) { try GGUFTokenizerConversion.files(from: metadata) }
        #expect(error?.description.contains("tokenizer.ggml.model") == true)
    }
}

/// llama.cpp's ggml-vocab-*.gguf.inp/.out vectors (Tests/Fixtures/tokenizers/llamacpp_vectors.json).
@Suite("llama.cpp vocabulary test vectors")
struct TokenizerLlamaCppVectorTests {
    struct Vectors: Decodable {
        struct Vocabulary: Decodable {
            var inputs: [String]
            var llamacpp_ids: [[Int]]
            var transformers_ids: [[Int]]
            var disagreements: [Int]
        }
        var vocabularies: [String: Vocabulary]
    }

    static let vectors: Vectors = {
        let url = TestPaths.fixtures.appendingPathComponent("tokenizers/llamacpp_vectors.json")
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }()

    @Test("ids match transformers on every vector, and llama.cpp except where the two disagree",
          arguments: [("gpt-2", "gpt2-gguf"), ("llama-bpe", "llama3-gguf"), ("qwen2", "qwen2-gguf")])
    func vectors(gguf: String, name: String) throws {
        let v = try #require(Self.vectors.vocabularies[gguf])
        let tokenizer = try #require(ReferenceTokenizers.all[name])
        #expect(v.inputs.count == 46)
        var disagreements: [Int] = []
        for (index, text) in v.inputs.enumerated() {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            #expect(ids == v.transformers_ids[index], "\(gguf) #\(index) \(text.debugDescription)")
            if ids != v.llamacpp_ids[index] { disagreements.append(index) }
        }
        #expect(disagreements == v.disagreements)
    }

    @Test("the one recorded disagreement: llama.cpp vs transformers on 'Cửa Việt' (Llama 3)")
    func recordedDisagreement() throws {
        let v = try #require(Self.vectors.vocabularies["llama-bpe"])
        #expect(v.disagreements == [43])
        #expect(v.inputs[43] == "Cửa Việt")
        #expect(Self.vectors.vocabularies["gpt-2"]?.disagreements == [])
        #expect(Self.vectors.vocabularies["qwen2"]?.disagreements == [])
    }
}

import Foundation
import TemperTestSupport
import Testing
@testable import TemperTokenizers

@Suite("GGUF metadata")
struct GGUFMetadataTests {
    static var smolURL: URL { TestPaths.assets.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") }

    @Test("reads SmolLM2's header: tokenizer keys, model keys and the tensor directory")
    func smolLM2() throws {
        let m = try GGUFMetadata.read(Self.smolURL)
        #expect(m.version == 3)
        #expect(m.values.count == 33)
        #expect(m.string("general.architecture") == "llama")
        #expect(m.string("general.name") == "Smollm2 135M 8k Lc100K Mix1 Ep2")
        #expect(m.strings("general.languages") == ["en"])
        #expect(m.int("llama.block_count") == 30)
        #expect(m.int("llama.context_length") == 8192)
        #expect(m.int("llama.embedding_length") == 576)
        #expect(m.int("llama.attention.head_count") == 9)
        #expect(m.int("llama.attention.head_count_kv") == 3)
        #expect(m.int("llama.vocab_size") == 49152)
        #expect(m.double("llama.rope.freq_base") == 100000)
        #expect(m.values["llama.attention.layer_norm_rms_epsilon"] == .float32(1e-5))
        #expect(m.string("tokenizer.ggml.model") == "gpt2")
        #expect(m.string("tokenizer.ggml.pre") == "smollm")
        #expect(m.bool("tokenizer.ggml.add_bos_token") == false)
        let tokens = try #require(m.strings("tokenizer.ggml.tokens"))
        #expect(tokens.count == 49152)
        #expect(Array(tokens.prefix(3)) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        let types = try #require(m.ints("tokenizer.ggml.token_type"))
        #expect(types.count == 49152)
        #expect(types.filter { $0 == 3 }.count == 17)
        #expect(m.strings("tokenizer.ggml.merges")?.count == 48900)
        #expect(m.strings("tokenizer.ggml.merges")?.first == "Ġ t")
        #expect(m.int("tokenizer.ggml.bos_token_id") == 1)
        #expect(m.int("tokenizer.ggml.eos_token_id") == 2)
        #expect(m.int("tokenizer.ggml.unknown_token_id") == 0)
        #expect(m.int("tokenizer.ggml.padding_token_id") == 2)
        #expect(m.string("tokenizer.chat_template")?.contains("<|im_start|>") == true)
        #expect(m.keys.first == "general.architecture")
        #expect(m.alignment == 32)
        #expect(m.tensorInfos.count == 272)
        #expect(m.dataOffset % 32 == 0)
        let embed = try #require(m.tensorInfos.first { $0.name == "token_embd.weight" })
        #expect(embed.dimensions == [576, 49152])
        let size = try FileManager.default.attributesOfItem(atPath: Self.smolURL.path)[.size] as? Int ?? 0
        #expect(m.tensorInfos.allSatisfy { m.dataOffset + $0.offset < size })
    }

    @Test("reads the vocab-only llama.cpp files")
    func vocabOnly() throws {
        let m = try GGUFMetadata.read(TestPaths.assets.appendingPathComponent("llama.cpp/models/ggml-vocab-llama-bpe.gguf"))
        #expect(m.tensorInfos.isEmpty)
        #expect(m.string("tokenizer.ggml.pre") == "llama-bpe")
        #expect(m.strings("tokenizer.ggml.tokens")?.count == 128256)
        #expect(m.strings("tokenizer.ggml.merges")?.count == 280147)
        #expect(m.int("tokenizer.ggml.bos_token_id") == 128000)
    }

    @Test("parses every value type, nested arrays and big-endian files")
    func allTypes() throws {
        let values: [(String, UInt32, [UInt8])] = [
            ("u8", 0, [7]), ("i8", 1, [0xFF]), ("u16", 2, le(UInt16(513))), ("i16", 3, le(Int16(-2))),
            ("u32", 4, le(UInt32(70000))), ("i32", 5, le(Int32(-70000))), ("f32", 6, le(Float(1.5).bitPattern)),
            ("b", 7, [1]), ("s", 8, le(UInt64(2)) + Array("hi".utf8)),
            ("u64", 10, le(UInt64(1) << 40)), ("i64", 11, le(Int64(-5))), ("f64", 12, le(Double(-0.25).bitPattern)),
            ("nested", 9, le(UInt32(9)) + le(UInt64(2)) + le(UInt32(5)) + le(UInt64(1)) + le(Int32(3))
                + le(UInt32(8)) + le(UInt64(0))),
        ]
        var data = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(values.count))
        for (key, type, payload) in values {
            data += le(UInt64(key.utf8.count)) + Array(key.utf8) + le(type) + payload
        }
        let m = try GGUFMetadata.parse(Data(data))
        #expect(m.values["u8"] == .uint8(7))
        #expect(m.values["i8"] == .int8(-1))
        #expect(m.values["u16"] == .uint16(513))
        #expect(m.values["i16"] == .int16(-2))
        #expect(m.values["u32"] == .uint32(70000))
        #expect(m.values["i32"] == .int32(-70000))
        #expect(m.values["f32"] == .float32(1.5))
        #expect(m.values["b"] == .bool(true))
        #expect(m.values["s"] == .string("hi"))
        #expect(m.values["u64"] == .uint64(1 << 40))
        #expect(m.values["i64"] == .int64(-5))
        #expect(m.values["f64"] == .float64(-0.25))
        #expect(m.values["nested"] == .array([.array([.int32(3)]), .array([])]))
        #expect(m.keys == values.map(\.0))

        // The same header big-endian.
        var big = Array("GGUF".utf8) + be(UInt32(3)) + be(UInt64(0)) + be(UInt64(1))
        big += be(UInt64(1)) + Array("x".utf8) + be(UInt32(4)) + be(UInt32(42))
        #expect(try GGUFMetadata.parse(Data(big)).int("x") == 42)
    }

    @Test("bad magic, unsupported version and truncation are errors naming the file")
    func errors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("temper-gguf-errors-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let original = try Data(contentsOf: TestPaths.assets.appendingPathComponent("llama.cpp/models/ggml-vocab-gpt-2.gguf"))
        var corrupt = original
        corrupt[0] = UInt8(ascii: "X")
        let corruptURL = dir.appendingPathComponent("corrupt.gguf")
        try corrupt.write(to: corruptURL)
        let magic = #expect(throws: TokenizerError.self) { try GGUFMetadata.read(corruptURL) }
        #expect(magic?.description.contains("corrupt.gguf") == true)
        #expect(magic?.description.contains("not a GGUF file") == true)

        let truncatedURL = dir.appendingPathComponent("truncated.gguf")
        try original.prefix(original.count / 2).write(to: truncatedURL)
        let truncated = #expect(throws: TokenizerError.self) { try GGUFMetadata.read(truncatedURL) }
        #expect(truncated?.description.contains("truncated.gguf") == true)
        #expect(truncated?.description.contains("truncated") == true)

        var v1 = Array("GGUF".utf8) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(0))
        v1 += [0, 0, 0, 0]
        let version = #expect(throws: TokenizerError.self) { try GGUFMetadata.parse(Data(v1), file: "old.gguf") }
        #expect(version?.description.contains("old.gguf") == true)
        #expect(version?.description.contains("unsupported GGUF version 1") == true)

        let empty = #expect(throws: TokenizerError.self) { try GGUFMetadata.parse(Data(), file: "empty.gguf") }
        #expect(empty?.description.contains("empty.gguf") == true)

        let missing = #expect(throws: TokenizerError.self) { try GGUFMetadata.read(dir.appendingPathComponent("nope.gguf")) }
        #expect(missing?.description.contains("nope.gguf") == true)
    }
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

private func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

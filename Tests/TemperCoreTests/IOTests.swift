import Foundation
import Testing
import TemperTestSupport

@testable import TemperCore

@Suite struct SafetensorsTests {
    /// One tensor per dtype that MLX writes (all but float64), with values each dtype holds exactly.
    static func sampleTensors() -> [String: Tensor] {
        let values: [Double] = [0, 1, 2, 3, 4, 5]
        var tensors: [String: Tensor] = [:]
        for dtype: DType in [.uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .float16, .float32, .bfloat16] {
            tensors["t_\(dtype)"] = Tensor(values, shape: [2, 3]).asType(dtype)
        }
        tensors["t_bool"] = Tensor([true, false, true, true], shape: [2, 2])
        tensors["t_negative_bf16"] = Tensor([-1.5, 0.15625, 65280, -0.0] as [Float]).asType(.bfloat16)
        tensors["t_scalar"] = Tensor(Float(3.25))
        return tensors
    }

    @Test func roundTripEveryDTypeBitExactWithMetadata() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("weights.safetensors")
        let original = Self.sampleTensors()
        try Safetensors.save(original, metadata: ["format": "pt", "note": "temper"], to: url)
        let loaded = try Safetensors.load(url)
        #expect(loaded.metadata == ["format": "pt", "note": "temper"])
        #expect(Set(loaded.tensors.keys) == Set(original.keys))
        for (name, tensor) in original {
            let back = try #require(loaded.tensors[name])
            #expect(back.dtype == tensor.dtype, "\(name)")
            #expect(back.shape == tensor.shape, "\(name)")
            #expect(back.rawBytes() == tensor.rawBytes(), "\(name)")
        }
        // bf16 bit patterns: -1.5 = 0xBFC0, 0.15625 = 0x3E20, 65280 = 0x477F, -0.0 = 0x8000.
        let bits = try #require(loaded.tensors["t_negative_bf16"]).rawBytes()
        #expect(bits == [0xC0, 0xBF, 0x20, 0x3E, 0x7F, 0x47, 0x00, 0x80])
        // No temporary file is left beside the result.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["weights.safetensors"])
    }

    /// A file written byte by byte from the format's specification, not by MLX.
    @Test func readsHandWrittenFile() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("hand.safetensors")
        let header = #"{"__metadata__":{"source":"spec"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1,2],"data_offsets":[4,12]}}"#
        var bytes = Data()
        var length = UInt64(header.utf8.count).littleEndian
        bytes.append(Data(bytes: &length, count: 8))
        bytes.append(Data(header.utf8))
        bytes.append(contentsOf: [0x80, 0x3F, 0x00, 0xC0])  // bf16 1.0, -2.0
        bytes.append(contentsOf: [7, 0, 0, 0, 0xF9, 0xFF, 0xFF, 0xFF])  // int32 7, -7
        try bytes.write(to: url)
        let file = try Safetensors.load(url)
        #expect(file.metadata == ["source": "spec"])
        #expect(try #require(file.tensors["a"]).dtype == .bfloat16)
        #expect(try #require(file.tensors["a"]).toArray(Float.self) == [1, -2])
        #expect(try #require(file.tensors["b"]).shape == [1, 2])
        #expect(try #require(file.tensors["b"]).toArray(Int32.self) == [7, -7])
    }

    @Test func shardedIndexRoundTrip() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        var tensors: [String: Tensor] = [:]
        for layer in 0..<5 {
            tensors["model.layers.\(layer).weight"] = Random.normal([16, 16], key: Random.key(UInt64(layer)))
        }
        tensors["lm_head.weight"] = Random.normal([8, 16], key: Random.key(99)).asType(.bfloat16)
        // 16·16·4 = 1024 bytes per layer: two per shard.
        try Safetensors.saveSharded(tensors, metadata: ["format": "pt"], to: folder, maxShardBytes: 2048)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files == [
            "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors", "model.safetensors.index.json",
        ])
        let index = try Safetensors.readIndex(folder.appendingPathComponent("model.safetensors.index.json"))
        #expect(index.weightMap["lm_head.weight"] == "model-00001-of-00003.safetensors")
        #expect(index.weightMap["model.layers.4.weight"] == "model-00003-of-00003.safetensors")
        let expectedTotal: Double = 5 * 1024 + 8 * 16 * 2
        #expect(index.metadata?["total_size"] == .number(expectedTotal))

        let loaded = try Safetensors.loadDirectory(folder)
        #expect(Set(loaded.tensors.keys) == Set(tensors.keys))
        for (name, tensor) in tensors {
            #expect(try #require(loaded.tensors[name]).rawBytes() == tensor.rawBytes(), "\(name)")
        }
    }

    @Test func shardedIndexNamingAMissingTensorThrows() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Safetensors.save(["a": Tensor([1, 2] as [Float])], to: folder.appendingPathComponent("s1.safetensors"))
        let index = #"{"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        try Data(index.utf8).write(to: indexURL)
        #expect(throws: WeightsFileError.invalidIndex(
            path: indexURL.path, reason: "tensors listed but not found in their shards: b")
        ) {
            try Safetensors.loadSharded(index: indexURL)
        }
    }

    @Test func float64IsRefusedWithAClearError() throws {
        let url = URL(fileURLWithPath: "/tmp/never-written.safetensors")
        #expect(throws: WeightsFileError.unsupportedDType(path: url.path, tensor: "x", dtype: .float64)) {
            try Safetensors.save(["x": Tensor([1.0, 2.0] as [Double])], to: url)
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    @Test func missingFileThrowsNamingIt() throws {
        let path = "/nonexistent/temper/model.safetensors"
        #expect(throws: WeightsFileError.fileNotFound(path: path)) {
            try Safetensors.load(URL(fileURLWithPath: path))
        }
        #expect(WeightsFileError.fileNotFound(path: path).localizedDescription == "\(path): no such file")
    }

    @Test func truncatedFileThrowsNamingTheTensor() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("cut.safetensors")
        try Safetensors.save(["w": Tensor.ones([64, 64])], to: url)
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count - 100).write(to: url)
        do {
            _ = try Safetensors.load(url)
            Issue.record("a truncated file loaded")
        } catch let error as WeightsFileError {
            guard case .truncated(let path, let tensor, let needed, let size) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == url.path)
            #expect(tensor == "w")
            #expect(needed == bytes.count)
            #expect(size == bytes.count - 100)
            #expect(error.localizedDescription.contains("file is truncated"))
        }
    }

    @Test func garbageAndInconsistentHeadersThrow() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tiny = folder.appendingPathComponent("tiny.safetensors")
        try Data([1, 2, 3]).write(to: tiny)
        #expect(throws: WeightsFileError.invalidHeader(
            path: tiny.path, reason: "file has 3 bytes, fewer than the 8-byte header length")
        ) { try Safetensors.load(tiny) }

        // The header says 4 floats but gives a range of 8 bytes.
        let wrong = folder.appendingPathComponent("wrong.safetensors")
        let header = #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#
        var bytes = Data()
        var length = UInt64(header.utf8.count).littleEndian
        bytes.append(Data(bytes: &length, count: 8))
        bytes.append(Data(header.utf8))
        bytes.append(Data(count: 16))
        try bytes.write(to: wrong)
        #expect(throws: WeightsFileError.invalidHeader(
            path: wrong.path, reason: "tensor 'x' spans 8 bytes but F32 [4] needs 16")
        ) { try Safetensors.load(wrong) }
    }
}

@Suite struct GGUFTests {
    @Test func roundTripTensorsAndMetadata() throws {
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("tiny.gguf")
        let weight = Tensor((0..<32).map { Float($0) / 4 }, shape: [4, 8])
        let half = Tensor([1, 2, 3, 4] as [Float]).asType(.float16)
        let file = GGUF.File(
            tensors: ["blk.0.attn_q.weight": weight, "token_embd.weight": half],
            metadata: [
                "general.architecture": .string("llama"),
                "tokenizer.ggml.tokens": .strings(["<s>", "</s>", "hello"]),
                "llama.context_length": .tensor(Tensor(UInt32(2048))),
            ])
        try GGUF.save(file, to: url)
        let loaded = try GGUF.load(url)
        #expect(try #require(loaded.tensors["blk.0.attn_q.weight"]).toArray(Float.self) == weight.toArray(Float.self))
        #expect(try #require(loaded.tensors["blk.0.attn_q.weight"]).shape == [4, 8])
        #expect(try #require(loaded.tensors["token_embd.weight"]).dtype == .float16)
        guard case .string(let architecture) = loaded.metadata["general.architecture"] else {
            Issue.record("architecture missing: \(String(describing: loaded.metadata.keys))")
            return
        }
        #expect(architecture == "llama")
        guard case .strings(let tokens) = loaded.metadata["tokenizer.ggml.tokens"] else {
            Issue.record("tokens missing")
            return
        }
        #expect(tokens == ["<s>", "</s>", "hello"])
        guard case .tensor(let context) = loaded.metadata["llama.context_length"] else {
            Issue.record("context length missing")
            return
        }
        #expect(context.item(Int64.self) == 2048)
    }

    @Test func missingAndCorruptFilesThrow() throws {
        #expect(throws: WeightsFileError.fileNotFound(path: "/nonexistent/x.gguf")) {
            try GGUF.load(URL(fileURLWithPath: "/nonexistent/x.gguf"))
        }
        let folder = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("bad.gguf")
        try Data("not a gguf file at all".utf8).write(to: url)
        #expect(throws: WeightsFileError.self) { try GGUF.load(url) }
    }
}

import Foundation
import TemperCore
import TemperModels
import TemperTestSupport
import Testing

@Suite("GGUF export")
struct GGUFExportTests {
    @Test("export then import gives the model back (f16 exactly to f16 precision, q8_0 within a step)",
          arguments: [("llama-tied-llama3rope", "f16"), ("qwen2-untied-bias", "q8_0"), ("qwen3-qknorm-sharded", "f16")])
    func roundTrip(name: String, type: String) throws {
        let source = TestPaths.fixtures.appendingPathComponent("models/\(name)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-export-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.gguf")
        try GGUFConversion.exportModel(directory: source, to: url, type: .init(rawValue: type)!)

        let original = try CausalLanguageModel.load(directory: source)
        if case .llama3 = original.configuration.ropeScaling {
            // Written as llama.cpp's per-frequency divisors; importing them is refused by name.
            let file = try GGUF.load(url)
            let factors = try #require(file.tensors["rope_freqs.weight"]).toArray(Float.self)
            #expect(factors.count == 8 && factors.allSatisfy { $0 >= 1 && $0 <= 8 } && factors.last == 8)
            #expect(throws: ModelError.self) { _ = try GGUFConversion.readModel(url) }
            return
        }
        let (configuration, tensors, _) = try GGUFConversion.readModel(url)
        var expected = original.configuration
        expected.storageDType = "float32"
        expected.maxPositionEmbeddings = configuration.maxPositionEmbeddings
        expected.eosTokenIDs = configuration.eosTokenIDs
        expected.bosTokenID = configuration.bosTokenID
        #expect(configuration == expected)
        for (tensorName, tensor) in original.checkpointTensors() {
            let back = try #require(tensors[tensorName], "\(tensorName)")
            let scale = tensor.abs().max().item(Float.self)
            let limit: Float = type == "f16" || tensor.ndim == 1 ? scale * 1e-3 : scale / 127 * 0.51
            let difference = (back - tensor).abs().max().item(Float.self)
            #expect(difference <= limit, "\(tensorName): \(difference) > \(limit)")
        }
    }

    @Test("Q8_0 blocks hold a float16 scale and rounded int8s")
    func q8Layout() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-q8-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("test"))
        let values = (0..<64).map { Float($0 - 32) / 8 }
        writer.add("w", Tensor(values, shape: [2, 32]), type: .q8_0)
        let url = folder.appendingPathComponent("q8.gguf")
        try writer.write(to: url)
        let loaded = try GGUF.load(url)
        #expect(loaded.tensors["w.scales"]?.shape == [2, 1])
        let stem = QuantizedMatrix(
            weight: loaded.tensors["w"]!, scales: loaded.tensors["w.scales"]!.asType(.float32),
            biases: loaded.tensors["w.biases"]!.asType(.float32), groupSize: 32, bits: 8)
        let back = stem.dequantized().toArray(Float.self)
        // First block: max |x| = 4, d = 4/127; x = -4 → q = -127 exactly.
        #expect(Swift.abs(back[0] - (-4)) < 1e-3)
        #expect(zip(back, values).allSatisfy { Swift.abs($0 - $1) <= 4 / 127 * 0.51 + 1e-3 })
    }
}

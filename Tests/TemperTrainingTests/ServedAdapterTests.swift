import Foundation
import TemperCore
import TemperModels
import TemperNN
import TemperPEFT
import TemperTestSupport
import Testing

/// Several LoRA adapters served over one base in the same batch: each row, routed to an adapter
/// or to the base, must give what that adapter loaded alone (or the bare base) gives.
@Suite("Served adapters routed per batch row", .serialized)
struct ServedAdapterTests {
    static let fixtures = ["llama-tied-llama3rope", "qwen2-untied-bias"]

    static func folder(_ name: String) -> URL { TestPaths.fixtures.appendingPathComponent("models/\(name)") }

    /// Adapter "a" on every projection (rank 4), adapter "b" on q/v only (rank 2, rsLoRA).
    static let configurations: [String: LoRAConfiguration] = {
        var a = LoRAConfiguration()
        a.rank = 4
        a.alpha = 8
        a.dropout = 0
        var b = LoRAConfiguration()
        b.rank = 2
        b.alpha = 3
        b.dropout = 0
        b.targetModules = ["q_proj", "v_proj"]
        b.rankStabilized = true
        return ["a": a, "b": b]
    }()

    /// A temporary folder holding the adapters "a" and "b" for the fixture, with random nonzero B.
    struct Adapters {
        let root: URL
        func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

        init(fixture: String) throws {
            root = try makeTemporaryDirectory("temper-served")
            for (index, (name, configuration)) in ServedAdapterTests.configurations.sorted(by: { $0.key < $1.key }).enumerated() {
                let model = try CausalLanguageModel.load(directory: ServedAdapterTests.folder(fixture))
                try model.addLoRA(configuration, seed: UInt64(10 + index))
                let adapted = model.projections.compactMap(\.layer.lora)
                let keys = Random.split(Random.key(UInt64(20 + index)), count: max(adapted.count, 2))
                for (adapter, key) in zip(adapted, keys) {
                    adapter.b.weight = Random.normal(adapter.b.weight.shape, standardDeviation: 0.2, key: key)
                }
                try PEFTAdapter.save(model: model, configuration: configuration, baseModel: fixture, to: directory(name))
            }
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// A fresh fixture model, weight-only int8 when `quantized`, with `adapter` loaded the normal way.
    static func reference(_ fixture: String, quantized: Bool, adapter: URL?) throws -> CausalLanguageModel {
        let model = try CausalLanguageModel.load(directory: folder(fixture))
        if quantized { model.quantizeForInference(.int8) }
        if let adapter { _ = try PEFTAdapter.load(into: model, from: adapter) }
        return model
    }

    /// A fresh fixture model serving "a" and "b".
    static func served(_ fixture: String, quantized: Bool, adapters: Adapters) throws -> CausalLanguageModel {
        let model = try CausalLanguageModel.load(directory: folder(fixture))
        if quantized { model.quantizeForInference(.int8) }
        for name in ["a", "b"] {
            let configuration = try PEFTAdapter.loadServed(named: name, into: model, from: adapters.directory(name))
            let saved = configurations[name]!
            #expect(configuration.rank == saved.rank && configuration.alpha == saved.alpha)
            #expect(configuration.rankStabilized == saved.rankStabilized)
        }
        return model
    }

    static func maxDifference(_ x: Tensor, _ y: Tensor) -> Float {
        #expect(x.shape == y.shape)
        return (x - y).abs().max().item(Float.self)
    }

    static var prompts: Tensor {
        Tensor([Int32]([5, 17, 200, 3, 99, 42, 7, 11, 250, 64, 1, 128, 33, 77, 8, 91, 150, 2, 240, 19, 60]), shape: [3, 7])
    }
    static var nextTokens: Tensor { Tensor([Int32]([12, 180, 45]), shape: [3, 1]) }
    /// The routing of the three prompts: base, adapter a, adapter b.
    static let routes: [String?] = [nil, "a", "b"]

    @Test("a batch routed [base, a, b] equals three separate passes (prefill and a decode step)",
          arguments: fixtures, [false, true])
    func routedBatch(fixture: String, quantized: Bool) throws {
        let adapters = try Adapters(fixture: fixture)
        defer { adapters.remove() }
        let model = try Self.served(fixture, quantized: quantized, adapters: adapters)
        let cache = KVCache(model: model)
        let rows = AdapterRouting.Rows(Self.routes)
        let (prefill, decode) = AdapterRouting.$current.withValue(rows) {
            let prefill = model(Self.prompts, cache: cache)
            let decode = model(Self.nextTokens, cache: cache)
            eval(prefill, decode)
            return (prefill, decode)
        }
        for (row, route) in Self.routes.enumerated() {
            let reference = try Self.reference(fixture, quantized: quantized, adapter: route.map(adapters.directory))
            let referenceCache = KVCache(model: reference)
            let expectedPrefill = reference(Self.prompts[row..<(row + 1)], cache: referenceCache)
            let expectedDecode = reference(Self.nextTokens[row..<(row + 1)], cache: referenceCache)
            let label = "\(fixture) quantized \(quantized) row \(row) (\(route ?? "base"))"
            let prefillDifference = Self.maxDifference(prefill[row..<(row + 1)], expectedPrefill)
            let decodeDifference = Self.maxDifference(decode[row..<(row + 1)], expectedDecode)
            // Served int8 rows run the W8A16 product (x rounded to int16 per row on x86), the
            // reference's adapter the float product of the dequantized weight: up to ~5e-4 apart,
            // where a misrouted row is off by the adapter's change (over 1e-2, checked below).
            let tolerance: Float = quantized && Kernels.instructionSet > 0 ? 1.5e-3 : 1e-5
            #expect(prefillDifference <= tolerance, "\(label) prefill: max |Δlogit| \(prefillDifference)")
            #expect(decodeDifference <= tolerance, "\(label) decode: max |Δlogit| \(decodeDifference)")
            if route != nil {
                // The adapter really changes the output, so the comparison above means something.
                let base = try Self.reference(fixture, quantized: quantized, adapter: nil)
                #expect(Self.maxDifference(base(Self.prompts[row..<(row + 1)]), expectedPrefill) > 1e-2, "\(label)")
            }
        }
    }

    @Test("a one-row prefill [1, T] routed to an adapter equals that adapter loaded alone", arguments: fixtures)
    func singleRowPrefill(fixture: String) throws {
        let adapters = try Adapters(fixture: fixture)
        defer { adapters.remove() }
        let model = try Self.served(fixture, quantized: false, adapters: adapters)
        let ids = Self.prompts[1..<2]
        let routed = AdapterRouting.$current.withValue(AdapterRouting.Rows(["b"])) { model(ids) }
        let expected = try Self.reference(fixture, quantized: false, adapter: adapters.directory("b"))(ids)
        let difference = Self.maxDifference(routed, expected)
        #expect(difference <= 1e-5, "max |Δlogit| \(difference)")
    }

    @Test("without routing, or routing every row to the base, served adapters change nothing, bit for bit",
          arguments: fixtures, [false, true])
    func unrouted(fixture: String, quantized: Bool) throws {
        let adapters = try Adapters(fixture: fixture)
        defer { adapters.remove() }
        let model = try Self.served(fixture, quantized: quantized, adapters: adapters)
        #expect(model.projections.allSatisfy { $0.layer.servedAdapters["a"] != nil })
        #expect(model.projections.filter { $0.layer.servedAdapters["b"] != nil }.count == 2 * 2)
        let base = try Self.reference(fixture, quantized: quantized, adapter: nil)(Self.prompts)
        #expect(Self.maxDifference(model(Self.prompts), base) == 0)
        let allBase = AdapterRouting.$current.withValue(AdapterRouting.Rows([nil, nil, nil])) { model(Self.prompts) }
        #expect(Self.maxDifference(allBase, base) == 0)

        PEFTAdapter.removeServed(named: "a", from: model)
        PEFTAdapter.removeServed(named: "b", from: model)
        #expect(model.projections.allSatisfy { $0.layer.servedAdapters.isEmpty })
        let removed = AdapterRouting.$current.withValue(AdapterRouting.Rows(Self.routes)) { model(Self.prompts) }
        #expect(Self.maxDifference(removed, base) == 0)
    }

    @Test("a missing or mismatched adapter is refused, naming the file and tensor, and changes nothing")
    func errors() throws {
        let fixture = Self.fixtures[0]
        let adapters = try Adapters(fixture: fixture)
        defer { adapters.remove() }
        let model = try CausalLanguageModel.load(directory: Self.folder(fixture))

        let absent = adapters.root.appendingPathComponent("absent")
        #expect(throws: ModelError.missingFile(path: absent.appendingPathComponent("adapter_config.json").path)) {
            try PEFTAdapter.loadServed(named: "x", into: model, from: absent)
        }

        let file = adapters.directory("a").appendingPathComponent("adapter_model.safetensors")
        var tensors = try Safetensors.load(file).tensors
        let name = "model.layers.1.self_attn.v_proj.lora_A.weight"
        tensors["base_model.model." + name] = Tensor.zeros([4, 63])
        try Safetensors.save(tensors, metadata: ["format": "pt"], to: file)
        #expect(throws: ModelError.wrongShape(folder: file.path, name: name, expected: [4, 64], got: [4, 63])) {
            try PEFTAdapter.loadServed(named: "a", into: model, from: adapters.directory("a"))
        }

        tensors["base_model.model." + name] = nil
        try Safetensors.save(tensors, metadata: ["format": "pt"], to: file)
        #expect(throws: ModelError.missingWeights(folder: file.path, names: [name])) {
            try PEFTAdapter.loadServed(named: "a", into: model, from: adapters.directory("a"))
        }
        #expect(model.projections.allSatisfy { $0.layer.servedAdapters.isEmpty })
    }
}

import ArgumentParser
import Foundation
import TemperBench

struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Served tokens/s and time to first token: temper serve under concurrent streamed chat requests "
            + "against the same requests through transformers' generate in static batches.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "Concurrent requests (user turns of Data/sft-demo.jsonl).") var requests: Int = 32
    @Option(help: "max_tokens of the requests, cycled, comma separated (EOS is ignored on both sides).")
    var maxTokens: String = "32,64,96,128"
    @Option(help: "transformers' static batch size.") var peerBatchSize: Int = 8
    @Option(help: "Timed rounds; each runs Temper then transformers.") var rounds: Int = 2
    @Option(help: "Passed to temper serve: int8, q4, bf16 or f32.") var quantize: String?
    @OptionGroup var peer: PeerOptions

    var maxTokenList: [Int] { maxTokens.split(separator: ",").compactMap { Int($0) } }

    func validate() throws {
        guard requests > 0, rounds > 0, peerBatchSize > 0 else {
            throw ValidationError("--requests, --rounds and --peer-batch-size must be positive")
        }
        guard !maxTokenList.isEmpty, maxTokenList.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--max-tokens must be positive integers separated by commas, got '\(maxTokens)'")
        }
    }

    func run() throws {
        let root = checkoutRoot
        let venv = Process()
        venv.executableURL = root.appendingPathComponent("Tools/make-venv.sh")
        venv.arguments = [root.appendingPathComponent(".venv-serve-test").path, root.appendingPathComponent("Tools/serve-test/requirements.txt").path]
        let output = Pipe()
        venv.standardOutput = output
        try venv.run()
        let clientPython = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        venv.waitUntilExit()
        guard venv.terminationStatus == 0 else { throw ValidationError("Tools/make-venv.sh for the openai client failed") }
        let peerPython = peer.noPeer ? nil : try peer.python ?? KernelsBench.makeVenv(root: root)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let benchmark = ServeBenchmark(
            executable: executable, modelDirectory: URL(fileURLWithPath: model),
            requests: try ServeBenchmark.requests(
                from: root.appendingPathComponent("Data/sft-demo.jsonl"), count: requests, maxTokens: maxTokenList),
            peerBatchSize: peerBatchSize, rounds: rounds, clientPython: clientPython,
            clientScript: root.appendingPathComponent("Tools/bench/serve_client.py").path, peerPython: peerPython,
            peerScript: root.appendingPathComponent("Tools/bench/serve_peer.py").path,
            serverArguments: ["--max-running", "\(max(requests, 1))"] + (quantize.map { ["--quantize", $0] } ?? []),
            contentionLimit: peer.contentionLimit)
        let rows = try benchmark.run { log($0) }
        print(ServeBenchmark.table(rows))
        if let json = peer.json { try writeJSON(rows, to: json) }
    }
}

struct QuantizationBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantization",
        abstract: "Quality cost of --quantize on a text: perplexity, greedy-token agreement and KL against float32.")

    @Option(help: "A Hugging Face model folder (default: the converted SmolLM2-135M-Instruct).")
    var model: String = benchmarkModel
    @Option(help: "The text (default: the shipped Data/perplexity-text.txt).")
    var text: String = checkoutRoot.appendingPathComponent("Data/perplexity-text.txt").path
    @Option(help: "Formats to compare with float32, comma separated.") var formats: String = "int8,q4"
    @Option(help: "Tokens per forward pass.") var window: Int = 512
    @Option(help: "Also write the rows as JSON to this file.") var json: String?

    func run() throws {
        let chosen = try formats.split(separator: ",").map { name in
            (String(name), try inferenceFormat(String(name)))
        }
        let rows = try QuantizationQuality(
            modelDirectory: URL(fileURLWithPath: model), textFile: URL(fileURLWithPath: text), window: window
        ).run(formats: chosen) { log($0) }
        print(QuantizationQuality.table(rows))
        if let json { try writeJSON(rows, to: json) }
    }
}

import Foundation
import TemperCore
import TemperTestSupport
import Testing

/// Runs the built `temper` executable, which SwiftPM places beside the test bundle.
struct TemperProcess {
    var exitCode: Int32
    var standardOutput: String
    var standardError: String

    static var executable: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("temper")
    }

    /// Runs `temper` (or another program) to the end.
    static func run(
        _ arguments: [String], program: URL = executable, currentDirectory: URL? = nil, environment: [String: String] = [:]
    ) throws -> TemperProcess {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let (output, error) = (Pipe(), Pipe())
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return TemperProcess(
            exitCode: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self))
    }
}

@Suite(.serialized) struct CLITests {
    @Test func helpListsSubcommands() throws {
        let result = try TemperProcess.run(["--help"])
        #expect(result.exitCode == 0)
        #expect(result.standardOutput.contains("USAGE: temper <subcommand>"))
        for subcommand in ["sft", "dpo", "merge", "convert", "tokenize", "generate", "chat", "bench", "demo", "info"] {
            #expect(result.standardOutput.contains("  \(subcommand) "), "missing \(subcommand)")
        }
    }

    @Test func unknownFlagIsAUsageErrorWithExitCode2() throws {
        let result = try TemperProcess.run(["bench", "matmul", "--no-such-flag"])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("Error: Unknown option '--no-such-flag'"))
        #expect(result.standardOutput.isEmpty)
    }

    @Test func unknownSubcommandIsAUsageError() throws {
        let result = try TemperProcess.run(["frobnicate"])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("Unexpected argument 'frobnicate'"))
    }

    @Test func invalidOptionValueNamesTheFlag() throws {
        let result = try TemperProcess.run(["bench", "matmul", "--size", "0"])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("--size must be positive, got 0"))
    }

    @Test func benchMatmulJSONIsOneLineWithNumericGFLOPS() throws {
        // Runs from another directory: the binary finds libmlx through its rpath.
        let result = try TemperProcess.run(
            ["bench", "matmul", "--size", "128", "--runs", "3", "--warmup", "1", "--json"],
            currentDirectory: FileManager.default.temporaryDirectory)
        #expect(result.exitCode == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        let gflops = try #require(object?["gflops"] as? Double)
        #expect(gflops > 0)
        #expect(object?["size"] as? Int == 128)
        #expect((object?["seconds"] as? [Double])?.count == 3)
    }

    @Test func benchMatmulReadableLine() throws {
        let result = try TemperProcess.run(["bench", "matmul", "--size", "64", "--runs", "1"])
        #expect(result.exitCode == 0)
        #expect(result.standardOutput.hasPrefix("matmul f32 64x64x64: "))
        #expect(result.standardOutput.contains(" GFLOPS (median "))
    }

    @Test func demoTrainsAndChecksAGradient() throws {
        let result = try TemperProcess.run(["demo", "--autodiff"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("Fitting y = sin(x) on 256 points"))
        let lines = result.standardOutput.split(separator: "\n")
        let finalLine = try #require(lines.first { $0.hasPrefix("loss ") })
        // "loss A -> B in …": training must lower the loss.
        let numbers = finalLine.split(separator: " ").compactMap { Double($0) }
        try #require(numbers.count >= 2, "\(finalLine)")
        #expect(numbers[1] < numbers[0], "\(finalLine)")
        // 200 steps from seed 0 go from about 0.70 to about 0.013.
        #expect(numbers[1] < 0.05, "\(finalLine)")
        // "gradient check, … max difference 1.23e-07": autodiff agrees with finite differences.
        let check = try #require(lines.first { $0.hasPrefix("gradient check") })
        let difference = try #require(check.split(separator: " ").last.flatMap { Double($0) }, "\(check)")
        #expect(difference < 1e-5, "\(check)")
    }
}

/// `temper launch`: ranks joined by MLX's ring backend over loopback, and a failing rank named.
@Suite(.serialized) struct LaunchCLITests {
    @Test func ranksSumOverLoopback() throws {
        let result = try TemperProcess.run(["launch", "--ranks", "3", "--", "temper", "bench", "allreduce", "--elements", "4096", "--rounds", "2"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init).sorted()
        #expect(lines.count == 3, "\(result.standardOutput)")
        for (rank, line) in lines.enumerated() {
            // 1 + 2 + 3 in every element.
            #expect(line.hasPrefix("[rank \(rank)] rank \(rank) of 3: all_sum of 4096 floats = 6 (correct)"), "\(line)")
        }
    }

    @Test func aFailedRankStopsTheOthersAndIsNamed() throws {
        let temper = TemperProcess.executable.path
        let started = Date()
        let result = try TemperProcess.run([
            "launch", "--ranks", "2", "--timeout", "2", "--", "sh", "-c",
            "if [ \"$TEMPER_RANK\" = 1 ]; then echo leaving; exit 3; fi; exec \(temper) bench allreduce --elements 1000",
        ])
        #expect(result.exitCode == 3)
        #expect(result.standardOutput == "[rank 1] leaving\n")
        #expect(result.standardError.contains("rank 1 exited with status 3; the others get 2 s to stop"), "\(result.standardError)")
        #expect(result.standardError.contains("launch failed: rank 1 of 2 exited with status 3"), "\(result.standardError)")
        // Rank 0 waits for its peer until the launcher stops it: 2 s, then terminate (and 2 s more at most).
        #expect(Date().timeIntervalSince(started) < 20)
    }

    @Test func needsACommand() throws {
        let result = try TemperProcess.run(["launch", "--ranks", "2"])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("give the command to run after --"), "\(result.standardError)")
    }
}

/// Data-parallel SFT on the real SmolLM2: 2 ranks × batch 2 under `temper launch` train as 1 process
/// with batch 4 (the same losses and final weights within 1e-5, LoRA without dropout), rank 0 alone
/// writing the files.
@Suite(.serialized) struct DataParallelCLITests {
    /// `launch`: extra `temper launch` options (hosts); `mpirun`: the ranks started by Open MPI's
    /// mpirun instead (Tools/dist-test/mpirun.sh installs it where missing).
    static func train(_ arguments: [String], ranks: Int, output: URL, launch: [String] = [], mpirun: Bool = false) throws {
        let command = ["sft"] + arguments + ["--output", output.path]
        let result = mpirun && ranks > 1
            ? try runProgram("Tools/dist-test/mpirun.sh", ["-np", String(ranks), TemperProcess.executable.path] + command, in: ModelCLITests.root)
            : try TemperProcess.run(ranks == 1 ? command : ["launch", "--ranks", String(ranks)] + launch + ["--", "temper"] + command)
        try #require(result.exitCode == 0, "\(result.standardError.suffix(3000))")
    }

    /// A port that is free on loopback together with the next one (`--port` for two ranks on one host).
    static func freePortPair() throws -> Int {
        func isFree(_ port: Int) -> Bool {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        let start = 30_000 + Int(getpid() % 10_000) * 2
        return try #require(stride(from: start, to: start + 2_000, by: 2).first { isFree($0) && isFree($0 + 1) })
    }

    /// A fresh work folder holding SmolLM2 (converted from the shipped GGUF) and the first `count`
    /// lines of `Data/<dataName>` as `fileName`.
    static func workspace(_ label: String, data dataName: String, lines count: Int, as fileName: String) throws -> (
        work: URL, model: URL, data: URL
    ) {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID())")
        let model = work.appendingPathComponent("SmolLM2"), data = work.appendingPathComponent(fileName)
        let converted = try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path])
        try #require(converted.exitCode == 0, "\(converted.standardError)")
        let lines = try String(contentsOf: ModelCLITests.root.appendingPathComponent("Data/\(dataName)"), encoding: .utf8).split(separator: "\n")
        try (lines.prefix(count).joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        return (work, model, data)
    }

    /// The largest absolute difference between the same safetensors file's tensors in two outputs,
    /// which must hold the same names.
    static func largestWeightDifference(_ file: String, _ one: URL, _ other: URL) throws -> Float {
        let expected = try Safetensors.load(one.appendingPathComponent(file)).tensors
        let got = try Safetensors.load(other.appendingPathComponent(file)).tensors
        try #require(Set(expected.keys) == Set(got.keys), "\(file) holds other tensors")
        return expected.reduce(Float(0)) { largest, entry in max(largest, (entry.value - got[entry.key]!).abs().max().item(Float.self)) }
    }

    static func losses(_ folder: URL) throws -> [Double] {
        try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double
        }
    }

    /// full and LoRA over loopback; LoRA again with the two ranks in two network namespaces joined by
    /// a veth pair (Tools/dist-test/netns.sh; needs root, as CI has), each its own "host"; through real
    /// ssh to a throwaway sshd; and started by mpirun (MLX's MPI backend).
    /// `lora-accumulation`: two micro-batches a step, each rank's being its rows of the global ones.
    /// `lora-dropout`: LoRA dropout 0.1, each rank drawing its rows of the whole batch's masks.
    @Test(arguments: ["full", "lora", "lora-namespaces", "lora-ssh", "lora-mpirun", "lora-accumulation", "lora-dropout"])
    func twoRanksTrainAsOneWithTheirBatchTogether(_ variant: String) throws {
        let method = variant.hasPrefix("lora") ? "lora" : variant
        var launch: [String] = []
        let ssh = variant == "lora-ssh" ? try SSHServer() : nil
        defer { ssh?.stop() }
        if let ssh { launch = ["--hosts", "127.0.0.1,127.0.0.1", "--port", String(try Self.freePortPair()), "--through", ssh.through] }
        if variant == "lora-namespaces" {
            try #require(getuid() == 0, "the two-namespace test makes network namespaces: it needs root")
            let prefix = "tdp\(getpid() % 100_000)"
            let up = try runProgram("Tools/dist-test/netns.sh", ["up", prefix], in: ModelCLITests.root)
            try #require(up.exitCode == 0, "\(up.standardError)")
            launch = ["--hosts", up.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "--through", "ip netns exec \(prefix)-{rank} sh -c"]
        }
        defer { if variant == "lora-namespaces" { _ = try? runProgram("Tools/dist-test/netns.sh", ["down", "tdp\(getpid() % 100_000)"], in: ModelCLITests.root) } }
        let (work, model, data) = try Self.workspace("temper-dp", data: "sft-demo.jsonl", lines: 8, as: "sft.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let common = [
            "--model", model.path, "--data", data.path, "--method", method, "--lora-rank", "4",
            // LoRA with SGD: B starts at zero, so at step 2 some of A's gradients are float noise in
            // either run, and AdamW turns any such gradient into a ±learning-rate update whose sign is
            // the noise's (measured: 1.8e-3 apart with AdamW, 1.1e-7 with SGD, at equal losses).
            "--optimizer", method == "full" ? "adamw" : "sgd", "--learning-rate", method == "full" ? "1e-4" : "0.5",
            "--max-steps", "2", "--max-length", "48", "--save-every", "1",
            "--lora-dropout", variant == "lora-dropout" ? "0.1" : "0",
        ] + (variant == "lora-accumulation" ? ["--grad-accum", "2"] : [])
        let single = work.appendingPathComponent("one"), parallel = work.appendingPathComponent("two")
        try Self.train(common + ["--batch-size", "4"], ranks: 1, output: single)
        try Self.train(common + ["--batch-size", "2"], ranks: 2, output: parallel, launch: launch, mpirun: variant == "lora-mpirun")

        let (one, two) = (try Self.losses(single), try Self.losses(parallel))
        #expect(one.count == 2 && two.count == 2, "one record a step, from rank 0 only: \(two)")
        for (a, b) in zip(one, two) { #expect(abs(a - b) < 1e-5, "loss \(a) vs \(b)") }
        let weights = method == "full" ? "model.safetensors" : "adapter_model.safetensors"
        let largest = try Self.largestWeightDifference(weights, single, parallel)
        #expect(largest < 1e-5, "largest weight difference \(largest)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: parallel.appendingPathComponent("checkpoints").path).sorted() == ["step-000001", "step-000002"])
    }

    /// GRPO (LoRA, SGD, beta 0.04): 2 ranks × 1 prompt a generation = 1 × 2 prompts. Each rank samples
    /// its own prompt's group with that prompt's seed; the rewards are gathered, so batch-wide reward
    /// scaling sees every rank's. Two micro-batches a step, which cover the generation (one micro-batch
    /// a step was checked the same way; it is the simpler case of this one).
    @Test func grpoTwoRanksTrainAsOne() throws {
        let (work, model, data) = try Self.workspace("temper-dp-grpo", data: "grpo-arithmetic-train.jsonl", lines: 4, as: "prompts.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        // A reward that varies within a group: the completion's distinct characters.
        let script = work.appendingPathComponent("distinct.py")
        try """
            import json, sys
            for line in sys.stdin:
                print(len(set(json.loads(line)["completion"])) / 10, flush=True)
            """.write(to: script, atomically: true, encoding: .utf8)
        let common = [
            "grpo", "--model", model.path, "--data", data.path, "--method", "lora", "--lora-rank", "4", "--lora-dropout", "0",
            "--reward", "math,cmd:python3 \(script.path)", "--scale-rewards", "batch", "--num-generations", "2",
            "--max-completion-length", "8", "--optimizer", "sgd", "--learning-rate", "0.05", "--beta", "0.04",
            "--max-steps", "2", "--save-every", "100", "--grad-accum", "2",
        ]
        // Per rank: prompts a generation = batch × micro-batches / generations.
        let single = work.appendingPathComponent("one"), parallel = work.appendingPathComponent("two")
        let one = try TemperProcess.run(common + ["--batch-size", "2", "--output", single.path])
        try #require(one.exitCode == 0, "\(one.standardError.suffix(2000))")
        let two = try TemperProcess.run(
            ["launch", "--ranks", "2", "--", "temper"] + common + ["--batch-size", "1", "--output", parallel.path])
        try #require(two.exitCode == 0, "\(two.standardError.suffix(2000))")
        #expect(two.standardError.contains("rank 1 of 2 (2 prompts per generation in all)"), "\(two.standardError.suffix(2000))")

        func records(_ folder: URL) throws -> [[String: Any]] {
            try String(contentsOf: folder.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["loss"] != nil }
        }
        let (a, b) = (try records(single), try records(parallel))
        try #require(a.count == 2 && b.count == 2, "one record a step, from rank 0 only")
        for (x, y) in zip(a, b) {
            for name in ["loss", "grad_norm", "kl", "reward", "reward_std", "rewards/distinct/mean", "completions/mean_length", "num_tokens"] {
                let (p, q) = (try #require(x[name] as? Double, "\(name)"), try #require(y[name] as? Double, "\(name)"))
                #expect(abs(p - q) < 1e-5, "\(name): \(p) vs \(q)")
            }
        }
        #expect(a.contains { ($0["reward_std"] as? Double ?? 0) > 0 }, "the rewards vary, so the advantages are not all 0")
        let largest = try Self.largestWeightDifference("adapter_model.safetensors", single, parallel)
        #expect(largest < 1e-5, "largest weight difference \(largest)")
    }

    /// DPO (LoRA, SGD; the reference is the base without the adapter): 2 ranks × 1 pair = 1 × 2 pairs.
    /// The `logits/*` metrics are per-token means, which a rank weighs by its pairs: not compared.
    @Test func dpoTwoRanksTrainAsOne() throws {
        let (work, model, data) = try Self.workspace("temper-dp-dpo", data: "dpo-demo.jsonl", lines: 4, as: "pairs.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let common = [
            "dpo", "--model", model.path, "--data", data.path, "--method", "lora", "--lora-rank", "4", "--optimizer", "sgd",
            "--learning-rate", "0.5", "--max-steps", "2", "--max-length", "96", "--save-every", "100", "--lora-dropout", "0",
        ]
        let single = work.appendingPathComponent("one"), parallel = work.appendingPathComponent("two")
        let one = try TemperProcess.run(common + ["--batch-size", "2", "--output", single.path])
        try #require(one.exitCode == 0, "\(one.standardError.suffix(2000))")
        let two = try TemperProcess.run(["launch", "--ranks", "2", "--", "temper"] + common + ["--batch-size", "1", "--output", parallel.path])
        try #require(two.exitCode == 0, "\(two.standardError.suffix(2000))")
        let (a, b) = (try Self.losses(single), try Self.losses(parallel))
        #expect(a.count == 2 && b.count == 2)
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-5, "loss \(x) vs \(y)") }
        let largest = try Self.largestWeightDifference("adapter_model.safetensors", single, parallel)
        #expect(largest < 1e-5, "largest weight difference \(largest)")
    }
}

extension DataParallelCLITests {
    /// The launched process whose environment has TEMPER_RANK=`rank`, among `launcher`'s children.
    static func rankProcess(_ rank: Int, of launcher: pid_t) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.range(of: ")", options: .backwards)
            else { continue }
            let fields = stat[close.upperBound...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == launcher,
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            if environment.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "TEMPER_RANK=\(rank)" }) { return pid }
        }
        return nil
    }

    /// A rank killed mid-run: the launcher names it and stops the other within its timeout; the last
    /// checkpoint is whole, and the run resumed from it (2 ranks again) finishes.
    @Test func aKilledRankStopsTheRunWhichResumes() async throws {
        let (work, model, data) = try Self.workspace("temper-dp-kill", data: "sft-demo.jsonl", lines: 16, as: "sft.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let output = work.appendingPathComponent("run")
        let sft = [
            "sft", "--model", model.path, "--data", data.path, "--output", output.path, "--method", "lora", "--lora-rank", "4",
            "--batch-size", "1", "--max-steps", "12", "--max-length", "48", "--save-every", "2",
        ]
        let launcher = Process()
        launcher.executableURL = TemperProcess.executable
        launcher.arguments = ["launch", "--ranks", "2", "--timeout", "3", "--", "temper"] + sft
        let errors = Pipe()
        launcher.standardOutput = FileHandle.nullDevice
        launcher.standardError = errors
        try launcher.run()
        try await GalleryCLITests.waitForCheckpoint(output.appendingPathComponent("checkpoints"))
        let victim = try #require(Self.rankProcess(1, of: launcher.processIdentifier))
        let killed = Date()
        kill(victim, SIGKILL)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        launcher.waitUntilExit()
        #expect(launcher.terminationStatus != 0)
        #expect(Date().timeIntervalSince(killed) < 15, "the other rank stopped within the timeout")
        #expect(message.contains("launch failed: rank 1 of 2 exited with status"), "\(message.suffix(2000))")

        let resumed = try TemperProcess.run(["launch", "--ranks", "2", "--", "temper"] + sft + ["--resume"])
        #expect(resumed.exitCode == 0, "\(resumed.standardError.suffix(2000))")
        #expect(resumed.standardError.contains("[rank 0] resumed from step-"), "\(resumed.standardError.suffix(2000))")
        let steps = try String(contentsOf: output.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int
        }
        #expect(steps == Array(1...12), "\(steps)")
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("adapter_model.safetensors").path))
    }
}

extension DataParallelCLITests {
    /// A rank that hangs (stopped with SIGSTOP) rather than dies: the other waits in its collective
    /// for `--collective-timeout` seconds, then exits naming the wait, and the launcher stops the job.
    @Test func aHungRankStopsTheRunWithinTheCollectiveTimeout() async throws {
        let (work, model, data) = try Self.workspace("temper-dp-hang", data: "sft-demo.jsonl", lines: 16, as: "sft.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let output = work.appendingPathComponent("run")
        let launcher = Process()
        launcher.executableURL = TemperProcess.executable
        launcher.arguments = [
            "launch", "--ranks", "2", "--timeout", "3", "--collective-timeout", "5", "--", "temper", "sft", "--model", model.path,
            "--data", data.path, "--output", output.path, "--method", "lora", "--lora-rank", "4", "--batch-size", "1",
            "--max-steps", "40", "--max-length", "48", "--save-every", "2",
        ]
        let errors = Pipe()
        launcher.standardOutput = FileHandle.nullDevice
        launcher.standardError = errors
        try launcher.run()
        try await GalleryCLITests.waitForCheckpoint(output.appendingPathComponent("checkpoints"))
        let victim = try #require(Self.rankProcess(1, of: launcher.processIdentifier))
        let stopped = Date()
        kill(victim, SIGSTOP)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        launcher.waitUntilExit()
        let seconds = Date().timeIntervalSince(stopped)
        #expect(launcher.terminationStatus != 0)
        #expect(seconds < 30, "the job stopped \(seconds) s after rank 1 hung")
        #expect(message.contains("[rank 0] rank 0: a collective waited 5 s for the other ranks; one of them hung or died: stopping"),
                "\(message.suffix(2000))")
        #expect(message.contains("launch failed: rank 0 of 2 exited with status 1"), "\(message.suffix(2000))")
        #expect(kill(victim, 0) != 0, "the hung rank was killed")
    }

    /// A run checkpointed by 2 ranks × batch 1 resumes as 1 process × batch 2 (the same global batch;
    /// the data cursor counts samples): it ends where 1 × 2 throughout ends, within 1e-5.
    @Test func resumesWithADifferentNumberOfRanks() throws {
        let (work, model, data) = try Self.workspace("temper-dp-resume", data: "sft-demo.jsonl", lines: 8, as: "sft.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let common = [
            "--model", model.path, "--data", data.path, "--method", "lora", "--lora-rank", "4", "--lora-dropout", "0",
            "--optimizer", "sgd", "--learning-rate", "0.5", "--schedule", "constant", "--max-length", "48", "--save-every", "2",
        ]
        let straight = work.appendingPathComponent("straight"), switched = work.appendingPathComponent("switched")
        try Self.train(common + ["--batch-size", "2", "--max-steps", "4"], ranks: 1, output: straight)
        try Self.train(common + ["--batch-size", "1", "--max-steps", "2"], ranks: 2, output: switched)
        try Self.train(common + ["--batch-size", "2", "--max-steps", "4", "--resume"], ranks: 1, output: switched)

        let (a, b) = (try Self.losses(straight), try Self.losses(switched))
        #expect(a.count == 4 && b.count == 4, "\(b)")
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-5, "loss \(x) vs \(y)") }
        let largest = try Self.largestWeightDifference("adapter_model.safetensors", straight, switched)
        #expect(largest < 1e-5, "largest weight difference \(largest)")
    }
}

extension DataParallelCLITests {
    /// Ctrl-C (or the gallery's cancel) to `temper launch`: every rank stops at the same step, rank 0
    /// checkpoints it, and the launcher exits 130 as a single trainer does. `ssh`: the ranks run through
    /// real ssh, which forwards no signals: the launcher's order goes down their standard input; and
    /// when the launcher itself is killed (-9), the ranks see their input close and exit.
    @Test(arguments: ["local", "ssh"]) func anInterruptStopsEveryRankAtOneStep(_ variant: String) async throws {
        let (work, model, data) = try Self.workspace("temper-dp-int", data: "sft-demo.jsonl", lines: 16, as: "sft.jsonl")
        defer { try? FileManager.default.removeItem(at: work) }
        let output = work.appendingPathComponent("run")
        let ssh = variant == "ssh" ? try SSHServer() : nil
        defer { ssh?.stop() }
        let hosts = try ssh.map { ["--hosts", "127.0.0.1,127.0.0.1", "--port", String(try Self.freePortPair()), "--through", $0.through] } ?? []
        let sft = [
            "--", "temper", "sft", "--model", model.path, "--data", data.path, "--output", output.path,
            "--method", "lora", "--lora-rank", "4", "--batch-size", "1", "--max-steps", "40", "--max-length", "48", "--save-every", "2",
        ]
        func start(_ extra: [String] = []) throws -> (Process, Pipe) {
            let launcher = Process()
            launcher.executableURL = TemperProcess.executable
            launcher.arguments = ["launch", "--ranks", "2"] + hosts + sft + extra
            let errors = Pipe()
            launcher.standardOutput = FileHandle.nullDevice
            launcher.standardError = errors
            try launcher.run()
            return (launcher, errors)
        }
        let (launcher, errors) = try start()
        try await GalleryCLITests.waitForCheckpoint(output.appendingPathComponent("checkpoints"))
        launcher.interrupt()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        launcher.waitUntilExit()
        #expect(launcher.terminationStatus == 130, "\(text.suffix(2000))")
        let stops = text.split(separator: "\n").filter { $0.contains("stopped at step") }.map { line in
            (String(line.prefix(8)), line.split(separator: " ").first { Int($0) != nil }.map { Int($0)! })
        }
        #expect(stops.count == 2, "\(text.suffix(2000))")
        #expect(Set(stops.map(\.1)).count == 1, "both ranks stop at one step: \(stops)")
        let step = try #require(stops.first?.1 ?? nil)
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(String(format: "checkpoints/step-%06d", step)).path))
        guard variant == "ssh" else { return }

        // Resumed, then the launcher killed: the ranks (sshd's children, not the launcher's) follow.
        let (resumed, _) = try start(["--resume"])
        let checkpoints = output.appendingPathComponent("checkpoints")
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, Self.rankProcesses(writing: output).count < 2 { try await Task.sleep(for: .milliseconds(200)) }
        #expect(Self.rankProcesses(writing: output).count == 2, "both ranks run through ssh")
        let before = try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).count
        while Date() < deadline, try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).count == before {
            try await Task.sleep(for: .milliseconds(200))
        }
        kill(resumed.processIdentifier, SIGKILL)
        let killed = Date()
        while Date().timeIntervalSince(killed) < 20, !Self.rankProcesses(writing: output).isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        #expect(Self.rankProcesses(writing: output).isEmpty, "the ranks outlived their launcher by 20 s")
    }

    /// The processes started as ranks (TEMPER_RANK in their environment) whose command line names `output`.
    static func rankProcesses(writing output: URL) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> pid_t? in
            guard let pid = Int32(entry), let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                String(decoding: commandLine, as: UTF8.self).contains(output.path),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ"),
                environment.split(separator: 0).contains(where: { $0.starts(with: Data("TEMPER_RANK=".utf8)) })
            else { return nil }
            // A zombie has exited already.
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first
            return state == "Z" ? nil : pid
        }
    }
}

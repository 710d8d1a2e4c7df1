import Foundation
import Testing

/// The model commands end to end on the real SmolLM2 GGUF (unpacked by setup).
@Suite(.serialized) struct ModelCLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let gguf = root.appendingPathComponent(".deps/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    @Test func convertThenChatAnswersTheCapitalOfFrance() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let convert = try TemperProcess.run(["convert", "--from", Self.gguf.path, "--to", folder.path])
        #expect(convert.exitCode == 0, "\(convert.standardError)")
        #expect(convert.standardOutput.isEmpty)
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
        let answer = try TemperProcess.run([
            "generate", "--model", folder.path, "--chat", "--prompt", "What is the capital of France?",
            "--max-tokens", "24", "--temperature", "0",
        ])
        #expect(answer.exitCode == 0, "\(answer.standardError)")
        // Only the generated text on stdout; statistics on stderr.
        #expect(answer.standardOutput == "The capital of France is Paris.\n")
        #expect(answer.standardError.contains("tok/s decode"))

        let tokens = try TemperProcess.run(["tokenize", "--tokenizer", folder.path, "--text", "Hello world, 2024!"])
        #expect(tokens.exitCode == 0)
        #expect(tokens.standardOutput == "[19556, 905, 28, 216, 34, 32, 34, 36, 17]\n")
    }

    @Test func badInputsAreClearErrors() throws {
        let missing = try TemperProcess.run(["generate", "--model", "/nonexistent/model", "--prompt", "hi"])
        #expect(missing.exitCode == 1)
        #expect(missing.standardError.contains("/nonexistent/model/config.json: no such file"))
        let both = try TemperProcess.run(["convert", "--from", "a.gguf", "--to", "b.gguf"])
        #expect(both.exitCode == 2)
        #expect(both.standardError.contains("exactly one of --from and --to must be a .gguf file"))
        let badTemperature = try TemperProcess.run(["generate", "--model", "m", "--prompt", "p", "--temperature", "-1"])
        #expect(badTemperature.exitCode == 2)
        let sft = try TemperProcess.run(["sft", "--model", "m", "--data", "d.jsonl", "--output", "o", "--method", "lora", "--max-steps", "0"])
        #expect(sft.exitCode == 2)
        #expect(sft.standardError.contains("recipe field 'max_steps': must be positive"))
    }
}

/// `temper dpo` end to end on the real SmolLM2 and the shipped preference data: a short LoRA run,
/// Ctrl-C writing a checkpoint that `--resume` continues, and the errors users meet first.
@Suite(.serialized) struct DPOCLITests {
    @Test func trainsIsInterruptedAndResumes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("smollm2"), output = root.appendingPathComponent("out")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        let data = root.appendingPathComponent("pairs.jsonl")
        let lines = try String(contentsOf: ModelCLITests.root.appendingPathComponent("Data/dpo-demo.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(8)
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let arguments = [
            "dpo", "--model", model.path, "--data", data.path, "--output", output.path, "--method", "lora",
            "--lora-rank", "4", "--beta", "0.1", "--loss", "sigmoid,sft", "--loss-weights", "1,0.5",
            "--learning-rate", "1e-4", "--batch-size", "1", "--max-length", "96", "--max-steps", "6", "--save-every", "100",
        ]
        // Interrupted after its first step: it checkpoints and exits 130.
        let process = Process()
        process.executableURL = TemperProcess.executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let metrics = output.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, ((try? String(contentsOf: metrics, encoding: .utf8)) ?? "").isEmpty { Thread.sleep(forTimeInterval: 0.2) }
        process.interrupt()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(log)")
        #expect(log.contains("resume with --resume"))
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: output.appendingPathComponent("checkpoints").path)
        #expect(checkpoints.count == 1 && checkpoints[0].hasPrefix("step-"))
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("adapter_model.safetensors").path))

        let resumed = try TemperProcess.run(arguments + ["--resume"])
        #expect(resumed.exitCode == 0, "\(resumed.standardError)")
        #expect(resumed.standardError.contains("resumed from step-"))
        #expect(resumed.standardError.contains("rewards/accuracies"))
        let records = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(records.compactMap { $0["step"] as? Int } == [1, 2, 3, 4, 5, 6])
        #expect(records.allSatisfy { $0["rewards/margins"] is Double && $0["logits/chosen"] is Double })
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect(config?["r"] as? Int == 4)
        // The trained adapter applies at generation.
        let answer = try TemperProcess.run([
            "generate", "--model", model.path, "--adapter", output.path, "--chat", "--prompt", "What is 2 + 2?", "--max-tokens", "8",
        ])
        #expect(answer.exitCode == 0, "\(answer.standardError)")
        #expect(!answer.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test func badInputsAreClearErrors() throws {
        let unknownLoss = try TemperProcess.run(["dpo", "--model", "m", "--data", "d.jsonl", "--output", "o", "--max-steps", "1", "--loss", "sigmod"])
        #expect(unknownLoss.exitCode == 2)
        #expect(unknownLoss.standardError.contains("--loss"))
        #expect(unknownLoss.standardError.contains("got 'sigmod'") && unknownLoss.standardError.contains("sigmoid_norm"))
        let weights = try TemperProcess.run(["dpo", "--model", "m", "--data", "d.jsonl", "--output", "o", "--max-steps", "1", "--loss", "sigmoid,sft", "--loss-weights", "1"])
        #expect(weights.exitCode == 2)
        #expect(weights.standardError.contains("recipe field 'loss_weights': must have one weight per loss type"))

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-dpo-bad-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("smollm2")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        let data = root.appendingPathComponent("bad.jsonl")
        try """
            {"prompt": "a", "chosen": "b", "rejected": "c"}
            {"prompt": "a", "chosen": "b"}
            {"prompt": "a", "chosen": "same", "rejected": "same"}
            """.write(to: data, atomically: true, encoding: .utf8)
        let bad = try TemperProcess.run(["dpo", "--model", model.path, "--data", data.path, "--output", root.appendingPathComponent("o").path, "--max-steps", "1"])
        #expect(bad.exitCode == 1)
        #expect(bad.standardError.contains("\(data.path):2: missing field 'rejected'"))
        #expect(bad.standardError.contains("\(data.path):3: chosen and rejected are the same"))
    }
}

/// `temper grpo` end to end on the real SmolLM2 and the shipped arithmetic prompts: a short LoRA run
/// with the built-in math and format rewards plus an external reward command, Ctrl-C writing a
/// checkpoint that `--resume` continues, the held-out rewards, and the errors users meet first.
@Suite(.serialized) struct GRPOCLITests {
    @Test func trainsIsInterruptedAndResumes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-grpo-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("smollm2"), output = root.appendingPathComponent("out")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        func lines(_ name: String, _ count: Int) throws -> URL {
            let url = root.appendingPathComponent(name)
            let text = try String(contentsOf: ModelCLITests.root.appendingPathComponent("Data/\(name)"), encoding: .utf8)
            try (text.split(separator: "\n").prefix(count).joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
            return url
        }
        let train = try lines("grpo-arithmetic-train.jsonl", 8), heldOut = try lines("grpo-arithmetic-heldout.jsonl", 2)
        // An external reward in another language: 1 when the completion has a digit.
        let script = root.appendingPathComponent("digits.py")
        try """
            import json, sys
            for line in sys.stdin:
                row = json.loads(line)
                print(1.0 if any(c.isdigit() for c in row["completion"]) else 0.0, flush=True)
            """.write(to: script, atomically: true, encoding: .utf8)
        let arguments = [
            "grpo", "--model", model.path, "--data", train.path, "--eval-data", heldOut.path, "--output", output.path,
            "--method", "lora", "--lora-rank", "4", "--reward", "math,format,cmd:python3 \(script.path)",
            "--num-generations", "2", "--batch-size", "4", "--max-completion-length", "12", "--learning-rate", "1e-4",
            "--max-steps", "3", "--save-every", "100", "--beta", "0.04",
        ]
        let process = Process()
        process.executableURL = TemperProcess.executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let metrics = output.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, ((try? String(contentsOf: metrics, encoding: .utf8)) ?? "").isEmpty { Thread.sleep(forTimeInterval: 0.2) }
        process.interrupt()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(log)")
        #expect(log.contains("before training eval_completions/mean_length"))
        #expect(log.contains("rewards: math, format, digits"))
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: output.appendingPathComponent("checkpoints").path)
        #expect(checkpoints.count == 1 && checkpoints[0].hasPrefix("step-"))

        let resumed = try TemperProcess.run(arguments + ["--resume"])
        #expect(resumed.exitCode == 0, "\(resumed.standardError)")
        #expect(resumed.standardError.contains("resumed from step-"))
        #expect(resumed.standardError.contains("held-out reward"))
        let records = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let steps = records.filter { $0["loss"] != nil }
        #expect(steps.compactMap { $0["step"] as? Int } == [1, 2, 3])
        for name in ["reward", "reward_std", "rewards/math/mean", "rewards/format/std", "rewards/digits/mean", "frac_reward_zero_std",
                     "completions/mean_length", "completions/clipped_ratio", "kl", "entropy", "clip_ratio/region_mean",
                     "timing/generation_seconds", "num_tokens"] {
            #expect(steps.allSatisfy { $0[name] is Double }, "metrics.jsonl lacks \(name)")
        }
        #expect(records.contains { $0["eval_rewards/math/mean"] is Double })
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("adapter_model.safetensors").path))
    }

    @Test func badInputsAreClearErrors() throws {
        let unknownLoss = try TemperProcess.run(["grpo", "--model", "m", "--data", "d.jsonl", "--output", "o", "--reward", "math", "--loss", "ppo"])
        #expect(unknownLoss.exitCode == 2)
        #expect(unknownLoss.standardError.contains("--loss") && unknownLoss.standardError.contains("got 'ppo'"))
        let groups = try TemperProcess.run(["grpo", "--model", "m", "--data", "d.jsonl", "--output", "o", "--reward", "math",
                                            "--batch-size", "4", "--num-generations", "3", "--max-steps", "1"])
        #expect(groups.exitCode == 2)
        #expect(groups.standardError.contains("recipe field 'num_generations': must divide batch_size × steps_per_generation = 4"))

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("temper-grpo-bad-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let model = root.appendingPathComponent("smollm2")
        #expect(try TemperProcess.run(["convert", "--from", ModelCLITests.gguf.path, "--to", model.path]).exitCode == 0)
        let data = root.appendingPathComponent("bad.jsonl")
        try """
            {"prompt": "What is 2 + 2?", "answer": "4"}
            {"prompt": [{"role": "assistant", "content": "hi"}], "answer": "1"}
            {"question": "no prompt"}
            not json
            """.write(to: data, atomically: true, encoding: .utf8)
        let out = root.appendingPathComponent("o").path
        let bad = try TemperProcess.run(["grpo", "--model", model.path, "--data", data.path, "--output", out, "--reward", "math", "--max-steps", "1"])
        #expect(bad.exitCode == 1)
        #expect(bad.standardError.contains("\(data.path):2: "))
        #expect(bad.standardError.contains("\(data.path):3: missing field 'prompt'"))
        #expect(bad.standardError.contains("\(data.path):4: malformed JSON"))
        // A prompt that leaves no room for its completion in SmolLM2's context.
        let long = root.appendingPathComponent("long.jsonl")
        try "{\"prompt\": \"\(String(repeating: "seven ", count: 8400))\", \"answer\": \"7\"}\n".write(to: long, atomically: true, encoding: .utf8)
        let tooLong = try TemperProcess.run(["grpo", "--model", model.path, "--data", long.path, "--output", out, "--reward", "math", "--max-steps", "1"])
        #expect(tooLong.exitCode == 1)
        #expect(tooLong.standardError.contains("\(long.path):1: too long: the prompt's"), "\(tooLong.standardError)")
        #expect(tooLong.standardError.contains("plus max_completion_length 256 exceed the model's context of"))
        let unknownReward = try TemperProcess.run(["grpo", "--model", model.path, "--data", data.path, "--output", out, "--reward", "maths", "--max-steps", "1"])
        #expect(unknownReward.exitCode != 0)
        #expect(unknownReward.standardError.contains("maths"))
    }
}

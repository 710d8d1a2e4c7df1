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

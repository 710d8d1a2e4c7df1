import Foundation
import TemperTestSupport
import TemperTokenizers
import Testing

@testable import TemperData

/// The real Qwen3 tokenizer and its chat template (from .deps/assets/, set up by `make deps`).
enum Qwen3 {
    static let directory = TestPaths.assets.appendingPathComponent("qwen3-tokenizer")
    static let tokenizer: Tokenizer? = try? Tokenizer.load(directory: directory)
    static var available: Bool { tokenizer != nil }

    static func load() throws -> (Tokenizer, ChatTemplate) {
        let tokenizer = try #require(tokenizer, "run `make deps` to unpack \(directory.path)")
        return (tokenizer, try ChatTemplate(try #require(tokenizer.chatTemplate)))
    }
}

/// The SmolLM2-Instruct template (committed), rendered with the Qwen3 vocabulary, which has the
/// same `<|im_start|>`/`<|im_end|>` markers.
func smolLM2Template() throws -> ChatTemplate {
    let url = TestPaths.fixtures.appendingPathComponent("chat-templates/SmolLM2-135M-Instruct.jinja")
    return try ChatTemplate(try String(contentsOf: url, encoding: .utf8))
}

/// The decoded runs of consecutive trained tokens.
func trainedRuns(_ ids: [Int], _ labels: [Int], _ tokenizer: Tokenizer) -> [String] {
    var runs: [[Int]] = []
    var previousTrained = false
    for (id, label) in zip(ids, labels) {
        let trained = label != ignoredLabel
        if trained {
            #expect(label == id)
            if previousTrained { runs[runs.count - 1].append(id) } else { runs.append([id]) }
        }
        previousTrained = trained
    }
    return runs.map { tokenizer.decode($0, skipSpecialTokens: false) }
}

let here = SourceLocation(file: "test.jsonl", line: 1)

func chat(_ turns: (String, String)...) -> Example {
    Example(.chat(turns.map { ChatMessage(role: $0.0, content: $0.1) }), source: here)
}

@Suite(.enabled(if: Qwen3.available, "needs .deps/assets/qwen3-tokenizer"))
struct EncoderTests {
    func sample(_ outcome: SampleEncoder.Outcome) throws -> TokenizedSample {
        guard case .sample(let sample, _) = outcome else {
            Issue.record("expected a sample, got \(outcome)")
            throw CancellationError()
        }
        return sample
    }

    @Test func singleTurnTrainsOnlyWhatTheAssistantTurnAdds() throws {
        let (tokenizer, template) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 512)
        let example = chat(("user", "What is the capital of France?"), ("assistant", "Paris."))
        let sample = try sample(encoder.encode(example))
        #expect(
            tokenizer.decode(sample.ids, skipSpecialTokens: false)
                == "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
                + "<think>\n\n</think>\n\nParis.<|im_end|>\n")
        // Qwen3's template writes an empty think block into the last assistant turn: it is part of
        // what the model must produce after the generation prompt, so it is trained.
        #expect(trainedRuns(sample.ids, sample.labels, tokenizer) == ["<think>\n\n</think>\n\nParis.<|im_end|>\n"])
        #expect(sample.labels[0] == ignoredLabel)
        #expect(sample.source == here)
    }

    @Test func multiTurnQwen3FallsBackToCharacterAlignment() throws {
        let (tokenizer, template) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 512)
        let messages = [
            ChatMessage(role: "system", content: "Be terse."), ChatMessage(role: "user", content: "Capital of Spain?"),
            ChatMessage(role: "assistant", content: "Madrid."), ChatMessage(role: "user", content: "And Portugal?"),
            ChatMessage(role: "assistant", content: "Lisbon."),
        ]
        // The earlier turn loses its think block once a later user turn exists: no prefix property.
        let ids = tokenizer.encode(try encoder.render(messages[...], generationPrompt: false), addSpecialTokens: false)
        #expect(try encoder.prefixMask(messages, ids: ids) == nil)
        let sample = try sample(encoder.encode(Example(.chat(messages), source: here)))
        #expect(
            tokenizer.decode(sample.ids, skipSpecialTokens: false)
                == "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nCapital of Spain?<|im_end|>\n"
                + "<|im_start|>assistant\nMadrid.<|im_end|>\n<|im_start|>user\nAnd Portugal?<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\n\n</think>\n\nLisbon.<|im_end|>\n")
        #expect(
            trainedRuns(sample.ids, sample.labels, tokenizer) == [
                "Madrid.<|im_end|>\n", "<think>\n\n</think>\n\nLisbon.<|im_end|>\n",
            ])
    }

    @Test func multiTurnWithAPrefixStableTemplateUsesPrefixes() throws {
        let (tokenizer, _) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: try smolLM2Template(), maxLength: 512)
        let messages = [
            ChatMessage(role: "user", content: "Capital of Spain?"), ChatMessage(role: "assistant", content: "Madrid."),
            ChatMessage(role: "user", content: "And Portugal?"), ChatMessage(role: "assistant", content: "Lisbon."),
        ]
        let full = try encoder.render(messages[...], generationPrompt: false)
        let ids = tokenizer.encode(full, addSpecialTokens: false)
        let labels = try #require(try encoder.prefixMask(messages, ids: ids))
        #expect(trainedRuns(ids, labels, tokenizer) == ["Madrid.<|im_end|>\n", "Lisbon.<|im_end|>\n"])
        // The character-offset fallback agrees with the prefix renders on this template.
        let aligned = try encoder.alignedTokens(messages, full: full)
        #expect(aligned.ids == ids)
        #expect(aligned.labels == labels)
        // The template's default system prompt is not trained.
        #expect(full.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"))
    }

    @Test func trainOnPromptTrainsEverythingButTheFirstToken() throws {
        let (tokenizer, template) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 512, trainOnPrompt: true)
        let sample = try sample(encoder.encode(chat(("user", "Hi"), ("assistant", "Hello."))))
        #expect(sample.labels == [ignoredLabel] + sample.ids.dropFirst())
        #expect(sample.trainedTokenCount == sample.count - 1)
    }

    @Test func instructionUsesTheChatTemplate() throws {
        let (tokenizer, template) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 512)
        let example = Example(
            .instruction(system: "Answer briefly.", instruction: "Reverse the word.", input: "swift", output: "tfiws"),
            source: here)
        let sample = try sample(encoder.encode(example))
        #expect(
            tokenizer.decode(sample.ids, skipSpecialTokens: false)
                == "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nReverse the word.\n\nswift<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\n\n</think>\n\ntfiws<|im_end|>\n")
        #expect(trainedRuns(sample.ids, sample.labels, tokenizer) == ["<think>\n\n</think>\n\ntfiws<|im_end|>\n"])
    }

    @Test func instructionWithoutTemplateUsesThePlainPrompt() throws {
        let (tokenizer, _) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: nil, maxLength: 512)
        let example = Example(
            .instruction(system: nil, instruction: "Reverse the word.", input: "swift", output: "tfiws"), source: here)
        let sample = try sample(encoder.encode(example))
        #expect(
            tokenizer.decode(sample.ids, skipSpecialTokens: false)
                == "### Instruction:\nReverse the word.\n\n### Input:\nswift\n\n### Response:\ntfiws<|im_end|>")
        #expect(trainedRuns(sample.ids, sample.labels, tokenizer) == ["tfiws<|im_end|>"])
    }

    @Test func textTrainsEveryTokenAndEndsWithEOS() throws {
        let (tokenizer, template) = try Qwen3.load()
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 512)
        let sample = try sample(encoder.encode(Example(.text("Temper trains models."), source: here)))
        let words = tokenizer.encode("Temper trains models.", addSpecialTokens: true)
        #expect(sample.ids == words + [try #require(tokenizer.eosTokenID)])
        #expect(sample.labels == [ignoredLabel] + sample.ids.dropFirst())
    }

    @Test func lengthPolicies() throws {
        let (tokenizer, template) = try Qwen3.load()
        let longReply = chat(("user", "Say word."), ("assistant", Array(repeating: "word", count: 100).joined(separator: " ")))
        let longPrompt = chat(("user", Array(repeating: "please", count: 100).joined(separator: " ")), ("assistant", "No."))
        let full = try #require(
            { if case .sample(let s, false) = $0 { return s } else { return nil } }(
                SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 4096).encode(longReply)))
        let promptFull = try #require(
            { if case .sample(let s, false) = $0 { return s } else { return nil } }(
                SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 4096).encode(longPrompt)))
        let promptTokens = try #require(promptFull.labels.firstIndex { $0 != ignoredLabel })

        var encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 32, lengthPolicy: .truncate)
        guard case .sample(let cut, truncated: true) = encoder.encode(longReply) else {
            Issue.record("expected a truncated sample")
            return
        }
        #expect(cut.ids == Array(full.ids.prefix(32)))
        #expect(cut.labels == Array(full.labels.prefix(32)))
        #expect(cut.trainedTokenCount > 0)
        #expect(
            encoder.encode(longPrompt)
                == .invalid(DataIssue(here, .noTrainedTokenWithinLimit(promptTokens: promptTokens, maxLength: 32))))
        #expect(
            DataIssue(here, .noTrainedTokenWithinLimit(promptTokens: promptTokens, maxLength: 32)).description
                == "test.jsonl:1: too long: the prompt takes \(promptTokens) tokens, so no trained token fits in maxLength 32")

        encoder.lengthPolicy = .drop
        #expect(encoder.encode(longReply) == .dropped(tokens: full.count))

        encoder.lengthPolicy = .error
        #expect(encoder.encode(longReply) == .invalid(DataIssue(here, .tooLong(tokens: full.count, maxLength: 32))))
        #expect(
            DataIssue(here, .tooLong(tokens: full.count, maxLength: 32)).description
                == "test.jsonl:1: too long: \(full.count) tokens > maxLength 32 (length policy: error)")
        // Exactly maxLength is not too long.
        encoder.maxLength = full.count
        #expect(encoder.encode(longReply) == .sample(full, truncated: false))
    }

    @Test func templateErrorsBecomeIssues() throws {
        let (tokenizer, _) = try Qwen3.load()
        let template = try ChatTemplate("{{ raise_exception('no system messages') }}")
        let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 64)
        guard case .invalid(let issue) = encoder.encode(chat(("user", "Hi"), ("assistant", "Hello."))) else {
            Issue.record("expected an issue")
            return
        }
        #expect(issue.reason.kind == "chat template error")
        #expect(issue.description.hasPrefix("test.jsonl:1: chat template failed: "))
        #expect(issue.description.contains("no system messages"))
    }

    @Test func demoDatasetFitsIn128TokensWithBothTemplates() throws {
        let (tokenizer, template) = try Qwen3.load()
        let file = try DatasetReader.read(TestPaths.repositoryRoot.appendingPathComponent("Data/sft-demo.jsonl"))
        #expect(file.issues.isEmpty)
        #expect(file.examples.count >= 150)
        for chatTemplate in [template, try smolLM2Template()] {
            let encoder = SampleEncoder(tokenizer: tokenizer, chatTemplate: chatTemplate, maxLength: 128, lengthPolicy: .error)
            for example in file.examples {
                let sample = try sample(encoder.encode(example))
                let runs = trainedRuns(sample.ids, sample.labels, tokenizer)
                #expect(runs.allSatisfy { $0.hasSuffix("\n— Temper<|im_end|>\n") }, "\(runs)")
            }
        }
        let instructions = try DatasetReader.read(
            TestPaths.repositoryRoot.appendingPathComponent("Data/instructions-demo.json"))
        #expect(instructions.issues.isEmpty)
        #expect(instructions.examples.count == 50)
        #expect(instructions.format == .instruction)
    }
}

/// The real SmolLM2-135M-Instruct tokenizer: from the converted model folder when setup has made it,
/// else from the GGUF's tokenizer metadata.
enum SmolLM2 {
    static let directory = TestPaths.repositoryRoot.appendingPathComponent(".deps/models/SmolLM2-135M-Instruct")
    static let gguf = TestPaths.assets.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    static var available: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path)
            || FileManager.default.fileExists(atPath: gguf.path)
    }

    static func tokenizer() throws -> Tokenizer {
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) {
            return try Tokenizer.load(directory: directory)
        }
        let files = try GGUFTokenizerConversion.files(from: try GGUFMetadata.read(gguf))
        return try Tokenizer.load(tokenizerJSON: files.tokenizerJSON, tokenizerConfigJSON: files.tokenizerConfigJSON)
    }
}

@Suite(.enabled(if: SmolLM2.available, "needs the SmolLM2 model folder or GGUF from setup"))
struct SmolLM2DataTests {
    @Test func demoDatasetFitsIn128TokensAndTrainsTheSignature() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let template = try ChatTemplate(try #require(tokenizer.chatTemplate))
        let data = try PreparedDataset.prepare(
            trainFiles: [TestPaths.repositoryRoot.appendingPathComponent("Data/sft-demo.jsonl")],
            config: DataConfig(maxLength: 128, lengthPolicy: .error), tokenizer: tokenizer, chatTemplate: template)
        #expect(data.train.count == 168)
        #expect(data.report.train.maxLength < 128)
        for sample in data.train {
            let runs = trainedRuns(sample.ids, sample.labels, tokenizer)
            #expect(runs.allSatisfy { $0.hasSuffix("\n— Temper<|im_end|>\n") }, "\(runs)")
        }
        let first = try #require(data.train.first)
        #expect(
            tokenizer.decode(first.ids, skipSpecialTokens: false).hasPrefix(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"))
    }
}

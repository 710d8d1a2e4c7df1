import Foundation
import TemperTestSupport
import TemperTokenizers
import Testing

@testable import TemperData

@Suite("Preference data")
struct PreferenceDataTests {
    static func parse(_ text: String) -> (examples: [PreferenceExample], issues: [DataIssue]) {
        PreferenceReader.parse(Array(text.utf8), path: "p.jsonl")
    }

    @Test func readsTheStandardConversationalAndImplicitPromptForms() throws {
        let (examples, issues) = Self.parse("""
            {"prompt": "2+2=", "chosen": " 4", "rejected": " 5"}
            {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}
            {"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}], "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}
            {"chosen": "The sky is blue.", "rejected": "The sky is green."}
            """)
        #expect(issues.isEmpty)
        #expect(examples.count == 4)
        #expect(examples[0].prompt == .text("2+2=") && examples[0].chosen == .text(" 4"))
        #expect(examples[1].chosen == .messages([ChatMessage(role: "assistant", content: "Hello.")]))
        // The shared prefix of two conversations becomes the prompt, as TRL's extract_prompt.
        #expect(examples[2].prompt == .messages([ChatMessage(role: "user", content: "Sky?")]))
        #expect(examples[2].rejected == .messages([ChatMessage(role: "assistant", content: "Green.")]))
        #expect(examples[3].prompt == .text("The sky is") && examples[3].chosen == .text(" blue."))
        #expect(examples[2].source == SourceLocation(file: "p.jsonl", line: 3))
    }

    @Test func badRecordsNameTheirLineAndReason() {
        let (examples, issues) = Self.parse("""
            {"prompt": "a", "chosen": "b"}
            {"prompt": "a", "chosen": "same", "rejected": "same"}
            {"prompt": "a", "chosen": "  ", "rejected": "c"}
            {"prompt": "a", "chosen": "b", "rejected": 3}
            {"prompt": "a", "chosen": "b", "rejected":
            {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "user", "content": "x"}], "rejected": [{"role": "assistant", "content": "y"}]}
            {"prompt": "ok", "chosen": "yes", "rejected": "no"}
            """)
        #expect(examples.count == 1)
        #expect(issues.map(\.description) == [
            "p.jsonl:1: missing field 'rejected'",
            "p.jsonl:2: chosen and rejected are the same, so the pair prefers nothing",
            "p.jsonl:3: empty chosen completion",
            "p.jsonl:4: field 'rejected' must be a string or a list of messages, found a number",
            issues[4].description,
            "p.jsonl:6: wrong role order: the chosen completion must hold assistant turns only",
        ])
        #expect(issues[4].description.hasPrefix("p.jsonl:5: malformed JSON"))
    }

    @Test(.enabled(if: SmolLM2.available, "needs the SmolLM2 model folder or GGUF from setup"))
    func tokenizesAsTRL() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let template = try ChatTemplate(try #require(tokenizer.chatTemplate))
        let encoder = PreferenceEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 64)
        let (examples, _) = Self.parse("""
            {"prompt": "Q: 2+2?\\nA:", "chosen": " 4", "rejected": " 5"}
            {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}
            """)
        // Text: the EOS text is appended to each completion, then prompt + completion is tokenized.
        guard case .success(let text) = encoder.encode(examples[0]) else { Issue.record("text pair failed"); return }
        #expect(tokenizer.decode(text.chosen, skipSpecialTokens: false) == " 4<|im_end|>")
        #expect(tokenizer.decode(text.prompt, skipSpecialTokens: false) == "Q: 2+2?\nA:")
        // Conversational: the prompt with the generation prompt; completions as the template ends them.
        guard case .success(let chat) = encoder.encode(examples[1]) else { Issue.record("chat pair failed"); return }
        #expect(tokenizer.decode(chat.prompt, skipSpecialTokens: false).hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(tokenizer.decode(chat.chosen, skipSpecialTokens: false) == "Hello.<|im_end|>\n")
        #expect(tokenizer.decode(chat.rejected, skipSpecialTokens: false) == "Go away.<|im_end|>\n")
        // keep_start: a prompt that fills max_length leaves nothing to compare.
        let short = PreferenceEncoder(tokenizer: tokenizer, chatTemplate: template, maxLength: 8)
        guard case .failure(let reason) = short.encode(examples[1]) else { Issue.record("expected too long"); return }
        #expect(reason.kind == "prompt fills maxLength")

        // Batches: chosen rows first, completion tokens labelled, each row cut to max_length.
        let cut = text.prompt.count + max(text.chosen.count, text.rejected.count)
        let loader = try PreferenceLoader(pairs: [text, chat], batchSize: 2, maxLength: cut, shuffle: false, padTokenID: 0)
        let batch = loader.makeBatch([0, 1])
        #expect(batch.rowCount == 4 && batch.length == cut)
        #expect(batch.ids[0].prefix(text.prompt.count + text.chosen.count) == ArraySlice((text.prompt + text.chosen).map(Int32.init)))
        #expect(batch.labels[0].filter { $0 != -100 } == text.chosen.map(Int32.init))
        #expect(batch.labels[2].filter { $0 != -100 } == text.rejected.map(Int32.init))
        let keptChosen = max(0, cut - chat.prompt.count)
        #expect(batch.labels[1].filter { $0 != -100 }.count == min(keptChosen, chat.chosen.count))
    }

    @Test func theShippedPreferenceSetIsValidAndDisjoint() throws {
        let root = TestPaths.repositoryRoot.appendingPathComponent("Data")
        let train = try PreferenceReader.read(root.appendingPathComponent("dpo-demo.jsonl"))
        let eval = try PreferenceReader.read(root.appendingPathComponent("dpo-demo-eval.jsonl"))
        #expect(train.issues.isEmpty && eval.issues.isEmpty)
        #expect(train.examples.count == 315 && eval.examples.count == 43)
        let prompts = Set(train.examples.map(\.prompt))
        #expect(eval.examples.allSatisfy { !prompts.contains($0.prompt) })
    }
}

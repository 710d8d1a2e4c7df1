import Foundation
import TemperTokenizers

/// Label of a token that is not trained (PyTorch's `ignore_index`).
public let ignoredLabel = -100

/// One tokenized training sample.
///
/// `labels` is aligned with `ids`: `labels[t]` is `ids[t]` where token `t` is trained and
/// `ignoredLabel` (-100) where it is not. The trainer shifts by one (the logits at position `t`
/// predict `labels[t + 1]`). `labels[0]` is always ignored: nothing precedes the first token, and in
/// a packed row it must not be predicted from the previous sample. So the number of labels that are
/// not -100 is exactly the number of loss terms.
public struct TokenizedSample: Codable, Sendable, Equatable {
    public var ids: [Int]
    public var labels: [Int]
    public var source: SourceLocation

    public init(ids: [Int], labels: [Int], source: SourceLocation) {
        precondition(ids.count == labels.count, "ids (\(ids.count)) and labels (\(labels.count)) differ in length")
        self.ids = ids
        self.labels = labels
        self.source = source
    }

    public var count: Int { ids.count }
    public var trainedTokenCount: Int { labels.reduce(0) { $0 + ($1 == ignoredLabel ? 0 : 1) } }
}

/// What to do with a sample longer than `maxLength` tokens.
public enum LengthPolicy: String, Codable, Sendable, CaseIterable {
    /// Cut from the right to `maxLength`; if no trained token is left, the sample is an invalid record.
    case truncate
    /// Skip it and count it in the report.
    case drop
    /// Report it as an invalid record.
    case error
}

/// Turns examples into token ids and labels with the model's chat template.
///
/// Chat (and, with a template, instruction) samples are rendered with the template, and only the
/// tokens each assistant turn adds are trained, unless `trainOnPrompt`. The assistant tokens are
/// found the way TRL's `get_assistant_tokens_mask` fallback and LLaMA-Factory do: for assistant turn
/// `i`, render `messages[..<i]` with the generation prompt and `messages[...i]` without it; the
/// tokens the second adds over the first are the turn's (its reply, and the template's end of turn
/// such as `<|im_end|>\n`). This needs each prefix's tokens to be a prefix of the whole
/// conversation's tokens. Templates that render earlier turns differently once later turns exist
/// (Qwen3 drops the empty `<think>` block of all but the last assistant turn) break that, and then
/// the mask comes from character offsets: each reply is located in the rendered text after the
/// previous message, the trained span runs from the end of the generation prompt before it through
/// the template's end-of-turn text after it, and the text is tokenized span by span.
public struct SampleEncoder {
    public var tokenizer: Tokenizer
    public var chatTemplate: ChatTemplate?
    public var maxLength: Int
    public var lengthPolicy: LengthPolicy
    /// Train on the prompt tokens too (system, user, template markup); default false.
    public var trainOnPrompt: Bool

    public init(
        tokenizer: Tokenizer, chatTemplate: ChatTemplate?, maxLength: Int, lengthPolicy: LengthPolicy = .truncate,
        trainOnPrompt: Bool = false
    ) {
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.maxLength = maxLength
        self.lengthPolicy = lengthPolicy
        self.trainOnPrompt = trainOnPrompt
    }

    public enum Outcome: Sendable, Equatable {
        case sample(TokenizedSample, truncated: Bool)
        /// Longer than `maxLength` under `.drop`; `tokens` is its full length.
        case dropped(tokens: Int)
        case invalid(DataIssue)
    }

    /// Tokenizes, masks and applies the length policy.
    public func encode(_ example: Example) -> Outcome {
        let ids: [Int]
        var labels: [Int]
        switch tokenize(example.content) {
        case .success(let tokens): (ids, labels) = tokens
        case .failure(let reason): return .invalid(DataIssue(example.source, reason))
        }
        if trainOnPrompt { labels = ids }
        if !labels.isEmpty { labels[0] = ignoredLabel }
        guard ids.count > maxLength else {
            return .sample(TokenizedSample(ids: ids, labels: labels, source: example.source), truncated: false)
        }
        switch lengthPolicy {
        case .drop:
            return .dropped(tokens: ids.count)
        case .error:
            return .invalid(DataIssue(example.source, .tooLong(tokens: ids.count, maxLength: maxLength)))
        case .truncate:
            let kept = Array(labels.prefix(maxLength))
            guard kept.contains(where: { $0 != ignoredLabel }) else {
                let prompt = labels.firstIndex { $0 != ignoredLabel } ?? ids.count
                return .invalid(
                    DataIssue(example.source, .noTrainedTokenWithinLimit(promptTokens: prompt, maxLength: maxLength)))
            }
            return .sample(
                TokenizedSample(ids: Array(ids.prefix(maxLength)), labels: kept, source: example.source), truncated: true)
        }
    }

    /// Full-length ids and labels (prompt tokens ignored) before the length policy.
    public func tokenize(_ content: Example.Content) -> Result<(ids: [Int], labels: [Int]), DataIssue.Reason> {
        switch content {
        case .text(let text):
            var ids = tokenizer.encode(text, addSpecialTokens: true)
            if let eos = tokenizer.eosTokenID, ids.last != eos { ids.append(eos) }
            return .success((ids, ids))
        case .chat(let messages):
            return chatTokens(messages)
        case .instruction(let system, let instruction, let input, let output):
            if chatTemplate != nil {
                return chatTokens(
                    Example.messages(system: system, instruction: instruction, input: input, output: output))
            }
            return .success(plainInstructionTokens(system: system, instruction: instruction, input: input, output: output))
        }
    }

    /// Instruction data without a chat template: the Alpaca prompt, the tokenizer's BOS, the output
    /// and EOS; only the output and EOS are trained.
    func plainInstructionTokens(system: String?, instruction: String, input: String?, output: String)
        -> (ids: [Int], labels: [Int])
    {
        var prompt = ""
        if let system, !system.isEmpty { prompt += system + "\n\n" }
        prompt += "### Instruction:\n\(instruction)\n\n"
        if let input, !input.isEmpty { prompt += "### Input:\n\(input)\n\n" }
        prompt += "### Response:\n"
        let promptIDs = tokenizer.encode(prompt, addSpecialTokens: true)
        var responseIDs = tokenizer.encode(output, addSpecialTokens: false)
        if let eos = tokenizer.eosTokenID { responseIDs.append(eos) }
        return (
            promptIDs + responseIDs, [Int](repeating: ignoredLabel, count: promptIDs.count) + responseIDs
        )
    }

    // MARK: Chat

    /// Renders with the template; special tokens come from the rendered text, so none are added
    /// (as transformers' `apply_chat_template(tokenize=True)`).
    func render(_ messages: ArraySlice<ChatMessage>, generationPrompt: Bool) throws(DataIssue.Reason) -> String {
        guard let chatTemplate else { throw .template("no chat template") }
        let values: [JinjaValue] = messages.map { ["role": .string($0.role), "content": .string($0.content)] }
        do {
            return try chatTemplate.render(
                messages: values, addGenerationPrompt: generationPrompt, bosToken: tokenizer.bosToken,
                eosToken: tokenizer.eosToken)
        } catch {
            throw .template(String(describing: error))
        }
    }

    func chatTokens(_ messages: [ChatMessage]) -> Result<(ids: [Int], labels: [Int]), DataIssue.Reason> {
        do throws(DataIssue.Reason) {
            let full = try render(messages[...], generationPrompt: false)
            let ids = tokenizer.encode(full, addSpecialTokens: false)
            if let labels = try prefixMask(messages, ids: ids) { return .success((ids, labels)) }
            return .success(try alignedTokens(messages, full: full))
        } catch {
            return .failure(error)
        }
    }

    /// The labels from prefix renders, or nil when a prefix's tokens are not a prefix of the
    /// whole conversation's.
    func prefixMask(_ messages: [ChatMessage], ids: [Int]) throws(DataIssue.Reason) -> [Int]? {
        var labels = [Int](repeating: ignoredLabel, count: ids.count)
        for index in messages.indices where messages[index].role == "assistant" {
            let before = tokenizer.encode(
                try render(messages[..<index], generationPrompt: true), addSpecialTokens: false)
            let after = tokenizer.encode(
                try render(messages[...index], generationPrompt: false), addSpecialTokens: false)
            guard after.count > before.count, after.starts(with: before), ids.starts(with: after) else { return nil }
            for position in before.count..<after.count { labels[position] = ids[position] }
        }
        return labels
    }

    /// Character-offset alignment: the trained spans in the rendered text, tokenized span by span.
    func alignedTokens(_ messages: [ChatMessage], full: String) throws(DataIssue.Reason) -> (ids: [Int], labels: [Int]) {
        var cursor = full.startIndex
        var spans: [Range<String.Index>] = []
        for (index, message) in messages.enumerated() {
            let trimmed = message.content.trimmingCharacters(in: .whitespacesAndNewlines)
            let found = full.range(of: message.content, range: cursor..<full.endIndex)
                ?? (trimmed.isEmpty ? nil : full.range(of: trimmed, range: cursor..<full.endIndex))
            guard let found else {
                if message.role == "assistant" {
                    throw .alignment("messages[\(index)]'s content does not appear in the rendered conversation")
                }
                continue
            }
            guard message.role == "assistant" else {
                cursor = found.upperBound
                continue
            }
            // Start: the end of the generation prompt that precedes the reply, when it is there.
            var start = found.lowerBound
            let withPrompt = try render(messages[..<index], generationPrompt: true)
            let withoutPrompt = try render(messages[..<index], generationPrompt: false)
            if withPrompt.hasPrefix(withoutPrompt), withPrompt.count > withoutPrompt.count {
                let generationPrompt = String(withPrompt.dropFirst(withoutPrompt.count))
                if let marker = full.range(
                    of: generationPrompt, options: .backwards, range: cursor..<found.lowerBound)
                {
                    start = marker.upperBound
                }
            }
            // End: through the end-of-turn text the template writes after the reply.
            var end = found.upperBound
            let turn = try render(messages[...index], generationPrompt: false)
            if let reply = turn.range(of: String(full[found]), options: .backwards) {
                let suffix = turn[reply.upperBound...]
                let rest = full[found.upperBound...]
                let common = zip(suffix, rest).prefix { $0 == $1 }.count
                end = full.index(found.upperBound, offsetBy: common)
            }
            spans.append(start..<end)
            cursor = end
        }
        var ids: [Int] = []
        var labels: [Int] = []
        var position = full.startIndex
        for span in spans + [full.endIndex..<full.endIndex] {
            let prompt = tokenizer.encode(String(full[position..<span.lowerBound]), addSpecialTokens: false)
            ids += prompt
            labels += [Int](repeating: ignoredLabel, count: prompt.count)
            let reply = tokenizer.encode(String(full[span]), addSpecialTokens: false)
            ids += reply
            labels += reply
            position = span.upperBound
        }
        return (ids, labels)
    }
}

import Foundation
import TemperCore

/// One sampled completion to score, with its prompt and the rest of its dataset row.
public struct RewardInput: Sendable {
    /// The prompt as the policy saw it (chat template applied).
    public var prompt: String
    /// The decoded completion.
    public var completion: String
    /// The completion's length in tokens, its EOS included (TRL's `len(completion_ids)`).
    public var completionTokens: Int
    /// Generation hit the maximum completion length without an EOS.
    public var truncated: Bool
    /// The dataset row's other fields (`answer`, `format_regex`, …).
    public var fields: [String: JSONValue]

    public init(
        prompt: String, completion: String, completionTokens: Int, truncated: Bool, fields: [String: JSONValue] = [:]
    ) {
        self.prompt = prompt
        self.completion = completion
        self.completionTokens = completionTokens
        self.truncated = truncated
        self.fields = fields
    }
}

/// A GRPO reward: scores a batch of completions, one reward each (TRL's `reward_funcs`).
public protocol RewardFunction: Sendable {
    /// The metric name: the trainer logs `rewards/<name>/mean` and `rewards/<name>/std`.
    var name: String { get }
    /// One reward per input, in order; nil means "not applicable" (TRL's None, which becomes NaN and is
    /// left out of sums and means).
    /// - Throws: ``RewardError`` (or the closure's own error) when the batch cannot be scored.
    func rewards(_ inputs: [RewardInput]) throws -> [Double?]
}

/// Why a reward function could not score a batch or could not be set up.
public enum RewardError: Error, LocalizedError, CustomStringConvertible, Equatable, Sendable {
    /// The row lacks a field the reward reads; `present` are the fields it has.
    case missingField(reward: String, field: String, present: [String])
    case invalidField(reward: String, field: String, reason: String)
    case invalidRegex(reward: String, pattern: String)
    case invalidParameter(reward: String, reason: String)
    case wrongCount(reward: String, expected: Int, got: Int)
    /// A `--reward` name that is none of ``RewardSpec/knownNames``.
    case unknownReward(String)
    case invalidSpec(String)
    case commandCannotStart(command: String, reason: String)
    /// `status` is the exit status, or the signal number when `signaled`; `standardError` its last lines.
    case commandExited(
        command: String, status: Int32, signaled: Bool, answered: Int, expected: Int, standardError: [String])
    case commandTimedOut(command: String, seconds: Double, answered: Int, expected: Int)
    /// Output line `line` (1-based, within the batch) is not a reward; `text` is that line, shortened.
    case commandBadOutput(command: String, line: Int, text: String)
    case commandFailed(command: String, reason: String)

    public var errorDescription: String? { description }

    public var description: String {
        switch self {
        case .missingField(let reward, let field, let present):
            "reward '\(reward)' needs the field '\(field)', which this row lacks "
                + (present.isEmpty ? "(it has no other fields)" : "(its fields: \(present.joined(separator: ", ")))")
        case .invalidField(let reward, let field, let reason):
            "reward '\(reward)': field '\(field)' \(reason)"
        case .invalidRegex(let reward, let pattern):
            "reward '\(reward)': '\(pattern)' is not a valid regular expression (ICU syntax)"
        case .invalidParameter(let reward, let reason):
            "reward '\(reward)': \(reason)"
        case .wrongCount(let reward, let expected, let got):
            "reward '\(reward)' returned \(got) rewards for \(expected) completions; it must return one per completion"
        case .unknownReward(let name):
            "unknown reward '\(name)'; known rewards: \(RewardSpec.knownNames)"
        case .invalidSpec(let reason):
            "invalid reward list: \(reason)"
        case .commandCannotStart(let command, let reason):
            "reward command '\(command)' cannot start: \(reason)"
        case .commandExited(let command, let status, let signaled, let answered, let expected, let standardError):
            "reward command '\(command)' "
                + (signaled ? "was killed by signal \(status)" : "exited with status \(status)")
                + " after answering \(answered) of \(expected) inputs"
                + (standardError.isEmpty
                    ? "; its stderr was empty"
                    : "; the last lines of its stderr:\n" + standardError.map { "  " + $0 }.joined(separator: "\n"))
        case .commandTimedOut(let command, let seconds, let answered, let expected):
            "reward command '\(command)' timed out after \(Self.formatted(seconds)) s with \(answered) of \(expected) "
                + "inputs answered (it must print one line per input line and flush its output)"
        case .commandBadOutput(let command, let line, let text):
            "reward command '\(command)': output line \(line) of this batch is not a number, null or "
                + "{\"reward\": number|null}: '\(text)' (write logs to stderr)"
        case .commandFailed(let command, let reason):
            "reward command '\(command)' \(reason)"
        }
    }

    static func formatted(_ seconds: Double) -> String {
        seconds.rounded() == seconds && Swift.abs(seconds) < 1e15 ? String(Int64(seconds)) : String(seconds)
    }
}

// MARK: - Built-in rewards

/// 1 when the completion's final answer equals the row's answer numerically (relative tolerance
/// 1e-6), else 0: a number-only take on TRL's `accuracy_reward`.
///
/// The final answer is the content of the last closed `\boxed{…}` (nested braces allowed), else of the
/// last `<answer>…</answer>`, else the whole completion; its value is the last number in it (see
/// ``lastNumber(in:)``). A box or tag holding no number scores 0, and so does a completion with no
/// number. The answer field may be a number or a string parsed the same way (`"1,234"`, `"\frac{1}{3}"`);
/// null makes the row not applicable (nil).
public struct MathAnswerReward: RewardFunction {
    public let name: String
    /// The row field holding the reference answer.
    public let answerField: String
    public static let relativeTolerance = 1e-6

    public init(answerField: String = "answer", name: String = "math") {
        self.answerField = answerField
        self.name = name
    }

    /// - Throws: ``RewardError/missingField(reward:field:present:)`` when a row has no answer field,
    ///   ``RewardError/invalidField(reward:field:reason:)`` when it holds no number.
    public func rewards(_ inputs: [RewardInput]) throws -> [Double?] {
        try inputs.map { input in
            guard let reference = input.fields[answerField] else {
                throw RewardError.missingField(reward: name, field: answerField, present: input.fields.keys.sorted())
            }
            let expected: Double
            switch reference {
            case .null: return nil
            case .number(let value): expected = value
            case .string(let text):
                guard let value = Self.predictedAnswer(in: text) else {
                    throw RewardError.invalidField(
                        reward: name, field: answerField, reason: "holds no number: '\(text)'")
                }
                expected = value
            default:
                throw RewardError.invalidField(reward: name, field: answerField, reason: "must be a number or a string")
            }
            guard let predicted = Self.predictedAnswer(in: input.completion) else { return 0 }
            return Self.isClose(predicted, expected) ? 1 : 0
        }
    }

    static func isClose(_ a: Double, _ b: Double) -> Bool {
        a == b || Swift.abs(a - b) <= relativeTolerance * Swift.max(Swift.abs(a), Swift.abs(b))
    }

    /// The value of a completion's final answer: the last number of its last `\boxed{}`, else of its last
    /// `<answer>` tag, else of the whole text; nil when that holds no number.
    public static func predictedAnswer(in text: String) -> Double? {
        let answer = lastBoxed(in: text) ?? lastTagged(in: text) ?? text[...]
        return lastNumber(in: normalizedLaTeX(answer))
    }

    /// The content of the last `\boxed{…}` that closes (a truncated one is skipped).
    static func lastBoxed(in text: String) -> Substring? {
        var searchEnd = text.endIndex
        while let found = text.range(of: "\\boxed", options: .backwards, range: text.startIndex..<searchEnd) {
            searchEnd = found.lowerBound
            let open = text[found.upperBound...].firstIndex { $0 != " " } ?? text.endIndex
            guard open < text.endIndex, text[open] == "{", let close = matchingBrace(in: text[open...]) else {
                continue
            }
            return text[text.index(after: open)..<close]
        }
        return nil
    }

    /// The content of the last `<answer>…</answer>` that closes.
    static func lastTagged(in text: String) -> Substring? {
        var searchEnd = text.endIndex
        while let open = text.range(of: "<answer>", options: .backwards, range: text.startIndex..<searchEnd) {
            if let close = text.range(of: "</answer>", range: open.upperBound..<text.endIndex) {
                return text[open.upperBound..<close.lowerBound]
            }
            searchEnd = open.lowerBound
        }
        return nil
    }

    /// The index of the `}` closing the `{` that starts `text`.
    static func matchingBrace(in text: Substring) -> String.Index? {
        var depth = 0
        for index in text.indices {
            if text[index] == "{" { depth += 1 }
            if text[index] == "}" {
                depth -= 1
                if depth == 0 { return index }
            }
        }
        return nil
    }

    /// LaTeX spellings that change how numbers read, in application order.
    static let latexReplacements: [(String, String)] = [
        ("\u{2212}", "-"), ("\\$", "$"), ("\\%", "%"), ("{,}", ","), ("\\,", ""), ("\\!", ""),
        ("\\;", " "), ("\\:", " "), ("\\ ", " "), ("~", " "), ("\\left", ""), ("\\right", ""),
        ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"),
    ]

    /// `text` with LaTeX reduced to plain numbers: thin spaces and `{,}` dropped (`1\,234` → `1234`),
    /// `\frac{a}{b}` → `a/b`, other commands (`\text`, `\mathrm`, `\times`, …) → spaces, and braces,
    /// dollar signs and currency symbols removed.
    static func normalizedLaTeX(_ text: some StringProtocol) -> String {
        var result = String(text)
        for (latex, plain) in latexReplacements where result.contains(latex) {
            result = result.replacingOccurrences(of: latex, with: plain)
        }
        result = expandingFractions(result)
        if result.contains("\\") {
            result = result.replacingOccurrences(of: #"\\[A-Za-z]+"#, with: " ", options: .regularExpression)
        }
        result.removeAll { "{}$€£¥".contains($0) }
        return result
    }

    /// Rewrites each `\frac{a}{b}` (or `\frac12`) as `a/b` when both are plain numbers (the sign moved
    /// in front), else as `(a)/(b)`, which reads as no fraction.
    static func expandingFractions(_ text: String) -> String {
        guard let command = text.range(of: "\\frac") else { return text }
        let before = text[..<command.lowerBound]
        guard let (numerator, rest) = latexArgument(text[command.upperBound...]),
            let (denominator, after) = latexArgument(rest)
        else { return before + " " + expandingFractions(String(text[command.upperBound...])) }
        let (a, b) = (normalizedLaTeX(numerator), normalizedLaTeX(denominator))
        let replacement: String
        if let a = plainNumber(a), let b = plainNumber(b) {
            replacement = (a.negative != b.negative ? "-" : "") + a.digits + "/" + b.digits
        } else {
            replacement = "(\(a))/(\(b))"
        }
        return before + replacement + expandingFractions(String(after))
    }

    /// A command's argument: a braced group, or else one character. Returns it and what follows.
    static func latexArgument(_ text: Substring) -> (Substring, Substring)? {
        guard let start = text.firstIndex(where: { $0 != " " }) else { return nil }
        if text[start] == "{" {
            guard let close = matchingBrace(in: text[start...]) else { return nil }
            return (text[text.index(after: start)..<close], text[text.index(after: close)...])
        }
        guard text[start] != "\\", text[start] != "}" else { return nil }
        let next = text.index(after: start)
        return (text[start..<next], text[next...])
    }

    /// `-12.5` → (true, "12.5"); nil unless the trimmed text is an optionally signed decimal.
    static func plainNumber(_ text: String) -> (negative: Bool, digits: String)? {
        var digits = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "")
        let negative = digits.hasPrefix("-")
        if negative || digits.hasPrefix("+") { digits.removeFirst() }
        let isNumber = digits.contains { $0.isASCII && $0.isNumber }
            && digits.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "." } && digits.filter { $0 == "." }.count <= 1
        return isNumber ? (negative, digits) : nil
    }

    /// The value of the last number in `text` (LaTeX already normalized), nil when there is none.
    ///
    /// A number is digits with an optional decimal part (`.5`, `3.25`; `5.` at the end of a sentence is
    /// 5), optionally with thousands separators in groups of exactly three (`1,234,567`; `1,23` is two
    /// numbers). A `-` right before it is a sign unless a letter, digit or `)` precedes the `-` (`x = -3`
    /// is -3, `10-3` ends with 3). `a/b` (spaces allowed around `/`, b ≠ 0) is one number. Anything
    /// around the digits is ignored (`$12`, `45%`, `3 apples`). No exponents: `1e5` ends with 5.
    public static func lastNumber(in text: String) -> Double? {
        let scalars = Array(text.unicodeScalars)
        func isDigit(_ index: Int) -> Bool { index < scalars.count && ("0"..."9").contains(scalars[index]) }
        func skipSpaces(_ index: Int) -> Int {
            var index = index
            while index < scalars.count, scalars[index] == " " { index += 1 }
            return index
        }
        var last: Double?
        var index = 0
        while index < scalars.count {
            let startsNumber = isDigit(index) || (scalars[index] == "." && isDigit(index + 1) && !isDigit(index - 1))
            guard startsNumber else {
                index += 1
                continue
            }
            let operand = index > 1
                && (scalars[index - 2].properties.isAlphabetic || isDigit(index - 2) || scalars[index - 2] == ")")
            let negative = index > 0 && scalars[index - 1] == "-" && !operand
            var (value, end) = unsignedNumber(scalars, from: index)
            let slash = skipSpaces(end)
            if slash < scalars.count, scalars[slash] == "/", isDigit(skipSpaces(slash + 1)) {
                let (denominator, denominatorEnd) = unsignedNumber(scalars, from: skipSpaces(slash + 1))
                if denominator != 0 {
                    value /= denominator
                    end = denominatorEnd
                }
            }
            last = negative ? -value : value
            index = end
        }
        return last
    }

    /// Reads digits, thousands groups and a decimal part from `start`; returns the value and the end.
    static func unsignedNumber(_ scalars: [Unicode.Scalar], from start: Int) -> (Double, Int) {
        func isDigit(_ index: Int) -> Bool { index < scalars.count && ("0"..."9").contains(scalars[index]) }
        var text = ""
        var index = start
        while isDigit(index) {
            text.unicodeScalars.append(scalars[index])
            index += 1
        }
        if (1...3).contains(text.count) {
            while index + 3 < scalars.count, scalars[index] == ",", isDigit(index + 1), isDigit(index + 2),
                isDigit(index + 3), !isDigit(index + 4)
            {
                text.unicodeScalars.append(contentsOf: scalars[(index + 1)...(index + 3)])
                index += 4
            }
        }
        if index < scalars.count, scalars[index] == ".", isDigit(index + 1) {
            text += "."
            index += 1
            while isDigit(index) {
                text.unicodeScalars.append(scalars[index])
                index += 1
            }
        }
        return (Double(text.isEmpty || text.hasPrefix(".") ? "0" + text : text) ?? 0, index)
    }
}

/// 1 when the completion matches a regular expression, else 0.
///
/// The pattern is the row's `format_regex` field when it has one, else the configured pattern
/// (by default the `<think>…</think><answer>…</answer>` layout of Data/grpo-format.jsonl). A match
/// anywhere counts (Python's `re.search`, no flags): anchor with `^…$` to check the whole completion.
/// Patterns are ICU regular expressions; `.` does not match a newline, so use `[\s\S]` for "anything".
public struct FormatReward: RewardFunction {
    public static let thinkAnswerPattern = #"^\s*<think>[\s\S]*?</think>\s*<answer>[\s\S]*?</answer>\s*$"#
    /// The row field that overrides the pattern.
    public static let patternField = "format_regex"

    public let name: String
    public let pattern: String
    private let regex: NSRegularExpression

    /// - Throws: ``RewardError/invalidRegex(reward:pattern:)`` when `pattern` does not compile.
    public init(pattern: String = FormatReward.thinkAnswerPattern, name: String = "format") throws {
        self.name = name
        self.pattern = pattern
        regex = try Self.compiled(pattern, reward: name)
    }

    /// - Throws: ``RewardError`` when a row's `format_regex` is not a string or does not compile.
    public func rewards(_ inputs: [RewardInput]) throws -> [Double?] {
        var cache = [pattern: regex]
        return try inputs.map { input in
            let rowPattern: String
            switch input.fields[Self.patternField] {
            case nil, .null?: rowPattern = pattern
            case .string(let value)?: rowPattern = value
            default:
                throw RewardError.invalidField(
                    reward: name, field: Self.patternField, reason: "must be a string (a regular expression)")
            }
            let rowRegex = try cache[rowPattern] ?? Self.compiled(rowPattern, reward: name)
            cache[rowPattern] = rowRegex
            let text = input.completion
            return rowRegex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil ? 0 : 1
        }
    }

    static func compiled(_ pattern: String, reward: String) throws -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern)
        } catch {
            throw RewardError.invalidRegex(reward: reward, pattern: pattern)
        }
    }
}

/// DAPO's soft overlong punishment on the completion's token count, as TRL's
/// `trl.rewards.get_soft_overlong_punishment(max_completion_len, soft_punish_cache)` computes it
/// (Yu et al. 2025, arXiv:2503.14476, eq. 13): 0 up to `max − cache` tokens, then linear down to −1 at
/// `max`, and −1 beyond it.
public struct LengthPenalty: RewardFunction {
    public let name: String
    /// L_max: the completion length limit, in tokens.
    public let maxCompletionLength: Int
    /// L_cache: how many tokens before the limit the penalty starts; 0 penalizes only lengths past it.
    public let softPunishCache: Int

    /// - Throws: ``RewardError/invalidParameter(reward:reason:)`` unless 0 ≤ cache ≤ max and max > 0.
    public init(maxCompletionLength: Int, softPunishCache: Int, name: String = "length") throws {
        guard maxCompletionLength > 0, (0...maxCompletionLength).contains(softPunishCache) else {
            throw RewardError.invalidParameter(
                reward: name, reason: "needs a positive maximum length and a soft punishment cache from 0 to it; "
                    + "got \(maxCompletionLength) and \(softPunishCache)")
        }
        self.name = name
        self.maxCompletionLength = maxCompletionLength
        self.softPunishCache = softPunishCache
    }

    public func penalty(tokens: Int) -> Double {
        let start = maxCompletionLength - softPunishCache
        if tokens <= start { return 0 }
        if tokens <= maxCompletionLength { return Double(start - tokens) / Double(softPunishCache) }
        return -1
    }

    public func rewards(_ inputs: [RewardInput]) -> [Double?] { inputs.map { penalty(tokens: $0.completionTokens) } }
}

/// A reward written in Swift.
public struct ClosureReward: RewardFunction {
    public let name: String
    private let body: @Sendable ([RewardInput]) throws -> [Double?]

    public init(name: String, _ body: @escaping @Sendable ([RewardInput]) throws -> [Double?]) {
        self.name = name
        self.body = body
    }

    /// - Throws: what `body` throws, or ``RewardError/wrongCount(reward:expected:got:)``.
    public func rewards(_ inputs: [RewardInput]) throws -> [Double?] {
        let rewards = try body(inputs)
        guard rewards.count == inputs.count else {
            throw RewardError.wrongCount(reward: name, expected: inputs.count, got: rewards.count)
        }
        return rewards
    }
}

// MARK: - Parsing --reward

/// The `--reward` list of the CLI and the recipe's `rewards`.
public enum RewardSpec {
    public static let knownNames = "math, format, length, cmd:PROGRAM ARGS"

    /// The entries of a comma-separated list, trimmed; a blank list has none (an empty entry between
    /// commas stays, for ``parse(_:maxCompletionLength:softPunishCache:timeout:)`` to report).
    public static func split(_ spec: String) -> [String] {
        guard !spec.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
        return spec.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }

    /// Builds the rewards a comma-separated list names, e.g. `"math,format,length,cmd:./my_reward.py --strict"`
    /// (each entry as in the `[String]` form below); a blank list names none.
    public static func parse(
        _ spec: String, maxCompletionLength: Int, softPunishCache: Int? = nil, timeout: TimeInterval = 60
    ) throws -> [any RewardFunction] {
        try parse(
            split(spec), maxCompletionLength: maxCompletionLength, softPunishCache: softPunishCache, timeout: timeout)
    }

    /// Builds the named rewards: `math` (``MathAnswerReward`` on the field `answer`), `format`
    /// (``FormatReward``), `length` (``LengthPenalty``) and `cmd:` + a command line (``CommandReward``,
    /// which this starts). The command line is split on whitespace with no quoting (and, in the
    /// comma-separated form, cannot contain a comma): wrap anything more complex in a script.
    /// - Parameters:
    ///   - maxCompletionLength: `length`'s limit (the run's maximum completion tokens).
    ///   - softPunishCache: `length`'s cache; by default a fifth of the limit (DAPO's 4,096 of 20,480).
    ///   - timeout: the seconds each command may take per batch.
    /// - Throws: ``RewardError/unknownReward(_:)`` naming the known rewards, ``RewardError/invalidSpec(_:)``
    ///   for an empty entry, an empty command or two rewards of one name, and what the rewards' inits throw.
    public static func parse(
        _ entries: [String], maxCompletionLength: Int, softPunishCache: Int? = nil, timeout: TimeInterval = 60
    ) throws -> [any RewardFunction] {
        var rewards: [any RewardFunction] = []
        for entry in entries {
            let entry = entry.trimmingCharacters(in: .whitespaces)
            let reward: any RewardFunction
            switch entry {
            case "": throw RewardError.invalidSpec("an empty entry in '\(entries.joined(separator: ","))'")
            case "math": reward = MathAnswerReward()
            case "format": reward = try FormatReward()
            case "length":
                let cache = softPunishCache ?? maxCompletionLength / 5
                reward = try LengthPenalty(maxCompletionLength: maxCompletionLength, softPunishCache: cache)
            case _ where entry.hasPrefix("cmd:"):
                let command = entry.dropFirst(4).split(whereSeparator: \.isWhitespace).map(String.init)
                guard !command.isEmpty else {
                    throw RewardError.invalidSpec("'cmd:' needs a command line, e.g. 'cmd:./my_reward.py --strict'")
                }
                reward = try CommandReward(command: command, timeout: timeout)
            default: throw RewardError.unknownReward(entry)
            }
            guard !rewards.contains(where: { $0.name == reward.name }) else {
                throw RewardError.invalidSpec(
                    "two rewards are named '\(reward.name)'; their metrics need distinct names")
            }
            rewards.append(reward)
        }
        return rewards
    }
}

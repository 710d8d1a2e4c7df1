import Foundation
import TemperCore
import Testing
@testable import TemperTraining

/// The GRPO reward functions: math answers, format, DAPO's length penalty, closures, external commands
/// (real shell scripts written to a temporary folder) and the `--reward` list.
@Suite("GRPO rewards")
struct GRPORewardsTests {
    static func input(
        _ completion: String, tokens: Int = 8, truncated: Bool = false, fields: [String: JSONValue] = [:]
    ) -> RewardInput {
        RewardInput(prompt: "p", completion: completion, completionTokens: tokens, truncated: truncated, fields: fields)
    }

    /// An executable script in a fresh temporary folder.
    static func script(_ body: String, name: String = "reward.sh", executable: Bool = true) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("temper-rewards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent(name)
        try Data(body.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: file.path)
        return file
    }

    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: Math

    @Test("math: the value of the final answer", arguments: [
        ("The answer is \\boxed{42}.", 42.0),
        ("\\boxed{\\dfrac{3}{4}}", 0.75),
        ("\\boxed{{1{,}234}}", 1234),
        ("first \\boxed{3}, then \\boxed{5}", 5),
        ("\\boxed{7}, which took 9 steps", 7),
        ("\\boxed{5} and a cut-off \\boxed{6", 5),
        ("<think>2 + 2 is 4, times 3</think> <answer>12</answer>", 12),
        ("I have 3 apples and 4 more, so 7 apples.", 7),
        ("The total is $1,234,567.50.", 1_234_567.5),
        ("so x = -15", -15),
        ("x = \u{2212}7", -7),
        ("10-5", 5),
        ("the probability is 3/8", 0.375),
        ("about .5 liters", 0.5),
        ("\\boxed{25\\%}", 25),
        ("\\boxed{12 \\text{ apples}}", 12),
        ("\\boxed{1\\,000}", 1000),
        ("$-\\frac{1}{4}$", -0.25),
        ("\\boxed{\\frac12}", 0.5),
        ("\\boxed{\\$18.00}", 18),
        ("It costs 1,23 dollars", 23),
    ] as [(String, Double)])
    func mathExtraction(text: String, expected: Double) {
        #expect(MathAnswerReward.predictedAnswer(in: text) == expected)
    }

    @Test("math: no number means no answer, even with one outside an empty box")
    func mathWithoutNumber() {
        #expect(MathAnswerReward.predictedAnswer(in: "I don't know.") == nil)
        #expect(MathAnswerReward.predictedAnswer(in: "\\boxed{} holds 42") == nil)
        #expect(MathAnswerReward.predictedAnswer(in: "<answer>none</answer> 42") == nil)
    }

    @Test("math: 1 for a numerically equal answer (relative 1e-6), 0 otherwise, nil for a null answer")
    func mathRewards() throws {
        let inputs = [
            Self.input("\\boxed{1,234}", fields: ["answer": .string("1234")]),
            Self.input("so 3/4 of it", fields: ["answer": .number(0.75)]),
            Self.input("\\boxed{\\frac{1}{3}}", fields: ["answer": .string("0.3333333")]),
            Self.input("\\boxed{0.333}", fields: ["answer": .string("\\frac{1}{3}")]),
            Self.input("no idea", fields: ["answer": .string("5")]),
            Self.input("\\boxed{5}", fields: ["answer": .null]),
        ]
        #expect(try MathAnswerReward().rewards(inputs) == [1, 1, 1, 0, 0, nil])
        let custom = MathAnswerReward(answerField: "solution")
        #expect(try custom.rewards([Self.input("\\boxed{9}", fields: ["solution": .number(9)])]) == [1])
    }

    @Test("math: a row without the answer field, or with no number in it, is an error naming the field")
    func mathFieldErrors() {
        let missing = Self.input("\\boxed{4}", fields: ["tags": .array([]), "format_regex": .string(".")])
        #expect(Self.message { _ = try MathAnswerReward().rewards([missing]) }
            == "reward 'math' needs the field 'answer', which this row lacks (its fields: format_regex, tags)")
        #expect(Self.message { _ = try MathAnswerReward().rewards([Self.input("4")]) }
            == "reward 'math' needs the field 'answer', which this row lacks (it has no other fields)")
        let wordy = Self.input("4", fields: ["answer": .string("four")])
        #expect(Self.message { _ = try MathAnswerReward().rewards([wordy]) }
            == "reward 'math': field 'answer' holds no number: 'four'")
        let list = Self.input("4", fields: ["answer": .array([.number(4)])])
        #expect(Self.message { _ = try MathAnswerReward().rewards([list]) }
            == "reward 'math': field 'answer' must be a number or a string")
    }

    // MARK: Format

    @Test("format: the think/answer layout by default, the row's format_regex when it has one")
    func formatRewards() throws {
        let reward = try FormatReward()
        let completions = [
            "<think>2 + 2</think>\n<answer>4</answer>\n",
            "  <think>multi\nline</think><answer>4</answer>",
            "<answer>4</answer>",
            "<think>2 + 2</think><answer>4</answer> and more",
            "<think>unclosed <answer>4</answer>",
        ]
        #expect(try reward.rewards(completions.map { Self.input($0) }) == [1, 1, 0, 0, 0])
        let digitsOnly: [String: JSONValue] = ["format_regex": .string(#"^\d+$"#)]
        let rows = [
            Self.input("42", fields: digitsOnly),
            Self.input("42 apples", fields: digitsOnly),
            Self.input("<think>a</think><answer>1</answer>", fields: ["format_regex": .null]),
            Self.input("<think>a</think><answer>1</answer>", fields: digitsOnly),
        ]
        #expect(try reward.rewards(rows) == [1, 0, 1, 0])
        #expect(try FormatReward(pattern: "apples").rewards([Self.input("42 apples"), Self.input("42")]) == [1, 0])
    }

    @Test("format: a bad regular expression is an error quoting it")
    func formatErrors() throws {
        #expect(Self.message { _ = try FormatReward(pattern: "(<think>") }
            == "reward 'format': '(<think>' is not a valid regular expression (ICU syntax)")
        let row = Self.input("x", fields: ["format_regex": .string("[a-")])
        #expect(Self.message { _ = try FormatReward().rewards([row]) }
            == "reward 'format': '[a-' is not a valid regular expression (ICU syntax)")
        let number = Self.input("x", fields: ["format_regex": .number(1)])
        #expect(Self.message { _ = try FormatReward().rewards([number]) }
            == "reward 'format': field 'format_regex' must be a string (a regular expression)")
    }

    // MARK: Length

    /// TRL's docstring example (max 100, cache 20: 90 tokens → −0.5) and the formula around it:
    /// 0 up to 80, (80 − n) / 20 in (80, 100], −1 beyond.
    @Test("length: DAPO's soft overlong punishment as TRL computes it")
    func lengthPenalty() throws {
        let reward = try LengthPenalty(maxCompletionLength: 100, softPunishCache: 20)
        let lengths = [1, 80, 81, 90, 99, 100, 101, 500]
        #expect(reward.rewards(lengths.map { Self.input("", tokens: $0) }) == [0, 0, -0.05, -0.5, -0.95, -1, -1, -1])
        let hard = try LengthPenalty(maxCompletionLength: 100, softPunishCache: 0)
        #expect(hard.rewards([Self.input("", tokens: 100), Self.input("", tokens: 101)]) == [0, -1])
        #expect(Self.message { _ = try LengthPenalty(maxCompletionLength: 100, softPunishCache: 101) }
            == "reward 'length': needs a positive maximum length and a soft punishment cache from 0 to it; got 100 and 101")
    }

    // MARK: Closures and --reward

    @Test("closure: its rewards, and an error when it returns the wrong count")
    func closureReward() throws {
        let byLength = ClosureReward(name: "chars") { inputs in inputs.map { Double($0.completion.count) } }
        #expect(byLength.name == "chars")
        #expect(try byLength.rewards([Self.input("ab"), Self.input("")]) == [2, 0])
        let broken = ClosureReward(name: "broken") { _ in [1] }
        #expect(Self.message { _ = try broken.rewards([Self.input("a"), Self.input("b")]) }
            == "reward 'broken' returned 1 rewards for 2 completions; it must return one per completion")
    }

    @Test("--reward: built-ins with their defaults, and errors for unknown, empty and duplicate entries")
    func rewardSpec() throws {
        let rewards = try RewardSpec.parse("math, format ,length", maxCompletionLength: 200)
        #expect(rewards.map(\.name) == ["math", "format", "length"])
        let length = try #require(rewards[2] as? LengthPenalty)
        #expect((length.maxCompletionLength, length.softPunishCache) == (200, 40))
        let custom = try RewardSpec.parse(["length", " math"], maxCompletionLength: 200, softPunishCache: 10)
        #expect(custom.map(\.name) == ["length", "math"])
        #expect((custom[0] as? LengthPenalty)?.softPunishCache == 10)
        #expect(try RewardSpec.parse(" ", maxCompletionLength: 200).isEmpty)
        #expect(RewardSpec.split(" math, cmd:./score.py --strict ,,") == ["math", "cmd:./score.py --strict", "", ""])
        #expect(RewardSpec.split("  ") == [])

        #expect(Self.message { _ = try RewardSpec.parse("math,accuracy", maxCompletionLength: 10) }
            == "unknown reward 'accuracy'; known rewards: math, format, length, cmd:PROGRAM ARGS")
        #expect(Self.message { _ = try RewardSpec.parse("math,,format", maxCompletionLength: 10) }
            == "invalid reward list: an empty entry in 'math,,format'")
        #expect(Self.message { _ = try RewardSpec.parse("math,math", maxCompletionLength: 10) }
            == "invalid reward list: two rewards are named 'math'; their metrics need distinct names")
        #expect(Self.message { _ = try RewardSpec.parse("cmd: ", maxCompletionLength: 10) }
            == "invalid reward list: 'cmd:' needs a command line, e.g. 'cmd:./my_reward.py --strict'")
    }

    @Test("--reward: cmd: starts the command, split on spaces, named after its file")
    func rewardSpecCommand() throws {
        let script = try Self.script("#!/bin/sh\nwhile IFS= read -r line; do echo \"$1\"; done\n", name: "my_reward.sh")
        let rewards = try RewardSpec.parse("math,cmd:\(script.path)  0.25", maxCompletionLength: 10)
        #expect(rewards.map(\.name) == ["math", "my_reward"])
        #expect(try rewards[1].rewards([Self.input("a"), Self.input("b")]) == [0.25, 0.25])
        #expect(CommandReward.defaultName(["python3", "-u", "/tmp/score.py", "--strict"]) == "score")
        #expect(CommandReward.defaultName(["/usr/local/bin/grader"]) == "grader")
    }

    // MARK: External commands

    /// Answers from the completion: 1 for "yes…", null for "skip…", {"reward": 0.5} for "half…", else 0;
    /// appends every line it reads to the file named by its argument.
    static let answering = """
        #!/bin/sh
        while IFS= read -r line; do
          printf '%s\\n' "$line" >> "$1"
          case "$line" in
            *'"completion":"yes'*) echo 1 ;;
            *'"completion":"skip'*) echo null ;;
            *'"completion":"half'*) echo '{"reward": 0.5}' ;;
            *) echo 0 ;;
          esac
        done

        """

    @Test("command: one JSON line per input in, one reward per line out, over several batches")
    func commandRewards() throws {
        let script = try Self.script(Self.answering)
        let log = script.deletingLastPathComponent().appendingPathComponent("seen.jsonl")
        let reward = try CommandReward(command: [script.path, log.path])
        defer { reward.close() }
        #expect(reward.name == "reward")
        let first = [
            RewardInput(prompt: "What is 2+2?", completion: "yes, 4", completionTokens: 3, truncated: false,
                        fields: ["answer": .string("4"), "tags": .array([.string("think")])]),
            Self.input("no"), Self.input("skip this"), Self.input("half right\nsecond line", tokens: 64, truncated: true),
        ]
        #expect(try reward.rewards(first) == [1, 0, nil, 0.5])
        #expect(try reward.rewards([Self.input("yes: 3/4 of €8 🙂"), Self.input("nope")]) == [1, 0])
        #expect(try reward.rewards([]) == [])
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines[4] == #"{"completion":"yes: 3/4 of €8 🙂","completion_tokens":8,"prompt":"p","truncated":false}"#)
        #expect(lines.first == #"{"answer":"4","completion":"yes, 4","completion_tokens":3,"prompt":"What is 2+2?","tags":["think"],"truncated":false}"#)
        #expect(lines[3] == #"{"completion":"half right\nsecond line","completion_tokens":64,"prompt":"p","truncated":true}"#)
    }

    @Test("command: one long-lived child; close() stops it and the next batch starts a fresh one")
    func commandLifetime() throws {
        let counter = try Self.script("#!/bin/sh\nn=0\nwhile IFS= read -r line; do n=$((n+1)); echo $n; done\n")
        let reward = try CommandReward(command: [counter.path], name: "count")
        #expect(try reward.rewards([Self.input("a"), Self.input("b")]) == [1, 2])
        #expect(try reward.rewards([Self.input("c")]) == [3])
        reward.close()
        #expect(try reward.rewards([Self.input("d")]) == [1])
        reward.close()
    }

    @Test("command: a flood of stderr and a batch larger than the pipes do not deadlock")
    func commandLargeTraffic() throws {
        let noisy = try Self.script("""
            #!/bin/sh
            head -c 1000000 /dev/zero | tr '\\0' x >&2
            while IFS= read -r line; do echo 1; echo "scored one" >&2; done

            """)
        let reward = try CommandReward(command: [noisy.path], timeout: 60)
        defer { reward.close() }
        let long = String(repeating: "step by step ", count: 150)
        let rewards = try reward.rewards((0..<300).map { Self.input(long + "\($0)") })
        #expect(rewards.count == 300 && rewards.allSatisfy { $0 == 1 })
    }

    @Test("command: a timeout names the command and the limit, and stops the child")
    func commandTimeout() throws {
        let slow = try Self.script("#!/bin/sh\nread -r line\nexec sleep 30\n")
        let reward = try CommandReward(command: [slow.path], timeout: 0.5)
        let start = ContinuousClock.now
        #expect(Self.message { _ = try reward.rewards([Self.input("a"), Self.input("b")]) }
            == "reward command '\(slow.path)' timed out after 0.5 s with 0 of 2 inputs answered "
            + "(it must print one line per input line and flush its output)")
        #expect(ContinuousClock.now - start < .seconds(5))
        reward.close()
    }

    @Test("command: a line that is not a reward is quoted with its number")
    func commandMalformedOutput() throws {
        let chatty = try Self.script("#!/bin/sh\nwhile IFS= read -r line; do echo 1; echo 'hello world'; done\n")
        let reward = try CommandReward(command: [chatty.path])
        defer { reward.close() }
        #expect(Self.message { _ = try reward.rewards([Self.input("a"), Self.input("b")]) }
            == "reward command '\(chatty.path)': output line 2 of this batch is not a number, null or "
            + "{\"reward\": number|null}: 'hello world' (write logs to stderr)")
        let boolean = try Self.script("#!/bin/sh\nwhile IFS= read -r line; do echo true; done\n")
        let strict = try CommandReward(command: [boolean.path])
        defer { strict.close() }
        #expect(Self.message { _ = try strict.rewards([Self.input("a")]) }
            == "reward command '\(boolean.path)': output line 1 of this batch is not a number, null or "
            + "{\"reward\": number|null}: 'true' (write logs to stderr)")
        // Two lines in one write, so they arrive together: the second answers nothing.
        let extra = try Self.script("#!/bin/sh\nwhile IFS= read -r line; do printf '1\\n2\\n'; done\n")
        let verbose = try CommandReward(command: [extra.path])
        defer { verbose.close() }
        #expect(Self.message { _ = try verbose.rewards([Self.input("a")]) }
            == "reward command '\(extra.path)' printed more lines than the 1 inputs it was sent: '2'")
    }

    @Test("command: an early exit reports the status and the last lines of stderr")
    func commandEarlyExit() throws {
        let failing = try Self.script("""
            #!/bin/sh
            read -r line
            echo "loading the grader" >&2
            echo "grader.json: no such file" >&2
            exit 3

            """)
        let reward = try CommandReward(command: [failing.path])
        defer { reward.close() }
        let expected = "reward command '\(failing.path)' exited with status 3 after answering 0 of 2 inputs; "
            + "the last lines of its stderr:\n  loading the grader\n  grader.json: no such file"
        #expect(Self.message { _ = try reward.rewards([Self.input("a"), Self.input("b")]) } == expected)
        // The next batch starts it again, and it fails the same way.
        #expect(Self.message { _ = try reward.rewards([Self.input("a"), Self.input("b")]) } == expected)

        let once = try Self.script("#!/bin/sh\nread -r line\necho 1\n")
        let short = try CommandReward(command: [once.path])
        defer { short.close() }
        #expect(try short.rewards([Self.input("a")]) == [1])
        #expect(Self.message { _ = try short.rewards([Self.input("b")]) }
            == "reward command '\(once.path)' exited with status 0 after answering 0 of 1 inputs; its stderr was empty")
    }

    /// Without SIGPIPE blocked around the writes, this would end the test process.
    @Test("command: a child that exits without reading a large batch is an error, not a SIGPIPE")
    func commandExitBeforeReading() throws {
        // It closes its stdin at once but its stdout only later, so the writes meet a closed pipe.
        let quitter = try Self.script("#!/bin/sh\nexec 0<&-\nsleep 0.3\nexit 4\n")
        let reward = try CommandReward(command: [quitter.path])
        defer { reward.close() }
        let long = String(repeating: "x", count: 4000)
        #expect(Self.message { _ = try reward.rewards((0..<100).map { Self.input(long + "\($0)") }) }
            == "reward command '\(quitter.path)' exited with status 4 after answering 0 of 100 inputs; its stderr was empty")
    }

    @Test("command: deinit stops a child that ignores the end of its input")
    func commandDeinit() throws {
        let stubborn = try Self.script("#!/bin/sh\necho $$ > \"$1\"\nexec sleep 30\n")
        let pidFile = stubborn.deletingLastPathComponent().appendingPathComponent("pid")
        var reward: CommandReward? = try CommandReward(command: [stubborn.path, pidFile.path])
        var pid: Int32?
        for _ in 0..<200 where pid == nil {
            pid = (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if pid == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        let child = try #require(pid)
        #expect(kill(child, 0) == 0)
        reward = nil
        #expect(reward == nil)
        #expect(kill(child, 0) == -1)
    }

    @Test("command: what cannot start says why")
    func commandCannotStart() throws {
        #expect(Self.message { _ = try CommandReward(command: ["/nonexistent/grade.py"]) }
            == "reward command '/nonexistent/grade.py' cannot start: no such file /nonexistent/grade.py")
        let plain = try Self.script("print(1)\n", name: "grade.py", executable: false)
        #expect(Self.message { _ = try CommandReward(command: [plain.path, "--fast"]) }
            == "reward command '\(plain.path) --fast' cannot start: \(plain.path) is not an executable file "
            + "(chmod +x it, or run it through its interpreter)")
        let bare = try Self.script("print(1)\n", name: "bare.py")
        #expect(Self.message { _ = try CommandReward(command: [bare.path]) }
            == "reward command '\(bare.path)' cannot start: \(bare.path): Exec format error "
            + "(a script needs a #! line, or run it through its interpreter)")
        #expect(Self.message { _ = try CommandReward(command: ["temper-no-such-grader"]) }
            == "reward command 'temper-no-such-grader' cannot start: no program 'temper-no-such-grader' on PATH")
    }

    static let hasPython = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/python3") }

    /// The usual user script: no explicit flush (the child runs with PYTHONUNBUFFERED=1).
    @Test("command: a Python script found on PATH, answering {\"reward\": …}", .enabled(if: hasPython))
    func pythonCommand() throws {
        let script = try Self.script("""
            import json, sys
            for line in sys.stdin:
                row = json.loads(line)
                print(json.dumps({"reward": float(row["completion"].strip() == row["answer"])}))

            """, name: "exact_match.py", executable: false)
        let reward = try CommandReward(command: ["python3", script.path])
        defer { reward.close() }
        #expect(reward.name == "exact_match")
        let inputs = [Self.input(" 42", fields: ["answer": .string("42")]), Self.input("41", fields: ["answer": .string("42")])]
        #expect(try reward.rewards(inputs) == [1, 0])
    }
}

import Foundation
import TemperTestSupport
import Testing

@testable import TemperTokenizers

/// Real chat templates (llama.cpp's collection, the Qwen3 tokenizer_config, SmolLM2's GGUF template)
/// rendered over a fixed set of conversations, against transformers' `render_jinja_template` output
/// (Tests/Fixtures/chat-templates/expected.json, from Tools/fixtures/generate_chat_template_fixtures.py).
@Suite("Chat templates against transformers")
struct ChatTemplateFixtureTests {
    struct Case {
        var conversation: String
        var addGenerationPrompt: Bool
        var kwargs: [String: JinjaValue]
        /// nil when Python raised.
        var expected: String?
        var errorType: String?
        var errorMessage: String?
    }

    struct TemplateFixture {
        var name: String
        var source: String
        var sha256: String
        var specialTokens: [String: String]
        var cases: [Case]
    }

    struct Fixtures {
        var conversations: [String: (messages: [JinjaValue], usesTools: Bool)]
        var tools: [JinjaValue]
        var templates: [TemplateFixture]
    }

    static let directory = TestPaths.fixtures.appendingPathComponent("chat-templates")

    /// The pinned clock of the reference script (datetime(2024, 7, 26, 9, 30)).
    static let fixedDate: Date = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: 2024, month: 7, day: 26, hour: 9, minute: 30))!
    }()

    static let fixtures: Fixtures = try! loadFixtures()

    static func loadFixtures() throws -> Fixtures {
        let root = try JinjaValue.parseJSON(Data(contentsOf: directory.appendingPathComponent("expected.json")))
        guard case .object(let top) = root, case .object(let conversationsObject)? = top["conversations"],
            case .array(let tools)? = top["tools"], case .object(let templatesObject)? = top["templates"]
        else { throw JinjaError(.value, "malformed expected.json") }
        var conversations: [String: (messages: [JinjaValue], usesTools: Bool)] = [:]
        for (name, value) in conversationsObject.pairs {
            guard case .object(let conversation) = value, case .array(let messages)? = conversation["messages"] else {
                continue
            }
            conversations[name] = (messages, conversation["tools"] == .bool(true))
        }
        var templates: [TemplateFixture] = []
        for (name, value) in templatesObject.pairs {
            guard case .object(let entry) = value, case .string(let source)? = entry["source"],
                case .string(let sha)? = entry["sha256"], case .object(let tokens)? = entry["special_tokens"],
                case .array(let rawCases)? = entry["cases"]
            else { throw JinjaError(.value, "malformed template entry \(name)") }
            var cases: [Case] = []
            var outputs: [String?] = []
            for raw in rawCases {
                guard case .object(let c) = raw, case .string(let conversation)? = c["conversation"],
                    case .bool(let agp)? = c["add_generation_prompt"]
                else { throw JinjaError(.value, "malformed case in \(name)") }
                var kwargs: [String: JinjaValue] = [:]
                if case .object(let k)? = c["kwargs"] { for (key, v) in k.pairs { kwargs[key] = v } }
                var expected: String? = nil
                if case .string(let output)? = c["output"] {
                    expected = output
                } else if case .string(let suffix)? = c["output_suffix"], case .int(let base)? = c["base"],
                    case .int(let keep)? = c["keep"], let baseOutput = outputs[base]
                {
                    // `keep` counts Unicode code points, as Python does.
                    expected = String(String.UnicodeScalarView(baseOutput.unicodeScalars.prefix(keep))) + suffix
                }
                outputs.append(expected)
                var errorType: String? = nil
                var errorMessage: String? = nil
                if case .string(let t)? = c["error_type"] { errorType = t }
                if case .string(let m)? = c["error"] { errorMessage = m }
                cases.append(
                    Case(
                        conversation: conversation, addGenerationPrompt: agp, kwargs: kwargs, expected: expected,
                        errorType: errorType, errorMessage: errorMessage))
            }
            var specialTokens: [String: String] = [:]
            for (key, v) in tokens.pairs { if case .string(let s) = v { specialTokens[key] = s } }
            templates.append(
                TemplateFixture(name: name, source: source, sha256: sha, specialTokens: specialTokens, cases: cases))
        }
        return Fixtures(conversations: conversations, tools: tools, templates: templates)
    }

    static func templateText(_ fixture: TemplateFixture) throws -> String {
        if fixture.source.hasPrefix("fixture:") {
            let file = directory.appendingPathComponent(String(fixture.source.dropFirst("fixture:".count)))
            return try String(contentsOf: file, encoding: .utf8)
        }
        let url = TestPaths.assets.appendingPathComponent(fixture.source)
        if fixture.source.hasSuffix(".json") {
            guard case .object(let config) = try JinjaValue.parseJSON(Data(contentsOf: url)),
                case .string(let template)? = config["chat_template"]
            else { throw JinjaError(.value, "no chat_template in \(fixture.source)") }
            return template
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Renders every case of one template; returns a description of each mismatch (empty: all match).
    /// `notes` collects errors raised on both sides whose messages differ where the message is not
    /// part of the contract (TypeError wording and the like).
    static func mismatches(_ fixture: TemplateFixture, limit: Int = 3) throws -> [String] {
        var notes: [String] = []
        return try mismatches(fixture, limit: limit, notes: &notes)
    }

    static func mismatches(_ fixture: TemplateFixture, limit: Int = 3, notes: inout [String]) throws -> [String] {
        let text = try templateText(fixture)
        #expect(SHA256.hex(Array(text.utf8)) == fixture.sha256, "\(fixture.name): template differs from the fixture's")
        var template: ChatTemplate
        do {
            template = try ChatTemplate(text)
        } catch {
            return ["parse: \(error)"]
        }
        template.currentDate = fixedDate
        template.timeZone = TimeZone(identifier: "UTC")!
        var problems: [String] = []
        for c in fixture.cases {
            let conversation = fixtures.conversations[c.conversation]!
            let label = "\(c.conversation) agp=\(c.addGenerationPrompt)\(c.kwargs.isEmpty ? "" : " \(c.kwargs)")"
            do {
                let output = try template.render(
                    messages: conversation.messages, addGenerationPrompt: c.addGenerationPrompt,
                    tools: conversation.usesTools ? fixtures.tools : nil, bosToken: fixture.specialTokens["bos_token"],
                    eosToken: fixture.specialTokens["eos_token"],
                    extraContext: c.kwargs.merging(
                        fixture.specialTokens.filter { !["bos_token", "eos_token"].contains($0.key) }.mapValues {
                            JinjaValue.string($0)
                        }, uniquingKeysWith: { a, _ in a }))
                if let expected = c.expected {
                    if output != expected { problems.append("\(label): \(firstDifference(output, expected))") }
                } else {
                    problems.append("\(label): rendered, but Python raised \(c.errorType ?? "")")
                }
            } catch let error as JinjaError {
                if c.expected != nil {
                    problems.append("\(label): raised \(error) but Python rendered")
                } else if error.kind.rawValue != c.errorType || error.message != c.errorMessage {
                    // Python's message is part of the contract for raise_exception and UndefinedError.
                    let difference =
                        "\(label): raised \(error.kind.rawValue): \(error.message); Python \(c.errorType ?? ""): \(c.errorMessage ?? "")"
                    if ["TemplateError", "UndefinedError"].contains(c.errorType ?? "") {
                        problems.append(difference)
                    } else {
                        notes.append("\(fixture.name): \(difference)")
                    }
                }
            }
            if problems.count >= limit { break }
        }
        return problems
    }

    static func firstDifference(_ got: String, _ want: String) -> String {
        let a = Array(got.unicodeScalars)
        let b = Array(want.unicodeScalars)
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        func excerpt(_ s: [Unicode.Scalar]) -> String {
            let start = max(0, i - 40)
            return String(String.UnicodeScalarView(s[start..<min(s.count, i + 40)])).debugDescription
        }
        return "differs at \(i): got \(excerpt(a)) want \(excerpt(b))"
    }

    static func fixture(_ name: String) -> TemplateFixture {
        fixtures.templates.first { $0.name == name }!
    }

    @Test(
        "key templates render byte-identically",
        arguments: [
            "Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen-Qwen3-0.6B.jinja", "qwen3-tokenizer/tokenizer_config.json",
            "SmolLM2-135M-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
            "meta-llama-Llama-3.2-3B-Instruct.jinja", "meta-llama-Llama-3.3-70B-Instruct.jinja",
        ])
    func keyTemplate(_ name: String) throws {
        let fixture = Self.fixture(name)
        #expect(fixture.cases.count >= 18)
        let problems = try Self.mismatches(fixture, limit: 100)
        #expect(problems.isEmpty, "\(name):\n\(problems.joined(separator: "\n"))")
    }

    /// The number of templates of the collection whose every case matches; raise it as the
    /// interpreter grows, never lower it.
    static let minimumMatchingTemplates = 72

    @Test("the whole collection")
    func collection() throws {
        var matching = 0
        var report: [String] = []
        var notes: [String] = []
        for fixture in Self.fixtures.templates {
            let problems = try Self.mismatches(fixture, notes: &notes)
            if problems.isEmpty {
                matching += 1
            } else {
                report.append("\(fixture.name): \(problems.first!)")
            }
        }
        print("chat templates rendering byte-identically: \(matching)/\(Self.fixtures.templates.count)")
        for line in report { print("  FAIL \(line)") }
        for line in notes { print("  note: error message differs: \(line)") }
        #expect(matching >= Self.minimumMatchingTemplates, "\(report.joined(separator: "\n"))")
    }
}

/// FIPS 180-4 SHA-256 (Foundation on Linux has no CryptoKit), to tie the fixture to the asset.
enum SHA256 {
    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [
            0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
        ]
        var data = message
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        let bitLength = UInt64(message.count) * 8
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                w[i] = (0..<4).reduce(0) { $0 << 8 | UInt32(data[chunk + i * 4 + $1]) }
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let choice = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ choice &+ k[i] &+ w[i]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let majority = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ majority
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h = zip(h, [a, b, c, d, e, f, g, hh]).map { $0 &+ $1 }
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}

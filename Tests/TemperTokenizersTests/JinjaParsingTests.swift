import Foundation
import Testing

@testable import TemperTokenizers

@Suite("Jinja parsing, errors and values")
struct JinjaParsingTests {
    func parseError(_ source: String) -> JinjaError? {
        do {
            _ = try ChatTemplate(source)
            return nil
        } catch let error as JinjaError {
            return error
        } catch {
            return nil
        }
    }

    @Test("syntax errors name the line and column")
    func syntaxErrors() throws {
        let unclosed = try #require(parseError("line one\n{% if x %}\nbody"))
        #expect(unclosed.kind == .syntax)
        #expect(unclosed.message.contains("'endif'"))

        let badToken = try #require(parseError("a\nb\n  {{ 1 + }}"))
        #expect(badToken.kind == .syntax)
        #expect(badToken.line == 3)
        #expect(badToken.column == 10)
        #expect(badToken.description == "TemplateSyntaxError at line 3, column 10: unexpected 'end of print statement'")

        let unknownTag = try #require(parseError("{% frobnicate %}"))
        #expect(unknownTag.message == "Encountered unknown tag 'frobnicate'.")
        #expect(unknownTag.line == 1 && unknownTag.column == 4)

        let comment = try #require(parseError("ok\n{# never closed"))
        #expect(comment.message == "Missing end of comment tag" && comment.line == 2)

        let unbalanced = try #require(parseError("{{ (1 + 2]] }}"))
        #expect(unbalanced.message == "unexpected ']', expected ')'")
    }

    @Test("unsupported constructs are errors that name them")
    func unsupported() throws {
        let include = try #require(parseError("a\nb\n{% include 'other.jinja' %}"))
        #expect(include.kind == .unsupported)
        #expect(include.description == "unsupported Jinja construct 'include' at line 3")
        #expect(parseError("{% extends 'base' %}")?.description == "unsupported Jinja construct 'extends' at line 1")
        #expect(parseError("{% raw %}x{% endraw %}")?.kind == .unsupported)
        #expect(parseError("{% for x in y recursive %}{% endfor %}")?.kind == .unsupported)
        #expect(parseError("{{ x | urlize }}")?.description == "unsupported Jinja construct 'filter 'urlize'' at line 1")
        // A filter jinja2 does not know either fails at parse time outside `if`, as jinja2 does.
        #expect(parseError("{{ x | from_json }}")?.message == "No filter named 'from_json'.")
        #expect(parseError("{% if x %}{{ x | from_json }}{% endif %}") == nil)

        // Constructs met only while rendering name their line too.
        let format = try ChatTemplate("a\n{{ '{:>4}'.format(1) }}")
        do {
            _ = try format.render(context: [:])
            Issue.record("expected an unsupported-construct error")
        } catch let error as JinjaError {
            #expect(error.kind == .unsupported)
            #expect(error.description == "unsupported Jinja construct 'str.format field '{:>4}'' at line 2")
        }
    }

    @Test("raise_exception carries the template's message")
    func raiseException() throws {
        let template = try ChatTemplate(
            "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('Bad role: ' + m.role) }}{% endif %}{% endfor %}")
        do {
            _ = try template.render(messages: [["role": "robot", "content": "x"]], addGenerationPrompt: false)
            Issue.record("expected raise_exception to throw")
        } catch let error as JinjaError {
            #expect(error.kind == .raised)
            #expect(error.message == "Bad role: robot")
            #expect(error.line == 1)
        }
    }

    @Test("JSON parsing keeps key order and number kinds")
    func orderedJSON() throws {
        let value = try JinjaValue.parseJSON(#"{"z": 1, "a": [1.0, 2e3, -3, true, null, "\u00e9\ud83c\udf89\n"], "m": {}}"#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.keys == ["z", "a", "m"])
        #expect(object["a"] == .array([.double(1), .double(2000), .int(-3), .bool(true), .none, .string("é🎉\n")]))
        #expect(object["m"] == .object(JinjaObject()))
        #expect(throws: JinjaError.self) { try JinjaValue.parseJSON("{\"a\": 1,}") }
        #expect(throws: JinjaError.self) { try JinjaValue.parseJSON("[1] x") }

        let template = try ChatTemplate("{{ v | tojson }}|{% for k, x in v.items() %}{{ k }}{% endfor %}")
        #expect(try template.render(context: ["v": value]) == #"{"z": 1, "a": [1.0, 2000.0, -3, true, null, "é🎉\n"], "m": {}}|zam"#)
    }

    @Test("JSONSerialization output converts (keys sorted, booleans kept apart from numbers)")
    func jsonObject() throws {
        let object = try JSONSerialization.jsonObject(with: Data(#"{"b": true, "a": [1, 2.5, null, "s"]}"#.utf8))
        let value = JinjaValue(jsonObject: object)
        #expect(value == ["a": [1, 2.5, nil, "s"], "b": true])
        guard case .object(let converted) = value else { Issue.record("not an object"); return }
        #expect(converted.keys == ["a", "b"])
    }

    @Test("messages are normalized as transformers does")
    func messageNormalization() throws {
        let template = try ChatTemplate(
            "{% for m in messages %}{{ m | tojson }}\n{% endfor %}{{ tools }} {{ documents }} {{ add_generation_prompt }} {{ bos_token }}{{ eos_token }}{{ flag }}")
        let output = try template.render(
            messages: [
                ["role": "assistant", "content": "hi", "tool_calls": nil, "reasoning_content": "think"],
                ["role": "user", "content": "x", "reasoning": "r"],
            ],
            addGenerationPrompt: true, bosToken: "<s>", extraContext: ["flag": false])
        #expect(
            output == """
                {"thinking": "think", "role": "assistant", "content": "hi", "reasoning_content": "think"}
                {"thinking": "r", "role": "user", "content": "x", "reasoning": "r", "reasoning_content": "r"}
                None None True <s>False
                """)
    }

    @Test("Python float repr")
    func floatRepr() {
        let cases: [(Double, String)] = [
            (1, "1.0"), (0.1, "0.1"), (1e16, "1e+16"), (1234567890123456, "1234567890123456.0"), (1e-4, "0.0001"),
            (1e-5, "1e-05"), (-2.5e-7, "-2.5e-07"), (123.456, "123.456"), (1.5e300, "1.5e+300"), (-0.0, "-0.0"),
            (.infinity, "inf"), (5e-324, "5e-324"), (0.30000000000000004, "0.30000000000000004"),
        ]
        for (value, expected) in cases { #expect(pyFloatRepr(value) == expected) }
    }

    @Test("Python string repr")
    func stringRepr() {
        #expect(pyRepr("it's") == #""it's""#)
        #expect(pyRepr("a'b\"c") == #"'a\'b"c'"#)
        #expect(pyRepr("tab\there\u{01}é\u{200B}") == #"'tab\there\x01é\u200b'"#)
    }
}

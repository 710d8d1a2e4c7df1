import Foundation
import Testing

@testable import TemperTokenizers

/// Interpreter behaviour, one construct at a time. Every expected string and error message below is
/// what jinja2 3.1.6 in transformers 5.24's environment (trim_blocks, lstrip_blocks, sandbox,
/// transformers' tojson/raise_exception/strftime_now) produced for the same template and context.
@Suite("Jinja interpreter")
struct JinjaInterpreterTests {
    static func render(_ source: String, _ contextJSON: String? = nil) throws -> String {
        var template = try ChatTemplate(source)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        template.currentDate = calendar.date(from: DateComponents(year: 2024, month: 7, day: 26, hour: 9, minute: 30))
        template.timeZone = TimeZone(identifier: "UTC")!
        var context: [String: JinjaValue] = [:]
        if let contextJSON, case .object(let object) = try JinjaValue.parseJSON(contextJSON) {
            for (key, value) in object.pairs { context[key] = value }
        }
        return try template.render(context: context)
    }

    static let renderings: [(String, String, String?, String)] = [
        ("lstrip and trim blocks", "  {% if true %}\n  x\n  {% endif %}\ny", nil, "  x\ny"),
        ("minus markers", "a  {%- if true -%}  b  {%- endif -%}  c {{- ' d ' -}} e", nil, "abc d e"),
        ("comments", "a {# c #}\n  {#- c -#}  b\n{# trimmed #}\nc", nil, "a b\nc"),
        ("plus marker keeps space", "  {%+ if true %}x{% endif +%}\ny", nil, "  x\ny"),
        ("loop variables", "{% for i in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}", nil, "103TrueFalse3b|212FalseFalse3ac|321FalseTrue3b|"),
        ("loop filter and else", "{% for i in [1,2,3] if i != 2 %}{{ i }}/{{ loop.length }} {% else %}none{% endfor %}{% for i in [] %}{% else %}empty{% endfor %}", nil, "1/2 3/2 empty"),
        ("tuple unpacking", "{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}", nil, "b=1;a=2;"),
        ("loop scoping", "{% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}", nil, "1110"),
        ("namespace and break", "{% set ns = namespace(total=0) %}{% for i in range(10) %}{% if i == 4 %}{% break %}{% endif %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}", nil, "6"),
        ("continue", "{% for i in range(6) %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}", nil, "024"),
        ("macro defaults", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet() }}", nil, "Hello, Ann! Hi, Bob! Hello, !"),
        ("macro sees top level", "{% macro m() %}{{ y }}{% endmacro %}{% set y = 5 %}{% for i in [1] %}{% set y = 7 %}{{ m() }}{{ y }}{% endfor %}", nil, "57"),
        ("block set", "{% set x %}  block {{ 1 + 1 }}  {% endset %}[{{ x }}]{% set y | trim | upper %}  t  {% endset %}[{{ y }}]", nil, "[  block 2  ][T]"),
        ("filter block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}", nil, "ABC D"),
        ("tojson", "{{ {'b': [1, 2.5, none, true], 'a': 'é\"\\n\\u0001'} | tojson }}|{{ {'a': [1, {'b': 2}, [], {}]} | tojson(indent=2) }}|{{ [1,2] | tojson(separators=(',', ':')) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ {'z': 1, 'a': 2} | tojson(sort_keys=true) }}", nil, "{\"b\": [1, 2.5, null, true], \"a\": \"é\\\"\\n\\u0001\"}|{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    },\n    [],\n    {}\n  ]\n}|[1,2]|\"\\u00e9\"|{\"a\": 2, \"z\": 1}"),
        ("python repr", "{{ [1, 'a', none, true, 1.5, {'k': \"v's\"}] }}|{{ ('a',) }}|{{ 1e16 }}|{{ 1e-5 }}|{{ 0.1 + 0.2 }}|{{ 1/3 }}|{{ 2.0 }}|{{ none }}|{{ false }}|{{ 'it\\'s' }}|{{ ['a\\nb'] }}", nil, "[1, 'a', None, True, 1.5, {'k': \"v's\"}]|('a',)|1e+16|1e-05|0.30000000000000004|0.3333333333333333|2.0|None|False|it's|['a\\nb']"),
        ("slicing", "{{ 'hello'[::-1] }}|{{ [1,2,3,4,5][1:-1] }}|{{ [1,2,3,4,5][::2] }}|{{ 'abc'[-1] }}|{{ [1,2,3][5:] }}|{{ 'héllo'[1:3] }}", nil, "olleh|[2, 3, 4]|[1, 3, 5]|c|[]|él"),
        ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 'ab' * 2 }} {{ 1 ~ 'x' ~ none }} {{ 1 + 2 * 3 - -1 }} {{ 3 > 2 > 1 }} {{ 'b' in 'abc' }} {{ 2 not in [1, 3] }}", nil, "3 -4 2 1024 3.5 abab 1xNone 8 True True True"),
        ("tests", "{{ none is none }}{{ 1 is number }}{{ true is number }}{{ true is integer }}{{ 1.0 is float }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'x' is sequence }}{{ 9 is divisibleby 3 }}{{ x is defined }}{{ x is undefined }}{{ 3 is eq 3 }}{{ 1 is boolean }}{{ false is false }}{{ 'a' is in 'abc' }}{{ 2 is even }}{{ 'x' is not none }}", nil, "TrueTrueTrueFalseTrueTrueTrueTrueTrueTrueFalseTrueTrueFalseTrueTrueTrueTrue"),
        ("string methods", "{{ '  a b  ' | trim }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'xxaxx'.strip('x') }}|{{ 'Hello'.startswith('He') }}|{{ 'a.py'.endswith(('.js', '.py')) }}|{{ 'a-b-c'.rsplit('-', 1) }}|{{ 'abc'.replace('b', 'X') }}|{{ 'abc'.find('c') }}|{{ \"hello world's\".title() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}|{{ 'AbC'.lower() }}{{ 'AbC'.upper() }}|{{ '-'.join(['a', 'b']) }}|{{ '{} and {}'.format(1, 'two') }}|{{ 'a\\nb'.splitlines() }}", nil, "a b|['a', 'b', '', 'c']|['a', 'b']|a|True|True|['a-b', 'c']|aXc|2|Hello World'S|x | x|abcABC|a-b|1 and two|['a', 'b']"),
        ("filters", "{{ [3,1,2] | sort | join(',') }}|{{ ['a','b'] | map('upper') | list }}|{{ [{'n':1},{'n':2}] | map(attribute='n') | list }}|{{ [{'t':'a'},{'t':'b'}] | selectattr('t', 'equalto', 'a') | list }}|{{ [1,2,3,4] | reject('odd') | list }}|{{ [1,1,2] | unique | list }}|{{ x | default('d') }}|{{ '' | default('e', true) }}|{{ [1,2] | first }}{{ [1,2] | last }}|{{ 'a\\n\\nb' | indent(2) }}|{{ 'a\\nb' | indent(2, first=true) }}|{{ -3 | abs }}|{{ 2.567 | round(1) }}|{{ 2.5 | round }}|{{ '42' | int + 1 }}|{{ '3.5' | float }}|{{ 'héllo' | length }}|{{ 'hello WORLD' | capitalize }}|{{ 'hello big-world' | title }}|{{ {'b': 1, 'A': 2} | dictsort }}|{{ {'a': 1} | items | list }}|{{ [1, 2] | string }}|{{ 'a<b' | e }}|{{ 'one two  three' | wordcount }}|{{ [1, 2, 3] | sum }}|{{ [[1], [2]] | map('first') | list }}|{{ 'x' | replace('x', 'y') }}|{{ [1,2,3] | reverse | list }}|{{ [3, 1] | max }}{{ [3, 1] | min }}", nil, "1,2,3|['A', 'B']|[1, 2]|[{'t': 'a'}]|[2, 4]|[1, 2]|d|e|12|a\n\n  b|  a\n  b|3|2.6|2.0|43|3.5|5|Hello world|Hello Big-World|[('A', 2), ('b', 1)]|[('a', 1)]|[1, 2]|a&lt;b|3|6|[1, 2]|y|[3, 2, 1]|31"),
        ("dicts and globals", "{{ dict(a=1, b=2) }}|{{ {'a': 1}.get('b', 'none') }}|{{ {'a': 1}.get('a') }}|{{ {'a': 1}.keys() | list }}|{{ {'a': 1}.values() | list }}|{{ namespace(a=1).a }}|{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ {0: 'zero', 1: 'one'}[1] }}|{{ m.content }}|{{ m['role'] }}", "{\"m\": {\"role\": \"user\", \"content\": \"hi\"}}", "{'a': 1, 'b': 2}|none|1|['a']|[1]|1|[0, 1, 2]|[1, 4, 7]|one|hi|user"),
        ("undefined values", "[{{ x }}][{{ x | length }}][{{ x | list }}][{% for i in x %}{{ i }}{% endfor %}][{{ m.missing }}][{{ m.missing is defined }}][{{ none | string }}]", "{\"m\": {}}", "[][0][[]][][][False][None]"),
        ("generators", "{% set g = [1, 2, 3] | select('odd') %}{{ g | list }}{{ g | list }}|{{ ([] | select) is true }}|{{ [1] | map('string') | join }}", nil, "[1, 3][]|False|1"),
        ("strftime", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %-d %p') }}", nil, "26 Jul 2024|2024-07-26 09:30:00 Friday July 208 26 AM"),
    ]

    @Test("renders like jinja2", arguments: renderings.indices)
    func rendering(_ index: Int) throws {
        let (name, source, context, expected) = Self.renderings[index]
        #expect(try Self.render(source, context) == expected, "\(name)")
    }

    static let failures: [(String, String, String?, JinjaError.Kind, String)] = [
        ("raise_exception", "{% if true %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}", nil, .raised, "Only user and assistant roles are supported!"),
        ("undefined attribute", "{{ x.y }}", nil, .undefined, "'x' is undefined"),
        ("undefined key of dict", "{{ m.content.strip() }}", "{\"m\": {}}", .undefined, "'dict object' has no attribute 'content'"),
        ("string plus list", "{{ 'a' + m }}", "{\"m\": [1]}", .type, "can only concatenate str (not \"list\") to str"),
        ("iterate none", "{% for i in none %}{% endfor %}", nil, .type, "'NoneType' object is not iterable"),
        ("list append is unsafe", "{% set l = [] %}{{ l.append(1) }}", nil, .security, "access to attribute 'append' of 'list' object is unsafe."),
        ("tojson undefined", "{{ x | tojson }}", nil, .type, "Object of type Undefined is not JSON serializable"),
        ("length of generator", "{{ [1] | select | length }}", nil, .type, "object of type 'generator' has no len()"),
        ("unknown filter in if", "{% if true %}{{ 1 | from_json }}{% endif %}", nil, .runtime, "No filter named 'from_json' found."),
    ]

    @Test("raises like jinja2", arguments: failures.indices)
    func failure(_ index: Int) throws {
        let (name, source, context, kind, message) = Self.failures[index]
        do {
            let output = try Self.render(source, context)
            Issue.record("\(name): rendered \(output.debugDescription) but jinja2 raises")
        } catch let error as JinjaError {
            #expect(error.kind == kind, "\(name)")
            #expect(error.message == message, "\(name)")
        }
    }
}

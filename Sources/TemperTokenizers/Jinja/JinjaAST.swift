// Syntax tree of a parsed template, mirroring the jinja2 nodes chat templates use.

final class JinjaMacroDefinition: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: JinjaExpr?)]
    let body: [JinjaNode]
    /// jinja2 lets a macro take extra arguments only when its body mentions `varargs` / `kwargs`.
    let usesVarargs: Bool
    let usesKwargs: Bool

    init(
        name: String, parameters: [(name: String, defaultValue: JinjaExpr?)], body: [JinjaNode],
        usesVarargs: Bool, usesKwargs: Bool
    ) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.usesVarargs = usesVarargs
        self.usesKwargs = usesKwargs
    }
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case ifStatement(branches: [(test: JinjaExpr, body: [JinjaNode])], elseBody: [JinjaNode])
    case forLoop(
        target: JinjaTarget, iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], elseBody: [JinjaNode],
        line: Int)
    case assign(target: JinjaTarget, value: JinjaExpr, line: Int)
    case assignBlock(target: JinjaTarget, filters: [JinjaFilterCall], body: [JinjaNode], line: Int)
    case macro(JinjaMacroDefinition)
    case filterBlock(filters: [JinjaFilterCall], body: [JinjaNode])
    /// transformers' `{% generation %}` (AssistantTracker): renders its body unchanged.
    case generation(body: [JinjaNode])
    case breakLoop
    case continueLoop
}

/// The left side of `set` and the variables of `for`.
indirect enum JinjaTarget: Sendable {
    case name(String)
    case namespaceAttribute(namespace: String, attribute: String)
    case tuple([JinjaTarget])
}

struct JinjaFilterCall: Sendable {
    var name: String
    var args: [JinjaExpr]
    var kwargs: [(String, JinjaExpr)]
    var line: Int
}

enum JinjaBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
    case power = "**", concat = "~"
    case and, or
}

enum JinjaCompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case contains = "in", notContains = "not in"
}

indirect enum JinjaExpr: Sendable {
    case constant(JinjaRuntimeConstant)
    case name(String, line: Int)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String, line: Int)
    case item(JinjaExpr, JinjaExpr, line: Int)
    case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?, line: Int)
    case call(JinjaExpr, args: [JinjaExpr], kwargs: [(String, JinjaExpr)], line: Int)
    case filter(JinjaExpr, JinjaFilterCall)
    case test(JinjaExpr, name: String, args: [JinjaExpr], line: Int)
    case not(JinjaExpr)
    case negate(JinjaExpr, line: Int)
    case plus(JinjaExpr, line: Int)
    case binary(JinjaBinaryOperator, JinjaExpr, JinjaExpr, line: Int)
    case compare(JinjaExpr, [(JinjaCompareOperator, JinjaExpr)], line: Int)
    case conditional(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
}

/// Literal constants in the tree (kept separate from runtime values, which are not Sendable).
enum JinjaRuntimeConstant: Sendable {
    case none, bool(Bool), int(Int), double(Double), string(String)
}

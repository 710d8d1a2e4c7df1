// Recursive-descent parser following jinja2 3.1's grammar (jinja2/parser.py): the same precedence
// (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary < postfix/filters/tests),
// the same tuple rules, and the same statements, restricted to what a chat template can use
// (transformers' environment: loopcontrols and the `generation` tag). Statements jinja2 has but this
// interpreter lacks throw `unsupported`, never a silent fallback.

struct JinjaParser {
    private var tokens: [JinjaToken]
    private var index = 0
    /// Inside an `if` body or test or a conditional expression: jinja2 then defers "No filter named …"
    /// to render time instead of failing the whole template.
    private var soft = false
    private var loopDepth = 0
    /// Names referenced in the macro bodies being parsed (innermost last).
    private var referencedNames: [Set<String>] = []

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [JinjaNode] {
        let tokens = try JinjaLexer(source).tokenize()
        var parser = JinjaParser(tokens: tokens)
        return try parser.parseTemplate()
    }

    // MARK: Token stream

    private var current: JinjaToken { tokens[index] }
    private var lookahead: JinjaToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> JinjaToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isOp(_ op: String, _ token: JinjaToken? = nil) -> Bool {
        let token = token ?? current
        return token.kind == .op && token.text == op
    }

    private func isName(_ name: String, _ token: JinjaToken? = nil) -> Bool {
        let token = token ?? current
        return token.kind == .name && token.text == name
    }

    private func fail(_ message: String, _ token: JinjaToken? = nil) -> JinjaError {
        let token = token ?? current
        return JinjaError(.syntax, message, line: token.line, column: token.column)
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token.kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name, .op: return token.text
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .eof: return "end of template"
        }
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw fail("expected token '\(op)', got '\(describe(current))'") }
        _ = advance()
    }

    private mutating func expectName(_ name: String? = nil) throws -> JinjaToken {
        guard current.kind == .name, name == nil || current.text == name else {
            throw fail("expected token '\(name ?? "name")', got '\(describe(current))'")
        }
        return advance()
    }

    private mutating func expect(_ kind: JinjaToken.Kind) throws {
        guard current.kind == kind else {
            let wanted = describe(JinjaToken(kind: kind, line: 0, column: 0))
            throw fail("expected token '\(wanted)', got '\(describe(current))'")
        }
        _ = advance()
    }

    // MARK: Statements

    mutating func parseTemplate() throws -> [JinjaNode] {
        let body = try subparse(until: [])
        if current.kind != .eof { throw fail("Encountered unknown tag '\(current.text)'.") }
        return body
    }

    /// Parses nodes until a block tag whose name is in `endTokens` (left as the current token) or
    /// the end of the template.
    private mutating func subparse(until endTokens: Set<String>) throws -> [JinjaNode] {
        var body: [JinjaNode] = []
        while true {
            switch current.kind {
            case .data:
                body.append(.text(advance().text))
            case .variableBegin:
                _ = advance()
                body.append(.output(try parseTuple()))
                try expect(.variableEnd)
            case .blockBegin:
                _ = advance()
                if current.kind == .name, endTokens.contains(current.text) { return body }
                body.append(try parseStatement())
                try expect(.blockEnd)
            case .eof:
                return body
            default:
                throw fail("unexpected '\(describe(current))'")
            }
        }
    }

    /// Parses a statement body up to one of `endTokens`; `dropNeedle` consumes the end tag's name.
    private mutating func parseStatements(_ endTokens: Set<String>, dropNeedle: Bool = false) throws -> [JinjaNode] {
        if isOp(":") { _ = advance() }
        try expect(.blockEnd)
        let body = try subparse(until: endTokens)
        if current.kind == .eof {
            let names = endTokens.sorted().map { "'\($0)'" }.joined(separator: " or ")
            throw fail("Unexpected end of template. Jinja was looking for the following tags: \(names).")
        }
        if dropNeedle { _ = advance() }
        return body
    }

    private mutating func parseStatement() throws -> JinjaNode {
        let token = current
        guard token.kind == .name else { throw fail("tag name expected") }
        switch token.text {
        case "if": return try parseIf()
        case "for": return try parseFor()
        case "set": return try parseSet()
        case "macro": return try parseMacro()
        case "filter": return try parseFilterBlock()
        case "generation":
            _ = advance()
            let saved = soft
            soft = false
            defer { soft = saved }
            return .generation(body: try parseStatements(["endgeneration"], dropNeedle: true))
        case "print":
            _ = advance()
            return .output(try parseTuple())
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else { throw fail("Tried to leave a loop outside of a loop.", token) }  // jinja2: compile-time check
            return token.text == "break" ? .breakLoop : .continueLoop
        case "include", "import", "from", "extends", "block", "with", "autoescape", "call", "raw", "do":
            throw JinjaError.unsupported(token.text, line: token.line, column: token.column)
        default:
            throw fail("Encountered unknown tag '\(token.text)'.", token)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        _ = advance()
        let saved = soft
        soft = true
        defer { soft = saved }
        var branches: [(test: JinjaExpr, body: [JinjaNode])] = []
        var elseBody: [JinjaNode] = []
        while true {
            let test = try parseTuple(withCondexpr: false)
            let body = try parseStatements(["elif", "else", "endif"])
            branches.append((test, body))
            let token = advance()
            if token.text == "elif" { continue }
            if token.text == "else" { elseBody = try parseStatements(["endif"], dropNeedle: true) }
            break
        }
        return .ifStatement(branches: branches, elseBody: elseBody)
    }

    private mutating func parseFor() throws -> JinjaNode {
        let line = advance().line
        let saved = soft
        let target = try parseAssignTarget(extraEndRules: ["in"])
        _ = try expectName("in")
        let iterable = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        var filter: JinjaExpr? = nil
        if isName("if") {
            _ = advance()
            filter = try parseExpression()
        }
        if isName("recursive") { throw JinjaError.unsupported("recursive for loop", line: current.line) }
        soft = false
        loopDepth += 1
        let body = try parseStatements(["endfor", "else"])
        loopDepth -= 1
        var elseBody: [JinjaNode] = []
        if advance().text == "else" { elseBody = try parseStatements(["endfor"], dropNeedle: true) }
        soft = saved
        return .forLoop(target: target, iterable: iterable, filter: filter, body: body, elseBody: elseBody, line: line)
    }

    private mutating func parseSet() throws -> JinjaNode {
        let line = advance().line
        let target = try parseAssignTarget(withNamespace: true)
        if isOp("=") {
            _ = advance()
            return .assign(target: target, value: try parseTuple(), line: line)
        }
        let filters = try parseFilterChain(inline: false)
        let saved = soft
        soft = false
        defer { soft = saved }
        let body = try parseStatements(["endset"], dropNeedle: true)
        return .assignBlock(target: target, filters: filters, body: body, line: line)
    }

    private mutating func parseMacro() throws -> JinjaNode {
        _ = advance()
        let name = try expectName().text
        try expectOp("(")
        var parameters: [(name: String, defaultValue: JinjaExpr?)] = []
        var sawDefault = false
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            let parameter = try expectName().text
            var defaultValue: JinjaExpr? = nil
            if isOp("=") {
                _ = advance()
                defaultValue = try parseExpression()
                sawDefault = true
            } else if sawDefault {
                throw fail("non-default argument follows default argument")
            }
            parameters.append((parameter, defaultValue))
        }
        try expectOp(")")
        let savedSoft = soft
        let savedLoops = loopDepth
        soft = false
        loopDepth = 0
        referencedNames.append([])
        let body = try parseStatements(["endmacro"], dropNeedle: true)
        let names = referencedNames.removeLast()
        soft = savedSoft
        loopDepth = savedLoops
        return .macro(
            JinjaMacroDefinition(
                name: name, parameters: parameters, body: body, usesVarargs: names.contains("varargs"),
                usesKwargs: names.contains("kwargs")))
    }

    private mutating func parseFilterBlock() throws -> JinjaNode {
        _ = advance()
        let filters = try parseFilterChain(inline: true)
        let saved = soft
        soft = false
        defer { soft = saved }
        let body = try parseStatements(["endfilter"], dropNeedle: true)
        return .filterBlock(filters: filters, body: body)
    }

    private mutating func parseAssignTarget(extraEndRules: Set<String> = [], withNamespace: Bool = false) throws
        -> JinjaTarget
    {
        if withNamespace, current.kind == .name, isOp(".", lookahead) {
            let namespace = advance().text
            _ = advance()
            let attribute = try expectName().text
            return .namespaceAttribute(namespace: namespace, attribute: attribute)
        }
        var targets: [JinjaTarget] = []
        var isTuple = false
        while true {
            if !targets.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            targets.append(try parseTargetPrimary())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple, let only = targets.first { return only }
        if targets.isEmpty { throw fail("Expected an expression, got '\(describe(current))'") }
        return .tuple(targets)
    }

    private mutating func parseTargetPrimary() throws -> JinjaTarget {
        if current.kind == .name {
            let token = advance()
            if ["true", "false", "True", "False", "none", "None"].contains(token.text) {
                throw fail("can't assign to '\(token.text)'", token)
            }
            return .name(token.text)
        }
        if isOp("(") {
            _ = advance()
            let target = try parseAssignTarget()
            try expectOp(")")
            return target
        }
        throw fail("can't assign to '\(describe(current))'")
    }

    // MARK: Expressions

    private func isTupleEnd(_ extraEndRules: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op: return current.text == ")"
        case .name: return extraEndRules.contains(current.text)
        default: return false
        }
    }

    mutating func parseTuple(
        withCondexpr: Bool = true, extraEndRules: Set<String> = [], explicitParentheses: Bool = false
    ) throws -> JinjaExpr {
        var items: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(try parseExpression(withCondexpr: withCondexpr))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(describe(current))'") }
        }
        return .tuple(items)
    }

    mutating func parseExpression(withCondexpr: Bool = true) throws -> JinjaExpr {
        withCondexpr ? try parseCondexpr() : try parseOr()
    }

    private mutating func parseCondexpr() throws -> JinjaExpr {
        var expr = try parseOr()
        while isName("if") {
            _ = advance()
            let saved = soft
            soft = true
            defer { soft = saved }
            let test = try parseOr()
            var otherwise: JinjaExpr? = nil
            if isName("else") {
                _ = advance()
                otherwise = try parseCondexpr()
            }
            expr = .conditional(test: test, then: expr, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while isName("or") {
            let line = advance().line
            left = .binary(.or, left, try parseAnd(), line: line)
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while isName("and") {
            let line = advance().line
            left = .binary(.and, left, try parseNot(), line: line)
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            _ = advance()
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let line = current.line
        let expr = try parseMath1()
        var operations: [(JinjaCompareOperator, JinjaExpr)] = []
        while true {
            if current.kind == .op, let op = JinjaCompareOperator(rawValue: current.text), op != .contains {
                _ = advance()
                operations.append((op, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                operations.append((.contains, try parseMath1()))
            } else if isName("not"), isName("in", lookahead) {
                _ = advance()
                _ = advance()
                operations.append((.notContains, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? expr : .compare(expr, operations, line: line)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let token = advance()
            left = .binary(token.text == "+" ? .add : .subtract, left, try parseConcat(), line: token.line)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        var left = try parseMath2()
        while isOp("~") {
            let line = advance().line
            left = .binary(.concat, left, try parseMath2(), line: line)
        }
        return left
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        while current.kind == .op, ["*", "/", "//", "%"].contains(current.text) {
            let token = advance()
            let op = JinjaBinaryOperator(rawValue: token.text)!
            left = .binary(op, left, try parsePow(), line: token.line)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        while isOp("**") {
            let line = advance().line
            left = .binary(.power, left, try parseUnary(), line: line)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        var node: JinjaExpr
        if isOp("-") {
            let line = advance().line
            node = .negate(try parseUnary(withFilter: false), line: line)
        } else if isOp("+") {
            let line = advance().line
            node = .plus(try parseUnary(withFilter: false), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let token = current
        switch token.kind {
        case .name:
            _ = advance()
            switch token.text {
            case "true", "True": return .constant(.bool(true))
            case "false", "False": return .constant(.bool(false))
            case "none", "None": return .constant(.none)
            default:
                for i in referencedNames.indices { referencedNames[i].insert(token.text) }
                return .name(token.text, line: token.line)
            }
        case .string:
            var text = advance().text
            while current.kind == .string { text += advance().text }
            return .constant(.string(text))
        case .integer:
            return .constant(.int(advance().integer))
        case .float:
            return .constant(.double(advance().float))
        case .op where token.text == "(":
            _ = advance()
            let expr = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return expr
        case .op where token.text == "[":
            _ = advance()
            var items: [JinjaExpr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op where token.text == "{":
            _ = advance()
            var items: [(JinjaExpr, JinjaExpr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(items)
        default:
            throw fail("unexpected '\(describe(token))'")
        }
    }

    private mutating func parsePostfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpr(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if isOp("|") {
                for filter in try parseFilterChain(inline: false) { node = .filter(node, filter) }
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: JinjaExpr) throws -> JinjaExpr {
        let token = advance()
        if token.text == "." {
            let attribute = advance()
            if attribute.kind == .name { return .attribute(node, attribute.text, line: token.line) }
            guard attribute.kind == .integer else { throw fail("expected name or number", attribute) }
            return .item(node, .constant(.int(attribute.integer)), line: token.line)
        }
        var args: [JinjaExpr] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed(node: node, line: token.line))
        }
        try expectOp("]")
        if args.count == 1, case .slice = args[0] { return args[0] }
        if args.count == 1 { return .item(node, args[0], line: token.line) }
        throw JinjaError.unsupported("tuple subscript", line: token.line)
    }

    /// One subscript: an index expression, or a slice `start:stop:step` (returned as `.slice`).
    private mutating func parseSubscribed(node: JinjaExpr, line: Int) throws -> JinjaExpr {
        var start: JinjaExpr? = nil
        if !isOp(":") {
            let expr = try parseExpression()
            if !isOp(":") { return expr }
            start = expr
        }
        _ = advance()  // ':'
        var stop: JinjaExpr? = nil
        if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
        var step: JinjaExpr? = nil
        if isOp(":") {
            _ = advance()
            if !isOp("]") && !isOp(",") { step = try parseExpression() }
        }
        return .slice(node, start: start, stop: stop, step: step, line: line)
    }

    private mutating func parseCallArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        try expectOp("(")
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if isOp("*") || isOp("**") {
                throw JinjaError.unsupported("\(current.text)arguments in a call", line: current.line)
            }
            if current.kind == .name, isOp("=", lookahead) {
                let key = advance().text
                _ = advance()
                kwargs.append((key, try parseExpression()))
            } else {
                if !kwargs.isEmpty { throw fail("invalid syntax for function call expression") }
                args.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return (args, kwargs)
    }

    private mutating func parseCall(_ node: JinjaExpr) throws -> JinjaExpr {
        let line = current.line
        let (args, kwargs) = try parseCallArguments()
        return .call(node, args: args, kwargs: kwargs, line: line)
    }

    /// `| name(args) | name …`; with `inline` the first filter has no leading pipe (`{% filter x %}`).
    private mutating func parseFilterChain(inline: Bool) throws -> [JinjaFilterCall] {
        var filters: [JinjaFilterCall] = []
        var startInline = inline
        while isOp("|") || startInline {
            if !startInline { _ = advance() }
            startInline = false
            let token = try expectName()
            var name = token.text
            while isOp(".") {
                _ = advance()
                name += "." + (try expectName().text)
            }
            var args: [JinjaExpr] = []
            var kwargs: [(String, JinjaExpr)] = []
            if isOp("(") { (args, kwargs) = try parseCallArguments() }
            try checkCallable(filter: true, name: name, token: token)
            filters.append(JinjaFilterCall(name: name, args: args, kwargs: kwargs, line: token.line))
        }
        return filters
    }

    private mutating func parseTest(_ node: JinjaExpr) throws -> JinjaExpr {
        let isToken = advance()
        var negated = false
        if isName("not") {
            _ = advance()
            negated = true
        }
        let nameToken = try expectName()
        var name = nameToken.text
        while isOp(".") {
            _ = advance()
            name += "." + (try expectName().text)
        }
        var args: [JinjaExpr] = []
        if isOp("(") {
            let (positional, keywords) = try parseCallArguments()
            if !keywords.isEmpty { throw JinjaError.unsupported("keyword arguments to a test", line: nameToken.line) }
            args = positional
        } else if [.name, .string, .integer, .float].contains(current.kind) || isOp("(") || isOp("[") || isOp("{"),
            !isName("else"), !isName("or"), !isName("and")
        {
            if isName("is") { throw fail("You cannot chain multiple tests with is") }
            args = [try parsePostfix(try parsePrimary())]
        }
        try checkCallable(filter: false, name: name, token: nameToken)
        let test = JinjaExpr.test(node, name: name, args: args, line: isToken.line)
        return negated ? .not(test) : test
    }

    /// jinja2 fails at compile time on a filter or test it doesn't know, except inside `if`
    /// statements and conditional expressions, where the failure waits until the call runs.
    private func checkCallable(filter: Bool, name: String, token: JinjaToken) throws {
        let kind = filter ? "filter" : "test"
        let implemented = filter ? JinjaBuiltins.filterNames : JinjaBuiltins.testNames
        let jinjaKnows = filter ? JinjaBuiltins.jinjaFilterNames : JinjaBuiltins.jinjaTestNames
        if implemented.contains(name) { return }
        if jinjaKnows.contains(name) {
            throw JinjaError.unsupported("\(kind) '\(name)'", line: token.line, column: token.column)
        }
        if !soft { throw JinjaError(.assertion, "No \(kind) named '\(name)'.", line: token.line, column: token.column) }
    }
}

import Foundation

// Tree-walking renderer with jinja2's scoping: a for loop gives each iteration a fresh scope (so a
// plain `set` inside does not leak out, hence `namespace`), `if` shares its parent's scope, and a
// macro runs in a scope whose parent is the template's top-level scope at call time.

final class JinjaScope {
    var variables: [String: Value] = [:]
    let parent: JinjaScope?

    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: JinjaScope? = self
        while let current = scope {
            if let value = current.variables[name] { return value }
            scope = current.parent
        }
        return nil
    }
}

struct JinjaRenderOptions {
    /// The clock `strftime_now` reads; nil means the current time.
    var now: Date?
    var timeZone: TimeZone = .current
}

final class JinjaInterpreter {
    private enum Flow { case normal, breakLoop, continueLoop }

    let options: JinjaRenderOptions
    private let root: JinjaScope
    private var output = ""

    init(context: [String: Value], options: JinjaRenderOptions) {
        self.options = options
        root = JinjaScope(parent: nil)
        root.variables = context
    }

    func render(_ nodes: [JinjaNode]) throws -> String {
        output = ""
        _ = try execute(nodes, in: root)
        return output
    }

    // MARK: Statements

    private func capture(_ body: () throws -> Void) rethrows -> String {
        let saved = output
        output = ""
        defer { output = saved }
        try body()
        return output
    }

    private func execute(_ nodes: [JinjaNode], in scope: JinjaScope) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .output(let expr):
                output += try evaluate(expr, in: scope).pyStr
            case .ifStatement(let branches, let elseBody):
                var taken = false
                for branch in branches where try evaluate(branch.test, in: scope).isTruthy {
                    taken = true
                    let flow = try execute(branch.body, in: scope)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(elseBody, in: scope)
                    if flow != .normal { return flow }
                }
            case .forLoop(let target, let iterable, let filter, let body, let elseBody, let line):
                try executeFor(
                    target: target, iterable: iterable, filter: filter, body: body, elseBody: elseBody, line: line,
                    in: scope)
            case .assign(let target, let valueExpr, let line):
                try assign(target, try evaluate(valueExpr, in: scope), in: scope, line: line)
            case .assignBlock(let target, let filters, let body, let line):
                let inner = JinjaScope(parent: scope)
                var value = Value.string(try capture { _ = try execute(body, in: inner) })
                for filter in filters { value = try applyFilter(filter, to: value, in: scope) }
                try assign(target, value, in: scope, line: line)
            case .macro(let definition):
                scope.variables[definition.name] = .callable(.macro(definition))
            case .filterBlock(let filters, let body):
                let inner = JinjaScope(parent: scope)
                var value = Value.string(try capture { _ = try execute(body, in: inner) })
                for filter in filters { value = try applyFilter(filter, to: value, in: scope) }
                output += value.pyStr
            case .generation(let body):
                _ = try execute(body, in: JinjaScope(parent: scope))
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    private func executeFor(
        target: JinjaTarget, iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], elseBody: [JinjaNode],
        line: Int, in scope: JinjaScope
    ) throws {
        let sequence = try evaluate(iterable, in: scope)
        if case .undefined(let undefined) = sequence, undefined.kind != .undefined { throw undefined.error() }
        var items = try pyIterate(sequence)
        if let filter {
            items = try items.filter { item in
                let inner = JinjaScope(parent: scope)
                try assign(target, item, in: inner, line: line)
                return try evaluate(filter, in: inner).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(elseBody, in: JinjaScope(parent: scope))
            return
        }
        let changed = JinjaLoopContext.ChangedState()
        for (index, item) in items.enumerated() {
            let inner = JinjaScope(parent: scope)
            try assign(target, item, in: inner, line: line)
            inner.variables["loop"] = .loop(JinjaLoopContext(items: items, index0: index, changedState: changed))
            if try execute(body, in: inner) == .breakLoop { break }
        }
    }

    private func assign(_ target: JinjaTarget, _ value: Value, in scope: JinjaScope, line: Int) throws {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .namespaceAttribute(let namespaceName, let attribute):
            guard case .namespace(let namespace) = scope.lookup(namespaceName) ?? .none else {
                throw JinjaError(.runtime, "cannot assign attribute on non-namespace object", line: line)
            }
            if attribute.hasPrefix("_") {
                throw JinjaError(
                    .security,
                    "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pyRepr(attribute)). Please rename the attribute.",
                    line: line)
            }
            namespace.attributes[attribute] = value
        case .tuple(let targets):
            let items = try pyIterate(value)
            if items.count > targets.count {
                throw JinjaError(.value, "too many values to unpack (expected \(targets.count))", line: line)
            }
            if items.count < targets.count {
                throw JinjaError(
                    .value, "not enough values to unpack (expected \(targets.count), got \(items.count))", line: line)
            }
            for (subTarget, item) in zip(targets, items) { try assign(subTarget, item, in: scope, line: line) }
        }
    }

    // MARK: Expressions

    func evaluate(_ expr: JinjaExpr, in scope: JinjaScope) throws -> Value {
        switch expr {
        case .constant(let constant):
            switch constant {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name, _):
            if let value = scope.lookup(name) { return value }
            if JinjaBuiltins.globalNames.contains(name) { return .callable(.global(name)) }
            return .undefined("'\(name)' is undefined")
        case .list(let items):
            return .list(try items.map { try evaluate($0, in: scope) })
        case .tuple(let items):
            return .tuple(try items.map { try evaluate($0, in: scope) })
        case .dict(let items):
            var dict = JinjaDict()
            for (keyExpr, valueExpr) in items {
                let key = try evaluate(keyExpr, in: scope)
                try dict.set(key, try evaluate(valueExpr, in: scope))
            }
            return .dict(dict)
        case .attribute(let objectExpr, let name, let line):
            return try withLine(line) { try getAttribute(try evaluate(objectExpr, in: scope), name) }
        case .item(let objectExpr, let keyExpr, let line):
            let object = try evaluate(objectExpr, in: scope)
            let key = try evaluate(keyExpr, in: scope)
            return try withLine(line) { try getItem(object, key) }
        case .slice(let objectExpr, let startExpr, let stopExpr, let stepExpr, let line):
            let object = try evaluate(objectExpr, in: scope)
            let start = try startExpr.map { try evaluate($0, in: scope) }
            let stop = try stopExpr.map { try evaluate($0, in: scope) }
            let step = try stepExpr.map { try evaluate($0, in: scope) }
            return try withLine(line) { try slice(object, start: start, stop: stop, step: step) }
        case .call(let calleeExpr, let argExprs, let kwargExprs, let line):
            let callee = try evaluate(calleeExpr, in: scope)
            var args = try argExprs.map { try evaluate($0, in: scope) }
            var kwargs = try kwargExprs.map { ($0.0, try evaluate($0.1, in: scope)) }
            if case .callable(.macro) = callee {} else {
                args = args.map(\.plain)
                kwargs = kwargs.map { ($0.0, $0.1.plain) }
            }
            return try withLine(line) { try call(callee, args: args, kwargs: kwargs) }
        case .filter(let valueExpr, let filter):
            return try applyFilter(filter, to: try evaluate(valueExpr, in: scope), in: scope)
        case .test(let valueExpr, let name, let argExprs, let line):
            let value = try evaluate(valueExpr, in: scope)
            let args = try argExprs.map { try evaluate($0, in: scope) }
            return try withLine(line) { .bool(try JinjaBuiltins.test(name, value, args, interpreter: self)) }
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: scope).isTruthy))
        case .negate(let operand, let line):
            let value = try evaluate(operand, in: scope)
            return try withLine(line) {
                switch value {
                case .undefined(let u): throw u.error()
                case .int(let i): return .int(-i)
                case .bool(let b): return .int(b ? -1 : 0)
                case .double(let d): return .double(-d)
                default: throw JinjaError(.type, "bad operand type for unary -: '\(value.pythonTypeName)'")
                }
            }
        case .plus(let operand, let line):
            let value = try evaluate(operand, in: scope)
            return try withLine(line) {
                switch value {
                case .undefined(let u): throw u.error()
                case .int, .double: return value
                case .bool(let b): return .int(b ? 1 : 0)
                default: throw JinjaError(.type, "bad operand type for unary +: '\(value.pythonTypeName)'")
                }
            }
        case .binary(let op, let leftExpr, let rightExpr, let line):
            let left = try evaluate(leftExpr, in: scope)
            switch op {
            case .and: return left.isTruthy ? try evaluate(rightExpr, in: scope) : left
            case .or: return left.isTruthy ? left : try evaluate(rightExpr, in: scope)
            case .concat: return .string(left.pyStr + (try evaluate(rightExpr, in: scope)).pyStr)
            default:
                let right = try evaluate(rightExpr, in: scope)
                return try withLine(line) { try pyArithmetic(op, left, right) }
            }
        case .compare(let firstExpr, let operations, let line):
            var left = try evaluate(firstExpr, in: scope)
            for (op, rightExpr) in operations {
                let right = try evaluate(rightExpr, in: scope)
                if !(try withLine(line) { try pyCompare(op, left, right) }) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if try evaluate(test, in: scope).isTruthy { return try evaluate(then, in: scope) }
            if let otherwise { return try evaluate(otherwise, in: scope) }
            return .undefined("the inline if-expression evaluated to false and no else section was defined.")
        }
    }

    private func withLine<T>(_ line: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as JinjaError {
            if error.line == nil, line > 0 { error.line = line }
            throw error
        }
    }

    func applyFilter(_ filter: JinjaFilterCall, to value: Value, in scope: JinjaScope) throws -> Value {
        let args = try filter.args.map { try evaluate($0, in: scope) }
        let kwargs = try filter.kwargs.map { ($0.0, try evaluate($0.1, in: scope)) }
        return try withLine(filter.line) {
            try JinjaBuiltins.filter(filter.name, value, args, kwargs, interpreter: self)
        }
    }

    // MARK: Attribute and item access (jinja2's sandboxed getattr/getitem)

    func getAttribute(_ object: Value, _ name: String) throws -> Value {
        let object = object.plain
        if case .undefined(let u) = object { throw u.error() }
        if name.hasPrefix("_") { return unsafe(object, name) }
        switch object {
        case .dict(let dict):
            if JinjaMethods.isMethod(of: object, name) { return methodOrUnsafe(object, name) }
            if let value = dict[name] { return value }
        case .namespace(let namespace):
            if let value = namespace.attributes[name] { return value }
        case .loop(let loop):
            if let value = loopAttribute(loop, name) { return value }
        default:
            if JinjaMethods.isMethod(of: object, name) { return methodOrUnsafe(object, name) }
        }
        return .undefined("\(pyRepr(object.objectTypeRepr)) has no attribute \(pyRepr(name))")
    }

    func getItem(_ object: Value, _ key: Value) throws -> Value {
        let (object, key) = (object.plain, key.plain)
        if case .undefined(let u) = object { throw u.error() }
        switch (object, key) {
        case (.dict(let dict), _):
            if let value = dict[key: key] { return value }
        case (.list(let items), _), (.tuple(let items), _):
            if let index = key.integer {
                let resolved = index < 0 ? index + items.count : index
                if resolved >= 0 && resolved < items.count { return items[resolved] }
            }
        case (.string(let s), _):
            if let index = key.integer {
                let scalars = Array(s.unicodeScalars)
                let resolved = index < 0 ? index + scalars.count : index
                if resolved >= 0 && resolved < scalars.count { return .string(String(scalars[resolved])) }
            }
        default: break
        }
        if case .string(let name) = key {
            if case .dict = object, !JinjaMethods.isMethod(of: object, name) {
                return .undefined("\(pyRepr(object.objectTypeRepr)) has no attribute \(pyRepr(name))")
            }
            return try getAttribute(object, name)
        }
        return .undefined("\(pyRepr(object.objectTypeRepr)) has no element \(key.pyRepr)")
    }

    private func unsafe(_ object: Value, _ name: String) -> Value {
        .undefined(
            JinjaUndefined(
                message: "access to attribute \(pyRepr(name)) of \(pyRepr(object.pythonTypeName)) object is unsafe.",
                kind: .security))
    }

    private func methodOrUnsafe(_ object: Value, _ name: String) -> Value {
        JinjaMethods.isMutating(object, name) ? unsafe(object, name) : .callable(.method(object, name))
    }

    private func loopAttribute(_ loop: JinjaLoopContext, _ name: String) -> Value? {
        let length = loop.items.count
        switch name {
        case "index": return .int(loop.index0 + 1)
        case "index0": return .int(loop.index0)
        case "revindex": return .int(length - loop.index0)
        case "revindex0": return .int(length - loop.index0 - 1)
        case "first": return .bool(loop.index0 == 0)
        case "last": return .bool(loop.index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem":
            return loop.index0 > 0 ? loop.items[loop.index0 - 1] : .undefined("there is no previous item")
        case "nextitem":
            return loop.index0 + 1 < length ? loop.items[loop.index0 + 1] : .undefined("there is no next item")
        case "cycle", "changed": return .callable(.method(.loop(loop), name))
        default: return nil
        }
    }

    private func slice(_ object: Value, start: Value?, stop: Value?, step: Value?) throws -> Value {
        let object = object.plain
        if case .undefined(let u) = object { throw u.error() }
        func bound(_ value: Value?) throws -> Int? {
            guard let value, !(value.isUndefined && false) else { return nil }
            if case .none = value { return nil }
            guard let index = value.integer else {
                throw JinjaError(.type, "slice indices must be integers or None or have an __index__ method")
            }
            return index
        }
        let stepValue = try bound(step) ?? 1
        if stepValue == 0 { throw JinjaError(.value, "slice step cannot be zero") }
        func indices(count: Int) throws -> [Int] {
            // CPython's PySlice_AdjustIndices.
            var lower = try bound(start)
            var upper = try bound(stop)
            if stepValue > 0 {
                lower = lower.map { $0 < 0 ? max(0, $0 + count) : min($0, count) } ?? 0
                upper = upper.map { $0 < 0 ? max(0, $0 + count) : min($0, count) } ?? count
                return Array(stride(from: lower!, to: upper!, by: stepValue))
            }
            lower = lower.map { $0 < 0 ? max(-1, $0 + count) : min($0, count - 1) } ?? count - 1
            upper = upper.map { $0 < 0 ? max(-1, $0 + count) : min($0, count - 1) } ?? -1
            return Array(stride(from: lower!, to: upper!, by: stepValue))
        }
        switch object {
        case .list(let items): return .list(try indices(count: items.count).map { items[$0] })
        case .tuple(let items): return .tuple(try indices(count: items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for index in try indices(count: scalars.count) { out.append(scalars[index]) }
            return .string(String(out))
        default:
            func text(_ value: Value?) -> String { value.map { $0.pyRepr } ?? "None" }
            return .undefined(
                "\(pyRepr(object.objectTypeRepr)) has no element slice(\(text(start)), \(text(stop)), \(text(step)))")
        }
    }

    // MARK: Calls

    func call(_ callee: Value, args: [Value], kwargs: [(String, Value)]) throws -> Value {
        switch callee {
        case .undefined(let u): throw u.error()
        case .callable(.macro(let macro)): return try callMacro(macro, args: args, kwargs: kwargs)
        case .callable(.global(let name)):
            return try JinjaBuiltins.callGlobal(name, args, kwargs, interpreter: self)
        case .callable(.method(let receiver, let name)):
            if case .loop(let loop) = receiver { return try callLoopMethod(loop, name, args) }
            return try JinjaMethods.call(receiver, name, args, kwargs, interpreter: self)
        default:
            throw JinjaError(.type, "'\(callee.pythonTypeName)' object is not callable")
        }
    }

    private func callLoopMethod(_ loop: JinjaLoopContext, _ name: String, _ args: [Value]) throws -> Value {
        if name == "cycle" {
            guard !args.isEmpty else { throw JinjaError(.type, "no items for cycling given") }
            return args[loop.index0 % args.count]
        }
        if loop.changedState.last.map({ $0.count == args.count && zip($0, args).allSatisfy(pyEqual) }) ?? false {
            return .bool(false)
        }
        loop.changedState.last = args
        return .bool(true)
    }

    private func callMacro(_ macro: JinjaMacroDefinition, args: [Value], kwargs: [(String, Value)]) throws -> Value {
        let scope = JinjaScope(parent: root)
        var extraKwargs = JinjaDict()
        var provided = Set<String>()
        for (index, parameter) in macro.parameters.enumerated() where index < args.count {
            scope.variables[parameter.name] = args[index]
            provided.insert(parameter.name)
        }
        for (name, value) in kwargs {
            if macro.parameters.contains(where: { $0.name == name }) {
                if provided.contains(name) {
                    throw JinjaError(.type, "macro '\(macro.name)' got multiple values for argument '\(name)'")
                }
                scope.variables[name] = value
                provided.insert(name)
            } else if macro.usesKwargs {
                extraKwargs[name] = value
            } else {
                throw JinjaError(.type, "macro '\(macro.name)' takes no keyword argument '\(name)'")
            }
        }
        if args.count > macro.parameters.count && !macro.usesVarargs {
            throw JinjaError(
                .type,
                "macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
        }
        for parameter in macro.parameters where !provided.contains(parameter.name) {
            if let defaultValue = parameter.defaultValue {
                scope.variables[parameter.name] = try evaluate(defaultValue, in: scope)
            } else {
                scope.variables[parameter.name] = .undefined("parameter \(pyRepr(parameter.name)) was not provided")
            }
        }
        if macro.usesVarargs { scope.variables["varargs"] = .tuple(Array(args.dropFirst(macro.parameters.count))) }
        if macro.usesKwargs { scope.variables["kwargs"] = .dict(extraKwargs) }
        return .string(try capture { _ = try execute(macro.body, in: scope) })
    }
}

import Foundation

// jinja2's builtin filters (jinja2/filters.py) with transformers' `tojson`, and the global functions
// of transformers' environment. Arguments bind like Python's: positionally in signature order or by
// keyword.

enum JinjaBuiltins {
    /// Every filter jinja2 3.1 defines: a template naming one of these that is not implemented here
    /// fails with `unsupported` at parse time; any other name behaves as in jinja2 ("No filter named").
    static let jinjaFilterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last",
        "length", "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
        "xmlattr", "tojson",
    ]

    static let filterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "forceescape", "format", "indent", "int", "join", "last", "length", "list", "lower",
        "items", "map", "min", "max", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "sort", "string", "sum", "title", "trim", "unique", "upper", "wordcount", "tojson",
    ]

    static let jinjaTestNames: Set<String> = [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
        "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
        "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", ">=", "ge", "<",
        "lt", "lessthan", "<=", "le",
    ]

    static let testNames = jinjaTestNames

    static let globalNames: Set<String> = [
        "range", "namespace", "dict", "raise_exception", "strftime_now", "lipsum", "cycler", "joiner",
    ]

    // MARK: Argument binding

    /// Binds positional and keyword arguments to `names` (after the filtered value), Python style.
    static func bind(
        _ function: String, _ names: [String], _ args: [Value], _ kwargs: [(String, Value)]
    ) throws -> [String: Value] {
        guard args.count <= names.count else {
            throw JinjaError(.type, "\(function)() takes at most \(names.count + 1) arguments (\(args.count + 1) given)")
        }
        var bound: [String: Value] = [:]
        for (name, value) in zip(names, args) { bound[name] = value }
        for (name, value) in kwargs {
            guard names.contains(name) else {
                throw JinjaError(.type, "\(function)() got an unexpected keyword argument '\(name)'")
            }
            if bound[name] != nil { throw JinjaError(.type, "\(function)() got multiple values for argument '\(name)'") }
            bound[name] = value
        }
        return bound
    }

    private static func ignoreCase(_ value: Value, _ caseSensitive: Bool) -> Value {
        if !caseSensitive, case .string(let s) = value { return .string(s.lowercased()) }
        return value
    }

    /// Stable merge sort with a throwing comparator (Python's sort is stable).
    static func stableSort(_ items: [Value], by less: (Value, Value) throws -> Bool) throws -> [Value] {
        if items.count < 2 { return items }
        let middle = items.count / 2
        let left = try stableSort(Array(items[..<middle]), by: less)
        let right = try stableSort(Array(items[middle...]), by: less)
        var merged: [Value] = []
        merged.reserveCapacity(items.count)
        var i = 0
        var j = 0
        while i < left.count, j < right.count {
            if try less(right[j], left[i]) {
                merged.append(right[j])
                j += 1
            } else {
                merged.append(left[i])
                i += 1
            }
        }
        merged += left[i...]
        merged += right[j...]
        return merged
    }

    /// jinja2's `make_attrgetter`: "a.b.0" walks attributes/items; integers index.
    static func attributeGetter(_ path: Value, interpreter: JinjaInterpreter) -> (Value) throws -> Value {
        let parts: [Value]
        if case .string(let s) = path {
            parts = s.split(separator: ".", omittingEmptySubsequences: false).map { part in
                Int(part).map(Value.int) ?? .string(String(part))
            }
        } else {
            parts = [path]
        }
        return { item in
            var current = item
            for part in parts { current = try interpreter.getItem(current, part) }
            return current
        }
    }

    // MARK: Filters

    static func filter(
        _ name: String, _ value: Value, _ args: [Value], _ kwargs: [(String, Value)], interpreter: JinjaInterpreter
    ) throws -> Value {
        if !["safe", "e", "escape", "string", "default", "d", "first", "last"].contains(name) {
            let args = args.map(\.plain)
            let kwargs = kwargs.map { ($0.0, $0.1.plain) }
            if case .markup = value { return try plainFilter(name, value.plain, args, kwargs, interpreter: interpreter) }
            return try plainFilter(name, value, args, kwargs, interpreter: interpreter)
        }
        return try plainFilter(name, value, args, kwargs, interpreter: interpreter)
    }

    private static func plainFilter(
        _ name: String, _ value: Value, _ args: [Value], _ kwargs: [(String, Value)], interpreter: JinjaInterpreter
    ) throws -> Value {
        switch name {
        case "tojson":
            let encoder = try JinjaJSONEncoder(args: args, kwargs: kwargs)
            return .string(try encoder.encode(value))
        case "trim":
            let bound = try bind("do_trim", ["chars"], args, kwargs)
            let chars = bound["chars"].flatMap { $0.isTruthy || $0.string != nil ? $0.pyStr : nil }
            return .string(PyString.strip(value.pyStr, chars, leading: true, trailing: true))
        case "length", "count":
            return .int(try pyLength(value))
        case "string":
            return .string(value.pyStr)
        case "safe":
            return .markup(value.pyStr)
        case "e", "escape", "forceescape":
            if case .markup = value, name != "forceescape" { return value }
            return .markup(htmlEscape(value.pyStr))
        case "d", "default":
            let bound = try bind("do_default", ["default_value", "boolean"], args, kwargs)
            let boolean = bound["boolean"]?.isTruthy ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return bound["default_value"] ?? .string("") }
            return value
        case "upper": return .string(PyString.upper(value.pyStr))
        case "lower": return .string(PyString.lower(value.pyStr))
        case "capitalize": return .string(PyString.capitalize(value.pyStr))
        case "title":
            // jinja2 splits on runs of "-", whitespace and opening brackets, then capitalizes each piece.
            var out = ""
            var word = ""
            func flush() {
                if let first = word.unicodeScalars.first {
                    out += first.properties.uppercaseMapping
                        + String(String.UnicodeScalarView(word.unicodeScalars.dropFirst())).lowercased()
                }
                word = ""
            }
            for scalar in value.pyStr.unicodeScalars {
                if scalar == "-" || scalar == "(" || scalar == "{" || scalar == "[" || scalar == "<" || isPythonSpace(scalar) {
                    flush()
                    out.unicodeScalars.append(scalar)
                } else {
                    word.unicodeScalars.append(scalar)
                }
            }
            flush()
            return .string(out)
        case "replace":
            let bound = try bind("do_replace", ["old", "new", "count"], args, kwargs)
            guard let old = bound["old"], let new = bound["new"] else {
                throw JinjaError(.type, "do_replace() missing required arguments")
            }
            let count = bound["count"].flatMap { $0.integer } ?? -1
            return .string(PyString.replace(value.pyStr, old.pyStr, new.pyStr, count: count))
        case "join":
            let bound = try bind("do_join", ["d", "attribute"], args, kwargs)
            var items = try pyIterate(value)
            if let attribute = bound["attribute"], case .none = attribute {} else if let attribute = bound["attribute"] {
                let getter = attributeGetter(attribute, interpreter: interpreter)
                items = try items.map(getter)
            }
            return .string(items.map(\.pyStr).joined(separator: bound["d"]?.pyStr ?? ""))
        case "first":
            if case .iterator(let iterator) = value {
                return iterator.remaining.isEmpty
                    ? .undefined("No first item, sequence was empty.") : iterator.remaining.removeFirst()
            }
            let items = try pyIterate(value)
            return items.first ?? .undefined("No first item, sequence was empty.")
        case "last":
            if case .undefined(let u) = value { throw u.error() }
            if case .iterator(let iterator) = value {
                throw JinjaError(.type, "'\(iterator.typeName)' object is not reversible")
            }
            let items = try pyIterate(value)
            return items.last ?? .undefined("No last item, sequence was empty.")
        case "list":
            return .list(try pyIterate(value))
        case "items":
            switch value {
            case .undefined: return .list([])
            case .dict(let dict): return .iterator(JinjaIterator(dict.pairs.map { .tuple([$0.0, $0.1]) }))
            default: throw JinjaError(.type, "Can only get item pairs from a mapping.")
            }
        case "dictsort":
            let bound = try bind("do_dictsort", ["case_sensitive", "by", "reverse"], args, kwargs)
            guard case .dict(let dict) = value else {
                if case .undefined(let u) = value { throw u.error() }
                throw JinjaError(.type, "'\(value.pythonTypeName)' object has no attribute 'items'")
            }
            let caseSensitive = bound["case_sensitive"]?.isTruthy ?? false
            let byValue: Bool
            switch bound["by"]?.pyStr ?? "key" {
            case "key": byValue = false
            case "value": byValue = true
            default: throw JinjaError(.runtime, "You can only sort by either \"key\" or \"value\"")
            }
            let pairs = dict.pairs.map { Value.tuple([$0.0, $0.1]) }
            var sorted = try stableSort(pairs) { a, b in
                guard case .tuple(let x) = a, case .tuple(let y) = b else { return false }
                let index = byValue ? 1 : 0
                return try pyLess(ignoreCase(x[index], caseSensitive), ignoreCase(y[index], caseSensitive))
            }
            if bound["reverse"]?.isTruthy ?? false { sorted.reverse() }
            return .list(sorted)
        case "sort":
            let bound = try bind("do_sort", ["reverse", "case_sensitive", "attribute"], args, kwargs)
            let caseSensitive = bound["case_sensitive"]?.isTruthy ?? false
            let reverse = bound["reverse"]?.isTruthy ?? false
            let key: (Value) throws -> Value
            if let attribute = bound["attribute"], !(attribute.isUndefined), attribute.isTruthy {
                let getter = attributeGetter(attribute, interpreter: interpreter)
                key = { ignoreCase(try getter($0), caseSensitive) }
            } else {
                key = { ignoreCase($0, caseSensitive) }
            }
            let items = try pyIterate(value)
            let sorted = try stableSort(items) { a, b in
                reverse ? try pyLess(key(b), key(a)) : try pyLess(key(a), key(b))
            }
            return .list(sorted)
        case "unique":
            let bound = try bind("do_unique", ["case_sensitive", "attribute"], args, kwargs)
            let caseSensitive = bound["case_sensitive"]?.isTruthy ?? false
            let getter = bound["attribute"].map { attributeGetter($0, interpreter: interpreter) }
            var seen: [Value] = []
            var out: [Value] = []
            for item in try pyIterate(value) {
                let key = ignoreCase(try getter?(item) ?? item, caseSensitive)
                if !seen.contains(where: { pyEqual($0, key) }) {
                    seen.append(key)
                    out.append(item)
                }
            }
            return .iterator(JinjaIterator(out))
        case "min", "max":
            let bound = try bind("do_\(name)", ["case_sensitive", "attribute"], args, kwargs)
            let caseSensitive = bound["case_sensitive"]?.isTruthy ?? false
            let getter = bound["attribute"].map { attributeGetter($0, interpreter: interpreter) }
            let items = try pyIterate(value)
            guard var best = items.first else {
                return .undefined("No aggregated item, sequence was empty.")
            }
            for item in items.dropFirst() {
                let a = ignoreCase(try getter?(item) ?? item, caseSensitive)
                let b = ignoreCase(try getter?(best) ?? best, caseSensitive)
                if name == "min" ? try pyLess(a, b) : try pyLess(b, a) { best = item }
            }
            return best
        case "reverse":
            switch value {
            case .string(let s): return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed())))
            case .list(let items): return .iterator(JinjaIterator(items.reversed(), typeName: "list_reverseiterator"))
            case .tuple(let items): return .iterator(JinjaIterator(items.reversed(), typeName: "reversed"))
            case .dict(let dict): return .iterator(JinjaIterator(dict.keys.reversed(), typeName: "dict_reversekeyiterator"))
            default: return .list(try pyIterate(value).reversed())
            }
        case "map":
            let items = value.isTruthy ? try pyIterate(value) : []
            if args.isEmpty, kwargs.contains(where: { $0.0 == "attribute" }) {
                let bound = try bind("map", ["attribute", "default"], [], kwargs)
                let getter = attributeGetter(bound["attribute"]!, interpreter: interpreter)
                return .iterator(JinjaIterator(try items.map { item in
                    let result = try getter(item)
                    if result.isUndefined, let fallback = bound["default"] { return fallback }
                    return result
                }))
            }
            guard let filterName = args.first?.string else {
                throw JinjaError(.runtime, "map requires a filter argument")
            }
            guard filterNames.contains(filterName) else {
                if jinjaFilterNames.contains(filterName) {
                    throw JinjaError.unsupported("filter '\(filterName)'")
                }
                throw JinjaError(.runtime, "No filter named '\(filterName)'.")
            }
            let rest = Array(args.dropFirst())
            return .iterator(JinjaIterator(try items.map { try filter(filterName, $0, rest, kwargs, interpreter: interpreter) }))
        case "select", "reject", "selectattr", "rejectattr":
            let items = value.isTruthy ? try pyIterate(value) : []
            let wantTrue = name == "select" || name == "selectattr"
            var rest = args
            var getter: ((Value) throws -> Value)? = nil
            if name.hasSuffix("attr") {
                guard !rest.isEmpty else { throw JinjaError(.type, "\(name) requires an attribute argument") }
                getter = attributeGetter(rest.removeFirst(), interpreter: interpreter)
            }
            var predicate: (Value) throws -> Bool = { $0.isTruthy }
            if let testName = rest.first {
                guard case .string(let testName) = testName else { throw JinjaError(.type, "test name must be a string") }
                guard testNames.contains(testName) else { throw JinjaError(.runtime, "No test named '\(testName)'.") }
                let testArgs = Array(rest.dropFirst())
                predicate = { try test(testName, $0, testArgs, interpreter: interpreter) }
            }
            return .iterator(JinjaIterator(try items.filter { item in try predicate(try getter?(item) ?? item) == wantTrue }))
        case "attr":
            guard let attribute = args.first?.string else { throw JinjaError(.type, "attr requires a name") }
            return try interpreter.getAttribute(value, attribute)
        case "int":
            let bound = try bind("do_int", ["default", "base"], args, kwargs)
            let fallback = bound["default"] ?? .int(0)
            let base = bound["base"]?.integer ?? 10
            switch value {
            case .undefined(let u): throw u.error()
            case .string(let s):
                let trimmed = PyString.strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let parsed = Int(trimmed, radix: base) { return .int(parsed) }
                if let parsed = Double(trimmed), parsed.isFinite { return .int(Int(parsed)) }
                return fallback
            case .double(let d): return d.isFinite ? .int(Int(d)) : fallback
            default: return value.integer.map(Value.int) ?? fallback
            }
        case "float":
            let bound = try bind("do_float", ["default"], args, kwargs)
            let fallback = bound["default"] ?? .double(0)
            switch value {
            case .undefined(let u): throw u.error()
            case .string(let s):
                return Double(PyString.strip(s, nil, leading: true, trailing: true)).map(Value.double) ?? fallback
            default: return value.number.map(Value.double) ?? fallback
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            case .undefined(let u): throw u.error()
            default: throw JinjaError(.type, "bad operand type for abs(): '\(value.pythonTypeName)'")
            }
        case "round":
            let bound = try bind("do_round", ["precision", "method"], args, kwargs)
            let precision = bound["precision"]?.integer ?? 0
            let method = bound["method"]?.pyStr ?? "common"
            if case .undefined(let u) = value { throw u.error() }
            if method == "common", let i = value.integer, precision >= 0 { return .int(i) }
            guard let number = value.number else {
                throw JinjaError(.type, "type \(value.pythonTypeName) doesn't define __round__ method")
            }
            switch method {
            case "common":
                return .double(Double(String(format: "%.\(max(0, precision))f", number)) ?? number)
            case "ceil", "floor":
                let scale = pow(10, Double(precision))
                let scaled = number * scale
                return .double((method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)) / scale)
            default:
                throw JinjaError(.runtime, "method must be common, ceil or floor")
            }
        case "indent":
            let bound = try bind("do_indent", ["width", "first", "blank"], args, kwargs)
            let indentation: String
            if case .string(let s)? = bound["width"] { indentation = s } else {
                indentation = String(repeating: " ", count: bound["width"]?.integer ?? 4)
            }
            let text = value.pyStr + "\n"
            var result: String
            if bound["blank"]?.isTruthy ?? false {
                result = PyString.splitlines(text).joined(separator: "\n" + indentation)
            } else {
                var lines = PyString.splitlines(text)
                result = lines.removeFirst()
                if !lines.isEmpty {
                    result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if bound["first"]?.isTruthy ?? false { result = indentation + result }
            return .string(result)
        case "center":
            let bound = try bind("do_center", ["width"], args, kwargs)
            return try JinjaMethods.call(.string(value.pyStr), "center", [bound["width"] ?? .int(80)], [], interpreter: interpreter)
        case "wordcount":
            var count = 0
            var inWord = false
            for scalar in value.pyStr.unicodeScalars {
                let isWord = scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        case "sum":
            let bound = try bind("do_sum", ["attribute", "start"], args, kwargs)
            var items = try pyIterate(value)
            if let attribute = bound["attribute"], !(attribute.isUndefined), case .string = attribute {
                let getter = attributeGetter(attribute, interpreter: interpreter)
                items = try items.map(getter)
            }
            var total = bound["start"] ?? .int(0)
            for item in items { total = try pyArithmetic(.add, total, item) }
            return total
        case "batch":
            let bound = try bind("do_batch", ["linecount", "fill_with"], args, kwargs)
            guard let size = bound["linecount"]?.integer, size > 0 else {
                throw JinjaError(.value, "batch size must be positive")
            }
            var batches: [Value] = []
            var current: [Value] = []
            for item in try pyIterate(value) {
                current.append(item)
                if current.count == size {
                    batches.append(.list(current))
                    current = []
                }
            }
            if !current.isEmpty {
                if let fill = bound["fill_with"], !(fill.isUndefined), !({ if case .none = fill { return true } else { return false } }()) {
                    current += Array(repeating: fill, count: size - current.count)
                }
                batches.append(.list(current))
            }
            return .iterator(JinjaIterator(batches))
        case "format":
            if !kwargs.isEmpty { throw JinjaError.unsupported("format filter with keyword arguments") }
            return .string(try pyPercentFormat(value.pyStr, .tuple(args)))
        default:
            if jinjaFilterNames.contains(name) { throw JinjaError.unsupported("filter '\(name)'") }
            throw JinjaError(.runtime, "No filter named '\(name)' found.")
        }
    }

    // MARK: Tests

    static func test(_ name: String, _ value: Value, _ args: [Value], interpreter: JinjaInterpreter) throws -> Bool {
        if case .markup = value, name == "escaped" { return true }
        let value = value.plain
        let args = args.map(\.plain)
        func argument() throws -> Value {
            guard let first = args.first else { throw JinjaError(.type, "test '\(name)' requires an argument") }
            return first
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.number != nil
        case "string": return value.string != nil
        case "mapping": if case .dict = value { return true } else { return false }
        case "iterable":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .iterator: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .list, .tuple, .dict: return true
            default: return false
            }
        case "callable": if case .callable = value { return true } else { return false }
        case "odd", "even":
            if case .undefined(let u) = value { throw u.error() }
            guard let i = value.integer else {
                throw JinjaError(.type, "unsupported operand type(s) for %: '\(value.pythonTypeName)' and 'int'")
            }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            let divisor = try argument()
            guard case .int(let result) = try pyArithmetic(.modulo, value, divisor) else {
                if case .double(let d) = try pyArithmetic(.modulo, value, divisor) { return d == 0 }
                return false
            }
            return result == 0
        case "lower": return value.string.map { $0 == $0.lowercased() } ?? false
        case "upper": return value.string.map { $0 == $0.uppercased() } ?? false
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "escaped": return false
        case "in": return try pyContains(try argument(), value)
        case "==", "eq", "equalto": return pyEqual(value, try argument())
        case "!=", "ne": return !pyEqual(value, try argument())
        case ">", "gt", "greaterthan": return try pyCompare(.greater, value, try argument())
        case ">=", "ge": return try pyCompare(.greaterEqual, value, try argument())
        case "<", "lt", "lessthan": return try pyCompare(.less, value, try argument())
        case "<=", "le": return try pyCompare(.lessEqual, value, try argument())
        case "filter": return try filterNames.contains(argument().pyStr)
        case "test": return try testNames.contains(argument().pyStr)
        default:
            throw JinjaError(.runtime, "No test named '\(name)' found.")
        }
    }

    // MARK: Globals

    static func callGlobal(
        _ name: String, _ args: [Value], _ kwargs: [(String, Value)], interpreter: JinjaInterpreter
    ) throws -> Value {
        switch name {
        case "raise_exception":
            throw JinjaError(.raised, args.first?.pyStr ?? "")
        case "range":
            guard kwargs.isEmpty else { throw JinjaError(.type, "range() takes no keyword arguments") }
            var ints: [Int] = []
            for arg in args {
                guard let i = arg.integer else {
                    throw JinjaError(.type, "'\(arg.pythonTypeName)' object cannot be interpreted as an integer")
                }
                ints.append(i)
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw JinjaError(.type, "range expected at most 3 arguments, got \(ints.count)")
            }
            if step == 0 { throw JinjaError(.value, "range() arg 3 must not be zero") }
            let values = Array(stride(from: start, to: stop, by: step))
            if values.count > 100_000 {
                throw JinjaError(.runtime, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
            }
            return .list(values.map(Value.int))
        case "namespace":
            let namespace = JinjaNamespace()
            for (keyValue, value) in try dictArguments("namespace", args, kwargs).pairs {
                let key = keyValue.pyStr
                if key.hasPrefix("_") {
                    throw JinjaError(
                        .security,
                        "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pyRepr(key)). Please rename the attribute.")
                }
                namespace.attributes[key] = value
            }
            return .namespace(namespace)
        case "dict":
            return .dict(try dictArguments("dict", args, kwargs))
        case "strftime_now":
            guard let format = args.first?.string else {
                throw JinjaError(.type, "strftime() argument 1 must be str")
            }
            return .string(JinjaStrftime.format(interpreter.options.now ?? Date(), format, timeZone: interpreter.options.timeZone))
        default:
            throw JinjaError.unsupported(name)
        }
    }

    /// `dict(mapping_or_pairs, **kwargs)` as Python builds it.
    private static func dictArguments(_ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws -> JinjaDict {
        var dict = JinjaDict()
        if args.count > 1 { throw JinjaError(.type, "\(name) expected at most 1 argument, got \(args.count)") }
        if let source = args.first {
            switch source {
            case .dict(let other): for (key, value) in other.pairs { try dict.set(key, value) }
            case .namespace(let other): for (key, value) in other.attributes.pairs { try dict.set(key, value) }
            default:
                for pair in try pyIterate(source) {
                    let items = try pyIterate(pair)
                    guard items.count == 2 else {
                        throw JinjaError(.value, "dictionary update sequence element has length \(items.count); 2 is required")
                    }
                    try dict.set(items[0], items[1])
                }
            }
        }
        for (key, value) in kwargs { dict[key] = value }
        return dict
    }
}

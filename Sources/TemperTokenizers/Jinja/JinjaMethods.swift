import Foundation

// Methods templates call on Python values (`s.strip()`, `d.get(k)`, `'{}'.format(x)`), and the
// sandbox's ban on methods that mutate lists and dicts.

enum JinjaMethods {
    private static let stringMethods: Set<String> = [
        "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "upper", "lower", "title",
        "capitalize", "replace", "find", "rfind", "index", "rindex", "count", "join", "format", "isdigit",
        "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal", "splitlines", "center",
        "ljust", "rjust", "zfill", "partition", "rpartition", "removeprefix", "removesuffix", "casefold",
        "swapcase",
    ]
    private static let dictMethods: Set<String> = [
        "items", "keys", "values", "get", "copy", "clear", "pop", "popitem", "setdefault", "update", "fromkeys",
    ]
    private static let listMethods: Set<String> = [
        "index", "count", "copy", "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
    ]
    private static let mutating: Set<String> = [
        "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "popitem", "setdefault", "update",
    ]

    static func isMethod(of value: Value, _ name: String) -> Bool {
        switch value {
        case .string: return stringMethods.contains(name)
        case .dict: return dictMethods.contains(name)
        case .list: return listMethods.contains(name)
        case .tuple: return name == "index" || name == "count"
        default: return false
        }
    }

    /// ImmutableSandboxedEnvironment refuses the methods that modify lists and dicts.
    static func isMutating(_ value: Value, _ name: String) -> Bool {
        switch value {
        case .list, .dict: return mutating.contains(name)
        default: return false
        }
    }

    private static func string(_ value: Value?, _ method: String) throws -> String? {
        switch value {
        case nil, .none?: return nil
        case .string(let s)?: return s
        case let other?:
            throw JinjaError(.type, "\(method) arg must be None or str, not \(other.pythonTypeName)")
        }
    }

    static func call(
        _ receiver: Value, _ name: String, _ args: [Value], _ kwargs: [(String, Value)], interpreter: JinjaInterpreter
    ) throws -> Value {
        switch receiver {
        case .string(let s): return try callString(s, name, args, kwargs)
        case .dict(let dict):
            switch name {
            case "items": return .list(dict.pairs.map { .tuple([$0.0, $0.1]) })
            case "keys": return .list(dict.keys)
            case "values": return .list(dict.values)
            case "copy": return receiver
            case "get":
                let bound = try JinjaBuiltins.bind("get", ["key", "default"], args, kwargs)
                guard let key = bound["key"] else { throw JinjaError(.type, "get expected at least 1 argument, got 0") }
                if let value = dict[key: key] { return value }
                return bound["default"] ?? .none
            default: break
            }
        case .list(let items), .tuple(let items):
            switch name {
            case "count": return .int(items.filter { pyEqual($0, args.first ?? .none) }.count)
            case "index":
                if let index = items.firstIndex(where: { pyEqual($0, args.first ?? .none) }) { return .int(index) }
                throw JinjaError(.value, "\((args.first ?? .none).pyRepr) is not in list")
            case "copy": return receiver
            default: break
            }
        default: break
        }
        throw JinjaError.unsupported("method '\(name)' of \(receiver.pythonTypeName)")
    }

    private static func callString(_ s: String, _ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws
        -> Value
    {
        func arg(_ index: Int, _ keyword: String) -> Value? {
            if index < args.count { return args[index] }
            return kwargs.first { $0.0 == keyword }?.1
        }
        func requiredString(_ index: Int, _ keyword: String) throws -> String {
            guard let value = arg(index, keyword) else {
                throw JinjaError(.type, "\(name)() takes at least \(index + 1) argument (\(args.count) given)")
            }
            guard case .string(let text) = value else {
                throw JinjaError(.type, "must be str, not \(value.pythonTypeName)")
            }
            return text
        }
        switch name {
        case "startswith", "endswith":
            guard let prefixes = arg(0, "") else { throw JinjaError(.type, "\(name)() takes at least 1 argument (0 given)") }
            var candidates: [String] = []
            switch prefixes {
            case .string(let p): candidates = [p]
            case .tuple(let items), .list(let items) where name == "startswith" || name == "endswith":
                candidates = try items.map {
                    guard case .string(let p) = $0 else {
                        throw JinjaError(.type, "tuple for \(name) must only contain str, not \($0.pythonTypeName)")
                    }
                    return p
                }
            default:
                throw JinjaError(
                    .type, "\(name) first arg must be str or a tuple of str, not \(prefixes.pythonTypeName)")
            }
            let scalars = Array(s.unicodeScalars)
            return .bool(candidates.contains { candidate in
                let c = Array(candidate.unicodeScalars)
                guard c.count <= scalars.count else { return false }
                return name == "startswith" ? Array(scalars.prefix(c.count)) == c : Array(scalars.suffix(c.count)) == c
            })
        case "split", "rsplit":
            let separator = try string(arg(0, "sep"), name)
            let maxSplit = arg(1, "maxsplit")?.integer ?? -1
            let parts = name == "split"
                ? try PyString.split(s, separator, maxSplit: maxSplit)
                : try PyString.rsplit(s, separator, maxSplit: maxSplit)
            return .list(parts.map(Value.string))
        case "strip", "lstrip", "rstrip":
            let chars = try string(arg(0, "chars"), name)
            return .string(PyString.strip(s, chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "upper": return .string(PyString.upper(s))
        case "lower", "casefold": return .string(PyString.lower(s))
        case "title": return .string(PyString.title(s))
        case "capitalize": return .string(PyString.capitalize(s))
        case "swapcase":
            return .string(s.unicodeScalars.map {
                $0.properties.isUppercase ? String($0).lowercased() : String($0).uppercased()
            }.joined())
        case "replace":
            let old = try requiredString(0, "old")
            let new = try requiredString(1, "new")
            return .string(PyString.replace(s, old, new, count: arg(2, "count")?.integer ?? -1))
        case "find", "rfind", "index", "rindex":
            let sub = try requiredString(0, "sub")
            let position = PyString.find(s, sub, reverse: name.hasPrefix("r"))
            if position < 0, name.hasSuffix("index") { throw JinjaError(.value, "substring not found") }
            return .int(position)
        case "count": return .int(PyString.count(s, try requiredString(0, "sub")))
        case "join":
            guard let iterable = arg(0, "iterable") else { throw JinjaError(.type, "join() takes exactly one argument (0 given)") }
            let items = try pyIterate(iterable)
            var parts: [String] = []
            for (index, item) in items.enumerated() {
                guard case .string(let part) = item else {
                    throw JinjaError(.type, "sequence item \(index): expected str instance, \(item.pythonTypeName) found")
                }
                parts.append(part)
            }
            return .string(parts.joined(separator: s))
        case "format": return .string(try format(s, args, kwargs))
        case "isdigit", "isnumeric", "isdecimal":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy {
                $0.properties.isAlphabetic || $0.properties.numericType != nil
            })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonSpace))
        case "isupper", "islower":
            let cased = s.unicodeScalars.filter(PyString.isCased)
            let want = name == "isupper"
            return .bool(!cased.isEmpty && cased.allSatisfy { want ? !$0.properties.isLowercase : !$0.properties.isUppercase })
        case "splitlines":
            return .list(PyString.splitlines(s, keepEnds: arg(0, "keepends")?.isTruthy ?? false).map(Value.string))
        case "center", "ljust", "rjust":
            guard let width = arg(0, "width")?.integer else { throw JinjaError(.type, "\(name)() requires a width") }
            let fill = try string(arg(1, "fillchar"), name) ?? " "
            let length = s.unicodeScalars.count
            guard width > length else { return .string(s) }
            let padding = width - length
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: padding))
            case "rjust": return .string(String(repeating: fill, count: padding) + s)
            default:
                // CPython: left = pad/2 + (pad & width & 1)
                let left = padding / 2 + (padding & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: padding - left))
            }
        case "zfill":
            guard let width = arg(0, "width")?.integer else { throw JinjaError(.type, "zfill() requires a width") }
            var scalars = Array(s.unicodeScalars)
            guard width > scalars.count else { return .string(s) }
            let zeros = Array(repeating: Unicode.Scalar("0"), count: width - scalars.count)
            if let first = scalars.first, first == "+" || first == "-" {
                scalars.insert(contentsOf: zeros, at: 1)
            } else {
                scalars.insert(contentsOf: zeros, at: 0)
            }
            return .string(String(String.UnicodeScalarView(scalars)))
        case "partition", "rpartition":
            let separator = try requiredString(0, "sep")
            if separator.isEmpty { throw JinjaError(.value, "empty separator") }
            let position = PyString.find(s, separator, reverse: name == "rpartition")
            let scalars = Array(s.unicodeScalars)
            guard position >= 0 else {
                return name == "partition"
                    ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
            }
            let end = position + separator.unicodeScalars.count
            return .tuple([
                .string(String(String.UnicodeScalarView(scalars[..<position]))), .string(separator),
                .string(String(String.UnicodeScalarView(scalars[end...]))),
            ])
        case "removeprefix", "removesuffix":
            let affix = Array(try requiredString(0, name == "removeprefix" ? "prefix" : "suffix").unicodeScalars)
            let scalars = Array(s.unicodeScalars)
            if name == "removeprefix", scalars.starts(with: affix) {
                return .string(String(String.UnicodeScalarView(scalars.dropFirst(affix.count))))
            }
            if name == "removesuffix", !affix.isEmpty, Array(scalars.suffix(affix.count)) == affix {
                return .string(String(String.UnicodeScalarView(scalars.dropLast(affix.count))))
            }
            return .string(s)
        default:
            throw JinjaError.unsupported("method '\(name)' of str")
        }
    }

    /// `str.format` through jinja2's sandboxed formatter: `{}`, `{0}`, `{name}`, `{{`/`}}`, and the
    /// `!s`/`!r` conversions; format specs other than empty are not implemented.
    static func format(_ template: String, _ args: [Value], _ kwargs: [(String, Value)]) throws -> String {
        var out = ""
        var scalars = Array(template.unicodeScalars)[...]
        var automaticIndex = 0
        while let scalar = scalars.popFirst() {
            if scalar == "}" {
                guard scalars.first == "}" else { throw JinjaError(.value, "Single '}' encountered in format string") }
                scalars.removeFirst()
                out += "}"
                continue
            }
            guard scalar == "{" else {
                out.unicodeScalars.append(scalar)
                continue
            }
            if scalars.first == "{" {
                scalars.removeFirst()
                out += "{"
                continue
            }
            var field = ""
            while let next = scalars.popFirst(), next != "}" { field.unicodeScalars.append(next) }
            var conversion: Character? = nil
            if let bang = field.firstIndex(of: "!") {
                conversion = field[field.index(after: bang)...].first
                field = String(field[..<bang])
            }
            if field.contains(":") || field.contains(".") || field.contains("[") {
                throw JinjaError.unsupported("str.format field '{\(field)}'")
            }
            let value: Value
            if field.isEmpty {
                guard automaticIndex < args.count else {
                    throw JinjaError(.index, "Replacement index \(automaticIndex) out of range for positional args tuple")
                }
                value = args[automaticIndex]
                automaticIndex += 1
            } else if let index = Int(field) {
                guard index < args.count else {
                    throw JinjaError(.index, "Replacement index \(index) out of range for positional args tuple")
                }
                value = args[index]
            } else {
                guard let named = kwargs.first(where: { $0.0 == field })?.1 else { throw JinjaError(.key, pyRepr(field)) }
                value = named
            }
            out += conversion == "r" ? value.pyRepr : value.pyStr
        }
        return out
    }
}

/// Python's `datetime.strftime` for the directives templates use (C-locale names).
enum JinjaStrftime {
    private static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]

    static func format(_ date: Date, _ format: String, timeZone: TimeZone = .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        var out = ""
        var scalars = Array(format.unicodeScalars)[...]
        while let scalar = scalars.popFirst() {
            guard scalar == "%", let next = scalars.first else {
                out.unicodeScalars.append(scalar)
                continue
            }
            scalars.removeFirst()
            var directive = next
            var pad = true
            if directive == "-", let after = scalars.first {
                scalars.removeFirst()
                directive = after
                pad = false
            }
            func number(_ value: Int, _ width: Int) -> String {
                let text = String(value)
                return pad ? String(repeating: "0", count: max(0, width - text.count)) + text : text
            }
            let hour12 = (c.hour! + 11) % 12 + 1
            switch directive {
            case "d": out += number(c.day!, 2)
            case "e": out += pad ? (c.day! < 10 ? " " : "") + String(c.day!) : String(c.day!)
            case "m": out += number(c.month!, 2)
            case "Y": out += String(c.year!)
            case "y": out += number(c.year! % 100, 2)
            case "H": out += number(c.hour!, 2)
            case "I": out += number(hour12, 2)
            case "M": out += number(c.minute!, 2)
            case "S": out += number(c.second!, 2)
            case "j": out += number(dayOfYear, 3)
            case "p": out += c.hour! < 12 ? "AM" : "PM"
            case "A": out += weekdays[c.weekday! - 1]
            case "a": out += String(weekdays[c.weekday! - 1].prefix(3))
            case "B": out += months[c.month! - 1]
            case "b", "h": out += String(months[c.month! - 1].prefix(3))
            case "%": out += "%"
            default:
                out += "%"
                if !pad { out += "-" }
                out.unicodeScalars.append(directive)
            }
        }
        return out
    }
}

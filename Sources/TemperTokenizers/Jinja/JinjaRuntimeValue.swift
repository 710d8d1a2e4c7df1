// Values as the interpreter sees them while rendering: Python's types as jinja2 hands them to a
// template (str, int, float, bool, None, list, tuple, dict with insertion order, jinja2's Undefined,
// Namespace, loop contexts, macros and bound methods).

/// jinja2's `Undefined`: prints as "", is falsy and iterates as empty, but raises (with `message`)
/// on attribute access, arithmetic or calls. Unsafe attributes of the sandbox are undefined values
/// that raise `SecurityError`.
struct JinjaUndefined {
    var message: String
    var kind: JinjaError.Kind = .undefined

    func error() -> JinjaError { JinjaError(kind, message) }
}

/// Python's hashing of dict keys: 1, 1.0 and True are the same key.
enum JinjaHashKey: Hashable {
    case string(String), int(Int), double(Double), none

    init?(_ value: JinjaRuntimeValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .double(let d):
            if d.rounded() == d, let i = Int(exactly: d) { self = .int(i) } else { self = .double(d) }
        case .none: self = .none
        default: return nil
        }
    }
}

/// A Python dict: insertion-ordered, keyed by hashable values (strings in practice).
struct JinjaDict {
    private var order: [JinjaHashKey] = []
    private var storage: [JinjaHashKey: (key: JinjaRuntimeValue, value: JinjaRuntimeValue)] = [:]

    init() {}

    var count: Int { order.count }

    subscript(key: String) -> JinjaRuntimeValue? {
        get { storage[.string(key)]?.value }
        set {
            if let newValue { set(.string(key), newValue, hashKey: .string(key)) } else { remove(.string(key)) }
        }
    }

    subscript(key key: JinjaRuntimeValue) -> JinjaRuntimeValue? {
        JinjaHashKey(key).flatMap { storage[$0]?.value }
    }

    mutating func set(_ key: JinjaRuntimeValue, _ value: JinjaRuntimeValue) throws {
        guard let hashKey = JinjaHashKey(key) else {
            throw JinjaError(.type, "unhashable type: '\(key.pythonTypeName)'")
        }
        set(key, value, hashKey: hashKey)
    }

    private mutating func set(_ key: JinjaRuntimeValue, _ value: JinjaRuntimeValue, hashKey: JinjaHashKey) {
        if let existing = storage[hashKey] {
            storage[hashKey] = (existing.key, value)  // Python keeps the first key object
        } else {
            storage[hashKey] = (key, value)
            order.append(hashKey)
        }
    }

    private mutating func remove(_ hashKey: JinjaHashKey) {
        if storage.removeValue(forKey: hashKey) != nil { order.removeAll { $0 == hashKey } }
    }

    var keys: [JinjaRuntimeValue] { order.map { storage[$0]!.key } }
    var values: [JinjaRuntimeValue] { order.map { storage[$0]!.value } }
    var pairs: [(JinjaRuntimeValue, JinjaRuntimeValue)] { order.map { storage[$0]! } }
}

/// `namespace(...)`: the one mutable object templates have; shared by reference like Python's.
final class JinjaNamespace {
    var attributes = JinjaDict()
}

/// The `loop` variable of a for loop (jinja2's LoopContext), for one iteration.
final class JinjaLoopContext {
    let items: [JinjaRuntimeValue]
    let index0: Int
    /// The value passed to the previous `loop.changed(...)` call (shared across iterations).
    let changedState: ChangedState

    final class ChangedState { var last: [JinjaRuntimeValue]? = nil }

    init(items: [JinjaRuntimeValue], index0: Int, changedState: ChangedState) {
        self.items = items
        self.index0 = index0
        self.changedState = changedState
    }
}

/// A one-shot Python iterator: what jinja2's `map`, `select`, `selectattr`, `unique`, `items`,
/// `batch` (generators) and `reverse` (reverse iterators) return. Truthy even when empty, has no
/// len(), is not JSON serializable, and is exhausted by the first iteration.
final class JinjaIterator {
    var remaining: [JinjaRuntimeValue]
    let typeName: String

    init(_ items: [JinjaRuntimeValue], typeName: String = "generator") {
        remaining = items
        self.typeName = typeName
    }

    func drain() -> [JinjaRuntimeValue] {
        defer { remaining = [] }
        return remaining
    }
}

indirect enum JinjaCallable {
    case global(String)
    case macro(JinjaMacroDefinition)
    /// A method looked up on a value, e.g. `'a,b'.split` or `messages[0].get`.
    case method(JinjaRuntimeValue, String)

    var pythonTypeName: String {
        switch self {
        case .global(let name): return name == "namespace" ? "type" : "function"
        case .macro: return "Macro"
        case .method: return "builtin_function_or_method"
        }
    }
}

indirect enum JinjaRuntimeValue {
    case undefined(JinjaUndefined)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaRuntimeValue])
    case tuple([JinjaRuntimeValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case loop(JinjaLoopContext)
    case callable(JinjaCallable)
    case iterator(JinjaIterator)
    /// markupsafe's `Markup` (from `safe` and `escape`): a str whose `+` escapes the other operand.
    case markup(String)

    static func undefined(_ message: String) -> JinjaRuntimeValue { .undefined(JinjaUndefined(message: message)) }

    init(_ value: JinjaValue) {
        switch value {
        case .undefined: self = .undefined("value is undefined")
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .list(items.map(JinjaRuntimeValue.init))
        case .object(let object):
            var dict = JinjaDict()
            for (key, item) in object.pairs { dict[key] = JinjaRuntimeValue(item) }
            self = .dict(dict)
        }
    }

    /// Markup read as the plain string it is (everything but `+` treats it as a str).
    var plain: JinjaRuntimeValue {
        if case .markup(let s) = self { return .string(s) }
        return self
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python's `type(x).__name__`, for error messages.
    var pythonTypeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "TemplateNamespace"
        case .loop: return "LoopContext"
        case .callable(let callable): return callable.pythonTypeName
        case .iterator(let iterator): return iterator.typeName
        case .markup: return "Markup"
        }
    }

    /// jinja2's `object_type_repr`, used in Undefined messages ("'dict object' has no attribute 'x'").
    var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .namespace: return "transformers.utils.chat_template_utils.TemplateNamespace object"
        case .loop: return "jinja2.runtime.LoopContext object"
        case .callable(.macro): return "jinja2.runtime.Macro object"
        default: return "\(pythonTypeName) object"
        }
    }
}

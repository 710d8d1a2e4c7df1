import TemperCore

/// A layer or model with a tree of named parameters (`layers.0.self_attn.q_proj.weight`).
///
/// Parameters are flattened to dotted names, the keys Hugging Face checkpoints use, so loading a
/// checkpoint is `update(parameters:)` with the file's tensors.
public protocol Module: AnyObject {
    /// Own tensors, by their local name (`weight`, `bias`).
    var ownParameters: [String: Tensor] { get }
    /// Sub-modules, by their local name (`q_proj`, `layers.0`).
    var children: [String: any Module] { get }
    /// Replaces an own tensor; called with names from `ownParameters` only.
    func setOwnParameter(_ name: String, _ value: Tensor)
}

/// Why parameters could not be applied to a module.
public enum ParameterError: Error, Equatable, CustomStringConvertible {
    case unknownNames([String])
    case missingNames([String])
    case shapeMismatch(name: String, expected: [Int], got: [Int])

    public var description: String {
        switch self {
        case .unknownNames(let names):
            "unexpected parameters: \(names.prefix(10).joined(separator: ", "))"
        case .missingNames(let names):
            "missing parameters: \(names.prefix(10).joined(separator: ", "))"
        case .shapeMismatch(let name, let expected, let got):
            "parameter \(name) has shape \(got), expected \(expected)"
        }
    }
}

extension Module {
    public var children: [String: any Module] { [:] }

    /// Every parameter of the tree under its dotted name.
    public func parameters() -> [String: Tensor] {
        var result = ownParameters
        for (childName, child) in children {
            for (name, tensor) in child.parameters() { result["\(childName).\(name)"] = tensor }
        }
        return result
    }

    /// Replaces parameters by dotted name, checking names and shapes first so a bad checkpoint
    /// changes nothing.
    /// - Parameter strict: also require every parameter of the module to be given.
    public func update(parameters new: [String: Tensor], strict: Bool = false) throws {
        let current = parameters()
        let unknown = new.keys.filter { current[$0] == nil }.sorted()
        guard unknown.isEmpty else { throw ParameterError.unknownNames(unknown) }
        if strict {
            let missing = current.keys.filter { new[$0] == nil }.sorted()
            guard missing.isEmpty else { throw ParameterError.missingNames(missing) }
        }
        for (name, tensor) in new.sorted(by: { $0.key < $1.key }) {
            let expected = current[name]?.shape ?? []
            guard tensor.shape == expected else {
                throw ParameterError.shapeMismatch(name: name, expected: expected, got: tensor.shape)
            }
        }
        apply(new, prefix: "")
    }

    private func apply(_ values: [String: Tensor], prefix: String) {
        for name in ownParameters.keys {
            if let value = values[prefix + name] { setOwnParameter(name, value) }
        }
        for (childName, child) in children { child.apply(values, prefix: "\(prefix)\(childName).") }
    }

    /// The number of scalar parameters.
    public var parameterCount: Int { parameters().values.reduce(0) { $0 + $1.size } }
}

import CMLXShim

/// A Swift function of tensors that MLX can call while tracing a transform.
final class FunctionBox {
    let function: ([Tensor]) -> [Tensor]
    init(_ function: @escaping ([Tensor]) -> [Tensor]) { self.function = function }

    /// Calls `body` with the C callback and context that stand for this box.
    func withCallback<R>(_ body: (tmx_function, UnsafeMutableRawPointer) -> R) -> R {
        withExtendedLifetime(self) {
            body(functionTrampoline, Unmanaged.passUnretained(self).toOpaque())
        }
    }
}

/// The C entry point that MLX calls for a ``FunctionBox``.
let functionTrampoline: tmx_function = { context, inputs, outputs in
    guard let context, let inputs, let outputs else { return 1 }
    let box = Unmanaged<FunctionBox>.fromOpaque(context).takeUnretainedValue()
    for result in box.function(tensors(in: inputs)) {
        withExtendedLifetime(result) { tmx_vec_push(outputs, result.handle) }
    }
    return 0
}

typealias ShimTransform = (
    tmx_function?, UnsafeMutableRawPointer?, tmx_vec?, tmx_vec?, tmx_vec?, tmx_vec?
) -> Int32

/// Runs a shim transform that maps (f, primals, seeds) to (outputs of f, products).
func applyTransform(
    _ name: String, _ transform: ShimTransform, _ f: ([Tensor]) -> [Tensor], primals: [Tensor],
    seeds: [Tensor]
) -> (outputs: [Tensor], products: [Tensor]) {
    withoutActuallyEscaping(f) { f in
        FunctionBox(f).withCallback { callback, context in
            withTensorVector(primals) { primals in
                withTensorVector(seeds) { seeds in
                    withTensorVector { outputs in
                        withTensorVector { products in
                            if transform(callback, context, primals, seeds, outputs, products) != 0 {
                                opFailed(name)
                            }
                            return (tensors(in: outputs), tensors(in: products))
                        }
                    }
                }
            }
        }
    }
}

/// Vector-Jacobian product: the outputs of `f` at `primals` and Σ cotangentᵀ · ∂output/∂primal.
/// - Returns: `outputs` of f and one `vjps` entry per primal.
public func vjp(
    _ f: ([Tensor]) -> [Tensor], primals: [Tensor], cotangents: [Tensor]
) -> (outputs: [Tensor], vjps: [Tensor]) {
    let result = applyTransform("vjp", tmx_vjp, f, primals: primals, seeds: cotangents)
    return (result.outputs, result.products)
}

/// Jacobian-vector product: the outputs of `f` at `primals` and ∂output/∂primal · tangent.
public func jvp(
    _ f: ([Tensor]) -> [Tensor], primals: [Tensor], tangents: [Tensor]
) -> (outputs: [Tensor], jvps: [Tensor]) {
    let result = applyTransform("jvp", tmx_jvp, f, primals: primals, seeds: tangents)
    return (result.outputs, result.products)
}

/// The outputs of `f` and the gradient of its first output (a scalar) with respect to the inputs
/// at `argumentNumbers` (default: all of them). Later outputs ride along undifferentiated (metrics).
public func valueAndGrad(
    _ f: @escaping ([Tensor]) -> [Tensor], argumentNumbers: [Int]? = nil
) -> ([Tensor]) -> (values: [Tensor], gradients: [Tensor]) {
    let box = FunctionBox(f)
    return { inputs in
        let arguments = argumentNumbers ?? Array(inputs.indices)
        return box.withCallback { callback, context in
            withCInts(arguments) { numbers, count in
                withTensorVector(inputs) { inputs in
                    withTensorVector { values in
                        withTensorVector { gradients in
                            let status = tmx_value_and_grad(
                                callback, context, inputs, numbers, count, values, gradients)
                            if status != 0 { opFailed("valueAndGrad") }
                            return (tensors(in: values), tensors(in: gradients))
                        }
                    }
                }
            }
        }
    }
}

/// The scalar value of `f` and its gradient with respect to every input.
public func valueAndGrad(
    _ f: @escaping ([Tensor]) -> Tensor
) -> ([Tensor]) -> (value: Tensor, gradients: [Tensor]) {
    let general = valueAndGrad({ [f($0)] })
    return { inputs in
        let (values, gradients) = general(inputs)
        return (values.first ?? Tensor.placeholder(), gradients)
    }
}

/// The gradient of the scalar `f` with respect to every input.
public func grad(_ f: @escaping ([Tensor]) -> Tensor) -> ([Tensor]) -> [Tensor] {
    let general = valueAndGrad(f)
    return { general($0).gradients }
}

/// The scalar value of `f` over named tensors (a parameter tree) and its gradient for every name.
public func valueAndGrad(
    _ f: @escaping ([String: Tensor]) -> Tensor
) -> ([String: Tensor]) -> (value: Tensor, gradients: [String: Tensor]) {
    return { parameters in
        let names = parameters.keys.sorted()
        let flat = valueAndGrad { (tensors: [Tensor]) -> Tensor in
            f(Dictionary(uniqueKeysWithValues: zip(names, tensors)))
        }
        let (value, gradients) = flat(names.map { parameters[$0] ?? Tensor.placeholder() })
        return (value, Dictionary(uniqueKeysWithValues: zip(names, gradients)))
    }
}

/// The gradient of the scalar `f` for every name of a parameter tree.
public func grad(
    _ f: @escaping ([String: Tensor]) -> Tensor
) -> ([String: Tensor]) -> [String: Tensor] {
    let general = valueAndGrad(f)
    return { general($0).gradients }
}

/// A compiled function and the Swift closure it traces.
final class CompiledFunction {
    let closure: tmx_closure

    /// A checkpointed function: outputs are recomputed in the backward pass instead of kept.
    init?(checkpointing f: @escaping ([Tensor]) -> [Tensor]) {
        let context = Unmanaged.passRetained(FunctionBox(f)).toOpaque()
        var made: tmx_closure?
        // On failure the shim has already released the context.
        let status = tmx_checkpoint(&made, functionTrampoline, context) { context in
            if let context { Unmanaged<FunctionBox>.fromOpaque(context).release() }
        }
        guard status == 0, let made else { return nil }
        closure = made
    }

    init?(_ f: @escaping ([Tensor]) -> [Tensor], shapeless: Bool) {
        let context = Unmanaged.passRetained(FunctionBox(f)).toOpaque()
        var compiled: tmx_closure?
        let status = tmx_compile(&compiled, functionTrampoline, context, { context in
            if let context { Unmanaged<FunctionBox>.fromOpaque(context).release() }
        }, shapeless)
        guard status == 0, let compiled else {
            Unmanaged<FunctionBox>.fromOpaque(context).release()
            return nil
        }
        closure = compiled
    }

    deinit { tmx_closure_free(closure) }

    func callAsFunction(_ inputs: [Tensor]) -> [Tensor] {
        withTensorVector(inputs) { inputs in
            withTensorVector { outputs in
                if tmx_closure_apply(closure, inputs, outputs) != 0 { opFailed("compiled function") }
                return tensors(in: outputs)
            }
        }
    }
}

/// Compiles a pure function of tensors: MLX traces it once per input shape (or once, when
/// `shapeless`) and fuses elementwise chains. `f` must not depend on values outside its inputs.
public func compile(
    shapeless: Bool = false, _ f: @escaping ([Tensor]) -> [Tensor]
) -> ([Tensor]) -> [Tensor] {
    guard let compiled = CompiledFunction(f, shapeless: shapeless) else {
        opFailed("compile")
        return f
    }
    return { compiled($0) }
}

/// Gradient checkpointing (Chen et al. 2016): `f`'s intermediate values are not kept for the
/// backward pass but recomputed from its inputs, trading compute for memory. Gradients flow to
/// `f`'s inputs only, so pass every differentiated tensor in.
public func checkpoint(_ f: @escaping ([Tensor]) -> [Tensor]) -> ([Tensor]) -> [Tensor] {
    guard let checkpointed = CompiledFunction(checkpointing: f) else {
        opFailed("checkpoint")
        return f
    }
    return { checkpointed($0) }
}

/// Turns MLX's compilation on or off for the whole process (off: compiled functions run as traced).
public func setCompileEnabled(_ enabled: Bool) { tmx_set_compile_enabled(enabled) }

import CMLXShim
import Synchronization

/// A failure reported by MLX, with MLX's own message and the Temper operation that called it.
public struct MLXError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    public let message: String

    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }
}

/// Collects op failures inside a ``withErrorHandling(_:)`` scope.
final class ErrorSink: Sendable {
    @TaskLocal static var current: ErrorSink?
    private let errors = Mutex<[MLXError]>([])

    func record(_ error: MLXError) { errors.withLock { $0.append(error) } }
    var first: MLXError? { errors.withLock { $0.first } }
}

/// Runs `body` so that a failing tensor op throws instead of trapping.
///
/// Error policy: by default, misuse of an op (a matmul shape mismatch, an axis out of range) stops the
/// program with MLX's message, like a failed `precondition`, because it is a programming error.
/// Inside this scope the failing op returns a placeholder scalar and the scope throws the first
/// failure when `body` returns, as mlx-swift's `withError` does. Everything fed by files or requests
/// (loading, saving, parsing) always throws, in or out of this scope.
/// - Throws: the first ``MLXError`` raised by an op in `body`, or what `body` throws.
public func withErrorHandling<R>(_ body: () throws -> R) throws -> R {
    let sink = ErrorSink()
    // Failures of lazy evaluation surface from the eval or read-back calls inside `body`.
    let result = try ErrorSink.$current.withValue(sink) { try body() }
    if let error = sink.first { throw error }
    return result
}

/// Async variant of ``withErrorHandling(_:)``.
public func withErrorHandling<R>(_ body: () async throws -> R) async throws -> R {
    let sink = ErrorSink()
    let result = try await ErrorSink.$current.withValue(sink) { try await body() }
    if let error = sink.first { throw error }
    return result
}

/// The message of the last shim failure on this thread.
func lastShimError() -> String { String(cString: tmx_last_error()) }

/// Applies the error policy to a failed op.
func opFailed(_ operation: String) {
    let error = MLXError(operation: operation, message: lastShimError())
    if let sink = ErrorSink.current {
        sink.record(error)
    } else {
        preconditionFailure("MLX error in \(error.operation): \(error.message)")
    }
}

/// Calls a shim function that produces one array, applying the op error policy.
func makeTensor(_ operation: String, _ body: (UnsafeMutablePointer<tmx_array?>) -> Int32) -> Tensor {
    var out: tmx_array?
    guard body(&out) == 0, let handle = out else {
        opFailed(operation)
        return Tensor.placeholder()
    }
    return Tensor(handle: handle)
}

/// Calls a shim function and throws its failure; for file and request boundaries.
func checked(_ operation: String, _ status: Int32) throws(MLXError) {
    if status != 0 { throw MLXError(operation: operation, message: lastShimError()) }
}

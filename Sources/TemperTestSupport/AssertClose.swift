import Foundation
import TemperCore
import Testing

/// Absolute and relative tolerance for comparing floating-point tensors.
public struct Tolerance: Sendable, CustomStringConvertible {
    public var absolute: Double
    public var relative: Double

    public init(absolute: Double, relative: Double) {
        self.absolute = absolute
        self.relative = relative
    }

    /// Per-dtype defaults, never derived from the values compared.
    public static func forDType(_ dtype: DType) -> Tolerance {
        switch dtype {
        case .float64: Tolerance(absolute: 1e-10, relative: 1e-9)
        case .float16: Tolerance(absolute: 1e-3, relative: 1e-3)
        case .bfloat16: Tolerance(absolute: 1e-2, relative: 1e-2)
        default: Tolerance(absolute: 1e-5, relative: 1e-4)
        }
    }

    public var description: String { "atol \(absolute), rtol \(relative)" }
}

/// What differs between two tensors, or nil when they agree: shape and dtype first, then
/// the largest difference, its index and the first five differing pairs.
public func closenessReport(
    _ got: Tensor, _ want: Tensor, tolerance: Tolerance? = nil, checkDType: Bool = true
) -> String? {
    guard got.shape == want.shape else { return "shape \(got.shape) != expected \(want.shape)" }
    if checkDType && got.dtype != want.dtype { return "dtype \(got.dtype) != expected \(want.dtype)" }
    let tolerance = tolerance ?? .forDType(want.dtype)
    let a = got.toArray(Double.self)
    let b = want.toArray(Double.self)
    var worst = 0.0
    var worstIndex = -1
    var mismatches: [String] = []
    for i in a.indices {
        let difference = Swift.abs(a[i] - b[i])
        let bothNaN = a[i].isNaN && b[i].isNaN
        let sameInfinity = a[i].isInfinite && a[i] == b[i]
        if bothNaN || sameInfinity { continue }
        if !(difference <= tolerance.absolute + tolerance.relative * Swift.abs(b[i])) {
            if mismatches.count < 5 { mismatches.append("[\(i)] \(a[i]) vs \(b[i])") }
            if !(difference <= worst) {
                worst = difference
                worstIndex = i
            }
        }
    }
    guard !mismatches.isEmpty else { return nil }
    return "max |diff| \(worst) at flat index \(worstIndex) (\(tolerance)); first mismatches: "
        + mismatches.joined(separator: ", ")
}

/// Records a test issue when `got` and `want` differ beyond `tolerance`.
public func assertClose(
    _ got: Tensor, _ want: Tensor, tolerance: Tolerance? = nil, checkDType: Bool = true,
    _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    if let report = closenessReport(got, want, tolerance: tolerance, checkDType: checkDType) {
        Issue.record("\(label.isEmpty ? "" : label + ": ")\(report)", sourceLocation: sourceLocation)
    }
}

/// Compares a tensor with expected values given as a Swift array (shape checked too).
public func assertClose(
    _ got: Tensor, _ want: [Double], shape: [Int]? = nil, tolerance: Tolerance? = nil,
    _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    let expected = Tensor(want, shape: shape ?? got.shape).asType(got.dtype == .float64 ? .float64 : .float32)
    assertClose(
        got, expected, tolerance: tolerance ?? .forDType(got.dtype), checkDType: false, label,
        sourceLocation: sourceLocation)
}

/// A fresh temporary folder, removed by the caller.
public func makeTemporaryDirectory(_ name: String = "temper-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

import Foundation
import TemperCore

/// Data parallelism over MLX's process group (`temper launch`): every rank runs the same step on its
/// rows of the global batch, and the step's sums (its weight, loss, metrics and gradients) are summed
/// across ranks before the optimizer, so every rank takes the same update and N ranks × batch b
/// train as one process with batch N·b. Tensors travel in fused buckets: one all_sum per bucket of
/// up to ``bucketBytes``, not one per tensor.
public struct DataParallel: Sendable {
    public let group: Distributed.Group
    public var bucketBytes: Int
    /// Seconds a collective may wait for the other ranks before this rank gives up and exits (a
    /// peer that hung: stopped, deadlocked, or its machine silent), so that the launcher stops the
    /// job; nil waits as long as it takes. `temper launch --collective-timeout` sets it.
    public var collectiveTimeout: Double?

    public init(group: Distributed.Group, bucketBytes: Int = 32 << 20, collectiveTimeout: Double? = nil) {
        self.group = group
        self.bucketBytes = bucketBytes
        self.collectiveTimeout = collectiveTimeout
    }

    /// Whether `temper launch` (or `mpirun`) started this process as one of several ranks.
    public static var isLaunched: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["MLX_HOSTFILE"] != nil || environment["OMPI_COMM_WORLD_SIZE"] != nil
            || Int(environment["TEMPER_WORLD_SIZE"] ?? "1").map { $0 > 1 } == true
    }

    /// The group `temper launch` (or `mpirun`) started this process in; nil when it runs alone.
    public static func fromEnvironment() throws -> DataParallel? {
        guard isLaunched else { return nil }
        let group: Distributed.Group
        do {
            group = try Distributed.join(backend: "any", strict: true)
        } catch {
            // MLX opens "libmpi.so", the development package's name for the library.
            if ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil, dlopen("libmpi.so", RTLD_LAZY) == nil {
                throw TrainingError.cannotJoin(
                    reason: "started by mpirun, but MLX's MPI backend cannot open libmpi.so: install libopenmpi-dev, or put a libmpi.so link to the runtime's libmpi.so.40 on LD_LIBRARY_PATH (mpirun -x LD_LIBRARY_PATH)")
            }
            throw TrainingError.cannotJoin(reason: "\(error)")
        }
        let timeout = ProcessInfo.processInfo.environment["TEMPER_COLLECTIVE_TIMEOUT"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
        return group.size > 1 ? DataParallel(group: group, collectiveTimeout: timeout) : nil
    }

    /// Evaluates a collective under the hang watchdog.
    func watched<T>(_ collective: () -> T) -> T {
        guard let collectiveTimeout else { return collective() }
        CollectiveWatchdog.shared.begin(timeout: collectiveTimeout, rank: group.rank)
        defer { CollectiveWatchdog.shared.end() }
        return collective()
    }

    /// An integer summed over the ranks.
    public func sum(_ value: Int) -> Int { sum([value])[0] }

    /// Integers summed over the ranks, in one collective.
    public func sum(_ values: [Int]) -> [Int] {
        watched { Distributed.allSum(Tensor(values.map { Int32($0) }, shape: [values.count])).toArray(Int32.self) }.map { Int($0) }
    }

    /// Every rank's `values` (each rank passing as many) concatenated in rank order: an all-gather
    /// made of one all_sum, each rank's 64-bit words at its own offset and zeros elsewhere, which
    /// sums exactly (bit patterns travel as int32 halves).
    public func gather(_ values: [UInt64]) -> [UInt64] {
        var words = [Int32](repeating: 0, count: values.count * 2 * group.size)
        let offset = values.count * 2 * group.rank
        for (index, value) in values.enumerated() {
            words[offset + 2 * index] = Int32(bitPattern: UInt32(truncatingIfNeeded: value))
            words[offset + 2 * index + 1] = Int32(bitPattern: UInt32(truncatingIfNeeded: value >> 32))
        }
        let summed = watched { Distributed.allSum(Tensor(words, shape: [words.count])).toArray(Int32.self) }
        return (0..<(values.count * group.size)).map {
            UInt64(UInt32(bitPattern: summed[2 * $0])) | UInt64(UInt32(bitPattern: summed[2 * $0 + 1])) << 32
        }
    }

    /// Every rank's doubles in rank order, bit for bit (NaN included).
    public func gather(_ values: [Double]) -> [Double] { gather(values.map(\.bitPattern)).map(Double.init(bitPattern:)) }

    /// Every rank's integers in rank order.
    public func gather(_ values: [Int]) -> [Int] { gather(values.map { UInt64(bitPattern: Int64($0)) }).map { Int(Int64(bitPattern: $0)) } }

    /// Float32 tensors summed over the ranks, each returned in its own shape; concatenated flat into
    /// buckets of at most ``bucketBytes`` (a larger tensor is a bucket of its own).
    public func sum(_ tensors: [Tensor]) -> [Tensor] {
        var result: [Tensor] = []
        result.reserveCapacity(tensors.count)
        var bucket: [Tensor] = [], bytes = 0
        func flush() {
            guard !bucket.isEmpty else { return }
            let summed = Distributed.allSum(Tensor.concatenated(bucket.map { $0.asType(.float32).reshaped(-1) }, axis: 0))
            watched { eval(summed) }
            var offset = 0
            for tensor in bucket {
                result.append(summed.sliced(start: [offset], stop: [offset + tensor.size]).reshaped(tensor.shape).asType(tensor.dtype))
                offset += tensor.size
            }
            bucket = []
            bytes = 0
        }
        for tensor in tensors {
            if bytes > 0, bytes + tensor.size * 4 > bucketBytes { flush() }
            bucket.append(tensor)
            bytes += tensor.size * 4
        }
        flush()
        return result
    }

    /// The bytes each rank sends per step for `gradientBytes` of gradients (a ring all-reduce sends
    /// 2 (n − 1) / n of the buffer).
    public func bytesSentPerStep(gradientBytes: Int) -> Int {
        gradientBytes * 2 * (group.size - 1) / group.size
    }
}

/// Ends this rank when a collective has waited past its timeout: MLX's collectives block in a
/// socket read with no deadline of their own, so a watching thread is the only way out.
final class CollectiveWatchdog: @unchecked Sendable {
    static let shared = CollectiveWatchdog()
    private let lock = NSLock()
    private var pending: (deadline: Date, timeout: Double, rank: Int)?
    private var watching = false

    func begin(timeout: Double, rank: Int) {
        lock.lock()
        defer { lock.unlock() }
        pending = (Date().addingTimeInterval(timeout), timeout, rank)
        guard !watching else { return }
        watching = true
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                lock.lock()
                let overdue = pending.flatMap { Date() > $0.deadline ? $0 : nil }
                lock.unlock()
                guard let overdue else { continue }
                FileHandle.standardError.write(Data(
                    "rank \(overdue.rank): a collective waited \(Int(overdue.timeout)) s for the other ranks; one of them hung or died: stopping\n".utf8))
                _exit(1)
            }
        }
    }

    func end() {
        lock.lock()
        pending = nil
        lock.unlock()
    }
}

import Foundation
import CMLXShim

/// MLX's allocator statistics and limits, in bytes.
public enum Memory {
    /// Bytes held by live arrays.
    public static var activeBytes: Int { Int(tmx_active_memory()) }
    /// The highest `activeBytes` since start or the last ``resetPeak()``.
    public static var peakBytes: Int { Int(tmx_peak_memory()) }
    /// Bytes freed by arrays but kept by the allocator for reuse.
    public static var cacheBytes: Int { Int(tmx_cache_memory()) }

    public static func resetPeak() { tmx_reset_peak_memory() }

    /// Caps the reuse cache; returns the previous cap.
    @discardableResult
    public static func setCacheLimit(_ bytes: Int) -> Int { Int(tmx_set_cache_limit(bytes)) }

    /// Sets a soft limit on total memory; returns the previous limit.
    @discardableResult
    public static func setMemoryLimit(_ bytes: Int) -> Int { Int(tmx_set_memory_limit(bytes)) }

    /// Returns cached buffers to the system.
    public static func clearCache() { tmx_clear_cache() }
}

/// Where computations run.
public enum Device: Sendable, Equatable {
    case cpu, gpu

    /// The device new operations run on.
    public static var current: Device { tmx_default_device() == 1 ? .gpu : .cpu }

    /// Whether this build of MLX has a usable GPU (CUDA or Metal).
    public static var gpuIsAvailable: Bool { tmx_gpu_is_available() }

    /// Makes `device` the default for new operations.
    public static func setDefault(_ device: Device) throws(MLXError) {
        try checked("Device.setDefault(\(device))", tmx_set_default_device(device == .gpu ? 1 : 0))
    }
}

/// A process's CPU time and memory as the kernel counts them, from /proc (Linux; nil elsewhere or
/// when the process is gone).
public enum ProcessUsage {
    /// The fields of /proc/PID/stat after the command's closing parenthesis: index 0 is field 3
    /// (state), 1 the parent's pid, 11…14 utime, stime, cutime and cstime in clock ticks.
    static func statFields(of pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat).
    public static func cpuTicks(of pid: Int32) -> Double? {
        guard let fields = statFields(of: pid), fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            return nil
        }
        return user + system
    }

    /// CPU ticks and resident bytes of `pid` and every live descendant, so that a job running as
    /// several processes (`temper launch`'s ranks) is measured whole. Each process counts its own
    /// ticks and its reaped children's (utime + stime + cutime + cstime), so an exiting child's ticks
    /// move to its parent rather than vanish.
    public static func treeUsage(of pid: Int32) -> (cpuTicks: Double, residentBytes: Int)? {
        var children: [Int32: [Int32]] = [:], ticks: [Int32: Double] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let id = Int32(entry), let fields = statFields(of: id), fields.count > 14, let parent = Int32(fields[1]) else { continue }
            children[parent, default: []].append(id)
            ticks[id] = fields[11...14].compactMap { Double($0) }.reduce(0, +)
        }
        guard ticks[pid] != nil else { return nil }
        var tree = [pid], index = 0
        while index < tree.count {
            tree += children[tree[index]] ?? []
            index += 1
        }
        return (tree.compactMap { ticks[$0] }.reduce(0, +), tree.compactMap { statusBytes("VmRSS", of: $0) }.reduce(0, +))
    }

    /// Clock ticks per second, the unit of ``cpuTicks(of:)`` and ``treeUsage(of:)``.
    public static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    /// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, …) in bytes.
    public static func statusBytes(_ field: String, of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }
}

/// The process's resident set as the kernel counts it (what `ps` and the peers' `ru_maxrss`
/// report), with a resettable peak so one phase of a run can be measured on its own.
public enum ResidentMemory {
    /// Starts a new peak at the current resident set (Linux: writes 5 to /proc/self/clear_refs).
    /// Returns false where the kernel does not support it; the peak then covers the whole process.
    @discardableResult
    public static func resetPeak() -> Bool {
        #if os(Linux)
        guard let file = fopen("/proc/self/clear_refs", "w") else { return false }
        defer { fclose(file) }
        return fputs("5", file) >= 0 && fflush(file) == 0
        #else
        return false
        #endif
    }

    /// The peak resident set in bytes since start or the last ``resetPeak()`` (VmHWM).
    public static var peakBytes: Int { ProcessUsage.statusBytes("VmHWM", of: getpid()) ?? 0 }

    /// glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mmap and
    /// unmaps it on free, so each vocabulary-wide tensor (1024 × 49152 floats is 201 MB) costs one
    /// page fault per 4 KiB page every time an op writes it: half of a softmax's time at that size.
    /// After this call every block comes from the heap and freed pages stay mapped for the next
    /// tensor of that size. Peak RSS is unchanged; the resident set just no longer shrinks after a
    /// peak until ``returnFreedPages()``. The `temper` binary calls this at start.
    public static func keepFreedPagesMapped() {
        // -4 is M_MMAP_MAX and -1 M_TRIM_THRESHOLD in malloc.h.
        guard let mallopt = glibcFunction("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self) else { return }
        _ = mallopt(-4, 0)
        _ = mallopt(-1, Int32.max)
    }

    /// Undoes ``keepFreedPagesMapped()``: glibc's defaults again (large blocks from mmap, returned
    /// on free; the heap trimmed above 128 KiB), and the pages freed so far handed back. For runs
    /// that trade speed for memory.
    public static func returnFreedPagesPromptly() {
        guard let mallopt = glibcFunction("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self) else { return }
        _ = mallopt(-4, 65536)  // M_MMAP_MAX's default
        _ = mallopt(-1, 128 * 1024)  // M_TRIM_THRESHOLD's default
        returnFreedPages()
    }

    /// Hands the heap's free pages back to the kernel (before another process needs the memory).
    public static func returnFreedPages() {
        guard let trim = glibcFunction("malloc_trim", as: (@convention(c) (Int) -> Int32).self) else { return }
        _ = trim(0)
    }

    /// Glibc's Swift module omits malloc.h, so its tuning functions are looked up by name.
    private static func glibcFunction<F>(_ name: String, as type: F.Type) -> F? {
        #if os(Linux)
        guard let symbol = dlsym(nil, name) else { return nil }  // nil: RTLD_DEFAULT
        return unsafeBitCast(symbol, to: type)
        #else
        return nil
        #endif
    }
}

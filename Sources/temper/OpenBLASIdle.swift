import Foundation

/// OpenBLAS's worker threads spin on sched_yield for about 2^28 cycles after each product before
/// they sleep. In a training step the products alternate with Temper's own multi-threaded kernels
/// and MLX's ops, so the spinning thread keeps taking a core from them (a LoRA step on two cores
/// ran 10-15% slower). OpenBLAS reads OPENBLAS_THREAD_TIMEOUT only when it loads, so the process
/// re-executes itself once with the shortest timeout (2^4 cycles); a value already set is kept.
enum OpenBLASIdle {
    static func sleepWhenIdle() {
        #if os(Linux)
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        // The resolved path keeps the process named after the binary (ps, top) rather than "exe".
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe"
        execv(path, CommandLine.unsafeArgv)
        // Only reached when exec failed: carry on with OpenBLAS's default.
        #endif
    }
}

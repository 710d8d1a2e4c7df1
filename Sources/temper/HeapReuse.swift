#if os(Linux)
import Glibc
#endif

/// glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps
/// it on free, so each vocabulary-wide tensor (1024 × 49152 floats is 201 MB) costs one page fault
/// per 4 KiB page every time an op writes it: half of a softmax's time at that size. Serving
/// everything from the heap and keeping freed memory mapped lets the next tensor of that size reuse
/// the pages. Peak RSS is unchanged (freed pages were already counted at their peak); the process
/// just does not hand them back before it exits.
enum HeapReuse {
    static func keepFreedPagesMapped() {
        #if os(Linux)
        // Glibc's Swift module omits malloc.h, so mallopt is looked up; -4 is M_MMAP_MAX and -1
        // M_TRIM_THRESHOLD there.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }  // nil: RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-4, 0)
        _ = mallopt(-1, Int32.max)
        #endif
    }
}

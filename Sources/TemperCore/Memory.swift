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

import ArgumentParser
import TemperCore

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Show the compute backend and memory statistics.")

    func run() throws {
        print("device: \(Device.current == .gpu ? "gpu" : "cpu")")
        print("gpu available: \(Device.gpuIsAvailable)")
        print("OpenBLAS kernels: \(Kernels.openBLASCore)")
        print("kernel threads: \(Kernels.threadCount)")
        print("active memory: \(Memory.activeBytes) bytes, peak \(Memory.peakBytes), cache \(Memory.cacheBytes)")
    }
}

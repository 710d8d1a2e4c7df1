import Foundation
import TemperCore

/// CPU time spent on this machine by processes other than the benchmark's own (this process and
/// its peer), read from /proc, so that steps measured while something else ran can be dropped.
struct ContentionMeter {
    var peerProcess: Int32?
    private var start: (busy: Double, own: Double, wall: Double) = (0, 0, 0)

    init(peerProcess: Int32? = nil) { self.peerProcess = peerProcess }

    mutating func begin() { start = sample() }

    /// Cores' worth of CPU that other processes used since `begin()` (0 = quiet, 1 = a full core).
    func otherCores() -> Double {
        let now = sample()
        let seconds = now.wall - start.wall
        guard seconds > 0 else { return 0 }
        return max(0, (now.busy - start.busy) - (now.own - start.own)) / seconds
    }

    /// Runs `body` and returns the cores' worth of CPU the peer used meanwhile: an idle peer whose
    /// thread pool keeps spinning after its own turn takes cores from ours, which `otherCores()`
    /// (counting the peer as the benchmark's own) cannot see.
    func peerCores<T>(during body: () throws -> T) rethrows -> (result: T, cores: Double) {
        guard let peerProcess else { return (try body(), 0) }
        let ticks = ProcessUsage.ticksPerSecond
        let (before, start) = (Self.processTicks(peerProcess), Date())
        let result = try body()
        let seconds = Date().timeIntervalSince(start)
        return (result, seconds > 0 ? (Self.processTicks(peerProcess) - before) / ticks / seconds : 0)
    }

    /// Also count this process's finished children as its own (a peer run as a child process
    /// that has exited and been reaped no longer shows in /proc).
    var countsReapedChildren = false

    private func sample() -> (busy: Double, own: Double, wall: Double) {
        let ticks = ProcessUsage.ticksPerSecond
        var own = Self.processTicks(getpid()) + (peerProcess.map(Self.processTicks) ?? 0)
        if countsReapedChildren {
            var usage = rusage()
            getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
            let seconds = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            own += seconds * ticks
        }
        return (Self.busyTicks() / ticks, own / ticks, Date().timeIntervalSince1970)
    }

    /// Busy ticks of all CPUs: the first line of /proc/stat less idle and iowait.
    private static func busyTicks() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first
        else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return 0 }
        return fields.reduce(0, +) - fields[3] - fields[4]
    }

    /// utime + stime of a process; 0 once it is gone.
    private static func processTicks(_ pid: Int32) -> Double { ProcessUsage.cpuTicks(of: pid) ?? 0 }
}

/// The median of a non-empty list.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Runs a benchmark's child process to the end (its stderr passed through), measuring other
/// processes' CPU use meanwhile; returns its last stdout line.
func runChild(_ executable: URL, _ arguments: [String]) throws -> (line: Data, otherCores: Double) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    var meter = ContentionMeter()
    meter.countsReapedChildren = true
    meter.begin()
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let others = meter.otherCores()
    guard process.terminationStatus == 0,
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last
    else { throw BenchmarkError.peer("\(executable.lastPathComponent) \(arguments.first ?? "") exited with \(process.terminationStatus)") }
    return (Data(line.utf8), others)
}

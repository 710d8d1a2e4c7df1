import ArgumentParser
import Foundation
import TemperCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run fixed workloads and report speed.",
        subcommands: [MatmulBench.self]
    )
}

struct MatmulBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matmul",
        abstract: "f32 GFLOPS of an N×N×N matrix product (median of the timed runs after warm-up).")

    @Option(help: "Matrix size N.") var size: Int = 2048
    @Option(help: "Timed runs.") var runs: Int = 5
    @Option(help: "Untimed warm-up runs.") var warmup: Int = 2
    @Flag(help: "Print one JSON object on one line.") var json = false

    func validate() throws {
        guard size > 0 else { throw ValidationError("--size must be positive, got \(size)") }
        guard runs > 0 else { throw ValidationError("--runs must be positive, got \(runs)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
    }

    func run() throws {
        let result = MatmulBenchmark(size: size, runs: runs, warmup: warmup).run()
        if json {
            print(result.jsonLine())
        } else {
            print(result.summary())
        }
    }
}

import Foundation
import TemperCore

/// Times an N×N×N f32 matrix product: `warmup` untimed runs, then the median of `runs`.
public struct MatmulBenchmark: Sendable {
    public var size: Int
    public var runs: Int
    public var warmup: Int

    public init(size: Int = 2048, runs: Int = 5, warmup: Int = 2) {
        self.size = size
        self.runs = runs
        self.warmup = warmup
    }

    public struct Result: Sendable, Codable, Equatable {
        public var size: Int
        public var seconds: [Double]
        public var medianSeconds: Double
        public var gflops: Double

        public func summary() -> String {
            String(
                format: "matmul f32 %dx%dx%d: %.1f GFLOPS (median %.2f ms of %d runs)", size, size, size,
                gflops, medianSeconds * 1000, seconds.count)
        }

        public func jsonLine() -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = (try? encoder.encode(self)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    public func run() -> Result {
        let key = Random.key(0)
        let keys = Random.split(key)
        let a = Random.normal([size, size], key: keys[0])
        let b = Random.normal([size, size], key: keys[1])
        eval(a, b)
        var times: [Double] = []
        for iteration in 0..<(warmup + runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            eval(a.matmul(b))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if iteration >= warmup { times.append(seconds) }
        }
        let middle = median(times)
        let flops = 2 * Double(size) * Double(size) * Double(size)
        return Result(size: size, seconds: times, medianSeconds: middle, gflops: flops / middle / 1e9)
    }
}

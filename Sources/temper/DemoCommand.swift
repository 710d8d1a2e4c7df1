import ArgumentParser
import TemperCore
import TemperNN

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Fit a small model by gradient descent to show tensors and autodiff at work.")

    @Option(help: "Gradient steps.") var steps: Int = 200
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        print(AutodiffDemo(steps: steps, seed: seed).run())
    }
}

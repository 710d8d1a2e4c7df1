import ArgumentParser
import Foundation
import TemperCore

@main
struct Temper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "temper",
        abstract: "Post-training for large language models: SFT, LoRA/QLoRA, DPO, GRPO.",
        version: "0.1.0",
        subcommands: [
            SFTCommand.self, DPOCommand.self, GRPOCommand.self, MergeCommand.self, ConvertCommand.self, TokenizeCommand.self,
            GenerateCommand.self, ChatCommand.self, ScoreCommand.self, ServeCommand.self,
            EvalCommand.self, CompressCommand.self, GalleryCommand.self, LaunchCommand.self, BenchCommand.self, DemoCommand.self, InfoCommand.self,
        ]
    )

    /// Usage errors (unknown flag, bad value) exit with 2, the POSIX convention, rather than
    /// ArgumentParser's 64; other failures exit with 1 and help/version with 0.
    static func main() {
        OpenBLASIdle.sleepWhenIdle()
        ResidentMemory.keepFreedPagesMapped()
        LaunchCommand.writeHostFileFromEnvironment()
        LaunchCommand.followLauncherControl()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

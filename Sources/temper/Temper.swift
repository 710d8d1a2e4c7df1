import ArgumentParser

@main
struct Temper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "temper",
        abstract: "Post-training for large language models: SFT, LoRA/QLoRA, DPO, GRPO.",
        version: "0.1.0",
        subcommands: [BenchCommand.self, DemoCommand.self, InfoCommand.self]
    )
}

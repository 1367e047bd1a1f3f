import ArgumentParser

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Data-parallel ResNet/ResNeXt training on CPU clusters over Open MPI.",
        version: dtrainVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, ImportCommand.self, ExportCommand.self, ModelsCommand.self, BenchCommand.self,
                      BenchDataCommand.self, StatsCommand.self, DatasetCommand.self, SelfTestCollectives.self, SelfTestSyncBN.self],
        defaultSubcommand: TrainCommand.self)

    /// `--resume` takes an optional path: given alone (at the end, or before another flag) it
    /// means the output directory's checkpoint-last, spelled `--resume-last` for the parser.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        for i in arguments.indices where arguments[i] == "--resume" {
            if i + 1 == arguments.count || arguments[i + 1].hasPrefix("-") { arguments[i] = "--resume-last" }
        }
        main(arguments)
    }
}

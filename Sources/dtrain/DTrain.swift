import ArgumentParser

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Data-parallel ResNet/ResNeXt training on CPU clusters over Open MPI.",
        version: dtrainVersion,
        subcommands: [SelfTestCollectives.self])
}

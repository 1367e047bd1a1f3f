import ArgumentParser
import Foundation
import DTrainCore
import DTrainTraining
import DTrainWeights

/// `dtrain export`: a checkpoint's model tensors as a .pth (torch.save's format) or safetensors.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's model tensors (no optimizer state) as a .pth for torch.load or as safetensors.",
        discussion: """
            The .pth is torch.save's zip format; in PyTorch:
              model = torchvision.models.resnet34(num_classes=4)
              model.load_state_dict(torch.load("model.pth", weights_only=True))
            """)

    @Argument(help: "A dtrain checkpoint (safetensors, or a .pth that dtrain exported).")
    var checkpoint: String
    @Option(help: "pth (torch.save's zip format) or safetensors.")
    var format: String
    @Option(help: "The file to write.")
    var output: String
    @Flag(help: "Replace --output if it exists.")
    var overwrite = false
    @Flag(name: .customLong("use-ema"), help: "Export the checkpoint's model EMA (trained with --model-ema) as the model's weights.")
    var useEMA = false

    func validate() throws {
        guard let f = WeightsFormat(rawValue: format), f.isWritable else { throw ValidationError("--format \(format): expected pth or safetensors") }
    }

    func run() throws {
        try refuseExisting(output, overwrite: overwrite)
        let url = URL(fileURLWithPath: checkpoint)
        guard FileManager.default.fileExists(atPath: url.path) else { throw CommandError("\(MessageText.path(checkpoint)): no such checkpoint") }
        // The training position is not exported (epoch, steps are reset): the file holds weights.
        let (_, recorded) = try Checkpoint.read(url)
        let (model, info, _) = try WeightsTransfer.importWeights(checkpoint, model: recorded.model, numClasses: recorded.numClasses, ema: useEMA)
        let out = URL(fileURLWithPath: output)
        let data = try WeightsTransfer.exportData(model: model, info: info, format: WeightsFormat(rawValue: format)!,
                                                  archiveName: out.deletingPathExtension().lastPathComponent)
        try AtomicFile.write(data, to: out)
        print("exported \(model.state.count) tensors of \(info.model)\(useEMA ? " (model EMA)" : "") (\(info.numClasses) classes) from \(MessageText.path(checkpoint)) → \(MessageText.path(output)) (\(format))")
    }
}

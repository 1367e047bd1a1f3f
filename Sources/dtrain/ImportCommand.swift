import ArgumentParser
import Foundation
import DTrainCore
import DTrainTraining
import DTrainWeights

/// `dtrain import`: PyTorch weights (torch.save's .pth, or safetensors) as a dtrain checkpoint.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert PyTorch weights (a .pth written by torch.save, any version, or safetensors) into a dtrain checkpoint.",
        discussion: """
            The file is read directly, in any format torch.save has written (the zip format of \
            PyTorch 1.6 and later, the legacy pickle stream of 0.4 to 1.5, the tar archive of 0.3), \
            recognised by content whatever the extension (.pth, .pt, .th, .pth.tar); its pickles are \
            read by a restricted unpickler that never runs code. It is checked against the model: missing and \
            unexpected keys and shape mismatches are reported by name. The number of classes is the \
            file's head's. The output is a safetensors checkpoint with torchvision's names that \
            `dtrain predict`, `dtrain eval` and `dtrain train --pretrained` take:
              dtrain import resnet34-b627a593.pth --model resnet34 --output resnet34.safetensors
            """)

    @Argument(help: "Weights to read: a file written by torch.save (any PyTorch version) or a safetensors file.")
    var weights: String
    @Option(help: "Model the weights are for (see `dtrain models`).")
    var model: String
    @Option(help: "The checkpoint to write (safetensors).")
    var output: String
    @Option(name: .customLong("num-classes"), help: "Classes of the head. Default: the file's head's.")
    var numClasses: Int?
    @Flag(help: "Replace --output if it exists.")
    var overwrite = false

    func validate() throws {
        if let n = numClasses, n < 1 { throw ValidationError("--num-classes must be at least 1, got \(n)") }
        if output.hasSuffix(".pth") || output.hasSuffix(".pt") {
            throw ValidationError("--output \(MessageText.path(output)): import writes a safetensors checkpoint; use `dtrain export --format pth` for .pth")
        }
    }

    func run() throws {
        try refuseExisting(output, overwrite: overwrite)
        let (model, info, format) = try WeightsTransfer.importWeights(weights, model: self.model, numClasses: numClasses)
        try Checkpoint.save(model: model, optimizer: nil, info: info, to: URL(fileURLWithPath: output))
        print("imported \(weights) (\(format.description)): \(model.state.count) tensors of \(model.name), \(model.parameterCount) parameters, \(info.numClasses) classes → \(MessageText.path(output))")
    }
}

/// A command that cannot do its work: one line naming the flag or file.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Refuses to replace an existing file unless `overwrite`.
func refuseExisting(_ path: String, overwrite: Bool) throws {
    if !overwrite && FileManager.default.fileExists(atPath: path) {
        throw CommandError("--output \(MessageText.path(path)) exists; pass --overwrite to replace it")
    }
}

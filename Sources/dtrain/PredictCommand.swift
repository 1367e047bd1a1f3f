import ArgumentParser
import Foundation
import DTrainCore
import DTrainData
import DTrainTraining

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify images with a checkpoint: top-k class names and probabilities per image.")

    @Option(help: "Checkpoint (safetensors or .pth written by dtrain); class names and preprocessing come from it. Plain weights (a torchvision .pth) need --model.")
    var checkpoint: String
    @Option(help: "The model of plain weights without dtrain's metadata; their preprocessing is the model family's.")
    var model: String?
    @Option(help: "Classes to show per image.")
    var topk: Int = 5
    @Option(name: .customLong("batch-size"), help: "Images per batch.")
    var batchSize: Int = 32
    @Option(help: "Compute threads. Default: all cores.")
    var threads: Int?
    @Flag(help: "Print one JSON object per image.")
    var json = false
    @OptionGroup var geometry: EvalGeometryOptions
    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @Flag(name: .customLong("use-ema"), help: "Classify with the checkpoint's model EMA (trained with --model-ema) instead of its model.")
    var useEMA = false
    @Argument(help: "Image files or directories of images.")
    var inputs: [String]

    func validate() throws {
        guard topk >= 1 else { throw ValidationError("--topk must be at least 1, got \(topk)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one image file or directory") }
    }

    func run() throws {
        Compute.setThreads(threads ?? Compute.defaultThreads)
        let kernels = try kernelOptions.request().resolve()
        let precision = try precisionOptions.resolved()
        let files = try Predictor.imageFiles(inputs)
        let loaded = try LoadedCheckpoint(path: checkpoint, expectedModel: model, batchSize: min(batchSize, files.count),
                                          resolution: geometry.valCropSize, ema: useEMA, kernels: kernels,
                                          precision: precision)
        let predictor = Predictor(checkpoint: loaded, transform: try geometry.transform(loaded))
        var failures = 0
        let results = predictor.predict(files: files, topK: topk) { error in
            failures += 1
            FileHandle.standardError.write("error: \(MessageText.describe(error))\n".data(using: .utf8)!)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for r in results {
            if json {
                print(String(data: try encoder.encode(r), encoding: .utf8)!)
            } else {
                print("\(r.image): " + r.top.map { String(format: "%@ %.4f", $0.name, $0.probability) }.joined(separator: ", "))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

import Foundation
import DTrainCore
import DTrainNN
import DTrainData
import DTrainWeights

/// A model rebuilt from a checkpoint: its zoo entry and options, weights, class names and
/// preprocessing, as recorded when it was trained.
public struct LoadedCheckpoint {
    public let model: Model
    public let info: CheckpointInfo
    public let path: String

    /// Reads, verifies and applies `path` (dtrain's safetensors or an exported .pth). With
    /// `expectedModel`, a checkpoint of another model is refused, and plain weights without dtrain's
    /// metadata (a torchvision .pth) are read as that model's; with `numClasses`, one with another
    /// head size is refused. With `ema`, the weights are the checkpoint's model EMA (`--model-ema`).
    public init(path: String, expectedModel: String? = nil, numClasses: Int? = nil, batchSize: Int, resolution: Int? = nil,
                ema: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointError(path: path, reason: "no such checkpoint")
        }
        let (file, info) = try Checkpoint.read(url, plainModel: expectedModel)
        if let expectedModel, expectedModel != info.model {
            throw CheckpointError(path: path, reason: "checkpoint is of model \(info.model), not \(expectedModel)")
        }
        if let numClasses, numClasses != info.numClasses {
            throw CheckpointError(path: path, reason: "--num-classes \(numClasses) disagrees with the checkpoint's \(info.numClasses) classes")
        }
        model = try ModelZoo.make(info.model, options: info.modelOptions)
        try Checkpoint.restore(file, path: path, into: model, optimizer: nil, ema: ema)
        model.build(batch: batchSize, resolution: resolution ?? (info.resolution > 0 ? info.resolution : nil))
        self.info = info
        self.path = path
    }

    /// The evaluation preprocessing the model was trained with (the family's preset when the
    /// checkpoint records none).
    public var evalTransform: ImageTransform {
        info.resolvedPreset.eval(resolution: model.builtResolution, mean: info.recordedMean, std: info.recordedStd)
    }
}

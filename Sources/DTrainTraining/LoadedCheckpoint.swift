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
    /// `kernels` and `precision`: the kernel variants and arithmetic the model is built with (`--kernels`,
    /// `--precision`).
    public init(path: String, expectedModel: String? = nil, numClasses: Int? = nil, batchSize: Int, resolution: Int? = nil,
                ema: Bool = false, kernels: KernelSet = .best, precision: Precision = .fp32) throws {
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
        model.build(batch: batchSize, resolution: resolution ?? (info.resolution > 0 ? info.resolution : nil), kernels: kernels,
                    precision: precision)
        self.info = info
        self.path = path
    }

    /// The evaluation preprocessing the model was trained with (the family's preset when the
    /// checkpoint records none): its resize filter, and its evaluation resize when the model is
    /// built at the recorded resolution (else the preset's for the built one).
    public var evalTransform: ImageTransform { evalTransform() }

    /// `evalTransform` with the resize and the filter replaced where given (`--val-resize-size`,
    /// `--interpolation` of eval and predict). The centre crop is the model's built resolution.
    public func evalTransform(resize: Int? = nil, interpolation: Interpolation? = nil) -> ImageTransform {
        let recordedResize = model.builtResolution == info.resolution ? info.evalResize : nil
        return info.resolvedPreset.eval(resolution: model.builtResolution, resize: resize ?? recordedResize,
                                        mean: info.recordedMean, std: info.recordedStd,
                                        interpolation: interpolation ?? info.resolvedInterpolation)
    }
}

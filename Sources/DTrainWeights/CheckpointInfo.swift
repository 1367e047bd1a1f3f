import Foundation

/// Everything besides tensors that a checkpoint records, stored as JSON in the safetensors
/// header's metadata under "dtrain" (and in `ARCHIVE/extra/dtrain.json` of an exported .pth).
public struct CheckpointInfo: Codable, Equatable, Sendable {
    public static let currentFormatVersion = 1

    public var formatVersion = CheckpointInfo.currentFormatVersion
    public var dtrainVersion = ""
    public var model: String
    public var numClasses: Int
    public var zeroInitResidual = false
    public var cifarShortcut: String?
    /// Epochs completed, and where the run stands inside the next one.
    public var epoch = 0
    public var globalStep = 0
    /// Samples of the current epoch's global order already consumed (resumable at any world size).
    public var samplesIntoEpoch = 0
    public var seed: UInt64 = 0
    public var worldSize = 1
    public var classNames: [String] = []
    public var mean: [Double] = []
    public var std: [Double] = []
    /// The model's input side: the training crop and the evaluation centre crop.
    public var resolution = 0
    public var preset = ""
    /// The evaluation resize (`--val-resize-size`); nil: the preset's for `resolution`.
    public var evalResize: Int?
    /// The resize filter, "bilinear" or "bicubic" (`--interpolation`); nil: bilinear.
    public var interpolation: String?
    public var bestTop1: Double?
    /// The precision of the run that wrote it ("fp32" or "bf16", `--precision`); nil in
    /// checkpoints from before it was recorded, which were fp32. The tensors are float32 either way.
    public var precision: String?
    public var optimizer = "sgd"
    public var optimizerSteps = 0
    /// Free-form training settings (learning-rate schedule and the like) for exact resume.
    public var settings: [String: String] = [:]

    public init(model: String, numClasses: Int) {
        self.model = model
        self.numClasses = numClasses
    }
}

/// A checkpoint or weights file that cannot be used: the file and why.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

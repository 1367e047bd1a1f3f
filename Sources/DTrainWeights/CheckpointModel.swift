import DTrainNN
import DTrainData

// The one mapping from what a checkpoint records (or what a model is) to how the model is built
// and which preprocessing it takes. Eval, predict, import, resume and the trainer all use it.

extension Preset {
    /// The preprocessing a model family trains with unless told otherwise: CIFAR's statistics at
    /// 32 pixels for the CIFAR models, ImageNet's for the torchvision models.
    public static func `default`(for family: ModelFamily) -> Preset {
        family == .cifar ? .cifar : .imagenet
    }

    /// The default preset of the zoo model `name`; ImageNet's for a name the zoo does not know.
    public static func `default`(forModel name: String) -> Preset {
        (try? ModelZoo.spec(named: name)).map { Preset.default(for: $0.family) } ?? .imagenet
    }
}

extension CheckpointInfo {
    /// The options the model was built with (head size, zero-init residual, CIFAR shortcut).
    public var modelOptions: ModelOptions {
        ModelOptions(numClasses: numClasses, zeroInitResidual: zeroInitResidual,
                     cifarShortcut: cifarShortcut.flatMap(CifarShortcut.init(rawValue:)))
    }

    /// The preprocessing preset recorded in the checkpoint, else the model family's default.
    public var resolvedPreset: Preset {
        Preset(rawValue: preset) ?? Preset.default(forModel: model)
    }

    /// The resize filter recorded in the checkpoint, else bilinear.
    public var resolvedInterpolation: Interpolation {
        interpolation.flatMap(Interpolation.init(rawValue:)) ?? .bilinear
    }

    /// The normalisation mean recorded (three channels), nil when none was recorded.
    public var recordedMean: [Float]? { mean.count == 3 ? mean.map(Float.init) : nil }
    /// The normalisation standard deviation recorded (three channels), nil when none was recorded.
    public var recordedStd: [Float]? { std.count == 3 ? std.map(Float.init) : nil }

    /// What plain weights of zoo model `name` with a head of `numClasses` stand for: the family's
    /// preset, its mean and standard deviation, at the model's default resolution.
    public static func plain(model name: String, numClasses: Int) throws -> CheckpointInfo {
        let spec = try ModelZoo.spec(named: name)
        var info = CheckpointInfo(model: name, numClasses: numClasses)
        let preset = Preset.default(for: spec.family)
        info.preset = preset.rawValue
        info.mean = preset.mean.map(Double.init)
        info.std = preset.std.map(Double.init)
        info.resolution = spec.defaultResolution
        return info
    }
}

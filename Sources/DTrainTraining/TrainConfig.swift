import Foundation
import DTrainCore
import DTrainNN
import DTrainDistributed
import DTrainData

/// Everything a training run is configured with (the `dtrain train` flags, parsed). What follows
/// from it for a given model, data and number of ranks is the run's `TrainingPlan`.
public struct TrainConfig: Sendable {
    public enum OptimizerKind: String, CaseIterable, Sendable { case sgd, adamw }
    public enum LRScaling: String, CaseIterable, Sendable { case none, linear }
    /// Which parameters train (`--freeze`): `none` fine-tunes everything, `backbone` only the
    /// classifier head (feature extraction), `until(LAYER)` what comes after LAYER.
    public enum Freeze: Equatable, Sendable {
        case none, backbone
        case until(String)
    }

    public var model: String
    public var modelOptions = ModelOptions()
    /// nil: the embedded digits.
    public var dataPath: String?
    public var dataset: String?
    public var valSplit: Double?
    public var epochs: Int
    /// Images per rank per step.
    public var batchSize: Int
    public var lr: Double
    public var lrScaling: LRScaling = .none
    public var schedule: LRSchedule.Kind
    public var lrSteps: [Int] = []
    public var lrGamma = 0.1
    public var warmupEpochs = 0.0
    public var optimizer: OptimizerKind = .sgd
    public var momentum = 0.9
    public var nesterov = false
    public var weightDecay = 1e-4
    public var noBNWeightDecay = false
    public var labelSmoothing = 0.0
    // torchvision's recipe options (README "Recipe options").
    /// `--lr-warmup-method`: how the rate warms up over `warmupEpochs`.
    public var warmupMethod = LRSchedule.WarmupMethod.linear
    /// `--lr-warmup-decay`: the warmup's start factor (linear) or factor (constant).
    public var warmupDecay = 0.01
    /// `--lr-min`: the rate `cosine` anneals to.
    public var lrMin = 0.0
    /// `--clip-grad-norm`: the largest total L2 norm of the averaged gradients; nil: no clipping.
    public var clipGradNorm: Double?
    /// `--norm-weight-decay`: weight decay of normalization layers' parameters; nil: `weightDecay`.
    public var normWeightDecay: Double?
    /// `--bias-weight-decay`: weight decay of every bias (BatchNorm's included); nil: as the layer's other parameters.
    public var biasWeightDecay: Double?
    /// `--ra-sampler --ra-reps N`: torchvision's repeated-augmentation sampler with N repeats; nil: off.
    public var raReps: Int?
    public var output: URL
    /// Resume from this checkpoint (the run directory's last one when given as empty).
    public var resume: String?
    public var overwrite = false
    public var seed: UInt64 = 0
    public var threads: Int?
    /// The kernel variants (`--kernels`, DTRAIN_KERNELS), resolved on each rank's CPU.
    public var kernels: KernelSet.Request = .auto
    /// Convolution and linear-layer arithmetic (`--precision`), checked on each rank's CPU.
    public var precision: Precision = .fp32
    /// bf16 allowed on a CPU without AVX512_BF16 (DTRAIN_BF16_EMULATION=1).
    public var bf16Emulated = false
    /// The element type gradients travel in across ranks (`--allreduce-dtype`); fp32 by default.
    public var allreduceDtype: AllreduceDType = .fp32
    public var workers: Int?
    public var evalEvery = 1
    public var limitTrainBatches: Int?
    public var limitValBatches: Int?
    public var noVal = false
    public var printFreq = 50
    public var debug = false
    public var overfitBatches: Int?
    public var saveEverySteps: Int?
    public var keep = 3
    public var syncBN = false
    /// How BatchNorm running statistics are made equal across ranks before every evaluation and
    /// checkpoint when they are not synchronized (`--dist-bn`).
    public var distBN: DistributedBatchNormMode = .reduce
    public var gradAccum = 1
    public var dropLast = false
    public var resolution: Int?
    public var preset: String?
    /// The filter of the training crop's and the evaluation's resize (`--interpolation`).
    public var interpolation: Interpolation = .bilinear
    /// The evaluation resize (`--val-resize-size`); nil: the preset's for the resolution.
    public var valResizeSize: Int?
    /// Random horizontal flips in training; nil: the training data's default
    /// (`DataSource.flipsByDefault`: on, except for the digits, whose mirror images are other shapes).
    public var flip: Bool?
    public var mean: [Double]?
    public var std: [Double]?
    /// torchvision's auto-augment and random erasing after the crop and flip (`--auto-augment`,
    /// `--ra-magnitude`, `--augmix-severity`, `--random-erase`); none by default.
    public var augmentation = Augmentation()
    public var collectiveTimeout: Double = 300
    /// Weights to start from (.pth or safetensors); the head is replaced when its size differs.
    public var pretrained: String?
    public var freeze: Freeze = .none
    /// The classifier head's learning rate as a multiple of the schedule's.
    public var headLRMultiplier: Double?

    // Model EMA and MixUp/CutMix, with torchvision's references/classification flags and defaults.
    /// Keep an exponential moving average of the weights and BatchNorm buffers (`--model-ema`),
    /// evaluated and saved beside the model (`ModelEMA`).
    public var modelEMA = false
    /// Optimizer steps between EMA updates (`--model-ema-steps`).
    public var modelEMASteps = 32
    /// The EMA decay before train.py's adjustment for batch, steps and epochs (`--model-ema-decay`).
    public var modelEMADecay = 0.99998
    /// MixUp's Beta(α, α) (`--mixup-alpha`); 0: no MixUp.
    public var mixupAlpha = 0.0
    /// CutMix's Beta(α, α) (`--cutmix-alpha`); 0: no CutMix. With both, each batch takes one at random.
    public var cutmixAlpha = 0.0

    public init(model: String, epochs: Int, batchSize: Int, lr: Double, schedule: LRSchedule.Kind, output: URL) {
        self.model = model
        self.epochs = epochs
        self.batchSize = batchSize
        self.lr = lr
        self.schedule = schedule
        self.output = output
    }

    /// Recipe defaults for a model family: He et al.'s for CIFAR models (lr 0.1, momentum 0.9,
    /// wd 1e-4, batch 128, ÷10 at 50 % and 75 % of training), torchvision's for ImageNet models
    /// (lr 0.1 per 256 images, ÷10 every 30 epochs, wd 1e-4, batch 32 per rank).
    public static func defaults(for model: String, epochs: Int?, output: URL) throws -> TrainConfig {
        let spec = try ModelZoo.spec(named: model)
        switch spec.family {
        case .cifar:
            let e = epochs ?? 30
            var c = TrainConfig(model: model, epochs: e, batchSize: 128, lr: 0.1, schedule: .multistep, output: output)
            c.lrSteps = [max(1, e / 2), max(1, e * 3 / 4)]
            return c
        case .imagenet:
            var c = TrainConfig(model: model, epochs: epochs ?? 90, batchSize: 32, lr: 0.1, schedule: .step, output: output)
            c.lrScaling = .linear
            c.lrSteps = [30]
            return c
        }
    }
}

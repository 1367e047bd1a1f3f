import Foundation
import DTrainNN
import DTrainWeights
import DTrainData

/// What planning a run needs to know of its data, read from the opened splits.
public struct DataSummary: Equatable, Sendable {
    /// The training split's classes, in label order.
    public var classNames: [String]
    public var trainCount: Int
    /// Samples of the validation split (0 without one).
    public var valCount: Int
    /// `DataSource.flipsByDefault` of the training split.
    public var flipsByDefault: Bool

    public init(classNames: [String], trainCount: Int, valCount: Int = 0, flipsByDefault: Bool = true) {
        self.classNames = classNames
        self.trainCount = trainCount
        self.valCount = valCount
        self.flipsByDefault = flipsByDefault
    }

    public init(train: DataSource, val: DataSource?) {
        self.init(classNames: train.classNames, trainCount: train.count, valCount: val?.count ?? 0,
                  flipsByDefault: train.flipsByDefault)
    }
}

/// The resolved settings of a training run: a pure function of the configuration, the model's zoo
/// entry, a summary of the data, the number of ranks, dtrain's version and, when resuming, the
/// checkpoint's `CheckpointInfo`. It reads no files and talks to no other rank, so every rank
/// given the same job plans the same run.
public struct TrainingPlan: Sendable {
    public let config: TrainConfig
    public let data: DataSummary
    public let ranks: Int
    /// `--preset`, else the model family's.
    public let preset: Preset
    /// `--resolution`, else the model's default.
    public let resolution: Int
    /// `--val-resize-size`, else the preset's for the resolution (`Preset.evalResize`).
    public let evalResize: Int
    /// `--mean` and `--std`, else the preset's.
    public let mean: [Float]
    public let std: [Float]
    /// The base learning rate: `--lr`, with `--lr-scaling linear` times the global batch
    /// (batch × ranks × accumulation) / 256.
    public let lr: Double
    public let schedule: LRSchedule
    /// The model's options with the number of classes resolved.
    public let modelOptions: ModelOptions
    /// `--num-classes`, else the resumed checkpoint's, else the data's.
    public let numClasses: Int
    /// The data's class names, then "classN" for head classes the data does not have.
    public let classNames: [String]
    /// Steps of a full epoch on each rank (the schedule's unit; the overfit batches when given).
    public let stepsPerEpoch: Int
    /// Training samples each rank takes in a full epoch (from `sampler(rank:)`, or from
    /// `repeatedAugmentationSampler(rank:)` with `--ra-sampler`).
    public let samplesPerRank: Int
    /// Random horizontal flips in training: `--no-flip`, else what the data allows by default.
    public let flips: Bool
    /// The checkpoint metadata the run starts with (the resumed position when resuming).
    public let initialInfo: CheckpointInfo

    /// The resolution and preset a configuration asks of `spec`, needed before the data is opened.
    public static func resolution(_ config: TrainConfig, spec: ModelSpec) -> (resolution: Int, preset: Preset) {
        let preset = config.preset.flatMap(Preset.init(rawValue:)) ?? Preset.default(for: spec.family)
        return (config.resolution ?? spec.defaultResolution, preset)
    }

    /// Throws a `TrainingError` when the resumed checkpoint is of another model, class list,
    /// training-set size or resolution (`ResumeCompatibility`), or the number of classes disagrees
    /// with the checkpoint or is smaller than the data's.
    public init(config: TrainConfig, spec: ModelSpec, data: DataSummary, ranks: Int, version: String,
                resuming resumed: (info: CheckpointInfo, path: String)? = nil) throws {
        if let r = resumed, r.info.model != config.model {
            throw TrainingError("--resume \(r.path): checkpoint is of model \(r.info.model), not \(config.model)")
        }
        self.config = config
        self.data = data
        self.ranks = ranks
        (resolution, preset) = TrainingPlan.resolution(config, spec: spec)
        evalResize = config.valResizeSize ?? preset.evalResize(resolution: resolution)
        if evalResize < resolution {
            throw TrainingError("--val-resize-size \(evalResize) is smaller than the crop size \(resolution)")
        }
        mean = config.mean.map { $0.map(Float.init) } ?? preset.mean
        std = config.std.map { $0.map(Float.init) } ?? preset.std

        let dataClasses = data.classNames.count
        let classes = config.modelOptions.numClasses ?? resumed?.info.numClasses ?? dataClasses
        let names = data.classNames + (classes > dataClasses ? (dataClasses..<classes).map { "class\($0)" } : [])
        if let r = resumed, r.info.numClasses != classes {
            throw TrainingError("--num-classes \(classes) disagrees with the checkpoint \(r.path), which has \(r.info.numClasses) classes")
        }
        if let r = resumed {
            try ResumeCompatibility.check(r.info, path: r.path, classNames: names, dataClasses: dataClasses,
                                          trainCount: data.trainCount, resolution: resolution)
        }
        if classes < dataClasses {
            throw TrainingError("--num-classes \(classes) is smaller than the \(dataClasses) classes in the data")
        }
        numClasses = classes
        classNames = names
        var options = config.modelOptions
        options.numClasses = classes
        modelOptions = options

        var lr = config.lr
        if config.lrScaling == .linear { lr *= Double(config.batchSize * ranks * config.gradAccum) / 256 }
        self.lr = lr
        var schedule = LRSchedule(kind: config.schedule, baseLR: lr, totalEpochs: config.epochs)
        schedule.gamma = config.lrGamma
        schedule.milestones = config.lrSteps
        schedule.stepSize = config.lrSteps.first ?? 30
        schedule.warmupEpochs = config.warmupEpochs
        schedule.warmupMethod = config.warmupMethod
        schedule.warmupStartFactor = config.warmupDecay
        schedule.minLR = config.lrMin
        self.schedule = schedule

        let shard: Int
        if let reps = config.raReps {
            shard = RepeatedAugmentationSampler(datasetSize: data.trainCount, rank: 0, worldSize: ranks, repetitions: reps, seed: config.seed).samplesPerRank
            if shard == 0 {
                throw TrainingError("--ra-sampler: the training set has \(data.trainCount) samples; the repeated-augmentation sampler gives "
                                    + "each of the \(ranks) rank\(ranks == 1 ? "" : "s") floor(\(data.trainCount) / 256) × 256 / \(ranks) = 0 of them "
                                    + "(torchvision's RASampler); it needs at least 256 × ranks training samples")
            }
        } else {
            shard = DistributedSampler(datasetSize: data.trainCount, rank: 0, worldSize: ranks, shuffle: true, seed: config.seed,
                                       dropLast: config.dropLast, padToEqual: true).samplesPerRank
        }
        samplesPerRank = shard
        stepsPerEpoch = max(1, config.overfitBatches ?? TrainingPlan.batches(shard, config))
        flips = config.flip ?? data.flipsByDefault

        var info = CheckpointInfo(model: config.model, numClasses: classes)
        info.dtrainVersion = version
        info.zeroInitResidual = options.zeroInitResidual
        info.cifarShortcut = options.cifarShortcut?.rawValue
        info.seed = config.seed
        info.worldSize = ranks
        info.classNames = classNames
        info.mean = mean.map(Double.init)
        info.std = std.map(Double.init)
        info.resolution = resolution
        info.preset = preset.rawValue
        if config.valResizeSize != nil { info.evalResize = evalResize }
        if config.interpolation != .bilinear { info.interpolation = config.interpolation.rawValue }
        info.optimizer = config.optimizer.rawValue
        info.precision = config.precision.rawValue
        info.settings[ResumeCompatibility.trainSamplesKey] = String(data.trainCount)
        if let p = config.pretrained { info.settings["pretrained"] = p }
        if config.freeze != .none { info.settings["freeze"] = config.freeze.description }
        if let m = config.headLRMultiplier { info.settings["head_lr_mult"] = String(m) }
        if let r = config.raReps { info.settings[ResumeCompatibility.raRepsKey] = String(r) }
        if let r = resumed {
            try ResumeCompatibility.checkSampler(r.info, path: r.path, raReps: config.raReps)
        }
        if !config.augmentation.isNone { info.settings["augmentation"] = config.augmentation.description }
        if let r = resumed?.info {
            info.epoch = r.epoch
            info.globalStep = r.globalStep
            info.samplesIntoEpoch = r.samplesIntoEpoch
            info.bestTop1 = r.bestTop1
        }
        initialInfo = info
    }

    /// The training sampler of `rank`: shuffled per epoch, padded so every rank takes equal steps.
    public func sampler(rank: Int) -> DistributedSampler {
        DistributedSampler(datasetSize: data.trainCount, rank: rank, worldSize: ranks, shuffle: true, seed: config.seed,
                           dropLast: config.dropLast, padToEqual: true)
    }

    /// The training sampler of `rank` with `--ra-sampler` (torchvision's RASampler), else nil.
    public func repeatedAugmentationSampler(rank: Int) -> RepeatedAugmentationSampler? {
        config.raReps.map {
            RepeatedAugmentationSampler(datasetSize: data.trainCount, rank: rank, worldSize: ranks, repetitions: $0, seed: config.seed)
        }
    }

    /// The training transform: the preset's augmentation with `--auto-augment`/`--random-erase`
    /// (its evaluation transform, without either, when overfitting a few batches), without flips
    /// unless `flips`.
    public var trainTransform: ImageTransform {
        var t = config.overfitBatches != nil
            ? evalTransform
            : preset.train(resolution: resolution, mean: mean, std: std, interpolation: config.interpolation)
        if !flips { t.flipProbability = 0 }
        if config.overfitBatches == nil { t.augmentation = config.augmentation }
        return t
    }

    /// The evaluation transform.
    public var evalTransform: ImageTransform {
        preset.eval(resolution: resolution, resize: evalResize, mean: mean, std: std, interpolation: config.interpolation)
    }

    /// What one rank trains on in one epoch.
    public struct Epoch: Equatable, Sendable {
        /// Dataset indices to load, `steps` batches' worth.
        public var indices: [Int]
        /// Steps of this epoch done before a resume.
        public var stepsDone: Int
        /// Steps to run now.
        public var steps: Int
        /// Each index's repeat number with `--ra-sampler` (keys its augmentation); empty otherwise.
        public var repetitions: [Int] = []
    }

    /// Epoch `epoch` on `rank`, continuing after the `samplesIntoEpoch` samples (all ranks together)
    /// a resumed checkpoint says were consumed. `--overfit-batches` trains the same first batches of
    /// epoch 0's order every epoch; `--drop-last` drops a last partial batch; `--limit-train-batches`
    /// counts the epoch's steps, including those done before a resume.
    public func epoch(_ epoch: Int, rank: Int, samplesIntoEpoch: Int) -> Epoch {
        let batch = config.batchSize
        let indices: [Int], repetitions: [Int]
        if let ra = repeatedAugmentationSampler(rank: rank) {
            let samples = config.overfitBatches.map { Array(ra.samples(epoch: 0).prefix($0 * batch)) }
                ?? ra.samples(epoch: epoch, skippingFirst: samplesIntoEpoch)
            indices = samples.map(\.index)
            repetitions = samples.map(\.repetition)
        } else {
            let sampler = sampler(rank: rank)
            indices = config.overfitBatches.map { Array(sampler.indices(epoch: 0).prefix($0 * batch)) }
                ?? sampler.indices(epoch: epoch, skippingFirst: samplesIntoEpoch)
            repetitions = []
        }
        let done = samplesIntoEpoch / max(1, batch * ranks)
        var steps = TrainingPlan.batches(indices.count, config)
        if let limit = config.limitTrainBatches { steps = min(steps, max(0, limit - done)) }
        return Epoch(indices: Array(indices.prefix(steps * batch)), stepsDone: done, steps: steps,
                     repetitions: Array(repetitions.prefix(steps * batch)))
    }

    /// Batches of `samples` samples: the last one partial, or dropped with `--drop-last`.
    static func batches(_ samples: Int, _ config: TrainConfig) -> Int {
        config.dropLast ? samples / config.batchSize : (samples + config.batchSize - 1) / config.batchSize
    }

    /// The schedule's rate at step `step` (counted from the epoch's start) of epoch `epoch`.
    public func learningRate(epoch: Int, step: Int) -> Double {
        schedule.rate(at: Double(epoch) + Double(step) / Double(stepsPerEpoch))
    }

    /// Samples of an epoch consumed by all ranks after its first `steps` steps (what a checkpoint
    /// records to resume from).
    public func samplesConsumed(steps: Int) -> Int { steps * config.batchSize * ranks }
}

extension TrainingPlan {
    /// What every rank must have been given alike, by name (checked with `RankAgreement` before
    /// training starts): dtrain's version, what was found in the data, every field of the
    /// configuration but those that may differ per node (`TrainConfig.agreementFields`), the
    /// built model's trainable parameters (`trainableParameters`) and the resumed position.
    public func agreementFields(trainableParameters: Int) -> [(name: String, value: String)] {
        let start = initialInfo
        return [
            ("dtrain version", start.dtrainVersion),
            ("number of classes", String(numClasses)),
            ("class list", data.classNames.joined(separator: ",")),
            ("training set size", String(data.trainCount)),
            ("validation set size", String(data.valCount)),
        ] + config.agreementFields + [
            ("trainable parameters", String(trainableParameters)),
            ("resumed step", "\(start.epoch)/\(start.globalStep)/\(start.samplesIntoEpoch)"),
        ]
    }
}

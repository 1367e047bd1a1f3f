import ArgumentParser
import Foundation
import DTrainCore
import DTrainNN
import DTrainData
import DTrainDistributed
import DTrainTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model (single process, or data-parallel under mpirun).",
        discussion: """
        `dtrain MODEL …` is shorthand for `dtrain train MODEL …`. Without --data it trains on the \
        embedded handwritten digits. Defaults follow the model family: He et al.'s CIFAR recipe \
        (lr 0.1, batch 128, ÷10 at 50 % and 75 %) or torchvision's ImageNet recipe (lr 0.1 per 256 \
        images, ÷10 every 30 epochs).
        """)

    @Argument(help: "Model name (see `dtrain models`).")
    var model: String

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var resources: ResourceOptions
    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @OptionGroup var allreduceOptions: AllreduceOptions

    @Option(help: "Epochs to train. Default: 30 for CIFAR models, 90 for ImageNet models.")
    var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Images per rank per step. Default: 128 (CIFAR) or 32 (ImageNet).")
    var batchSize: Int?
    @Option(help: "Image side in pixels. Default: the model's (32 or 224).")
    var resolution: Int?

    // Learning rate
    @Option(help: "Base learning rate. Default: 0.1.")
    var lr: Double?
    @Option(name: .customLong("lr-scaling"), help: "none, or linear: lr × global batch ÷ 256 (Goyal et al.). Default: linear for ImageNet models, none for CIFAR.")
    var lrScaling: String?
    @Option(name: .customLong("lr-schedule"), help: "step, multistep, cosine, exponential (× --lr-gamma every epoch) or constant. Default: multistep (CIFAR) or step (ImageNet).")
    var lrSchedule: String?
    @Option(name: .customLong("lr-steps"), help: "Comma-separated epochs: the step size for `step`, the milestones for `multistep`. Default: 50 %,75 % of epochs (CIFAR) or 30.")
    var lrSteps: String?
    @Option(name: .customLong("lr-gamma"), help: "Decay factor at each step.")
    var lrGamma: Double = 0.1
    @Option(name: [.customLong("lr-warmup-epochs"), .customLong("warmup-epochs")], help: "Warmup length in epochs (fractions allowed; --warmup-epochs is the same).")
    var warmupEpochs: Double = 0

    // Optimizer and regularisation
    @Option(help: "sgd or adamw.")
    var optimizer: String = "sgd"
    @Option(help: "SGD momentum.")
    var momentum: Double = 0.9
    @Flag(help: "Nesterov momentum.")
    var nesterov = false
    @Option(name: .customLong("weight-decay"), help: "Weight decay.")
    var weightDecay: Double = 1e-4
    @Flag(name: .customLong("no-bn-weight-decay"), help: "No weight decay on BatchNorm parameters and biases.")
    var noBNWeightDecay = false
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing ε.")
    var labelSmoothing: Double = 0

    // torchvision's recipe options (references/classification/train.py)
    @Option(name: .customLong("lr-warmup-method"), help: ArgumentHelp("linear (LinearLR: from lr × decay rising to lr) or constant (ConstantLR: lr × decay) during the warmup.", valueName: "linear|constant"))
    var lrWarmupMethod: String = "linear"
    @Option(name: .customLong("lr-warmup-decay"), help: "The warmup's factor of lr: LinearLR's start_factor, in (0, 1], or ConstantLR's factor, in [0, 1].")
    var lrWarmupDecay: Double = 0.01
    @Option(name: .customLong("lr-min"), help: "The rate --lr-schedule cosine ends at (CosineAnnealingLR's eta_min).")
    var lrMin: Double = 0
    @Option(name: .customLong("clip-grad-norm"), help: "Clip the averaged gradients to this total L2 norm before each update (clip_grad_norm_). Default: no clipping.")
    var clipGradNorm: Double?
    @Option(name: .customLong("norm-weight-decay"), help: "Weight decay of BatchNorm weights and biases. Default: --weight-decay.")
    var normWeightDecay: Double?
    @Option(name: .customLong("bias-weight-decay"), help: "Weight decay of every bias, BatchNorm's included (wins over --norm-weight-decay). Default: as the layer's other parameters.")
    var biasWeightDecay: Double?
    @Flag(name: .customLong("ra-sampler"), help: "Repeated augmentation (torchvision's RASampler): each sample --ra-reps times per epoch, on different ranks, augmented differently.")
    var raSampler = false
    @Option(name: .customLong("ra-reps"), help: "Repeats of each sample with --ra-sampler.")
    var raReps: Int = 3

    // Model options
    @Option(name: .customLong("num-classes"), help: "Classes of the head. Default: from the data.")
    var numClasses: Int?
    @Flag(name: .customLong("zero-init-residual"), help: "Zero the last BatchNorm of each residual block.")
    var zeroInitResidual = false
    @Option(help: "CIFAR ResNet shortcut: A (parameter-free) or B (projection).")
    var shortcut: String?

    // Transfer learning
    @Option(help: "Start from these weights: a .pth written by torch.save (torchvision's), safetensors, or a dtrain checkpoint. When --num-classes differs from the file's head, the head is replaced and initialised as nn.Linear.")
    var pretrained: String?
    @Option(help: ArgumentHelp("none (fine-tune everything), backbone (train only the head; frozen BatchNorms use their running statistics), or until=LAYER (freeze up to and including LAYER, e.g. until=layer3).", valueName: "none|backbone|until=LAYER"))
    var freeze: String = "none"
    @Option(name: .customLong("head-lr-mult"), help: "The classifier head's learning rate as a multiple of the schedule's. Default: 1.")
    var headLRMult: Double?

    // Model EMA and MixUp/CutMix (torchvision's references/classification flags)
    @Flag(name: .customLong("model-ema"), help: "Keep an exponential moving average of the weights and BatchNorm buffers; it is evaluated after each epoch beside the model and saved in the checkpoints (model_ema.*).")
    var modelEMA = false
    @Option(name: .customLong("model-ema-steps"), help: "Optimizer steps between EMA updates.")
    var modelEMASteps: Int = 32
    @Option(name: .customLong("model-ema-decay"), help: "EMA decay, adjusted as torchvision's train.py does to 1 − min(1, (1 − decay) × global batch × steps ÷ epochs).")
    var modelEMADecay: Double = 0.99998
    @Option(name: .customLong("mixup-alpha"), help: "MixUp with λ ~ Beta(α, α) on each batch; 0: off.")
    var mixupAlpha: Double = 0
    @Option(name: .customLong("cutmix-alpha"), help: "CutMix with λ ~ Beta(α, α) on each batch (with --mixup-alpha too, each batch takes one of them at random); 0: off.")
    var cutmixAlpha: Double = 0

    // Output and resume
    @Option(help: "Output directory for checkpoints and metrics.jsonl. Default: runs/MODEL.")
    var output: String?
    @Option(help: "Resume from a checkpoint; without a value, OUTPUT/checkpoint-last.safetensors.")
    var resume: String?
    @Flag(name: .customLong("resume-last"), help: "Resume from OUTPUT/checkpoint-last.safetensors.")
    var resumeLast = false
    @Flag(help: "Replace another run's checkpoints in --output.")
    var overwrite = false
    @Option(name: .customLong("save-every-steps"), help: "Also write checkpoint-last every N steps.")
    var saveEverySteps: Int?
    @Option(help: "Epoch checkpoints to keep.")
    var keep: Int = 3
    @Option(help: "Random seed for initialisation, data order and augmentation.")
    var seed: UInt64 = 0

    // Evaluation cadence and limits
    @Option(name: .customLong("eval-every"), help: "Evaluate every N epochs (and after the last).")
    var evalEvery: Int = 1
    @Option(name: .customLong("limit-train-batches"), help: "At most N training batches per epoch.")
    var limitTrainBatches: Int?
    @Option(name: .customLong("limit-val-batches"), help: "At most N validation batches per rank.")
    var limitValBatches: Int?
    @Flag(name: .customLong("no-val"), help: "Skip validation.")
    var noVal = false
    @Option(name: .customLong("print-freq"), help: "Progress line (and --debug norms) every N steps.")
    var printFreq: Int = 50

    // Debugging
    @Flag(help: "Check every layer's outputs and gradients for NaN/Inf and print per-layer norms.")
    var debug = false
    @Option(name: .customLong("overfit-batches"), help: "Train repeatedly on the first N batches, without augmentation (sanity check).")
    var overfitBatches: Int?

    // Distributed
    @Flag(name: .customLong("sync-bn"), help: "Synchronize BatchNorm statistics across ranks.")
    var syncBN = false
    @Option(name: .customLong("dist-bn"), help: ArgumentHelp("Without --sync-bn: before every evaluation and checkpoint, make the ranks' BatchNorm running statistics equal, as their mean (reduce) or rank 0's (broadcast), so what is evaluated is what is saved.", valueName: "reduce|broadcast"))
    var distBN: String = "reduce"
    @Option(name: .customLong("grad-accum"), help: "Accumulate gradients over N micro-batches per update.")
    var gradAccum: Int = 1
    @Flag(name: .customLong("drop-last"), help: "Drop the remainder instead of padding shards to equal length.")
    var dropLast = false
    @Option(name: .customLong("collective-timeout"), help: "Under mpirun: abort the job, naming the operation, when a collective has waited this many seconds (a rank or host lost without its connections closing). It includes waiting for the slowest rank to open its data at start. 0: wait for ever. Default: 300.")
    var collectiveTimeout: Double?

    // Preprocessing
    @Option(help: "Augmentation preset: imagenet or cifar. Default: by model family.")
    var preset: String?
    @Flag(name: .customLong("no-flip"), help: "No random horizontal flips in training (always off for the digits).")
    var noFlip = false
    @Option(help: "Per-channel normalisation mean, comma-separated. Default: the preset's.")
    var mean: String?
    @Option(help: "Per-channel normalisation std, comma-separated. Default: the preset's.")
    var std: String?
    @Option(name: .customLong("train-crop-size"), help: "RandomResizedCrop size: the model's input side, as --resolution. Default: the model's (32 or 224).")
    var trainCropSize: Int?
    @OptionGroup var geometry: EvalGeometryOptions

    // Augmentation (torchvision's references/classification/train.py flags)
    @Option(name: .customLong("auto-augment"), help: ArgumentHelp("After the crop and flip, on the uint8 image: ra (RandAugment), ta_wide (TrivialAugmentWide), augmix (AugMix), or imagenet or cifar10 (AutoAugment with that policy). Default: none.", valueName: "ra|ta_wide|augmix|imagenet|cifar10"))
    var autoAugment: String?
    @Option(name: .customLong("ra-magnitude"), help: "RandAugment's magnitude bin, 0-30.")
    var raMagnitude: Int = 9
    @Option(name: .customLong("augmix-severity"), help: "AugMix's severity, 1-10.")
    var augmixSeverity: Int = 3
    @Option(name: .customLong("random-erase"), help: "Probability of RandomErasing (value 0, after Normalize).")
    var randomErase: Double = 0

    /// The augmentation the flags ask for; a bad value is a one-line error naming its flag.
    func makeAugmentation() throws -> Augmentation {
        var a = Augmentation()
        if let name = autoAugment {
            guard let policy = AutoAugmentPolicy(rawValue: name) else {
                throw ValidationError("--auto-augment \(name): expected one of \(AutoAugmentPolicy.names)")
            }
            a.autoAugment = policy
        }
        a.raMagnitude = raMagnitude
        a.augmixSeverity = augmixSeverity
        a.randomErase = randomErase
        if let problem = a.problem { throw ValidationError(problem) }
        return a
    }

    func validate() throws {
        if let e = epochs, !(1...1_000_000).contains(e) { throw ValidationError("--epochs must be between 1 and 1000000, got \(e)") }
        if let l = lr, !(l > 0 && l.isFinite) { throw ValidationError("--lr must be a positive number, got \(l)") }
        if !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        if !(weightDecay >= 0 && weightDecay.isFinite) { throw ValidationError("--weight-decay must be 0 or a positive number, got \(weightDecay)") }
        if !(warmupEpochs >= 0 && warmupEpochs.isFinite) { throw ValidationError("--lr-warmup-epochs (--warmup-epochs) must be 0 or more, got \(warmupEpochs)") }
        try validateRecipeOptions()
        if !(lrGamma > 0 && lrGamma.isFinite) { throw ValidationError("--lr-gamma must be a positive number, got \(lrGamma)") }
        if let p = preset, Preset(rawValue: p) == nil {
            throw ValidationError("--preset \(p): expected \(Preset.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        if let n = saveEverySteps, n < 1 { throw ValidationError("--save-every-steps must be at least 1, got \(n)") }
        if let n = limitTrainBatches, n < 1 { throw ValidationError("--limit-train-batches must be at least 1, got \(n)") }
        if let n = limitValBatches, n < 1 { throw ValidationError("--limit-val-batches must be at least 1, got \(n)") }
        if printFreq < 1 { throw ValidationError("--print-freq must be at least 1, got \(printFreq)") }
        if let r = resolution, r > 4096 { throw ValidationError("--resolution must be at most 4096, got \(r)") }
        if let m = mean { _ = try parseTriple(m, flag: "--mean") }
        if let s = std, try parseTriple(s, flag: "--std").contains(where: { $0 <= 0 }) {
            throw ValidationError("--std \(s): expected three positive numbers")
        }
        if let b = batchSize, b < 1 { throw ValidationError("--batch-size must be at least 1, got \(b)") }
        if let r = resolution, r < 8 { throw ValidationError("--resolution must be at least 8, got \(r)") }
        if let n = numClasses, n < 1 { throw ValidationError("--num-classes must be at least 1, got \(n)") }
        if gradAccum < 1 { throw ValidationError("--grad-accum must be at least 1, got \(gradAccum)") }
        if let o = overfitBatches, o < 1 { throw ValidationError("--overfit-batches must be at least 1, got \(o)") }
        if !(0..<1).contains(labelSmoothing) { throw ValidationError("--label-smoothing must be in [0, 1), got \(labelSmoothing)") }
        if evalEvery < 1 { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
        if keep < 1 { throw ValidationError("--keep must be at least 1, got \(keep)") }
        if let t = collectiveTimeout, !(t >= 0 && t.isFinite) { throw ValidationError("--collective-timeout must be 0 or more seconds, got \(t)") }
        if TrainConfig.Freeze.parse(freeze) == nil { throw ValidationError("--freeze \(freeze): expected none, backbone or until=LAYER (e.g. until=layer3)") }
        if let m = headLRMult, !(m > 0 && m.isFinite) { throw ValidationError("--head-lr-mult must be a positive number, got \(m)") }
        if let p = pretrained, !FileManager.default.fileExists(atPath: p) { throw ValidationError("--pretrained \(p): no such file") }
        if modelEMASteps < 1 { throw ValidationError("--model-ema-steps must be at least 1, got \(modelEMASteps)") }
        if !(modelEMADecay >= 0 && modelEMADecay <= 1) { throw ValidationError("--model-ema-decay must be in [0, 1], got \(modelEMADecay)") }
        for (flag, alpha) in [("--mixup-alpha", mixupAlpha), ("--cutmix-alpha", cutmixAlpha)] where !(alpha >= 0 && alpha.isFinite) {
            throw ValidationError("\(flag) must be 0 (off) or a positive number, got \(alpha)")
        }
        _ = try makeAugmentation()
        try validateCropSizes()
    }

    /// The ranges of torchvision's recipe options (one-line errors naming the flag).
    func validateRecipeOptions() throws {
        guard let method = LRSchedule.WarmupMethod(rawValue: lrWarmupMethod) else {
            throw ValidationError("--lr-warmup-method \(lrWarmupMethod): expected linear or constant")
        }
        switch method {
        case .linear where !(lrWarmupDecay > 0 && lrWarmupDecay <= 1):
            throw ValidationError("--lr-warmup-decay must be in (0, 1] with --lr-warmup-method linear, got \(lrWarmupDecay)")
        case .constant where !(lrWarmupDecay >= 0 && lrWarmupDecay <= 1):
            throw ValidationError("--lr-warmup-decay must be in [0, 1] with --lr-warmup-method constant, got \(lrWarmupDecay)")
        default: break
        }
        if !(lrMin >= 0 && lrMin.isFinite) { throw ValidationError("--lr-min must be 0 or a positive number, got \(lrMin)") }
        if let c = clipGradNorm, !(c > 0 && c.isFinite) { throw ValidationError("--clip-grad-norm must be a positive number, got \(c)") }
        for (flag, value) in [("--norm-weight-decay", normWeightDecay), ("--bias-weight-decay", biasWeightDecay)] {
            guard let v = value else { continue }
            if !(v >= 0 && v.isFinite) { throw ValidationError("\(flag) must be 0 or a positive number, got \(v)") }
            if noBNWeightDecay { throw ValidationError("\(flag) cannot be combined with --no-bn-weight-decay, which means --norm-weight-decay 0 --bias-weight-decay 0") }
        }
        if !(1...64).contains(raReps) { throw ValidationError("--ra-reps must be between 1 and 64, got \(raReps)") }
    }

    /// --train-crop-size is --resolution under torchvision's name; the evaluation crop must be
    /// the same (one built model) and fit in the evaluation resize.
    func validateCropSizes() throws {
        if let t = trainCropSize, !(8...4096).contains(t) { throw ValidationError("--train-crop-size must be between 8 and 4096, got \(t)") }
        if let t = trainCropSize, let r = resolution, t != r {
            throw ValidationError("--train-crop-size \(t) and --resolution \(r) disagree (they are the same setting)")
        }
        guard let crop = trainCropSize ?? resolution ?? (try? ModelZoo.spec(named: model))?.defaultResolution else { return }
        if let v = geometry.valCropSize, v != crop {
            throw ValidationError("--val-crop-size \(v) differs from the training crop \(crop): the model is built for one input size (evaluate at another with dtrain eval --val-crop-size)")
        }
        if let r = geometry.valResizeSize, r < crop {
            throw ValidationError("--val-resize-size \(r) is smaller than the crop size \(crop)")
        }
    }

    func makeConfig() throws -> TrainConfig {
        let out = URL(fileURLWithPath: output ?? "runs/\(model)")
        var c = try TrainConfig.defaults(for: model, epochs: epochs, output: out)
        if let b = batchSize { c.batchSize = b }
        if let l = lr { c.lr = l }
        if let s = lrScaling {
            guard let v = TrainConfig.LRScaling(rawValue: s) else { throw ValidationError("--lr-scaling \(s): expected none or linear") }
            c.lrScaling = v
        }
        if let s = lrSchedule {
            guard let v = LRSchedule.Kind(rawValue: s) else { throw ValidationError("--lr-schedule \(s): expected step, multistep, cosine, exponential or constant") }
            c.schedule = v
        }
        if let s = lrSteps {
            let steps = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !steps.isEmpty, steps.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("--lr-steps \(s): expected comma-separated positive epochs") }
            c.lrSteps = steps.map { $0! }
        }
        c.lrGamma = lrGamma
        c.warmupEpochs = warmupEpochs
        guard let opt = TrainConfig.OptimizerKind(rawValue: optimizer) else { throw ValidationError("--optimizer \(optimizer): expected sgd or adamw") }
        c.optimizer = opt
        c.momentum = momentum
        c.nesterov = nesterov
        c.weightDecay = weightDecay
        c.noBNWeightDecay = noBNWeightDecay
        c.labelSmoothing = labelSmoothing
        c.warmupMethod = LRSchedule.WarmupMethod(rawValue: lrWarmupMethod) ?? .linear
        c.warmupDecay = lrWarmupDecay
        c.lrMin = lrMin
        c.clipGradNorm = clipGradNorm
        c.normWeightDecay = normWeightDecay
        c.biasWeightDecay = biasWeightDecay
        c.raReps = raSampler ? raReps : nil
        c.modelOptions.numClasses = numClasses
        c.modelOptions.zeroInitResidual = zeroInitResidual
        if let s = shortcut {
            guard let v = CifarShortcut(rawValue: s.uppercased()) else { throw ValidationError("--shortcut \(s): expected A or B") }
            c.modelOptions.cifarShortcut = v
        }
        c.dataPath = dataOptions.data
        c.dataset = dataOptions.dataset
        c.valSplit = dataOptions.valSplit
        c.resolution = trainCropSize ?? resolution
        c.valResizeSize = geometry.valResizeSize
        if let f = geometry.filter { c.interpolation = f }
        c.resume = resumeLast ? "" : resume
        c.overwrite = overwrite
        c.saveEverySteps = saveEverySteps
        c.keep = keep
        c.seed = seed
        c.threads = resources.threads
        c.kernels = try kernelOptions.request()
        c.precision = try precisionOptions.parsed()
        c.bf16Emulated = precisionOptions.emulated
        c.allreduceDtype = try allreduceOptions.parsed()
        c.workers = resources.workers
        c.evalEvery = evalEvery
        c.limitTrainBatches = limitTrainBatches
        c.limitValBatches = limitValBatches
        c.noVal = noVal
        c.printFreq = printFreq
        c.debug = debug
        c.overfitBatches = overfitBatches
        c.syncBN = syncBN
        guard let distBNMode = DistributedBatchNormMode(rawValue: distBN) else {
            throw ValidationError("--dist-bn \(distBN): expected reduce or broadcast")
        }
        c.distBN = distBNMode
        c.gradAccum = gradAccum
        c.dropLast = dropLast
        if let t = collectiveTimeout { c.collectiveTimeout = t }
        c.pretrained = pretrained
        c.freeze = TrainConfig.Freeze.parse(freeze)!
        c.headLRMultiplier = headLRMult
        c.modelEMA = modelEMA
        c.modelEMASteps = modelEMASteps
        c.modelEMADecay = modelEMADecay
        c.mixupAlpha = mixupAlpha
        c.cutmixAlpha = cutmixAlpha
        c.preset = preset
        if noFlip { c.flip = false }
        c.mean = try mean.map { try parseTriple($0, flag: "--mean") }
        c.std = try std.map { try parseTriple($0, flag: "--std") }
        c.augmentation = try makeAugmentation()
        return c
    }

    func run() throws {
        let config = try makeConfig()
        try runJob(collectiveTimeout: config.collectiveTimeout, purpose: "training loop: step loss, metrics or barrier") { communicator in
            // Set-up errors (bad data, refused output directory, bad checkpoint) are agreed on by
            // every rank before any training collective, so all ranks exit cleanly together.
            let trainer = try RankAgreement.together(over: communicator) {
                try Trainer(config: config, version: dtrainVersion, communicator: communicator,
                            progress: ProgressReporter(printEvery: config.printFreq))
            }
            try trainer.start()
            // SIGTERM, SIGINT and SIGUSR1 now stop the run after the current step with checkpoint-last
            // written (see `TrainingStop`); the job then exits with status 75 (EX_TEMPFAIL).
            StopSignals.install()
            if try trainer.train().stop != nil { throw ExitCode(TrainingStop.exitStatus) }
        }
    }
}

func parseTriple(_ text: String, flag: String) throws -> [Double] {
    let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard values.count == 3, values.allSatisfy({ $0?.isFinite ?? false }) else {
        throw ValidationError("\(flag) \(text): expected three comma-separated numbers (R,G,B)")
    }
    return values.map { $0! }
}

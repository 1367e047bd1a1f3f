import Foundation
import DTrainCore
import DTrainNN
import DTrainData
import DTrainDistributed
import DTrainWeights

/// How a run ended.
public struct TrainSummary: Sendable {
    public var epochsCompleted: Int
    public var bestTop1: Double?
    public var lastMetrics: EpochMetrics?
    public var outputDirectory: URL
    public var finalTrainTop1: Double
}

/// A run that cannot start or continue: a one-line reason naming the flag, file or step.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Trains one model data-parallel over `communicator` (a world of one in the single-process mode).
///
/// Each step: forward, loss, backward, gradient average across ranks, optimizer update. Each epoch
/// reports train loss and top-1, then val loss, top-1 and top-5 (evaluation sharded so every
/// sample counts once), appends a metrics.jsonl line and writes checkpoints (rank 0 only). The best
/// model by val top-1 is kept. Resuming restores weights, optimizer, schedule and data position,
/// so an interrupted run ends with the same weights as an uninterrupted one.
public final class Trainer {
    public let config: TrainConfig
    public let communicator: Communicator
    public let progress: ProgressReporter
    public let model: Model
    public let trainSource: DataSource
    public let valSource: DataSource?
    public let optimizer: Optimizer
    public let schedule: LRSchedule
    public let run: RunDirectory
    public let preset: Preset
    public let resolution: Int
    public let mean: [Float]
    public let std: [Float]
    private let step: TrainingStep
    private let loader: BatchLoader
    private let sampler: DistributedSampler
    private var evaluator: Evaluator?
    private let dropouts: [Dropout]
    private let inspector: DebugInspector?
    private var info: CheckpointInfo
    private let metricsLog: JSONLinesLog?
    /// What --pretrained and --freeze did, reported by rank 0 when training starts.
    public let transferLines: [String]

    public init(config: TrainConfig, communicator: Communicator, progress: ProgressReporter) throws {
        self.config = config
        self.communicator = communicator
        self.progress = progress
        let threads = config.threads ?? Compute.defaultThreads
        Compute.setThreads(threads)

        let spec = try ModelZoo.spec(named: config.model)
        resolution = config.resolution ?? spec.defaultResolution
        preset = config.preset.flatMap(Preset.init(rawValue:)) ?? Preset.default(for: spec.family)
        mean = config.mean.map { $0.map(Float.init) } ?? preset.mean
        std = config.std.map { $0.map(Float.init) } ?? preset.std

        // Data: opened (and checked) before anything is written.
        let splits = try DataSourceFactory.openSplits(path: config.dataPath, dataset: try DatasetKind.parse(config.dataset), valSplit: config.valSplit,
                                                      resolution: resolution, seed: config.seed)
        trainSource = splits.train
        valSource = config.noVal ? nil : splits.val
        let dataClasses = trainSource.classNames.count

        // A checkpoint to resume, read and verified before the model is made.
        var resumeFrom: (file: SafeTensorsFile, info: CheckpointInfo, path: String)?
        run = RunDirectory(config.output)
        if let resume = config.resume {
            let url = resume.isEmpty ? run.last : URL(fileURLWithPath: resume)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw TrainingError("--resume \(url.path): no such checkpoint")
            }
            let (file, info) = try Checkpoint.read(url)
            guard info.model == config.model else {
                throw TrainingError("--resume \(url.path): checkpoint is of model \(info.model), not \(config.model)")
            }
            resumeFrom = (file, info, url.path)
        }

        var options = config.modelOptions
        let classes = options.numClasses ?? resumeFrom?.info.numClasses ?? dataClasses
        if let r = resumeFrom, r.info.numClasses != classes {
            throw TrainingError("--num-classes \(classes) disagrees with the checkpoint \(r.path), which has \(r.info.numClasses) classes")
        }
        if classes < dataClasses {
            throw TrainingError("--num-classes \(classes) is smaller than the \(dataClasses) classes in the data")
        }
        options.numClasses = classes
        model = try ModelZoo.make(config.model, options: options)
        model.initialize(seed: config.seed)
        // Transfer learning: pretrained weights (a resumed run has them in its checkpoint), then
        // the frozen part, before the model is built (backward stops at the first layer that trains).
        var transferLines: [String] = []
        if let path = config.pretrained {
            if resumeFrom == nil {
                transferLines += try Pretrained.load(path, into: model, seed: config.seed).lines
            } else {
                transferLines.append("pretrained \(path): not loaded, the weights come from the resumed checkpoint")
            }
        }
        if let line = try config.freeze.apply(to: model) { transferLines.append(line) }
        self.transferLines = transferLines
        model.build(batch: config.batchSize, resolution: resolution, seed: config.seed)
        dropouts = Trainer.layers(of: Dropout.self, in: model)
        if config.syncBN && communicator.size > 1 { model.synchronizeBatchNorm(over: communicator) }

        let decay = config.weightDecay
        let exclude = config.noBNWeightDecay
        let decayFor: (Parameter) -> Float = { p in exclude && p.role != .weight ? 0 : Float(decay) }
        switch config.optimizer {
        case .sgd: optimizer = SGD(store: model.store, momentum: Float(config.momentum), nesterov: config.nesterov, decayFor: decayFor)
        case .adamw: optimizer = AdamW(store: model.store, decayFor: decayFor)
        }
        if let mult = config.headLRMultiplier {
            let head = model.headEntries.compactMap { if case .parameter(let p) = $0.kind { return p } else { return nil } }
            if let first = head.map(\.offset).min(), let end = head.map({ $0.offset + $0.count }).max() {
                optimizer.learningRateScales.set(Float(mult), on: first..<end)
            }
        }

        var lr = config.lr
        if config.lrScaling == .linear { lr *= Double(config.batchSize * communicator.size * config.gradAccum) / 256 }
        var schedule = LRSchedule(kind: config.schedule, baseLR: lr, totalEpochs: config.epochs)
        schedule.gamma = config.lrGamma
        schedule.milestones = config.lrSteps
        schedule.stepSize = config.lrSteps.first ?? 30
        schedule.warmupEpochs = config.warmupEpochs
        self.schedule = schedule

        // Gradient averaging across ranks is set up in start(): it duplicates the communicator,
        // a collective that only runs once every rank has initialised.
        let gradients: GradientSynchronizer = LocalGradients()
        let loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: Float(config.labelSmoothing))
        loss.build(maxBatch: config.batchSize)
        step = TrainingStep(model: model, loss: loss, optimizer: optimizer, gradients: gradients, accumulation: config.gradAccum)

        let computeThreads = threads
        let workers = config.workers ?? BatchLoader.defaultWorkers(computeThreads: computeThreads)
        sampler = DistributedSampler(datasetSize: trainSource.count, rank: communicator.rank, worldSize: communicator.size,
                                     shuffle: true, seed: config.seed, dropLast: config.dropLast, padToEqual: true)
        var trainTransform = config.overfitBatches != nil
            ? preset.eval(resolution: resolution, mean: mean, std: std)
            : preset.train(resolution: resolution, mean: mean, std: std)
        if !(config.flip ?? (trainSource is DigitsSource == false)) { trainTransform.flipProbability = 0 }
        loader = BatchLoader(source: trainSource, transform: trainTransform, batchSize: config.batchSize, resolution: resolution,
                             workers: workers, seed: config.seed, rank: communicator.rank, dropLastPartial: config.dropLast)
        let reporter = progress
        let isRoot = communicator.rank == 0
        loader.warningHandler = { message in if isRoot { reporter.message("warning: \(message)") } }
        if let val = valSource {
            evaluator = Evaluator(model: model, source: val, transform: preset.eval(resolution: resolution, mean: mean, std: std),
                                  batchSize: config.batchSize, workers: workers, communicator: communicator, seed: config.seed)
        }
        inspector = config.debug ? DebugInspector(model: model, printEvery: config.printFreq, report: { reporter.message($0) }) : nil

        info = CheckpointInfo(model: config.model, numClasses: classes)
        info.zeroInitResidual = options.zeroInitResidual
        info.cifarShortcut = options.cifarShortcut?.rawValue
        info.seed = config.seed
        info.worldSize = communicator.size
        info.classNames = trainSource.classNames + (classes > dataClasses ? (dataClasses..<classes).map { "class\($0)" } : [])
        info.mean = mean.map(Double.init)
        info.std = std.map(Double.init)
        info.resolution = resolution
        info.preset = preset.rawValue
        info.optimizer = config.optimizer.rawValue
        if let p = config.pretrained { info.settings["pretrained"] = p }
        if config.freeze != .none { info.settings["freeze"] = config.freeze.description }
        if let m = config.headLRMultiplier { info.settings["head_lr_mult"] = String(m) }

        if let r = resumeFrom {
            try Checkpoint.restore(r.file, path: r.path, into: model, optimizer: optimizer)
            optimizer.steps = r.info.optimizerSteps
            info.epoch = r.info.epoch
            info.globalStep = r.info.globalStep
            info.samplesIntoEpoch = r.info.samplesIntoEpoch
            info.bestTop1 = r.info.bestTop1
        }
        if communicator.rank == 0 {
            try run.prepare(resuming: resumeFrom != nil, overwrite: config.overwrite)
            metricsLog = try JSONLinesLog(url: run.metrics)
        } else {
            metricsLog = nil
        }
        info.dtrainVersion = Trainer.version
    }

    /// dtrain's version string recorded in checkpoints.
    public static var version = "0"

    static func layers<T: Layer>(of type: T.Type, in model: Model) -> [T] {
        var found: [T] = []
        model.visitLayers { if let l = $0 as? T { found.append(l) } }
        return found
    }

    private var isRoot: Bool { communicator.rank == 0 }
    /// Scratch for the per-step loss allreduce (allocated once).
    private var stepTotals = [Double](repeating: 0, count: 2)

    /// Tests: stop abruptly (no end-of-epoch work) once this many global steps are done, as a
    /// killed process would.
    var interruptAfterSteps: Int?

    /// Checks that every rank was given the same job (one allgather: a mismatch is a clear error on
    /// every rank, naming the field and the ranks) and makes every rank start from rank 0's state.
    /// Resumed ranks also agree on the step they loaded. Call on every rank before `train()`.
    public func start() throws {
        let fields: [(name: String, value: String)] = [
            ("dtrain version", info.dtrainVersion),
            ("model", config.model),
            ("number of classes", String(model.numClasses)),
            ("class list", trainSource.classNames.joined(separator: ",")),
            ("training set size", String(trainSource.count)),
            ("validation set size", String(valSource?.count ?? 0)),
            ("batch size", String(config.batchSize)),
            ("resolution", String(resolution)),
            ("epochs", String(config.epochs)),
            ("seed", String(config.seed)),
            ("gradient accumulation", String(config.gradAccum)),
            ("synchronized BatchNorm", String(config.syncBN)),
            ("pretrained weights", config.pretrained ?? "none"),
            ("frozen layers", config.freeze.description),
            ("head learning-rate multiplier", config.headLRMultiplier.map { String($0) } ?? "none"),
            ("trainable parameters", String(model.trainableParameterCount)),
            ("resumed step", "\(info.epoch)/\(info.globalStep)/\(info.samplesIntoEpoch)"),
        ]
        try RankAgreement.check(fields, over: communicator)
        if communicator.size > 1 {
            let overlapped = try OverlappedGradientAllreduce(store: model.store, communicator: communicator)
            model.onGradientsReady = { [unowned overlapped] offset in overlapped.gradientsReady(from: offset) }
            step.gradients = overlapped
        }
        try ModelSync.broadcastState(of: model, over: communicator)
        try ModelSync.broadcast(optimizer.stateBuffers.map(\.storage), over: communicator)
    }

    /// Runs the remaining epochs.
    public func train() throws -> TrainSummary {
        var last: EpochMetrics?
        var finalTrainTop1 = 0.0
        let stepsPerEpoch = max(1, config.overfitBatches ?? sampler.stepsPerEpoch(batchSize: config.batchSize, dropLastPartial: config.dropLast))
        if isRoot {
            for line in transferLines { progress.message(line) }
            let trainable = model.trainableParameterCount
            let parameters = trainable == model.parameterCount ? "\(trainable) parameters" : "\(model.parameterCount) parameters, \(trainable) trainable"
            progress.message("dtrain: \(config.model) (\(parameters)) on \(trainSource.count) training images, \(trainSource.classNames.count) classes, \(communicator.size) rank(s) × \(Compute.threads) thread(s), batch \(config.batchSize) per rank, \(config.epochs) epochs")
        }
        while info.epoch < config.epochs {
            let epoch = info.epoch
            let start = Date()
            var indices = sampler.indices(epoch: epoch, skippingFirst: info.samplesIntoEpoch)
            if let n = config.overfitBatches {
                indices = Array(sampler.indices(epoch: 0).prefix(n * config.batchSize))
            }
            let doneBefore = info.samplesIntoEpoch / max(1, config.batchSize * communicator.size)
            var steps = (indices.count + config.batchSize - 1) / config.batchSize
            if config.dropLast { steps = indices.count / config.batchSize }
            // The limit counts the epoch's steps, including those done before a resume.
            if let limit = config.limitTrainBatches { steps = min(steps, max(0, limit - doneBefore)) }
            loader.start(epoch: epoch, indices: Array(indices.prefix(steps * config.batchSize)))
            var totals = MetricTotals()
            var lr = 0.0
            var s = 0
            while let batch = try Profiler.measure(.dataWait, { try loader.next() }) {
                let position = Double(epoch) + Double(doneBefore + s) / Double(stepsPerEpoch)
                lr = schedule.rate(at: position)
                for d in dropouts { d.step = UInt64(info.globalStep) }
                inspector?.beginStep(info.globalStep)
                var outcome = try step.run(images: batch.images, labels: batch.labels, lr: Float(lr))
                try inspector?.endStep(info.globalStep)
                if communicator.size > 1 {
                    // The step's loss over all ranks: every rank sees the same value (and stops together).
                    stepTotals[0] = Double(outcome.loss) * Double(batch.count)
                    stepTotals[1] = Double(batch.count)
                    try stepTotals.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
                    outcome.loss = Float(stepTotals[0] / max(stepTotals[1], 1))
                }
                guard outcome.loss.isFinite else {
                    throw TrainingError("loss became \(outcome.loss) at epoch \(epoch + 1) step \(doneBefore + s + 1) (global step \(info.globalStep + 1)); stopped, the last good checkpoint is kept\(isRoot ? " in \(run.url.path)" : "")")
                }
                totals.samples += Double(batch.count)
                totals.lossSum += Double(outcome.loss) * Double(batch.count)
                totals.top1 += Double(outcome.correct)
                s += 1
                info.globalStep += 1
                info.samplesIntoEpoch = (doneBefore + s) * config.batchSize * communicator.size
                if isRoot {
                    let elapsed = Date().timeIntervalSince(start)
                    progress.update(label: "epoch \(epoch + 1)/\(config.epochs)", step: doneBefore + s, total: doneBefore + steps,
                                    imagesPerSecond: totals.samples * Double(communicator.size) / max(elapsed, 1e-9),
                                    loss: totals.meanLoss, top1: totals.top1Fraction, elapsed: elapsed)
                }
                if let every = config.saveEverySteps, info.globalStep % every == 0, s < steps {
                    try saveLast()
                    try communicator.barrier()  // no rank runs ahead of a checkpoint being written
                }
                if let stop = interruptAfterSteps, info.globalStep >= stop {
                    loader.stop()
                    return TrainSummary(epochsCompleted: info.epoch, bestTop1: info.bestTop1, lastMetrics: last,
                                        outputDirectory: run.url, finalTrainTop1: totals.top1Fraction)
                }
            }
            let seconds = Date().timeIntervalSince(start)
            // Train metrics averaged over all ranks.
            var packed = totals.packed
            try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
            totals = MetricTotals(packed: packed)
            finalTrainTop1 = totals.top1Fraction
            var skipped = [Double(loader.skippedThisEpoch)]
            try skipped.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }

            var val: MetricTotals?
            let lastEpoch = epoch + 1 == config.epochs
            if let evaluator, (epoch + 1) % max(1, config.evalEvery) == 0 || lastEpoch {
                val = try evaluator.run(limitBatches: config.limitValBatches)
            }
            for (what, value) in [("train loss", totals.meanLoss), ("val loss", val?.meanLoss ?? 0)] where !value.isFinite {
                throw TrainingError("\(what) became \(value) in epoch \(epoch + 1) (global step \(info.globalStep)); stopped, the last good checkpoint is kept\(isRoot ? " in \(run.url.path)" : "")")
            }
            info.epoch = epoch + 1
            info.samplesIntoEpoch = 0
            info.optimizerSteps = optimizer.steps
            let metrics = EpochMetrics(epoch: epoch + 1, lr: lr, train_loss: totals.meanLoss, train_top1: totals.top1Fraction,
                                       val_loss: val?.meanLoss, val_top1: val?.top1Fraction, val_top5: val?.top5Fraction,
                                       images_per_s: totals.samples / max(seconds, 1e-9), seconds: seconds,
                                       skipped_samples: Int(skipped[0]))
            last = metrics
            var improved = false
            if let top1 = val?.top1Fraction, top1 > (info.bestTop1 ?? -1) {
                info.bestTop1 = top1
                improved = true
            }
            if isRoot {
                try metricsLog?.append(metrics)
                try saveLast()
                try Checkpoint.save(model: model, optimizer: optimizer, info: info, to: run.epoch(epoch + 1))
                run.prune(keep: config.keep)
                if improved { try Checkpoint.save(model: model, optimizer: nil, info: info, to: run.best) }
                var line = String(format: "epoch %d/%d  lr %.4g  train loss %.4f top1 %.2f%%", epoch + 1, config.epochs, lr,
                                  metrics.train_loss, metrics.train_top1 * 100)
                if let v = val {
                    line += String(format: "  val loss %.4f top1 %.2f%% top5 %.2f%%", v.meanLoss, v.top1Fraction * 100, v.top5Fraction * 100)
                }
                line += String(format: "  %.1f img/s  %.1f s", metrics.images_per_s, seconds)
                if metrics.skipped_samples > 0 { line += "  skipped \(metrics.skipped_samples) unreadable" }
                progress.message(line)
            }
            try communicator.barrier()
        }
        loader.stop()
        if isRoot {
            let best = info.bestTop1.map { String(format: "best val top1 %.2f%%", $0 * 100) } ?? "no validation"
            let files = info.bestTop1 == nil ? "checkpoint-last.safetensors" : "checkpoint-last.safetensors, checkpoint-best.safetensors"
            progress.message("done: \(best); checkpoints in \(run.url.path) (\(files))")
        }
        return TrainSummary(epochsCompleted: info.epoch, bestTop1: info.bestTop1, lastMetrics: last,
                            outputDirectory: run.url, finalTrainTop1: finalTrainTop1)
    }

    private func saveLast() throws {
        guard isRoot else { return }
        info.optimizerSteps = optimizer.steps
        try Checkpoint.save(model: model, optimizer: optimizer, info: info, to: run.last)
    }
}

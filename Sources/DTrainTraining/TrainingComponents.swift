import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights
import DTrainData
import DTrainDistributed

/// Everything a run trains with, set up from its configuration before any collective: the plan,
/// the data, the model (pretrained, frozen, built), optimizer, loss, loader and evaluator, the
/// debug inspector, and the run directory (prepared by rank 0). A resumed run has the checkpoint's
/// weights and optimizer state applied.
struct TrainingComponents {
    let plan: TrainingPlan
    let trainSource: DataSource
    let valSource: DataSource?
    let model: Model
    let optimizer: Optimizer
    let loss: SoftmaxCrossEntropy
    let loader: BatchLoader
    let evaluator: Evaluator?
    let dropouts: [Dropout]
    let inspector: DebugInspector?
    let run: RunDirectory
    /// metrics.jsonl, written by rank 0 (nil on the other ranks).
    let metricsLog: JSONLinesLog?
    /// What --pretrained and --freeze did, reported by rank 0 when training starts.
    let transferLines: [String]
    /// Makes unsynchronized BatchNorm statistics equal across ranks before evaluations and
    /// checkpoints (`--dist-bn`); nil for one rank or with `--sync-bn`.
    let batchNormSync: BatchNormBufferSync?
    /// Rank 0's hold on the output directory for the whole run (nil on the other ranks).
    let lock: RunLock?
    /// The model EMA (`--model-ema`), restored from the checkpoint when resuming; nil without it.
    let ema: ModelEMA?
    /// MixUp/CutMix of each training batch (`--mixup-alpha`, `--cutmix-alpha`); nil without them.
    let mixing: BatchMixing?
    let telemetry: RunTelemetry

    /// Sets the process's compute threads (`--threads`), then opens and checks the data before
    /// anything is written, reads the checkpoint to resume before the model is made, plans the run
    /// and makes its parts. Throws a one-line reason naming the flag, file or step.
    init(config: TrainConfig, version: String, communicator: Communicator, progress: ProgressReporter) throws {
        let threads = config.threads ?? Compute.defaultThreads
        Compute.setThreads(threads)
        let spec = try ModelZoo.spec(named: config.model)
        let splits = try DataSourceFactory.openSplits(path: config.dataPath, dataset: try DatasetKind.parse(config.dataset), valSplit: config.valSplit,
                                                      resolution: TrainingPlan.resolution(config, spec: spec).resolution, seed: config.seed)
        let valSource = config.noVal ? nil : splits.val
        trainSource = splits.train
        self.valSource = valSource
        run = RunDirectory(config.output)
        let resumed = try TrainingSetup.resumedCheckpoint(config, run: run)
        let plan = try TrainingPlan(config: config, spec: spec, data: DataSummary(train: splits.train, val: valSource),
                                    ranks: communicator.size, version: version, resuming: resumed.map { ($0.info, $0.path) })
        self.plan = plan

        let workers = config.workers ?? BatchLoader.defaultWorkers(computeThreads: threads)
        try MemoryPreflight.check(MemoryPreflight.estimate(spec: spec, options: plan.modelOptions, batch: config.batchSize,
                                                           resolution: plan.resolution, loaderBatches: workers + 2,
                                                           precision: config.precision),
                                  model: config.model, ranksOnNode: NodeRanks.current.localSize)
        let (model, transferLines) = try TrainingSetup.model(plan, resuming: resumed != nil, communicator: communicator)
        self.model = model
        self.transferLines = transferLines
        dropouts = TrainingSetup.layers(of: Dropout.self, in: model)
        optimizer = TrainingSetup.optimizer(config, model: model)
        loss = SoftmaxCrossEntropy(classes: plan.numClasses, labelSmoothing: Float(config.labelSmoothing))
        loss.build(maxBatch: config.batchSize)

        loader = TrainingSetup.trainLoader(plan, source: splits.train, workers: workers, rank: communicator.rank, progress: progress)
        evaluator = valSource.map {
            Evaluator(model: model, source: $0, transform: plan.evalTransform, batchSize: config.batchSize, workers: workers,
                      communicator: communicator, seed: config.seed)
        }
        inspector = config.debug ? DebugInspector(model: model, printEvery: config.printFreq, report: { progress.message($0) }) : nil

        if let r = resumed {
            try Checkpoint.restore(r.file, path: r.path, into: model, optimizer: optimizer)
            optimizer.steps = r.info.optimizerSteps
        }
        (ema, mixing) = try TrainingComponents.emaAndMixing(plan, model: model, ranks: communicator.size, resumed: resumed)
        batchNormSync = communicator.size > 1 && !config.syncBN
            ? BatchNormBufferSync(model: model, mode: config.distBN, communicator: communicator) : nil
        var tensorboard: TensorBoardWriter?
        if communicator.rank == 0 {
            // The lock comes first: with --overwrite, prepare removes files another job may own.
            lock = try run.lock()
            try run.prepare(resuming: resumed != nil, overwrite: config.overwrite)
            for name in run.removeStaleTemporaryFiles() { progress.message("removed \(name), left by an interrupted save") }
            metricsLog = try JSONLinesLog(url: run.metrics)
            try run.writeRecord(RunRecord(config: config, version: version, ranks: communicator.size, threads: threads,
                                           kernels: model.builtKernels))
            tensorboard = try TensorBoardWriter(directory: run.tensorboard)
        } else {
            lock = nil
            metricsLog = nil
        }
        telemetry = RunTelemetry(communicator: communicator, printEvery: config.printFreq, writer: tensorboard)
    }

    /// The model EMA with train.py's adjusted decay (its updates each average one global batch ×
    /// gradient accumulation), restored from `resumed`; and the batch mixing for the model's input.
    static func emaAndMixing(_ plan: TrainingPlan, model: Model, ranks: Int, resumed: ResumedCheckpoint?) throws -> (ModelEMA?, BatchMixing?) {
        let config = plan.config
        var ema: ModelEMA?
        if config.modelEMA {
            let decay = ModelEMA.adjustedDecay(config.modelEMADecay, globalBatch: ranks * config.batchSize * config.gradAccum,
                                               steps: config.modelEMASteps, epochs: config.epochs)
            let made = ModelEMA(model: model, decay: decay, every: config.modelEMASteps)
            if let r = resumed { try made.restore(from: r.file, path: r.path, model: model) }
            ema = made
        }
        var mixing: BatchMixing?
        if config.mixupAlpha > 0 || config.cutmixAlpha > 0 {
            let shape = model.inputShape
            mixing = BatchMixing(mixupAlpha: config.mixupAlpha, cutmixAlpha: config.cutmixAlpha, classes: plan.numClasses,
                                 maxBatch: config.batchSize, height: shape.height, width: shape.width, channels: shape.channels)
        }
        return (ema, mixing)
    }
}

import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights
import DTrainData
import DTrainDistributed

/// Trains one model data-parallel over `communicator` (a world of one in the single-process mode):
/// the epoch loop and the checkpoint policy. What the run is comes from its `TrainingPlan`, what
/// it trains with from `TrainingComponents`; each step is a `TrainingStep`.
///
/// Each epoch reports train loss and top-1, then val loss, top-1 and top-5 (evaluation sharded so
/// every sample counts once), appends a metrics.jsonl line and writes checkpoints (rank 0 only):
/// the last one every epoch and every `--save-every-steps`, the epoch's own (the newest `--keep`
/// kept), and the best by val top-1. Resuming restores weights, optimizer, schedule and data
/// position, so an interrupted run ends with the same weights as an uninterrupted one.
///
/// With `--mixup-alpha`/`--cutmix-alpha` each batch is mixed in place before the step
/// (`BatchMixing`, draws keyed by seed, rank, epoch and step); with `--model-ema` the EMA
/// (`ModelEMA`) is updated after the step's optimizer update, evaluated after the model and saved
/// in every checkpoint beside it.
public final class Trainer {
    public let plan: TrainingPlan
    public let communicator: Communicator
    public let progress: ProgressReporter
    private let parts: TrainingComponents
    /// Made by `start()`, on every rank together.
    private var step: TrainingStep?
    /// What the next checkpoint records: where the run stands, the best score so far.
    private(set) var info: CheckpointInfo
    private var consensus: StepConsensus

    public var config: TrainConfig { plan.config }
    public var model: Model { parts.model }
    public var optimizer: Optimizer { parts.optimizer }
    public var run: RunDirectory { parts.run }
    /// What --pretrained and --freeze did, reported by rank 0 when training starts.
    public var transferLines: [String] { parts.transferLines }

    /// Sets the run up (see `TrainingComponents`); no collective. `version` is dtrain's, recorded
    /// in checkpoints and checked across ranks.
    public init(config: TrainConfig, version: String, communicator: Communicator, progress: ProgressReporter) throws {
        parts = try TrainingComponents(config: config, version: version, communicator: communicator, progress: progress)
        plan = parts.plan
        info = plan.initialInfo
        self.communicator = communicator
        self.progress = progress
        consensus = StepConsensus(communicator: communicator)
    }

    var isRoot: Bool { communicator.rank == 0 }

    /// Tests: stop abruptly (no end-of-epoch work) once this many global steps are done, as a
    /// killed process would.
    var interruptAfterSteps: Int?

    /// The stop signal this rank received, or nil (read once per step; tests may replace it).
    var stopRequest: () -> Int32? = { StopSignals.received }

    /// Checks that every rank was given the same job (one allgather: a mismatch is a clear error on
    /// every rank, naming the field and the ranks), makes the training step with its gradient
    /// averaging (a collective) and makes every rank start from rank 0's state. Resumed ranks also
    /// agree on the step they loaded. Call on every rank before `train()` (which calls it if not).
    public func start() throws {
        try RankAgreement.check(plan.agreementFields(trainableParameters: model.trainableParameterCount), over: communicator)
        let step = try TrainingStep(model: model, loss: parts.loss, optimizer: optimizer, communicator: communicator,
                                    accumulation: config.gradAccum, allreduceDType: config.allreduceDtype)
        step.gradientClipping = config.clipGradNorm.map { GradientClipping(store: model.store, maxNorm: Float($0)) }
        self.step = step
        try ModelSync.broadcastState(of: model, over: communicator)
        try ModelSync.broadcast(optimizer.stateBuffers.map(\.storage), over: communicator)
    }

    /// Runs the remaining epochs.
    public func train() throws -> TrainSummary {
        defer { parts.lock?.release() }  // the run directory is free once the run ends, however it ends
        if step == nil { try start() }
        if isRoot { for line in transferLines + [plan.startLine(model: model, ranks: communicator.size)] { progress.message(line) } }
        var last: EpochMetrics?
        while info.epoch < config.epochs {
            let epoch = info.epoch
            let pass = try trainEpoch(epoch)
            if pass.interrupted {
                parts.loader.stop()
                return summary(last, finalTrainTop1: pass.totals.top1Fraction)
            }
            if pass.stopRequested && pass.midEpoch {
                parts.loader.stop()
                try equalizeBatchNorm()
                try saveLast()
                try communicator.barrier()
                return stopped(epoch, last, finalTrainTop1: pass.totals.top1Fraction)
            }
            last = try finishEpoch(epoch, pass)
            if pass.stopRequested && info.epoch < config.epochs {
                parts.loader.stop()
                return stopped(epoch, last, finalTrainTop1: last?.train_top1 ?? 0)
            }
        }
        parts.loader.stop()
        if isRoot { progress.message(CheckpointInfo.doneLine(bestTop1: info.bestTop1, run: run)) }
        return summary(last, finalTrainTop1: last?.train_top1 ?? 0)
    }

    /// Trains the rest of epoch `epoch`: every step's loss is averaged over the ranks (all ranks
    /// stop together on a non-finite one); `--save-every-steps` saves the last checkpoint mid-epoch.
    private func trainEpoch(_ epoch: Int) throws -> EpochPass {
        guard let step else { throw TrainingError("training step used before Trainer.start()") }
        let start = Date()
        let part = plan.epoch(epoch, rank: communicator.rank, samplesIntoEpoch: info.samplesIntoEpoch)
        parts.loader.start(epoch: epoch, indices: part.indices, repetitions: part.repetitions)
        parts.telemetry.beginEpoch()
        var pass = EpochPass()
        var s = 0
        var waitStart = monotonicNanoseconds()
        while let batch = try Profiler.measure(.dataWait, { try parts.loader.next() }) {
            let stepStart = monotonicNanoseconds()
            let index = part.stepsDone + s  // this batch's step in the epoch, from 0
            pass.lr = plan.learningRate(epoch: epoch, step: index)
            for d in parts.dropouts { d.step = UInt64(info.globalStep) }
            parts.inspector?.beginStep(info.globalStep)
            let targets = parts.mixing?.mix(images: batch.images.data, labels: batch.labels, count: batch.count,
                                            seed: config.seed, rank: communicator.rank, epoch: epoch, step: index)
            var outcome = try step.run(images: batch.images, labels: batch.labels, targets: targets, lr: Float(pass.lr))
            if outcome.updated {
                parts.ema?.afterOptimizerStep(epoch: epoch, step: index / config.gradAccum, warmupEpochs: config.warmupEpochs)
            }
            try parts.inspector?.endStep(info.globalStep)
            // A stop asked for on any rank stops every rank after the same step.
            let stop: Bool
            (outcome.loss, stop) = try consensus.agree(loss: outcome.loss, count: batch.count, stop: stopRequest() != nil)
            guard outcome.loss.isFinite else {
                throw TrainingError("loss became \(outcome.loss) at epoch \(epoch + 1) step \(part.stepsDone + s + 1) (global step \(info.globalStep + 1)); \(lastGoodCheckpointNote)")
            }
            pass.totals.samples += Double(batch.count)
            pass.totals.lossSum += Double(outcome.loss) * Double(batch.count)
            pass.totals.top1 += Double(outcome.correct)
            s += 1
            info.globalStep += 1
            info.samplesIntoEpoch = plan.samplesConsumed(steps: part.stepsDone + s)
            let elapsed = Date().timeIntervalSince(start), rate = pass.totals.samples * Double(communicator.size) / max(elapsed, 1e-9)
            try parts.telemetry.step(globalStep: info.globalStep, dataWait: Double(stepStart - waitStart) * 1e-9,
                                     stepSeconds: Double(monotonicNanoseconds() - stepStart) * 1e-9, allreduceWait: step.lastWaitSeconds,
                                     loss: Double(outcome.loss), top1: pass.totals.top1Fraction, lr: pass.lr, imagesPerSecond: rate)
            if isRoot {
                progress.update(label: "epoch \(epoch + 1)/\(config.epochs)", step: part.stepsDone + s, total: part.stepsDone + part.steps,
                                imagesPerSecond: rate, loss: pass.totals.meanLoss, top1: pass.totals.top1Fraction, elapsed: elapsed)
            }
            if let every = config.saveEverySteps, info.globalStep % every == 0, s < part.steps {
                try equalizeBatchNorm()  // the checkpoint holds what every rank would evaluate
                try saveLast()
                try communicator.barrier()  // no rank runs ahead of a checkpoint being written
            }
            if let stop = interruptAfterSteps, info.globalStep >= stop {
                pass.interrupted = true
                return pass
            }
            // Only after an optimizer update: a checkpoint holds no partly accumulated gradients.
            if stop && outcome.updated {
                pass.stopRequested = true
                pass.midEpoch = s < part.steps
                if pass.midEpoch { return pass }
            }
            waitStart = monotonicNanoseconds()
        }
        pass.seconds = Date().timeIntervalSince(start)
        return pass
    }

    /// Ends epoch `epoch`: train metrics over all ranks, evaluation when due, then the epoch's
    /// checkpoints and line (rank 0) and a barrier.
    private func finishEpoch(_ epoch: Int, _ pass: EpochPass) throws -> EpochMetrics {
        let (totals, skipped) = try pass.totals.summed(skipped: parts.loader.skippedThisEpoch, over: communicator)
        // What is evaluated is what is saved: every rank's BatchNorm statistics made equal first.
        try equalizeBatchNorm()
        var val: MetricTotals?, emaVal: MetricTotals?
        if let evaluator = parts.evaluator, (epoch + 1) % max(1, config.evalEvery) == 0 || epoch + 1 == config.epochs {
            val = try evaluator.run(limitBatches: config.limitValBatches)
            // torchvision's "Test: EMA": the same evaluation of the EMA's weights and statistics.
            if let ema = parts.ema { emaVal = try ema.withWeightsSwapped { try evaluator.run(limitBatches: config.limitValBatches) } }
        }
        for (what, value) in [("train loss", totals.meanLoss), ("val loss", val?.meanLoss ?? 0), ("EMA val loss", emaVal?.meanLoss ?? 0)]
        where !value.isFinite {
            throw TrainingError("\(what) became \(value) in epoch \(epoch + 1) (global step \(info.globalStep)); \(lastGoodCheckpointNote)")
        }
        info.epoch = epoch + 1
        info.samplesIntoEpoch = 0
        info.optimizerSteps = optimizer.steps
        var metrics = EpochMetrics(epoch: epoch + 1, lr: pass.lr, train_loss: totals.meanLoss, train_top1: totals.top1Fraction,
                                   val_loss: val?.meanLoss, val_top1: val?.top1Fraction, val_top5: val?.top5Fraction,
                                   images_per_s: totals.samples / max(pass.seconds, 1e-9), seconds: pass.seconds,
                                   skipped_samples: skipped)
        metrics.ema_val_loss = emaVal?.meanLoss
        metrics.ema_val_top1 = emaVal?.top1Fraction
        metrics.ema_val_top5 = emaVal?.top5Fraction
        metrics.precision = config.precision.rawValue
        try parts.telemetry.epoch(&metrics, globalStep: info.globalStep)
        var improved = false
        if let top1 = val?.top1Fraction, top1 > (info.bestTop1 ?? -1) {
            info.bestTop1 = top1
            improved = true
        }
        if isRoot {
            try saveEpoch(metrics, improved: improved)
            progress.message(metrics.line(epochs: config.epochs))
        }
        try communicator.barrier()
        return metrics
    }

    /// The checkpoint policy at the end of an epoch (rank 0): the metrics line, the last
    /// checkpoint, the epoch's own (pruned to the newest `--keep`), and the best when improved.
    private func saveEpoch(_ metrics: EpochMetrics, improved: Bool) throws {
        try parts.metricsLog?.append(metrics)
        try saveLast()
        try Checkpoint.save(model: model, optimizer: optimizer, ema: parts.ema, info: info, to: run.epoch(metrics.epoch))
        run.prune(keep: config.keep)
        if improved { try Checkpoint.save(model: model, optimizer: nil, ema: parts.ema, info: info, to: run.best) }
    }

    private func saveLast() throws {
        guard isRoot else { return }
        info.optimizerSteps = optimizer.steps
        try Checkpoint.save(model: model, optimizer: optimizer, ema: parts.ema, info: info, to: run.last)
    }

    /// Makes every rank's BatchNorm running statistics equal (`--dist-bn`) before an evaluation or
    /// a checkpoint: the model's, then the EMA's, which average each rank's own statistics and so
    /// differ across ranks as much (the EMA's weights are equal, as the model's are).
    private func equalizeBatchNorm() throws {
        guard let sync = parts.batchNormSync else { return }
        try sync.equalize()
        try parts.ema?.withWeightsSwapped { try sync.equalize() }
    }
}

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
public final class Trainer {
    public let plan: TrainingPlan
    public let communicator: Communicator
    public let progress: ProgressReporter
    private let parts: TrainingComponents
    /// Made by `start()`, on every rank together.
    private var step: TrainingStep?
    private var info: CheckpointInfo
    /// Scratch for the per-step allreduce (allocated once): loss × samples, samples, and the
    /// number of ranks asked to stop.
    private var stepTotals = [Double](repeating: 0, count: 3)

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
    }

    private var isRoot: Bool { communicator.rank == 0 }

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
        step = try TrainingStep(model: model, loss: parts.loss, optimizer: optimizer, communicator: communicator,
                                accumulation: config.gradAccum)
        try ModelSync.broadcastState(of: model, over: communicator)
        try ModelSync.broadcast(optimizer.stateBuffers.map(\.storage), over: communicator)
    }

    /// Runs the remaining epochs.
    public func train() throws -> TrainSummary {
        if step == nil { try start() }
        if isRoot {
            for line in transferLines { progress.message(line) }
            let trainable = model.trainableParameterCount
            let parameters = trainable == model.parameterCount ? "\(trainable) parameters" : "\(model.parameterCount) parameters, \(trainable) trainable"
            progress.message("dtrain: \(config.model) (\(parameters)) on \(plan.data.trainCount) training images, \(plan.data.classNames.count) classes, \(communicator.size) rank(s) × \(Compute.threads) thread(s), batch \(config.batchSize) per rank, \(config.epochs) epochs")
        }
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
        if isRoot {
            let best = info.bestTop1.map { String(format: "best val top1 %.2f%%", $0 * 100) } ?? "no validation"
            let files = info.bestTop1 == nil ? "checkpoint-last.safetensors" : "checkpoint-last.safetensors, checkpoint-best.safetensors"
            progress.message("done: \(best); checkpoints in \(run.url.path) (\(files))")
        }
        return summary(last, finalTrainTop1: last?.train_top1 ?? 0)
    }

    private func summary(_ last: EpochMetrics?, finalTrainTop1: Double) -> TrainSummary {
        TrainSummary(epochsCompleted: info.epoch, bestTop1: info.bestTop1, lastMetrics: last, outputDirectory: run.url,
                     finalTrainTop1: finalTrainTop1)
    }

    /// A run ended by a stop signal in epoch `epoch` (0-based), with checkpoint-last written at
    /// the step the ranks agreed on: rank 0 names it in one line.
    private func stopped(_ epoch: Int, _ last: EpochMetrics?, finalTrainTop1: Double) -> TrainSummary {
        let stop = TrainingStop(signal: stopRequest(), epoch: epoch + 1, globalStep: info.globalStep, checkpoint: run.last)
        if isRoot { progress.message(stop.line) }
        var result = summary(last, finalTrainTop1: finalTrainTop1)
        result.stop = stop
        return result
    }

    /// This rank's side of an epoch's training steps.
    private struct EpochPass {
        var totals = MetricTotals()
        var lr = 0.0
        var seconds = 0.0
        /// Stopped by `interruptAfterSteps`.
        var interrupted = false
        /// The ranks agreed to stop (a stop signal): after the step that ended the pass, or, when
        /// that was the epoch's last step, after the epoch.
        var stopRequested = false
        /// The stop came before the epoch's last step.
        var midEpoch = false
    }

    /// Trains the rest of epoch `epoch`: every step's loss is averaged over the ranks (all ranks
    /// stop together on a non-finite one); `--save-every-steps` saves the last checkpoint mid-epoch.
    private func trainEpoch(_ epoch: Int) throws -> EpochPass {
        guard let step else { throw TrainingError("training step used before Trainer.start()") }
        let start = Date()
        let part = plan.epoch(epoch, rank: communicator.rank, samplesIntoEpoch: info.samplesIntoEpoch)
        parts.loader.start(epoch: epoch, indices: part.indices)
        var pass = EpochPass()
        var s = 0
        while let batch = try Profiler.measure(.dataWait, { try parts.loader.next() }) {
            pass.lr = plan.learningRate(epoch: epoch, step: part.stepsDone + s)
            for d in parts.dropouts { d.step = UInt64(info.globalStep) }
            parts.inspector?.beginStep(info.globalStep)
            var outcome = try step.run(images: batch.images, labels: batch.labels, lr: Float(pass.lr))
            try parts.inspector?.endStep(info.globalStep)
            // A stop asked for on any rank stops every rank after the same step (no extra collective).
            var stop = stopRequest() != nil
            if communicator.size > 1 {
                stepTotals[0] = Double(outcome.loss) * Double(batch.count)
                stepTotals[1] = Double(batch.count)
                stepTotals[2] = stop ? 1 : 0
                try stepTotals.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
                outcome.loss = Float(stepTotals[0] / max(stepTotals[1], 1))
                stop = stepTotals[2] > 0
            }
            guard outcome.loss.isFinite else {
                throw TrainingError("loss became \(outcome.loss) at epoch \(epoch + 1) step \(part.stepsDone + s + 1) (global step \(info.globalStep + 1)); \(lastGoodCheckpointNote)")
            }
            pass.totals.samples += Double(batch.count)
            pass.totals.lossSum += Double(outcome.loss) * Double(batch.count)
            pass.totals.top1 += Double(outcome.correct)
            s += 1
            info.globalStep += 1
            info.samplesIntoEpoch = plan.samplesConsumed(steps: part.stepsDone + s)
            if isRoot {
                let elapsed = Date().timeIntervalSince(start)
                progress.update(label: "epoch \(epoch + 1)/\(config.epochs)", step: part.stepsDone + s, total: part.stepsDone + part.steps,
                                imagesPerSecond: pass.totals.samples * Double(communicator.size) / max(elapsed, 1e-9),
                                loss: pass.totals.meanLoss, top1: pass.totals.top1Fraction, elapsed: elapsed)
            }
            if let every = config.saveEverySteps, info.globalStep % every == 0, s < part.steps {
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
        }
        pass.seconds = Date().timeIntervalSince(start)
        return pass
    }

    /// Ends epoch `epoch`: train metrics over all ranks, evaluation when due, then the epoch's
    /// checkpoints and line (rank 0) and a barrier.
    private func finishEpoch(_ epoch: Int, _ pass: EpochPass) throws -> EpochMetrics {
        var packed = pass.totals.packed
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        let totals = MetricTotals(packed: packed)
        var skipped = [Double(parts.loader.skippedThisEpoch)]
        try skipped.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        var val: MetricTotals?
        if let evaluator = parts.evaluator, (epoch + 1) % max(1, config.evalEvery) == 0 || epoch + 1 == config.epochs {
            val = try evaluator.run(limitBatches: config.limitValBatches)
        }
        for (what, value) in [("train loss", totals.meanLoss), ("val loss", val?.meanLoss ?? 0)] where !value.isFinite {
            throw TrainingError("\(what) became \(value) in epoch \(epoch + 1) (global step \(info.globalStep)); \(lastGoodCheckpointNote)")
        }
        info.epoch = epoch + 1
        info.samplesIntoEpoch = 0
        info.optimizerSteps = optimizer.steps
        let metrics = EpochMetrics(epoch: epoch + 1, lr: pass.lr, train_loss: totals.meanLoss, train_top1: totals.top1Fraction,
                                   val_loss: val?.meanLoss, val_top1: val?.top1Fraction, val_top5: val?.top5Fraction,
                                   images_per_s: totals.samples / max(pass.seconds, 1e-9), seconds: pass.seconds,
                                   skipped_samples: Int(skipped[0]))
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
        try Checkpoint.save(model: model, optimizer: optimizer, info: info, to: run.epoch(metrics.epoch))
        run.prune(keep: config.keep)
        if improved { try Checkpoint.save(model: model, optimizer: nil, info: info, to: run.best) }
    }

    private func saveLast() throws {
        guard isRoot else { return }
        info.optimizerSteps = optimizer.steps
        try Checkpoint.save(model: model, optimizer: optimizer, info: info, to: run.last)
    }
}

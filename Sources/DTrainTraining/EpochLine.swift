import Foundation
import DTrainCore
import DTrainNN
import DTrainWeights

extension EpochMetrics {
    /// The line rank 0 prints after an epoch of `epochs`: rate, train and (when evaluated) val
    /// loss and accuracy, throughput, time and unreadable samples skipped.
    func line(epochs: Int) -> String {
        var line = String(format: "epoch %d/%d  lr %.4g  train loss %.4f top1 %.2f%%", epoch, epochs, lr, train_loss, train_top1 * 100)
        if let loss = val_loss, let top1 = val_top1, let top5 = val_top5 {
            line += String(format: "  val loss %.4f top1 %.2f%% top5 %.2f%%", loss, top1 * 100, top5 * 100)
        }
        if let loss = ema_val_loss, let top1 = ema_val_top1, let top5 = ema_val_top5 {
            line += String(format: "  EMA val loss %.4f top1 %.2f%% top5 %.2f%%", loss, top1 * 100, top5 * 100)
        }
        line += String(format: "  %.1f img/s  %.1f s", images_per_s, seconds)
        if skipped_samples > 0 { line += "  skipped \(skipped_samples) unreadable" }
        return line
    }
}

extension TrainingPlan {
    /// The line rank 0 prints when training starts: model, parameters, data, ranks, threads and
    /// rank 0's kernel set, precision, batch and epochs.
    func startLine(model: Model, ranks: Int) -> String {
        let precisionText = config.precision == .bf16 && config.bf16Emulated && !KernelSet.cpuHasBF16
            ? "bf16 precision (emulated in float32 kernels: this CPU lacks \(Precision.bf16Extension))"
            : config.precision == .bf16 ? "bf16 precision (\(model.builtKernels.bf16ProductsSummary))" : "\(config.precision.rawValue) precision"
        let allreduceText = ranks > 1 && config.allreduceDtype == .bf16 ? ", bf16 gradient allreduce" : ""
        let trainable = model.trainableParameterCount
        let parameters = trainable == model.parameterCount ? "\(trainable) parameters" : "\(model.parameterCount) parameters, \(trainable) trainable"
        return "dtrain: \(config.model) (\(parameters)) on \(data.trainCount) training images, \(data.classNames.count) classes, \(ranks) rank(s) × \(Compute.threads) thread(s), \(model.builtKernels.summary) kernels, \(BLAS.coreSummary), \(precisionText)\(allreduceText), batch \(config.batchSize) per rank, \(config.epochs) epochs"
    }
}

extension CheckpointInfo {
    /// The line rank 0 prints when a run has trained every epoch.
    static func doneLine(bestTop1: Double?, run: RunDirectory) -> String {
        let best = bestTop1.map { String(format: "best val top1 %.2f%%", $0 * 100) } ?? "no validation"
        let files = bestTop1 == nil ? "checkpoint-last.safetensors" : "checkpoint-last.safetensors, checkpoint-best.safetensors"
        return "done: \(best); checkpoints in \(run.url.path) (\(files))"
    }
}

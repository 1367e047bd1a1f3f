import Foundation

extension EpochMetrics {
    /// The line rank 0 prints after an epoch of `epochs`: rate, train and (when evaluated) val
    /// loss and accuracy, throughput, time and unreadable samples skipped.
    func line(epochs: Int) -> String {
        var line = String(format: "epoch %d/%d  lr %.4g  train loss %.4f top1 %.2f%%", epoch, epochs, lr, train_loss, train_top1 * 100)
        if let loss = val_loss, let top1 = val_top1, let top5 = val_top5 {
            line += String(format: "  val loss %.4f top1 %.2f%% top5 %.2f%%", loss, top1 * 100, top5 * 100)
        }
        line += String(format: "  %.1f img/s  %.1f s", images_per_s, seconds)
        if skipped_samples > 0 { line += "  skipped \(skipped_samples) unreadable" }
        return line
    }
}

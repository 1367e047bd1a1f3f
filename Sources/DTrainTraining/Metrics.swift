import DTrainCore
import DTrainDistributed
import Foundation

/// Loss and accuracy totals over a set of samples. Totals (not averages) so that ranks can sum
/// them with one allreduce and every sample counts exactly once.
public struct MetricTotals: Equatable, Sendable {
    public var samples = 0.0
    public var lossSum = 0.0
    public var top1 = 0.0
    public var top5 = 0.0

    public init() {}

    public var meanLoss: Double { samples > 0 ? lossSum / samples : .nan }
    public var top1Fraction: Double { samples > 0 ? top1 / samples : .nan }
    public var top5Fraction: Double { samples > 0 ? top5 / samples : .nan }

    /// The four totals as one array, for an allreduce.
    public var packed: [Double] { [samples, lossSum, top1, top5] }
    public init(packed p: [Double]) { samples = p[0]; lossSum = p[1]; top1 = p[2]; top5 = p[3] }

    /// Adds a batch: per-sample losses are summed as loss × count.
    public mutating func add(logits: Tensor, labels: UnsafePointer<Int32>, count: Int, meanLoss: Double,
                             confusion: ConfusionMatrix? = nil) {
        samples += Double(count)
        lossSum += meanLoss * Double(count)
        for n in 0..<count { addRow(n, logits: logits, labels: labels, confusion: confusion) }
    }

    /// Adds a batch except the rows `excluded` (ascending row numbers, e.g. samples the loader
    /// replaced because they were unreadable): they count neither as samples nor in the loss,
    /// accuracies or confusion matrix. `meanLoss` is the mean over all `count` rows; the excluded
    /// rows' cross-entropy is taken back out of it. Without exclusions this is
    /// `add(logits:labels:count:meanLoss:confusion:)`.
    public mutating func add(logits: Tensor, labels: UnsafePointer<Int32>, count: Int, meanLoss: Double,
                             excluding excluded: [Int], confusion: ConfusionMatrix? = nil) {
        guard !excluded.isEmpty else {
            return add(logits: logits, labels: labels, count: count, meanLoss: meanLoss, confusion: confusion)
        }
        let k = logits.shape.count
        var excludedLoss = 0.0
        for n in excluded {
            precondition(n >= 0 && n < count, "excluded row \(n) outside the batch of \(count)")
            let row = logits.data + n * k
            let top = Double((0..<k).map { row[$0] }.max() ?? 0)
            let logSum = log((0..<k).reduce(0.0) { $0 + exp(Double(row[$1]) - top) }) + top
            excludedLoss += logSum - Double(row[Int(labels[n])])
        }
        samples += Double(count - excluded.count)
        lossSum += meanLoss * Double(count) - excludedLoss
        var next = 0
        for n in 0..<count {
            if next < excluded.count && excluded[next] == n { next += 1; continue }
            addRow(n, logits: logits, labels: labels, confusion: confusion)
        }
    }

    private mutating func addRow(_ n: Int, logits: Tensor, labels: UnsafePointer<Int32>, confusion: ConfusionMatrix?) {
        let k = logits.shape.count
        let row = logits.data + n * k
        let label = Int(labels[n])
        let target = row[label]
        // Rank of the true class: how many logits beat it (ties broken by index, as topk).
        var better = 0
        for j in 0..<k where row[j] > target || (row[j] == target && j < label) { better += 1 }
        if better == 0 { top1 += 1 }
        if better < 5 { top5 += 1 }
        if let confusion {
            var arg = 0
            for j in 1..<k where row[j] > row[arg] { arg = j }
            confusion.add(truth: label, predicted: arg)
        }
    }
}

/// Counts of (true class, predicted class) pairs.
public final class ConfusionMatrix {
    public let classes: Int
    public private(set) var counts: [Double]

    public init(classes: Int) {
        self.classes = classes
        counts = [Double](repeating: 0, count: classes * classes)
    }

    public func add(truth: Int, predicted: Int) { counts[truth * classes + predicted] += 1 }
    public func count(truth: Int, predicted: Int) -> Int { Int(counts[truth * classes + predicted]) }

    /// Replaces the counts (after summing them over ranks).
    public func set(_ values: [Double]) { precondition(values.count == counts.count); counts = values }

    /// Per-class accuracy (nan for a class with no samples).
    public var perClassAccuracy: [Double] {
        (0..<classes).map { c in
            let row = counts[(c * classes)..<((c + 1) * classes)].reduce(0, +)
            return row > 0 ? counts[c * classes + c] / row : .nan
        }
    }
}

extension MetricTotals {
    /// These totals and a count of skipped samples summed over every rank (one allreduce of the
    /// totals and one of the count).
    func summed(skipped: Int, over communicator: Communicator) throws -> (totals: MetricTotals, skipped: Int) {
        var packed = self.packed
        try packed.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        var count = [Double(skipped)]
        try count.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        return (MetricTotals(packed: packed), Int(count[0]))
    }
}

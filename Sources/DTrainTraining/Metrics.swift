import DTrainCore
import DTrainDistributed

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
        let k = logits.shape.count
        for n in 0..<count {
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

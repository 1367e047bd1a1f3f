import XCTest
import DTrainCore
import DTrainNN
@testable import DTrainTraining

/// Evaluation totals that leave out rows the loader filled in for unreadable samples.
final class MetricTotalsTests: XCTestCase {
    func testExcludedRowsCountNowhere() {
        let classes = 4, rows = 5
        let logits: [Float] = [2, 0, 0, 0,   0, 3, 1, 0,   0, 0, 0, 5,   1, 1, 4, 0,   0, 2, 0, 0]
        var labels: [Int32] = [0, 2, 3, 2, 1]
        let storage = Storage(count: logits.count)
        for (i, v) in logits.enumerated() { storage.pointer[i] = v }
        let tensor = Tensor(storage: storage, batch: rows, shape: FeatureShape(features: classes))
        let loss = SoftmaxCrossEntropy(classes: classes)
        loss.build(maxBatch: rows)
        let mean = Double(loss.forward(logits: tensor, labels: &labels))

        // Rows 1 and 3 excluded: the same as a batch of rows 0, 2 and 4 alone.
        let confusion = ConfusionMatrix(classes: classes)
        var excluded = MetricTotals()
        excluded.add(logits: tensor, labels: &labels, count: rows, meanLoss: mean, excluding: [1, 3], confusion: confusion)
        let keep = [0, 2, 4]
        let kept = Storage(count: keep.count * classes)
        for (r, row) in keep.enumerated() { for c in 0..<classes { kept.pointer[r * classes + c] = logits[row * classes + c] } }
        var keptLabels = keep.map { labels[$0] }
        let keptTensor = Tensor(storage: kept, batch: keep.count, shape: FeatureShape(features: classes))
        let keptMean = Double(loss.forward(logits: keptTensor, labels: &keptLabels))
        let reference = ConfusionMatrix(classes: classes)
        var direct = MetricTotals()
        direct.add(logits: keptTensor, labels: &keptLabels, count: keep.count, meanLoss: keptMean, confusion: reference)

        XCTAssertEqual(excluded.samples, 3)
        XCTAssertEqual(excluded.top1, direct.top1)
        XCTAssertEqual(excluded.top5, direct.top5)
        XCTAssertEqual(excluded.lossSum, direct.lossSum, accuracy: 1e-5)
        XCTAssertEqual(confusion.counts, reference.counts)

        // Without exclusions both forms agree exactly.
        var plain = MetricTotals(), empty = MetricTotals()
        plain.add(logits: tensor, labels: &labels, count: rows, meanLoss: mean)
        empty.add(logits: tensor, labels: &labels, count: rows, meanLoss: mean, excluding: [])
        XCTAssertEqual(plain, empty)
        XCTAssertEqual(plain.samples, 5)
    }
}

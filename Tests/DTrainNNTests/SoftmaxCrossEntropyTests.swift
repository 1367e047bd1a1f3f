import XCTest
@testable import DTrainCore
@testable import DTrainNN

final class SoftmaxCrossEntropyTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    /// Central differences of the loss against backward's dlogits, with and without smoothing.
    func testGradientMatchesFiniteDifferences() {
        for smoothing: Float in [0, 0.1, 0.3] {
            let batch = 4, classes = 6
            let loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: smoothing)
            loss.build(maxBatch: batch)
            var rng = SeededRandom(seed: 11)
            let logits = Storage(count: batch * classes)
            for i in 0..<logits.count { logits.pointer[i] = Float(rng.normal() * 2) }
            let labels: [Int32] = [0, 5, 2, 2]
            let t = Tensor(storage: logits, batch: batch, shape: FeatureShape(features: classes))
            _ = labels.withUnsafeBufferPointer { loss.forward(logits: t, labels: $0.baseAddress!) }
            let analytic = loss.backward().toArray()
            XCTAssertEqual(analytic.count, batch * classes)
            let h: Float = 1e-2
            var diff = 0.0, norm = 0.0
            for i in 0..<logits.count {
                let saved = logits.pointer[i]
                logits.pointer[i] = saved + h
                let plus = labels.withUnsafeBufferPointer { Double(loss.forward(logits: t, labels: $0.baseAddress!)) }
                logits.pointer[i] = saved - h
                let minus = labels.withUnsafeBufferPointer { Double(loss.forward(logits: t, labels: $0.baseAddress!)) }
                logits.pointer[i] = saved
                let numeric = (plus - minus) / (2 * Double(h))
                diff += (numeric - Double(analytic[i])) * (numeric - Double(analytic[i]))
                norm += numeric * numeric
            }
            XCTAssertLessThan(diff.squareRoot() / norm.squareRoot(), 1e-3, "label smoothing \(smoothing)")
        }
    }

    func testLossIsStableForLargeLogitsAndCountsTopK() {
        let loss = SoftmaxCrossEntropy(classes: 4)
        loss.build(maxBatch: 3)
        let values: [Float] = [1000, 0, -1000, 999,    // label 3: second largest
                               -5, 7, 1, 2,            // label 1: largest
                               0, 0, 0, 0]             // label 2: tied everywhere
        let s = Storage(count: 12)
        _ = s.buffer.update(fromContentsOf: values)
        let labels: [Int32] = [3, 1, 2]
        let value = labels.withUnsafeBufferPointer {
            loss.forward(logits: Tensor(storage: s, batch: 3, shape: FeatureShape(features: 4)), labels: $0.baseAddress!)
        }
        let lse0 = 1000 + log(1 + exp(-1.0))
        let lse1 = 7 + log(exp(-12.0) + 1 + exp(-6.0) + exp(-5.0))
        let expected = ((lse0 - 999) + (lse1 - 7) + log(4.0)) / 3
        XCTAssertTrue(value.isFinite)
        XCTAssertEqual(Double(value), expected, accuracy: 1e-5)
        XCTAssertEqual(loss.correct(topK: 1), 2)
        XCTAssertEqual(loss.correct(topK: 2), 3)
        let g = loss.backward().toArray()
        XCTAssertTrue(g.allSatisfy(\.isFinite))
        // Each row of dlogits sums to zero.
        for n in 0..<3 { XCTAssertEqual(g[(n * 4)..<(n * 4 + 4)].reduce(0, +), 0, accuracy: 1e-6) }
    }
}

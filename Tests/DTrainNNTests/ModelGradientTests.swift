import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Finite-difference check of a whole network: the cross-entropy loss of resnet20 (batch 4, train
/// mode) against a sample of parameters in every layer, analytic gradients from one backward pass.
///
/// Central differences through twenty ReLUs and BatchNorms have a truncation error from kinks
/// crossed by the perturbation (it shrinks with the step: about 19 %, 2.6 %, 0.8 % median at steps
/// 3e-2, 1e-2, 1e-3), so each tensor is held to 10 % and the median over tensors to 2.5 %. A wrong
/// or missing gradient path gives errors near 100 %.
final class ModelGradientTests: XCTestCase {
    func checkModel(_ name: String, batch: Int, resolution: Int, step: Float = 1e-3, tolerance: Double = 0.1, medianTolerance: Double = 0.025) throws {
        Compute.setThreads(2)
        let model = try ModelZoo.make(name)
        model.initialize(seed: 11)
        // Non-trivial BatchNorm affine parameters so their gradients are exercised.
        var rng = SeededRandom(seed: 12)
        for p in model.parameters where p.role == .normWeight || p.role == .normBias {
            for i in 0..<p.count { p.value[i] += Float(rng.uniform(-0.3, 0.3)) }
        }
        model.build(batch: batch, resolution: resolution)
        let images = Storage(count: batch * model.inputShape.count)
        for i in 0..<images.count { images.pointer[i] = Float(rng.normal()) }
        var labels = (0..<batch).map { Int32($0 % model.numClasses) }
        let x = Tensor(storage: images, batch: batch, shape: model.inputShape)
        let loss = SoftmaxCrossEntropy(classes: model.numClasses)
        loss.build(maxBatch: batch)

        /// The loss in Double from the logits, so the difference quotient is not lost to rounding.
        func lossValue() -> Double {
            let logits = model.forward(x, mode: .train)
            var total = 0.0
            for n in 0..<batch {
                let row = (0..<model.numClasses).map { Double(logits.data[n * model.numClasses + $0]) }
                let m = row.max()!
                let lse = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
                total += lse - row[Int(labels[n])]
            }
            return total / Double(batch)
        }

        let logits = model.forward(x, mode: .train)
        _ = labels.withUnsafeMutableBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
        model.store.zeroGrads()
        model.backward(loss.backward())
        let analytic = Array(model.store.grads.buffer)

        var errors: [Double] = []
        for entry in model.state {
            guard case .parameter(let p) = entry.kind else { continue }
            // The elements with the largest analytic gradients, plus random ones.
            let grads = (0..<p.count).map { abs(analytic[p.offset + $0]) }
            var picks = Array(grads.indices.sorted { grads[$0] > grads[$1] }.prefix(3))
            for _ in 0..<2 { picks.append(rng.int(below: p.count)) }
            var diff = 0.0, norm = 0.0
            for i in picks {
                let saved = p.value[i]
                p.value[i] = saved + step; let plus = lossValue()
                p.value[i] = saved - step; let minus = lossValue()
                p.value[i] = saved
                let numeric = (plus - minus) / (2 * Double(step))
                let a = Double(analytic[p.offset + i])
                diff += (numeric - a) * (numeric - a)
                norm = max(norm, numeric * numeric, a * a)
            }
            let error = diff.squareRoot() / max(norm.squareRoot(), 1e-6)
            XCTAssertLessThan(error, tolerance, "\(name) \(entry.name): relative error \(error)")
            errors.append(error)
        }
        XCTAssertEqual(errors.count, model.parameters.count)
        let median = errors.sorted()[errors.count / 2]
        XCTAssertLessThan(median, medianTolerance, "\(name): median relative error \(median)")
    }

    func testResNet20LossGradientAtBatch4() throws {
        try checkModel("resnet20", batch: 4, resolution: 16)
    }

    func testResNet20ProjectionShortcutLossGradient() throws {
        try checkModel("resnet20_b", batch: 4, resolution: 8)
    }
}

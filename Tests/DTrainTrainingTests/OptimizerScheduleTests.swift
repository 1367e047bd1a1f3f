import XCTest
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainTraining

final class OptimizerScheduleTests: XCTestCase {
    func testAdamWMatchesTorchUpdateRule() {
        let p = Parameter(torchShape: [2], role: .weight, initializer: .constant(0))
        let store = ParameterStore([p])
        p.value[0] = 0.5; p.value[1] = -1
        let opt = AdamW(store: store) { _ in 0.01 }
        var w: [Double] = [0.5, -1], m: [Double] = [0, 0], v: [Double] = [0, 0]
        for (t, g) in [[0.1, -0.2], [0.3, 0.05], [-0.4, 0.2]].enumerated() {
            p.grad[0] = Float(g[0]); p.grad[1] = Float(g[1])
            opt.step(lr: 0.001)
            for i in 0..<2 {
                w[i] -= 0.001 * 0.01 * w[i]
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mh = m[i] / (1 - pow(0.9, Double(t + 1))), vh = v[i] / (1 - pow(0.999, Double(t + 1)))
                w[i] -= 0.001 * mh / (vh.squareRoot() + 1e-8)
            }
        }
        XCTAssertEqual(Double(p.value[0]), w[0], accuracy: 1e-6)
        XCTAssertEqual(Double(p.value[1]), w[1], accuracy: 1e-6)
    }

    func testStepAndMultistepFollowTorchPerEpochRules() {
        var s = LRSchedule(kind: .step, baseLR: 0.1, totalEpochs: 90)
        s.stepSize = 30
        XCTAssertEqual(s.rate(at: 29.9), 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.rate(at: 30), 0.01, accuracy: 1e-12)
        XCTAssertEqual(s.rate(at: 61), 0.001, accuracy: 1e-12)
        var m = LRSchedule(kind: .multistep, baseLR: 0.1, totalEpochs: 100)
        m.milestones = [50, 75]
        XCTAssertEqual(m.rate(at: 49.5), 0.1, accuracy: 1e-12)
        XCTAssertEqual(m.rate(at: 50.2), 0.01, accuracy: 1e-12)
        XCTAssertEqual(m.rate(at: 80), 0.001, accuracy: 1e-12)
    }

    func testWarmupThenCosine() {
        var c = LRSchedule(kind: .cosine, baseLR: 0.4, totalEpochs: 12)
        c.warmupEpochs = 2
        XCTAssertEqual(c.rate(at: 0), 0.004, accuracy: 1e-12)
        XCTAssertEqual(c.rate(at: 1), 0.4 * (0.01 + 0.99 * 0.5), accuracy: 1e-12)
        XCTAssertEqual(c.rate(at: 2), 0.4, accuracy: 1e-12)
        XCTAssertEqual(c.rate(at: 7), 0.2, accuracy: 1e-12)
        XCTAssertEqual(c.rate(at: 12), 0, accuracy: 1e-12)
        XCTAssertEqual(LRSchedule(kind: .constant, baseLR: 0.3, totalEpochs: 5).rate(at: 4.5), 0.3)
    }
}

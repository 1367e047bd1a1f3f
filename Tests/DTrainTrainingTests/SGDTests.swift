import XCTest
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainTraining

final class SGDTests: XCTestCase {
    /// Three steps against torch.optim.SGD's update rule written out by hand.
    func testMatchesTorchUpdateRule() {
        for nesterov in [false, true] {
            let p = Parameter(torchShape: [2], role: .weight, initializer: .constant(0))
            let store = ParameterStore([p])
            p.value[0] = 1; p.value[1] = -2
            let sgd = SGD(store: store, momentum: 0.9, nesterov: nesterov, weightDecay: 0.1)
            var w: [Double] = [1, -2], buf: [Double] = [0, 0]
            let grads: [[Double]] = [[0.5, -1], [0.25, 2], [-1, 0.5]]
            for (t, g) in grads.enumerated() {
                p.grad[0] = Float(g[0]); p.grad[1] = Float(g[1])
                sgd.step(lr: 0.01)
                for i in 0..<2 {
                    let gi = g[i] + 0.1 * w[i]
                    buf[i] = t == 0 ? gi : 0.9 * buf[i] + gi
                    w[i] -= 0.01 * (nesterov ? gi + 0.9 * buf[i] : buf[i])
                }
            }
            XCTAssertEqual(Double(p.value[0]), w[0], accuracy: 1e-6)
            XCTAssertEqual(Double(p.value[1]), w[1], accuracy: 1e-6)
        }
    }

    func testDecayCanBeExcludedPerParameter() {
        let weight = Parameter(torchShape: [1], role: .weight, initializer: .constant(1))
        let bnWeight = Parameter(torchShape: [1], role: .normWeight, initializer: .constant(1))
        let store = ParameterStore([weight, bnWeight])
        store.initialize(seed: 0)
        let sgd = SGD(store: store, momentum: 0) { $0.role == .weight ? 0.5 : 0 }
        sgd.step(lr: 1)
        XCTAssertEqual(weight.value[0], 0.5)
        XCTAssertEqual(bnWeight.value[0], 1)
    }
}

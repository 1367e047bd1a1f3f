import XCTest
@testable import DTrainCore
@testable import DTrainNN

final class ParameterStoreTests: XCTestCase {
    func testParametersAreLaidOutContiguouslyInOrder() {
        let a = Parameter(torchShape: [4, 3], role: .weight, initializer: .constant(1))
        let b = Parameter(torchShape: [4], role: .bias, initializer: .constant(2))
        let store = ParameterStore([a, b])
        XCTAssertEqual(store.count, 16)
        XCTAssertEqual(b.offset, 12)
        XCTAssertEqual(b.value, store.values.pointer + 12)
        store.initialize(seed: 0)
        XCTAssertEqual(Array(store.values.buffer), [Float](repeating: 1, count: 12) + [2, 2, 2, 2])
    }

    func testKaimingFanOutHasTheRightSpread() {
        let w = Parameter(torchShape: [64, 32, 3, 3], layout: .convOHWI, role: .weight,
                          initializer: .kaimingNormalFanOut(fanOut: 64 * 9))
        let store = ParameterStore([w])
        store.initialize(seed: 7)
        let v = Array(w.values).map(Double.init)
        let variance = v.map { $0 * $0 }.reduce(0, +) / Double(v.count)
        XCTAssertEqual(variance, 2.0 / 576, accuracy: 0.1 * 2.0 / 576)
    }
}

final class TorchLayoutTests: XCTestCase {
    func testConvWeightRoundTripsThroughTorchOrder() {
        let p = Parameter(torchShape: [2, 3, 2, 2], layout: .convOHWI, role: .weight, initializer: .constant(0))
        // The store owns the memory the parameter is bound to: keep it alive while p is used.
        let store = ParameterStore([p])
        let torch = (0..<24).map(Float.init)
        p.setTorchValues(torch)
        // torch [o=1, i=2, kh=0, kw=1] = 1*12 + 2*4 + 0*2 + 1 = 21 sits at OHWI [1, 0, 1, 2].
        XCTAssertEqual(p.value[((1 * 2 + 0) * 2 + 1) * 3 + 2], 21)
        XCTAssertEqual(p.torchValues(), torch)
        withExtendedLifetime(store) {}
    }
}

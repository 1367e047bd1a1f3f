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

import XCTest
import Foundation
@testable import DTrainCore

final class ProfilerTests: XCTestCase {
    override func tearDown() {
        Profiler.isEnabled = false
        Profiler.reset()
        super.tearDown()
    }

    private struct Failure: Error {}

    func testDisabledMeasureRunsTheBodyAndRecordsNothing() throws {
        Profiler.isEnabled = false
        Profiler.reset()
        var ran = 0
        let value = Profiler.measure(.batchNorm) { ran += 1; return 42 }
        XCTAssertEqual(value, 42)
        XCTAssertEqual(ran, 1)
        XCTAssertThrowsError(try Profiler.measure(.loss) { throw Failure() })
        XCTAssertEqual(Profiler.snapshot(), ProfileSnapshot())
    }

    func testKindsAccumulateTimeAndCalls() throws {
        let (value, snapshot) = Profiler.profile { () -> Int in
            for _ in 0..<3 { Profiler.measure(.batchNorm) { usleep(2000) } }
            Profiler.measure(.elementwise) { usleep(1000) }
            return 7
        }
        XCTAssertEqual(value, 7)
        XCTAssertFalse(Profiler.isEnabled)
        XCTAssertEqual(snapshot.calls(.batchNorm), 3)
        XCTAssertEqual(snapshot.calls(.elementwise), 1)
        // usleep sleeps at least as long as asked.
        XCTAssertGreaterThanOrEqual(snapshot[.batchNorm], 0.006)
        XCTAssertGreaterThanOrEqual(snapshot[.elementwise], 0.001)
        for kind in ProfileKind.allCases where kind != .batchNorm && kind != .elementwise {
            XCTAssertEqual(snapshot[kind], 0, "\(kind)")
            XCTAssertEqual(snapshot.calls(kind), 0, "\(kind)")
        }
        XCTAssertEqual(snapshot.total, snapshot[.batchNorm] + snapshot[.elementwise])

        // Accumulates across calls until reset.
        Profiler.isEnabled = true
        Profiler.measure(.batchNorm) {}
        XCTAssertEqual(Profiler.snapshot().calls(.batchNorm), 4)
        Profiler.reset()
        XCTAssertEqual(Profiler.snapshot(), ProfileSnapshot())
    }

    func testNestedMeasuresSplitTheOuterTimeExclusively() {
        let start = monotonicNanoseconds()
        let (_, snapshot) = Profiler.profile {
            Profiler.measure(.convBackwardData) {
                usleep(1000)
                Profiler.measure(.convBackwardWeight) { usleep(3000) }
                usleep(1000)
            }
        }
        let wall = Double(monotonicNanoseconds() - start) * 1e-9
        XCTAssertGreaterThanOrEqual(snapshot[.convBackwardWeight], 0.003)
        XCTAssertGreaterThanOrEqual(snapshot[.convBackwardData], 0.002)
        // The inner time is not counted twice: together they are at most the elapsed time.
        XCTAssertLessThanOrEqual(snapshot[.convBackwardData] + snapshot[.convBackwardWeight], wall)
        XCTAssertEqual(snapshot.calls(.convBackwardData), 1)
        XCTAssertEqual(snapshot.calls(.convBackwardWeight), 1)
    }

    func testThrowingBodyStillEndsItsMeasure() {
        Profiler.isEnabled = true
        Profiler.reset()
        XCTAssertThrowsError(try Profiler.measure(.loss) { throw Failure() })
        Profiler.measure(.linear) {}
        let s = Profiler.snapshot()
        XCTAssertEqual(s.calls(.loss), 1)
        XCTAssertEqual(s.calls(.linear), 1)
    }

    func testKindNamesAreDistinct() {
        XCTAssertEqual(Set(ProfileKind.allCases.map(\.name)).count, ProfileKind.count)
    }
}

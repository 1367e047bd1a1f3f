import XCTest
import Foundation
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainTraining

final class StepBenchmarkTests: XCTestCase {
    func testProfiledBenchmarkAttributesEveryLayerKindAndEncodes() throws {
        let result = try StepBenchmark.run(model: "resnet20", batchSize: 4, resolution: 16, threads: 2,
                                           warmup: 1, steps: 2, profile: true, peakSize: 64)
        XCTAssertFalse(Profiler.isEnabled)
        let profile = try XCTUnwrap(result.profile)
        let kinds = Set(profile.map(\.kind))
        for kind in [ProfileKind.convForward, .convBackwardData, .convBackwardWeight, .batchNorm, .elementwise, .pooling, .linear, .loss, .optimizer] {
            XCTAssertTrue(kinds.contains(kind.name), "missing \(kind.name) in \(kinds)")
        }
        XCTAssertEqual(profile.last?.kind, "unattributed")
        XCTAssertEqual(profile.map(\.percent).reduce(0, +), 100, accuracy: 1e-6)
        XCTAssertEqual(profile.first { $0.kind == ProfileKind.loss.name }?.calls, 1)
        XCTAssertEqual(profile.first { $0.kind == ProfileKind.batchNorm.name }?.calls, 2 * 19)
        XCTAssertGreaterThan(try XCTUnwrap(result.sgemmPeakGFLOPS), 0)
        XCTAssertEqual(result.sgemmPeakSize, 64)
        XCTAssertNotNil(result.fractionOfPeak)

        let data = try JSONEncoder().encode(result)
        let decoded = try JSONDecoder().decode(StepBenchmarkResult.self, from: data)
        XCTAssertEqual(decoded.profile, result.profile)
        XCTAssertEqual(decoded.sgemmPeakGFLOPS, result.sgemmPeakGFLOPS)
    }

    /// Interleaved per thread, a convolution's weight and data gradients are told apart by
    /// per-thread timers: moving the weight share keeps the total, and it never goes negative.
    func testReattributionMovesTimeBetweenKinds() {
        let ((), snapshot) = Profiler.profile {
            Profiler.measure(.convBackwardData) {
                usleep(20_000)
                Profiler.reattribute(0.005, from: .convBackwardData, to: .convBackwardWeight)
                Profiler.reattribute(10, from: .convBackwardData, to: .other)
            }
        }
        XCTAssertEqual(snapshot[.convBackwardWeight], 0.005, accuracy: 1e-9)
        XCTAssertGreaterThanOrEqual(snapshot[.convBackwardData], 0)
        XCTAssertGreaterThan(snapshot[.other], 0.01)
        XCTAssertEqual(snapshot.total, snapshot[.convBackwardWeight] + snapshot[.convBackwardData] + snapshot[.other], accuracy: 1e-12)
    }

    func testUnprofiledBenchmarkHasNoBreakdown() throws {
        let result = try StepBenchmark.run(model: "resnet20", batchSize: 2, resolution: 16, threads: 1,
                                           warmup: 0, steps: 1, profile: false, peakSize: nil)
        XCTAssertNil(result.profile)
        XCTAssertNil(result.sgemmPeakGFLOPS)
        XCTAssertNil(result.fractionOfPeak)
        XCTAssertEqual(Profiler.snapshot().total, 0)
    }
}

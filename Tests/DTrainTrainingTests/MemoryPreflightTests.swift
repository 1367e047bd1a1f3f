import XCTest
import DTrainCore
import DTrainNN
@testable import DTrainTraining

final class MemoryPreflightTests: XCTestCase {
    func testEstimateMatchesWhatABuildAllocates() throws {
        let spec = try ModelZoo.spec(named: "resnet20")
        let estimate = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 16, resolution: 32, loaderBatches: 0)
        let before = Storage.liveBytes
        let model = Model(spec: spec, options: ModelOptions())
        model.build(batch: 16, resolution: 32)
        let measured = Double(Storage.liveBytes - before)
        let optimizer = 2 * Double(model.parameterCount) * 4
        // At the probe's own resolution the estimate is linear in the batch: exact but for the
        // optimizer state it adds (the build does not allocate that).
        XCTAssertEqual(estimate.fixedBytes + estimate.perImageBytes * 16 - optimizer, measured, accuracy: measured * 0.02)
    }

    /// At bf16 the probe builds at bf16, whose activations take less memory (bf16 activation
    /// storage): the estimate follows the bf16 build, not the float32 one. (resnet18's blocks are
    /// short, so the shared slots and the bf16 operand workspace weigh more than in resnet50:
    /// measured 0.86 of fp32 per image.)
    func testBF16EstimateMatchesABF16Build() throws {
        let spec = try ModelZoo.spec(named: "resnet18")
        let bf16 = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 8, resolution: 64, loaderBatches: 0, precision: .bf16)
        let fp32 = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 8, resolution: 64, loaderBatches: 0)
        let before = Storage.liveBytes
        let model = Model(spec: spec, options: ModelOptions())
        model.build(batch: 8, resolution: 64, precision: .bf16)
        let measured = Double(Storage.liveBytes - before)
        let optimizer = 2 * Double(model.parameterCount) * 4
        XCTAssertEqual(bf16.fixedBytes + bf16.perImageBytes * 8 - optimizer, measured, accuracy: measured * 0.02)
        XCTAssertLessThan(bf16.perImageBytes, 0.92 * fp32.perImageBytes, "bf16 \(bf16.perImageBytes), fp32 \(fp32.perImageBytes) bytes per image")
    }

    func testEstimateScalesWithResolution() throws {
        let spec = try ModelZoo.spec(named: "resnet20")
        let small = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 8, resolution: 32, loaderBatches: 2)
        let large = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 8, resolution: 64, loaderBatches: 2)
        XCTAssertEqual(large.perImageBytes, 4 * small.perImageBytes, accuracy: small.perImageBytes * 1e-9)
        XCTAssertEqual(large.fixedBytes, small.fixedBytes)
        XCTAssertEqual(large.loaderImages, 16)
    }

    func testTooLargeIsAOneLineErrorNamingTheNumbers() throws {
        let spec = try ModelZoo.spec(named: "resnet20")
        let huge = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 100_000, resolution: 32, loaderBatches: 2)
        XCTAssertThrowsError(try MemoryPreflight.check(huge, model: "resnet20", ranksOnNode: 2, available: (8 * 1_073_741_824, "MemAvailable"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("--batch-size 100000 at --resolution 32: resnet20 needs about "), text)
            XCTAssertTrue(text.contains("4.0 GiB is available (MemAvailable)"), text)
            XCTAssertTrue(text.contains("2 ranks on this node"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        let small = MemoryPreflight.estimate(spec: spec, options: ModelOptions(), batch: 16, resolution: 32, loaderBatches: 2)
        XCTAssertNoThrow(try MemoryPreflight.check(small, model: "resnet20", ranksOnNode: 2, available: (8 * 1_073_741_824, "MemAvailable")))
        XCTAssertNoThrow(try MemoryPreflight.check(huge, model: "resnet20", ranksOnNode: 1, available: nil), "nothing to compare with: no check")
    }

    func testThisMachineReportsAvailableMemory() throws {
        #if os(Linux)
        let available = try XCTUnwrap(MemoryPreflight.available())
        XCTAssertGreaterThan(available.bytes, 64 * 1_048_576)
        #else
        throw XCTSkip("reads /proc/meminfo")
        #endif
    }
}

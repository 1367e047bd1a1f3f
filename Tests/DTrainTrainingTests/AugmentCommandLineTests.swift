import XCTest
import Foundation
import DTrainTestSupport

/// `dtrain train --auto-augment/--ra-magnitude/--augmix-severity/--random-erase`: bad values are
/// refused with one line naming the flag, and a short run with TrivialAugmentWide and random
/// erasing trains and records them.
final class AugmentCommandLineTests: XCTestCase {
    func dtrain(_ args: [String]) throws -> ProcessRunner.Run {
        try ProcessRunner.dtrain(args + ["--threads", "2"], timeout: 300)
    }

    func assertRefused(_ args: [String], mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = temporaryDirectory(self)
        let run = try dtrain(["resnet20", "--epochs", "1", "--output", dir.appendingPathComponent("out").path] + args)
        XCTAssertEqual(run.status, 64, run.transcript, file: file, line: line)
        let errorLines = run.lines.filter { $0.contains("Error") }
        XCTAssertEqual(errorLines.count, 1, run.transcript, file: file, line: line)
        for w in words { XCTAssertTrue(errorLines.first?.contains(w) ?? false, "'\(w)' missing: \(run.transcript)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), file: file, line: line)
    }

    func testBadAugmentationFlagsAreRefused() throws {
        try assertRefused(["--random-erase", "1.5"], mentioning: ["--random-erase", "1.5", "[0, 1]"])
        try assertRefused(["--auto-augment", "svhn"], mentioning: ["--auto-augment", "svhn", "ra, ta_wide, augmix, imagenet, cifar10"])
        try assertRefused(["--auto-augment", "ra", "--ra-magnitude", "31"], mentioning: ["--ra-magnitude", "31"])
        try assertRefused(["--auto-augment", "augmix", "--augmix-severity", "0"], mentioning: ["--augmix-severity", "0"])
    }

    func testShortRunWithTrivialAugmentAndRandomErasing() throws {
        let dir = temporaryDirectory(self)
        let out = dir.appendingPathComponent("run")
        let run = try dtrain(["resnet20", "--epochs", "1", "--batch-size", "32", "--limit-train-batches", "3", "--limit-val-batches", "1",
                              "--auto-augment", "ta_wide", "--random-erase", "0.25", "--workers", "2", "--output", out.path])
        XCTAssertEqual(run.status, 0, run.transcript)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("run.json"))) as? [String: Any]
        let settings = try XCTUnwrap(record?["settings"] as? [String: String])
        XCTAssertEqual(settings["augmentation"], "ta_wide (bilinear), random erase 0.25")
    }
}

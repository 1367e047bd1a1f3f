import XCTest
import DTrainTestSupport

/// Every training setting is checked against its range before anything starts: a wrong value is a
/// one-line error naming the flag and what was expected, with a non-zero exit, never a crash, a
/// hang or a silently accepted value.
final class SettingsValidationTests: XCTestCase {
    private func assertRefused(_ args: [String], mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try ProcessRunner.dtrain(args + ["--output", dir.path], timeout: 60)
        XCTAssertNotEqual(run.status, 0, "\(args) was accepted: \(run.transcript)", file: file, line: line)
        XCTAssertTrue([1, 64].contains(run.status), "\(args) ended by a signal or trap (status \(run.status)): \(run.transcript)", file: file, line: line)
        let errorLine = run.lines.last(where: { $0.contains("Error") || $0.contains("error") }) ?? ""
        for w in words { XCTAssertTrue(errorLine.contains(w), "\(args): error line lacks '\(w)': \(run.transcript)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), "\(args): a refused run created its output", file: file, line: line)
    }

    func testOutOfRangeTrainingSettingsAreRefused() throws {
        let cases: [([String], [String])] = [
            (["--lr=-1"], ["--lr", "-1"]),
            (["--lr", "-1"], ["--lr", "positive", "-1"]),            // a negative value after a space is a value
            (["--lr", "-0.5e-3"], ["--lr", "positive"]),
            (["--momentum=5"], ["--momentum", "[0, 1)", "5"]),
            (["--weight-decay", "-1"], ["--weight-decay", "-1"]),
            (["--warmup-epochs=-1"], ["--warmup-epochs", "-1"]),
            (["--lr-gamma=nan"], ["--lr-gamma", "nan"]),
            (["--preset", "bogus"], ["--preset", "bogus", "imagenet", "cifar"]),
            (["--save-every-steps", "0"], ["--save-every-steps", "0"]),
            (["--limit-train-batches", "0"], ["--limit-train-batches", "0"]),
            (["--epochs", "1000000000000"], ["--epochs", "1000000"]),
            (["--resolution", "100000"], ["--resolution", "4096"]),
            (["--threads", "100000"], ["--threads", "100000", "cores"]),
            (["--workers", "100000"], ["--workers", "100000", "cores"]),
            (["--std", "0,1,1"], ["--std", "positive"]),
            (["--mean", "nan,0,0"], ["--mean"]),
        ]
        for (args, words) in cases { try assertRefused(["resnet20"] + args, mentioning: words) }
    }

    func testDatasetWriteRefusesHugeImages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try ProcessRunner.dtrain(["dataset", "write", "--from", "synthetic", "--size", "100000x100000", "--output", dir.path], timeout: 60)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue([1, 64].contains(run.status), run.transcript)
        XCTAssertTrue(run.transcript.contains("--size") && run.transcript.contains("8192"), run.transcript)
    }
}

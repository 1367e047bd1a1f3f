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

    /// torchvision's recipe options (warmup, --lr-min, clipping, weight-decay groups, repeated
    /// augmentation) are range-checked the same way.
    func testOutOfRangeRecipeSettingsAreRefused() throws {
        let cases: [([String], [String])] = [
            (["--lr-warmup-method", "cosine"], ["--lr-warmup-method", "cosine", "linear", "constant"]),
            (["--lr-warmup-decay", "0"], ["--lr-warmup-decay", "(0, 1]", "linear"]),
            (["--lr-warmup-method", "constant", "--lr-warmup-decay", "1.5"], ["--lr-warmup-decay", "[0, 1]", "constant"]),
            (["--lr-warmup-epochs=-1"], ["--lr-warmup-epochs", "-1"]),
            (["--lr-min=-0.1"], ["--lr-min", "-0.1"]),
            (["--lr-min", "inf"], ["--lr-min", "inf"]),
            (["--clip-grad-norm", "0"], ["--clip-grad-norm", "positive", "0"]),
            (["--clip-grad-norm", "nan"], ["--clip-grad-norm", "nan"]),
            (["--norm-weight-decay=-1"], ["--norm-weight-decay", "-1"]),
            (["--bias-weight-decay", "nan"], ["--bias-weight-decay", "nan"]),
            (["--no-bn-weight-decay", "--norm-weight-decay", "0"], ["--norm-weight-decay", "--no-bn-weight-decay"]),
            (["--ra-sampler", "--ra-reps", "0"], ["--ra-reps", "0"]),
            (["--lr-schedule", "poly"], ["--lr-schedule", "poly", "exponential"]),
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

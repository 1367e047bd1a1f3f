import XCTest
import DTrainCore
import DTrainData
import DTrainDistributed
@testable import DTrainTraining

/// Warnings about the training data that a run prints before it starts.
final class DatasetWarningTests: XCTestCase {
    /// Makes a trainer on a synthetic ImageFolder of `classes` classes and returns what it printed.
    func setUpOutput(classes: Int) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-warn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data").path
        _ = try DatasetWriter.write(SyntheticSource(count: 8, classes: classes, resolution: 8), to: data, format: .png)
        var c = try digitsConfig(output: dir.appendingPathComponent("run"), batch: 4)
        c.dataPath = data
        c.noVal = true
        let log = dir.appendingPathComponent("progress.txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let progress = ProgressReporter(output: handle, printEvery: 1000, forceTerminal: false)
        _ = try Trainer(config: c, version: testVersion, communicator: SingleProcessCommunicator(), progress: progress)
        try handle.close()
        return try String(contentsOf: log, encoding: .utf8)
    }

    func testOneClassDataIsWarnedAboutOnce() throws {
        let one = try setUpOutput(classes: 1)
        XCTAssertEqual(one.components(separatedBy: "only one class").count - 1, 1, one)
        XCTAssertTrue(one.contains("warning: the training data has only one class (0-circle)"), one)
        let two = try setUpOutput(classes: 2)
        XCTAssertFalse(two.contains("one class"), two)
    }
}

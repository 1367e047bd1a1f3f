import Foundation
import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainDistributed
@testable import DTrainTraining

/// A scratch directory removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-test-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Progress output swallowed (tests assert on results, not on the display).
func quietProgress() -> ProgressReporter {
    ProgressReporter(output: FileHandle(forWritingAtPath: "/dev/null")!, printEvery: 1000, forceTerminal: false)
}

/// A small single-process run on the embedded digits: resnet20, 2 threads, no loader threads.
func digitsConfig(output: URL, epochs: Int = 1, batch: Int = 32) throws -> TrainConfig {
    var c = try TrainConfig.defaults(for: "resnet20", epochs: epochs, output: output)
    c.batchSize = batch
    c.threads = 2
    c.workers = 1
    c.seed = 7
    return c
}

/// The dtrain version the tests' runs record in their checkpoints.
let testVersion = "0"

@discardableResult
func train(_ config: TrainConfig) throws -> TrainSummary {
    try Trainer(config: config, version: testVersion, communicator: SingleProcessCommunicator(), progress: quietProgress()).train()
}

/// Every tensor of a checkpoint file by name (model and optimizer state), as raw bytes.
func checkpointTensors(_ url: URL) throws -> [String: Data] {
    let file = try SafeTensorsFile(contentsOf: url)
    var out: [String: Data] = [:]
    for name in file.names { out[name] = try file.bytes(name) }
    return out
}

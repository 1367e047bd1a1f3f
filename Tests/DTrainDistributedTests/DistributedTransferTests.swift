import XCTest
import Foundation
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainTraining

/// Feature extraction across real processes: the backbone stays bit-identical on every rank, and
/// two ranks train the head as one rank with twice the batch.
final class DistributedTransferTests: XCTestCase {
    func testFeatureExtractionOnTwoRanks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-dist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }

        let source = try ModelZoo.make("resnet20", options: ModelOptions(numClasses: 7))
        source.initialize(seed: 21)
        let pretrained = dir.appendingPathComponent("pretrained.pth")
        try WeightsTransfer.exportData(model: source, info: CheckpointInfo(model: "resnet20", numClasses: 7), format: .pth,
                                       archiveName: "pretrained").write(to: pretrained)

        let common = ["train", "resnet20", "--pretrained", pretrained.path, "--freeze", "backbone", "--epochs", "1",
                      "--limit-train-batches", "4", "--no-val", "--workers", "1", "--threads", "1", "--lr-schedule", "constant",
                      "--lr", "0.05", "--seed", "3"]
        let one = try ProcessRunner.dtrain(common + ["--batch-size", "16", "--output", dir.appendingPathComponent("np1").path])
        XCTAssertEqual(one.status, 0, one.transcript)
        let two = try ProcessRunner.mpirun(ranks: 2, common + ["--batch-size", "8", "--output", dir.appendingPathComponent("np2").path])
        XCTAssertEqual(two.status, 0, two.transcript)
        XCTAssertTrue(two.output.contains("pretrained: new: fc.weight [10, 64], fc.bias [10]"), two.transcript)

        let reference = try WeightsFile.open(pretrained).file
        let a = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("np1/checkpoint-last.safetensors"))
        let b = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("np2/checkpoint-last.safetensors"))
        for name in reference.names where !name.hasPrefix("fc.") {
            XCTAssertEqual(try a.bytes(name), try reference.bytes(name), "np=1: \(name) changed")
            XCTAssertEqual(try b.bytes(name), try reference.bytes(name), "np=2: \(name) changed")
        }
        for name in ["fc.weight", "fc.bias"] {
            let x = try a.floats(name), y = try b.floats(name)
            let diff = zip(x, y).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
            let norm = x.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            XCTAssertLessThan(diff / norm, 1e-5, "\(name): np=1 and np=2 differ by \(diff / norm) relative")
        }
    }
}

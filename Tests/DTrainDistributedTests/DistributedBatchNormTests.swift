import XCTest
import Foundation
import DTrainTestSupport

/// What a multi-rank run logs is what it saves: without --sync-bn, each epoch's validation numbers
/// in metrics.jsonl equal `dtrain eval` of that epoch's checkpoint, evaluated by 1 rank and by 3.
final class DistributedBatchNormTests: XCTestCase {
    private struct Logged: Decodable { var epoch: Int; var val_loss: Double; var val_top1: Double }
    private struct Evaluated: Decodable { var samples: Int; var loss: Double; var top1: Double }

    private func evaluate(_ checkpoint: URL, ranks: Int) throws -> Evaluated {
        let args = ["eval", "resnet20", "--checkpoint", checkpoint.path, "--json", "--threads", "1", "--workers", "1", "--batch-size", "16"]
        let run = ranks == 1 ? try ProcessRunner.dtrain(args, timeout: 120) : try ProcessRunner.mpirun(ranks: ranks, args, timeout: 180)
        XCTAssertEqual(run.status, 0, run.transcript)
        let line = try XCTUnwrap(run.lines.last { $0.hasPrefix("{") }, run.transcript)
        return try JSONDecoder().decode(Evaluated.self, from: Data(line.utf8))
    }

    private func checkLoggedEqualsSaved(distBN: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distbn-\(distBN)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = try ProcessRunner.mpirun(ranks: 2, ["resnet20", "--epochs", "2", "--batch-size", "16", "--lr", "0.05",
                                                        "--limit-train-batches", "25", "--threads", "1", "--workers", "1",
                                                        "--dist-bn", distBN, "--output", dir.path], timeout: 600)
        XCTAssertEqual(train.status, 0, train.transcript)
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let logged = try lines.map { try JSONDecoder().decode(Logged.self, from: Data($0.utf8)) }
        XCTAssertEqual(logged.map(\.epoch), [1, 2])
        for epoch in logged {
            let checkpoint = dir.appendingPathComponent(String(format: "checkpoint-epoch-%04d.safetensors", epoch.epoch))
            for ranks in [1, 3] {
                let saved = try evaluate(checkpoint, ranks: ranks)
                XCTAssertEqual(saved.samples, 364)
                XCTAssertEqual(saved.top1, epoch.val_top1, "--dist-bn \(distBN), epoch \(epoch.epoch), eval on \(ranks) rank(s): top-1")
                XCTAssertEqual(saved.loss, epoch.val_loss, accuracy: 1e-6 * abs(epoch.val_loss),
                               "--dist-bn \(distBN), epoch \(epoch.epoch), eval on \(ranks) rank(s): loss")
            }
        }
    }

    func testReduceLogsTheSavedCheckpointsValidation() throws { try checkLoggedEqualsSaved(distBN: "reduce") }

    func testBroadcastLogsTheSavedCheckpointsValidation() throws { try checkLoggedEqualsSaved(distBN: "broadcast") }
}

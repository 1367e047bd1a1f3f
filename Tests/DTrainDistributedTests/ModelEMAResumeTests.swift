import XCTest
import Foundation
import DTrainTestSupport
import DTrainWeights

/// Under mpirun (2 ranks, BatchNorm not synchronized), a run with the model EMA, MixUp and
/// TrivialAugmentWide that is killed after a periodic save (`--save-every-steps`) and resumed ends
/// with the same checkpoint, bit for bit, as the run never interrupted, the EMA's weights,
/// BatchNorm statistics and n_averaged included: the mixing draws are keyed by (seed, rank, epoch,
/// step), the augmentation draws by (seed, epoch, sample), and every save makes the ranks'
/// BatchNorm statistics equal, the EMA's too, in both runs alike.
final class ModelEMAResumeTests: XCTestCase {
    /// The flags under test: the model EMA, MixUp and TrivialAugmentWide.
    static let augmentationFlags = ["--model-ema", "--model-ema-steps", "2", "--mixup-alpha", "0.2", "--auto-augment", "ta_wide"]

    func scratch() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-ema-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Two epochs of 10 steps per rank, checkpoint-last every 2 steps.
    func trainArguments(output: URL) -> [String] {
        ["train", "resnet20", "--epochs", "2", "--batch-size", "16", "--limit-train-batches", "10", "--limit-val-batches", "1",
         "--threads", "1", "--workers", "1", "--lr-schedule", "constant", "--lr", "0.05", "--save-every-steps", "2",
         "--output", output.path] + ModelEMAResumeTests.augmentationFlags
    }

    func testKilledAfterAPeriodicSaveAndResumedEqualsTheUninterruptedRunUnderMPIRun() throws {
        let dir = scratch()
        let full = dir.appendingPathComponent("full"), split = dir.appendingPathComponent("split")
        let uninterrupted = try ProcessRunner.mpirun(ranks: 2, trainArguments(output: full), timeout: 300)
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.transcript)
        XCTAssertTrue(uninterrupted.transcript.contains("EMA val loss"), uninterrupted.transcript)

        // The interrupted run: one rank killed (mpirun then ends the other) once a periodic save is on disk.
        let job = try ProcessRunner.startMPIRun(ranks: 2, trainArguments(output: split))
        defer { job.killIfRunning() }
        let last = split.appendingPathComponent("checkpoint-last.safetensors")
        let deadline = Date().addingTimeInterval(240)
        while !FileManager.default.fileExists(atPath: last.path) && Date() < deadline && job.process.isRunning { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: last.path), "no periodic save")
        let ranks = job.ranks
        XCTAssertEqual(ranks.count, 2, "ranks of mpirun: \(ranks)")
        if let victim = ranks.last { kill(victim, SIGKILL) }
        XCTAssertTrue(job.waitForExit(timeout: 60), "the job did not end after a rank's death")
        XCTAssertNotEqual(job.process.terminationStatus, 0, "the run ended before it was interrupted")
        let stoppedAt = try Checkpoint.read(last).info.globalStep
        XCTAssertTrue(stoppedAt > 0 && stoppedAt < 20 && stoppedAt % 2 == 0, "checkpoint-last at global step \(stoppedAt)")

        let resumed = try ProcessRunner.mpirun(ranks: 2, trainArguments(output: split) + ["--resume"], timeout: 300)
        XCTAssertEqual(resumed.status, 0, resumed.transcript)

        let a = try SafeTensorsFile(contentsOf: full.appendingPathComponent("checkpoint-last.safetensors"))
        let b = try SafeTensorsFile(contentsOf: last)
        XCTAssertEqual(a.names.sorted(), b.names.sorted())
        for required in ["optimizer.momentum_buffer.conv1.weight", "model_ema.n_averaged", "model_ema.module.conv1.weight",
                         "model_ema.module.bn1.running_mean", "model_ema.module.bn1.num_batches_tracked"] {
            XCTAssertTrue(a.names.contains(required), required)
        }
        XCTAssertEqual(try a.int64s(Checkpoint.emaCountKey), [10], "updates at steps 0, 2, 4, 6 and 8 of each epoch")
        for name in a.names {
            XCTAssertEqual(try a.bytes(name), try b.bytes(name), "\(name) differs after the kill and resume (stopped at step \(stoppedAt))")
        }
        // The checkpoint holds rank 0's EMA; the last epoch's evaluation, sharded over both ranks,
        // shows rank 1's too (its BatchNorm statistics restart from the equalized ones at a resume).
        func lastEpoch(_ run: URL) throws -> [String: Any] {
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(lines.last).utf8)) as? [String: Any])
        }
        let (x, y) = (try lastEpoch(full), try lastEpoch(split))
        for key in ["epoch", "val_loss", "val_top1", "ema_val_loss", "ema_val_top1", "ema_val_top5"] {
            XCTAssertNotNil(x[key], key)
            XCTAssertEqual("\(x[key] ?? "none")", "\(y[key] ?? "none")", "\(key) of the last epoch differs after the kill and resume")
        }
    }
}

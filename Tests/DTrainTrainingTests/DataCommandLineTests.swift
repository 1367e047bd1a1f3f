import XCTest
import DTrainTestSupport
@testable import DTrainData

/// The data subcommands of the `dtrain` executable, and training from an annotation list.
final class DataCommandLineTests: XCTestCase {
    func dtrain(_ args: [String]) throws -> ProcessRunner.Run {
        try ProcessRunner.dtrain(args, timeout: 300)
    }

    func jsonObject(_ run: ProcessRunner.Run) throws -> [String: Any] {
        let line = try XCTUnwrap(run.lines.last { $0.hasPrefix("{") }, run.transcript)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testWriteStatsBenchAndTrainFromAList() throws {
        let dir = temporaryDirectory(self)
        let data = dir.appendingPathComponent("data").path
        let write = try dtrain(["dataset", "write", "--from", "synthetic", "--size", "40x30", "--count", "24", "--classes", "3",
                                "--output", data])
        XCTAssertEqual(write.status, 0, write.transcript)
        let folders = try DataSourceFactory.openSplits(path: data, dataset: nil)
        XCTAssertEqual(folders.train.count, 24)
        let first = try folders.train.image(at: 0, targetSize: nil)
        XCTAssertEqual([first.width, first.height], [40, 30])
        let badSize = try dtrain(["dataset", "write", "--from", "synthetic", "--size", "40", "--output", dir.path + "/x"])
        XCTAssertNotEqual(badSize.status, 0)
        XCTAssertTrue(badSize.output.contains("--size must be WIDTHxHEIGHT"), badSize.transcript)

        // stats: exact over the folder's pixels, in a form --mean/--std accept.
        let stats = try dtrain(["stats", "--data", data, "--json", "--workers", "2"])
        XCTAssertEqual(stats.status, 0, stats.transcript)
        let s = try jsonObject(stats)
        XCTAssertEqual(s["images"] as? Int, 24)
        XCTAssertEqual(s["pixels"] as? Int, 24 * 40 * 30)
        let direct = DatasetStatistics.compute(source: folders.train, workers: 1)
        let mean = try XCTUnwrap(s["mean"] as? [Double])
        for c in 0..<3 { XCTAssertEqual(mean[c], direct.mean[c], accuracy: 1e-12) }
        let text = try dtrain(["stats", "--data", data, "--limit", "6"])
        XCTAssertEqual(text.status, 0, text.transcript)
        let paste = try XCTUnwrap(text.lines.last)
        XCTAssertTrue(paste.hasPrefix("--mean ") && paste.contains(" --std "), paste)
        XCTAssertEqual(paste.split(separator: " ")[1].split(separator: ",").count, 3)

        // An annotation list beside the folder, in the classification platform's format.
        func list(_ split: String, _ source: any DataSource) -> String {
            (0..<source.count).map { "\(source.label($0));\(source.sampleName($0))" }.joined(separator: "\n") + "\n"
        }
        try list("train", folders.train).write(toFile: dir.path + "/cls_train.txt", atomically: true, encoding: .utf8)
        try list("val", folders.val!).write(toFile: dir.path + "/cls_test.txt", atomically: true, encoding: .utf8)
        try folders.train.classNames.joined(separator: "\n").write(toFile: dir.path + "/cls_classes.txt", atomically: true, encoding: .utf8)

        // bench-data on the list: images timed = passes × batches × batch size, warm-up excluded.
        let bench = try dtrain(["bench-data", "--data", dir.path + "/cls_train.txt", "--workers", "1", "--batch-size", "4",
                                "--batches", "2", "--passes", "2", "--resolution", "16", "--json"])
        XCTAssertEqual(bench.status, 0, bench.transcript)
        let b = try jsonObject(bench)
        XCTAssertEqual(b["images"] as? Int, 16)
        XCTAssertEqual((b["pass_images_per_second"] as? [Double])?.count, 2)
        XCTAssertGreaterThan(b["images_per_second"] as? Double ?? 0, 0)

        // dtrain train --data cls_train.txt: val from cls_test.txt, class names from cls_classes.txt.
        let run = dir.appendingPathComponent("run")
        let trained = try dtrain(["resnet20", "--data", dir.path + "/cls_train.txt", "--epochs", "1", "--batch-size", "8",
                                  "--limit-train-batches", "2", "--workers", "1", "--threads", "2", "--output", run.path])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let epoch = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(metrics.split(separator: "\n")[0].utf8)) as? [String: Any])
        XCTAssertNotNil(epoch["val_top1"], metrics)
        let eval = try dtrain(["eval", "resnet20", "--checkpoint", run.appendingPathComponent("checkpoint-last.safetensors").path,
                               "--data", dir.path + "/cls_train.txt", "--json", "--threads", "2",
                               "--output", dir.appendingPathComponent("eval").path])
        XCTAssertEqual(eval.status, 0, eval.transcript)
        XCTAssertEqual(try jsonObject(eval)["samples"] as? Double, Double(folders.val!.count))
        XCTAssertEqual(try jsonObject(eval)["unreadable"] as? Double, 0)

        // An unreadable held-out image is reported on its own and not counted as a sample.
        let broken = folders.val!.sampleName(0)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: broken))
        let evalBroken = try dtrain(["eval", "resnet20", "--checkpoint", run.appendingPathComponent("checkpoint-last.safetensors").path,
                                     "--data", dir.path + "/cls_train.txt", "--json", "--threads", "2",
                                     "--output", dir.appendingPathComponent("eval2").path])
        XCTAssertEqual(evalBroken.status, 0, evalBroken.transcript)
        XCTAssertEqual(try jsonObject(evalBroken)["samples"] as? Double, Double(folders.val!.count - 1), evalBroken.transcript)
        XCTAssertEqual(try jsonObject(evalBroken)["unreadable"] as? Double, 1, evalBroken.transcript)
        XCTAssertTrue(evalBroken.output.contains("not a JPEG or PNG image"), evalBroken.transcript)
        let evalText = try dtrain(["eval", "resnet20", "--checkpoint", run.appendingPathComponent("checkpoint-last.safetensors").path,
                                   "--data", dir.path + "/cls_train.txt", "--threads", "2",
                                   "--output", dir.appendingPathComponent("eval3").path])
        XCTAssertEqual(evalText.status, 0, evalText.transcript)
        XCTAssertTrue(evalText.output.contains("\(folders.val!.count - 1) samples"), evalText.transcript)
        XCTAssertTrue(evalText.output.contains("1 unreadable image not evaluated"), evalText.transcript)
    }
}

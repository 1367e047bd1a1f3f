import XCTest
import DTrainData
import Foundation
import DTrainTestSupport
import DTrainWeights

/// `dtrain train` with torchvision's --model-ema and --mixup-alpha/--cutmix-alpha, as one process
/// on the embedded digits: it trains, reports the EMA's validation beside the model's, saves the
/// EMA in its checkpoints (as torchvision's checkpoint["model_ema"]), and `eval`, `export` and
/// `predict --use-ema` take those weights. Bad values are refused with one line naming the flag.
final class ModelEMAMixupRunTests: XCTestCase {
    func testDigitsWithModelEMAAndMixUpCutMixTrainsEvaluatesAndSavesTheEMA() throws {
        let dir = temporaryDirectory(self)
        let out = dir.appendingPathComponent("run")
        // 2 epochs of 4 steps, an EMA update every 2 steps: updates at steps 0 and 2 of each epoch.
        let run = try ProcessRunner.dtrain(["train", "resnet20", "--epochs", "2", "--batch-size", "32", "--limit-train-batches", "4",
                                            "--limit-val-batches", "2", "--threads", "2", "--workers", "1", "--lr", "0.05",
                                            "--model-ema", "--model-ema-steps", "2", "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0",
                                            "--output", out.path], timeout: 300)
        XCTAssertEqual(run.status, 0, run.transcript)
        let epochLines = run.lines.filter { $0.hasPrefix("epoch ") && $0.contains("val loss") }
        XCTAssertEqual(epochLines.count, 2, run.transcript)
        XCTAssertTrue(epochLines.allSatisfy { $0.contains("EMA val loss") && $0.range(of: "EMA val loss [0-9.]+ top1 [0-9.]+%", options: .regularExpression) != nil },
                      run.transcript)

        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 2)
        for line in metrics {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let top1 = try XCTUnwrap(object["ema_val_top1"] as? Double, String(line))
            XCTAssertTrue((0...1).contains(top1))
            XCTAssertNotNil(object["ema_val_loss"] as? Double)
            XCTAssertNotNil(object["ema_val_top5"] as? Double)
        }

        // Every checkpoint holds the EMA: n_averaged and a copy of every model tensor.
        for name in ["checkpoint-last", "checkpoint-best", "checkpoint-epoch-0002"] {
            let file = try SafeTensorsFile(contentsOf: out.appendingPathComponent(name + ".safetensors"))
            let model = file.names.filter { !$0.hasPrefix(Checkpoint.optimizerPrefix) && !$0.hasPrefix(Checkpoint.emaPrefix) }
            let ema = file.names.filter { $0.hasPrefix(Checkpoint.emaModulePrefix) }.map { String($0.dropFirst(Checkpoint.emaModulePrefix.count)) }
            XCTAssertEqual(Set(ema), Set(model), name)
            XCTAssertTrue(model.contains("conv1.weight") && model.contains("bn1.running_mean") && model.contains("bn1.num_batches_tracked"))
            XCTAssertEqual(try file.int64s(Checkpoint.emaCountKey), [4], "\(name): 2 updates in each of 2 epochs")
            for key in model { XCTAssertEqual(file.entries[Checkpoint.emaModulePrefix + key]?.shape, file.entries[key]?.shape, key) }
            XCTAssertNotEqual(try file.floats("model_ema.module.conv1.weight"), try file.floats("conv1.weight"), "\(name): the EMA is the model")
            XCTAssertNotEqual(try file.floats("model_ema.module.bn1.running_mean"), try file.floats("bn1.running_mean"))
        }

        // eval --use-ema evaluates the EMA: its result is the last epoch's EMA line, not the model's.
        let last = out.appendingPathComponent("checkpoint-last.safetensors")
        let lastMetrics = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(metrics[1].utf8)) as? [String: Any])
        for (flags, key) in [(["--use-ema"], "ema_val_loss"), ([], "val_loss")] {
            let eval = try ProcessRunner.dtrain(["eval", "resnet20", "--checkpoint", last.path, "--limit-val-batches", "2", "--batch-size", "32",
                                                 "--threads", "2", "--json", "--output", dir.appendingPathComponent("eval").path] + flags)
            XCTAssertEqual(eval.status, 0, eval.transcript)
            let json = try XCTUnwrap(eval.lines.last { $0.hasPrefix("{") })
            let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            XCTAssertEqual(try XCTUnwrap(result["loss"] as? Double), try XCTUnwrap(lastMetrics[key] as? Double), accuracy: 1e-4, "eval \(flags)")
        }

        // export --use-ema writes the EMA's tensors as the model's.
        let exported = dir.appendingPathComponent("ema.safetensors")
        let export = try ProcessRunner.dtrain(["export", last.path, "--format", "safetensors", "--output", exported.path, "--use-ema"])
        XCTAssertEqual(export.status, 0, export.transcript)
        let weights = try SafeTensorsFile(contentsOf: exported), checkpoint = try SafeTensorsFile(contentsOf: last)
        XCTAssertFalse(weights.names.contains { $0.hasPrefix(Checkpoint.emaPrefix) || $0.hasPrefix(Checkpoint.optimizerPrefix) })
        for name in weights.names { XCTAssertEqual(try weights.bytes(name), try checkpoint.bytes(Checkpoint.emaModulePrefix + name), name) }

        // predict --use-ema classifies with the EMA: as the exported EMA weights do, unlike the model.
        let images = dir.appendingPathComponent("images")
        _ = try DatasetWriter.write(DigitsSource(split: .val), to: images.path, format: .png, limit: 6)
        let files = try FileManager.default.subpathsOfDirectory(atPath: images.path).filter { $0.hasSuffix(".png") }.sorted()
            .map { images.appendingPathComponent($0).path }
        let predictEMA = try ProcessRunner.dtrain(["predict", "--checkpoint", last.path, "--use-ema", "--threads", "2"] + files)
        let predictExported = try ProcessRunner.dtrain(["predict", "--checkpoint", exported.path, "--threads", "2"] + files)
        let predictModel = try ProcessRunner.dtrain(["predict", "--checkpoint", last.path, "--threads", "2"] + files)
        XCTAssertEqual(predictEMA.status, 0, predictEMA.transcript)
        XCTAssertEqual(predictEMA.output, predictExported.output)
        XCTAssertNotEqual(predictEMA.output, predictModel.output)

        // A checkpoint without an EMA: --use-ema is a clear error, and so is resuming it with --model-ema.
        let plain = dir.appendingPathComponent("plain")
        let plainRun = try ProcessRunner.dtrain(["train", "resnet20", "--epochs", "1", "--batch-size", "32", "--limit-train-batches", "1",
                                                 "--no-val", "--threads", "2", "--workers", "1", "--output", plain.path])
        XCTAssertEqual(plainRun.status, 0, plainRun.transcript)
        let noEMA = try ProcessRunner.dtrain(["eval", "resnet20", "--checkpoint", plain.appendingPathComponent("checkpoint-last.safetensors").path,
                                              "--use-ema", "--limit-val-batches", "1"])
        XCTAssertNotEqual(noEMA.status, 0, noEMA.transcript)
        XCTAssertTrue(noEMA.transcript.contains("--model-ema"), noEMA.transcript)
        let resume = try ProcessRunner.dtrain(["train", "resnet20", "--epochs", "2", "--batch-size", "32", "--limit-train-batches", "1",
                                               "--no-val", "--threads", "2", "--workers", "1", "--output", plain.path, "--resume", "--model-ema"])
        XCTAssertNotEqual(resume.status, 0, resume.transcript)
        XCTAssertTrue(resume.transcript.contains("model_ema") && resume.transcript.contains("--model-ema"), resume.transcript)
    }

    func testBadEMAAndMixingValuesAreRefused() throws {
        let cases: [([String], [String])] = [
            (["--model-ema-steps", "0"], ["--model-ema-steps", "0"]),
            (["--model-ema-decay", "1.5"], ["--model-ema-decay", "[0, 1]", "1.5"]),
            (["--model-ema-decay=nan"], ["--model-ema-decay", "nan"]),
            (["--mixup-alpha=-0.2"], ["--mixup-alpha", "-0.2"]),
            (["--cutmix-alpha", "inf"], ["--cutmix-alpha", "inf"]),
        ]
        for (args, words) in cases {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ema-settings-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let run = try ProcessRunner.dtrain(["resnet20"] + args + ["--output", dir.path], timeout: 60)
            XCTAssertEqual(run.status, 64, "\(args): \(run.transcript)")
            let errorLine = run.lines.last(where: { $0.contains("Error") || $0.contains("error") }) ?? ""
            for w in words { XCTAssertTrue(errorLine.contains(w), "\(args): error line lacks '\(w)': \(run.transcript)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), "\(args): a refused run created its output")
        }
    }
}

import XCTest
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainData
@testable import DTrainTraining

/// The `dtrain` executable itself: bad input gives a clear one-line error and a non-zero exit with
/// nothing overwritten; eval and predict work on what training wrote, and agree.
/// Asserts that `run` exited non-zero and that its error line (the last line saying "error")
/// names each of `words`.
func assertCommandFails(_ run: ProcessRunner.Run, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(run.status, 0, run.transcript, file: file, line: line)
    let errorLine = run.lines.last(where: { $0.contains("Error") || $0.contains("error") }) ?? ""
    for w in words { XCTAssertTrue(errorLine.contains(w), "error line lacks '\(w)': \(run.transcript)", file: file, line: line) }
}

final class CommandLineTests: XCTestCase {
    func dtrain(_ args: [String]) throws -> ProcessRunner.Run {
        try ProcessRunner.dtrain(args + ["--threads", "2"], timeout: 300)
    }

    func testBadInputsGiveClearErrors() throws {
        let dir = temporaryDirectory(self)
        // Unknown model: the error lists the zoo.
        assertCommandFails(try dtrain(["resnet19", "--output", dir.appendingPathComponent("a").path]), mentioning: ["resnet19", "resnet50", "mobilenet_v2"])
        // A --data path that does not exist, and one with no images.
        assertCommandFails(try dtrain(["resnet20", "--data", "/nonexistent/data", "--output", dir.appendingPathComponent("b").path]),
                    mentioning: ["/nonexistent/data"])
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        assertCommandFails(try dtrain(["resnet20", "--data", empty.path, "--output", dir.appendingPathComponent("c").path]), mentioning: [empty.path])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("c").path), "a failed start created the output")

        // A real run to have checkpoints.
        let run = dir.appendingPathComponent("run")
        let ok = try dtrain(["resnet20", "--epochs", "1", "--batch-size", "32", "--limit-train-batches", "2", "--limit-val-batches", "1",
                             "--output", run.path, "--workers", "1"])
        XCTAssertEqual(ok.status, 0, ok.transcript)
        let last = run.appendingPathComponent("checkpoint-last.safetensors")
        let before = try Data(contentsOf: last)

        // Another run into the same directory without --resume is refused.
        assertCommandFails(try dtrain(["resnet20", "--epochs", "1", "--output", run.path]), mentioning: [run.path, "--resume", "--overwrite"])
        // --num-classes disagreeing with the checkpoint.
        assertCommandFails(try dtrain(["resnet20", "--epochs", "2", "--output", run.path, "--resume", "--num-classes", "12"]),
                    mentioning: ["--num-classes", "12", "10"])
        // Resuming a checkpoint of another model.
        assertCommandFails(try dtrain(["resnet32", "--epochs", "2", "--output", dir.appendingPathComponent("d").path, "--resume", last.path]),
                    mentioning: ["resnet20", "resnet32"])
        XCTAssertEqual(try Data(contentsOf: last), before, "a refused run changed the checkpoint")
        // A corrupted checkpoint for eval.
        var bytes = before
        bytes[bytes.count - 100] ^= 1
        let corrupt = dir.appendingPathComponent("corrupt.safetensors")
        try bytes.write(to: corrupt)
        assertCommandFails(try dtrain(["eval", "resnet20", "--checkpoint", corrupt.path]), mentioning: ["checksum"])
    }

    /// `dtrain bench --without` switches named optimisations off (the step still runs and reports)
    /// and refuses a name it does not know, listing those it takes.
    func testBenchWithoutOptimisations() throws {
        let run = try dtrain(["bench", "resnet20", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--peak-size", "0",
                              "--json", "--without", "winograd,fuse-bn-relu,shared-gradients,direct-grouped"])
        XCTAssertEqual(run.status, 0, run.transcript)
        let line = try XCTUnwrap(run.lines.last { $0.hasPrefix("{") }, run.transcript)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(result["images_per_second"] as? Double), 0)
        XCTAssertNotNil(result["median_step_seconds"] as? Double)
        XCTAssertNil(result["imagesPerSecond"], "bench --json keys are snake_case")
        assertCommandFails(try dtrain(["bench", "resnet20", "--without", "winograd,im2col"]),
                    mentioning: ["--without im2col", "fuse-bn-relu", "direct-grouped", "winograd", "shared-gradients", "bf16-activations"])
    }

    /// `--kernels` (or DTRAIN_KERNELS) picks the kernel set: bench reports the set it ran and
    /// training names it in its start line; a value naming no set, or a set this CPU cannot run,
    /// is a one-line error naming the flag and what is missing.
    /// `--allreduce-dtype` takes fp32 or bf16 on train and bench; anything else is a one-line
    /// error naming the flag and both values. (Its effect under mpirun: DistributedTrainingTests.)
    func testAllreduceDTypeFlag() throws {
        for command in [["bench", "resnet20"], ["train", "resnet20", "--data", "/nonexistent"]] {
            assertCommandFails(try dtrain(command + ["--allreduce-dtype", "fp16"]), mentioning: ["--allreduce-dtype fp16", "fp32", "bf16"])
        }
        let run = try dtrain(["bench", "resnet20", "--batch-size", "2", "--steps", "1", "--warmup", "0", "--peak-size", "0",
                              "--no-profile", "--json", "--allreduce-dtype", "bf16"])
        XCTAssertEqual(run.status, 0, run.transcript)
        let line = try XCTUnwrap(run.lines.last { $0.hasPrefix("{") }, run.transcript)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["allreduce_dtype"] as? String, "bf16")
        XCTAssertNil(json["allreduce_bytes"], "one process sends nothing")
    }

    func testKernelsFlag() throws {
        func benchKernels(_ extra: [String]) throws -> String? {
            let run = try dtrain(["bench", "resnet20", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--peak-size", "0",
                                  "--no-profile", "--json"] + extra)
            XCTAssertEqual(run.status, 0, run.transcript)
            let line = try XCTUnwrap(run.lines.last { $0.hasPrefix("{") }, run.transcript)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["kernels"] as? String
        }
        XCTAssertEqual(try benchKernels(["--kernels", "avx2"]), "avx2")
        XCTAssertEqual(try benchKernels([]), KernelSet.best.rawValue)
        assertCommandFails(try dtrain(["bench", "resnet20", "--kernels", "sse4"]), mentioning: ["--kernels sse4", "auto", "avx2", "avx512"])
        assertCommandFails(try ProcessRunner.dtrain(["bench", "resnet20", "--threads", "2"], environment: ["DTRAIN_KERNELS": "sse4"]),
                    mentioning: ["DTRAIN_KERNELS sse4"])
        if let missing = KernelSet.avx512.missingExtension {
            assertCommandFails(try dtrain(["bench", "resnet20", "--kernels", "avx512"]), mentioning: ["--kernels avx512", "lacks \(missing)"])
            assertCommandFails(try dtrain(["predict", "--checkpoint", "/nonexistent.safetensors", "--kernels", "avx512", "x.png"]),
                        mentioning: ["--kernels avx512", "lacks \(missing)"])
        } else {
            XCTAssertEqual(try benchKernels(["--kernels", "avx512"]), "avx512")
        }
        let output = temporaryDirectory(self).appendingPathComponent("run")
        let train = try dtrain(["resnet20", "--epochs", "1", "--batch-size", "16", "--limit-train-batches", "1", "--no-val",
                                "--workers", "1", "--output", output.path, "--kernels", "avx2"])
        XCTAssertEqual(train.status, 0, train.transcript)
        XCTAssertTrue(train.transcript.contains("avx2 (8 lanes) kernels"), train.transcript)
    }

    /// `dtrain eval` and `dtrain predict` on a trained checkpoint: predict's per-image answers give
    /// exactly eval's top-1 on the same images.
    func testEvalAndPredictAgree() throws {
        let dir = temporaryDirectory(self)
        let run = dir.appendingPathComponent("run")
        let trained = try dtrain(["resnet20", "--epochs", "1", "--batch-size", "32", "--limit-train-batches", "10", "--no-val",
                                  "--output", run.path, "--workers", "1"])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        let checkpoint = run.appendingPathComponent("checkpoint-last.safetensors").path

        // 60 digits from the val split as PNG files (lossless), in class folders.
        let folder = dir.appendingPathComponent("digits")
        let written = try DatasetWriter.write(DigitsSource(split: .val), to: folder.appendingPathComponent("val").path, format: .png, limit: 60)
        XCTAssertEqual(written.written, 60)
        try FileManager.default.copyItem(at: folder.appendingPathComponent("val"), to: folder.appendingPathComponent("train"))

        let eval = try dtrain(["eval", "resnet20", "--checkpoint", checkpoint, "--data", folder.path, "--json", "--batch-size", "16",
                               "--output", dir.appendingPathComponent("eval").path])
        XCTAssertEqual(eval.status, 0, eval.transcript)
        let json = try XCTUnwrap(eval.lines.last { $0.hasPrefix("{") })
        let result = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Double]
        XCTAssertEqual(result["samples"], 60)
        for file in ["per_class_accuracy.csv", "confusion_matrix.csv"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("eval/\(file)").path), file)
        }

        var correct = 0, predicted = 0
        let classes = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("val").path).sorted()
        for name in classes {
            let predict = try dtrain(["predict", "--checkpoint", checkpoint, "--topk", "3", "--json",
                                      folder.appendingPathComponent("val/\(name)").path])
            XCTAssertEqual(predict.status, 0, predict.transcript)
            for line in predict.lines where line.hasPrefix("{") {
                let p = try JSONDecoder().decode(Prediction.self, from: Data(line.utf8))
                XCTAssertEqual(p.top.count, 3)
                XCTAssertGreaterThanOrEqual(p.top[0].probability, p.top[1].probability)
                predicted += 1
                if p.top[0].name == name { correct += 1 }
            }
        }
        XCTAssertEqual(predicted, 60)
        XCTAssertEqual(Double(correct) / 60, try XCTUnwrap(result["top1"]), accuracy: 1e-9, "predict and eval disagree")
    }
}

final class EvalWatchTests: XCTestCase {
    /// `eval --watch` beside a 3-epoch run on 2 ranks under mpirun evaluates every epoch checkpoint
    /// exactly once.
    func testWatchEvaluatesEveryCheckpointOnce() throws {
        let dir = temporaryDirectory(self)
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let watcher = Process()
        watcher.executableURL = try ProcessRunner.locateExecutable()
        watcher.arguments = ["eval", "resnet20", "--watch", run.path, "--until-epoch", "3", "--poll-seconds", "0.2",
                             "--threads", "1", "--workers", "1", "--limit-val-batches", "2", "--batch-size", "16"]
        let log = dir.appendingPathComponent("watch.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let sink = try FileHandle(forWritingTo: log)
        watcher.standardOutput = sink
        watcher.standardError = sink
        try watcher.run()
        defer { if watcher.isRunning { watcher.terminate() } }

        let trained = try ProcessRunner.mpirun(ranks: 2, ["resnet20", "--epochs", "3", "--batch-size", "16", "--limit-train-batches", "3",
                                                "--limit-val-batches", "1", "--threads", "1", "--workers", "1", "--keep", "3",
                                                "--output", run.path])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        let deadline = Date().addingTimeInterval(120)
        while watcher.isRunning && Date() < deadline { usleep(100_000) }
        XCTAssertFalse(watcher.isRunning, "the watcher did not stop after epoch 3")
        XCTAssertEqual(watcher.terminationStatus, 0, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        let lines = try String(contentsOf: run.appendingPathComponent("eval.jsonl"), encoding: .utf8).split(separator: "\n")
        let epochs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.map { $0["epoch"] as! Int }
        XCTAssertEqual(epochs, [1, 2, 3])
    }
}

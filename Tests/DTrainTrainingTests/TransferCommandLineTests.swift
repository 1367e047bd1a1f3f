import XCTest
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainData
@testable import DTrainTraining

/// `dtrain import`, `dtrain export` and `train --pretrained/--freeze` from the command line.
final class TransferCommandLineTests: XCTestCase {
    func dtrain(_ args: [String]) throws -> ProcessRunner.Run {
        try ProcessRunner.dtrain(args, timeout: 300)
    }

    /// A dtrain checkpoint of resnet20 with optimizer state, class names and non-trivial statistics.
    func checkpoint(in dir: URL) throws -> URL {
        let model = try ModelZoo.make("resnet20", options: ModelOptions(numClasses: 10))
        model.initialize(seed: 11)
        var rng = SeededRandom(seed: 12)
        for entry in model.state {
            if case .buffer(let b) = entry.kind { for i in 0..<b.count { b.pointer[i] = Float(rng.uniform(0.5, 2)) } }
            if case .counter(let c) = entry.kind { c.value = 77 }
        }
        let sgd = SGD(store: model.store, weightDecay: 1e-4)
        for i in 0..<model.store.count { sgd.momentumBuffer.pointer[i] = 0.25 }
        var info = CheckpointInfo(model: "resnet20", numClasses: 10)
        info.classNames = (0..<10).map { "digit\($0)" }
        info.preset = "cifar"
        info.resolution = 32
        info.mean = [0.5, 0.5, 0.5]
        info.std = [0.25, 0.25, 0.25]
        info.epoch = 3
        let url = dir.appendingPathComponent("checkpoint.safetensors")
        try Checkpoint.save(model: model, optimizer: sgd, info: info, to: url)
        return url
    }

    /// Raw bytes of every model tensor (optimizer state left out).
    func modelBytes(_ url: URL) throws -> [String: Data] {
        let file = try WeightsFile.open(url).file
        var out: [String: Data] = [:]
        for name in file.names where !name.hasPrefix(Checkpoint.optimizerPrefix) { out[name] = try file.bytes(name) }
        return out
    }

    func testExportImportRoundTripsBitForBit() throws {
        let dir = temporaryDirectory(self)
        let ck = try checkpoint(in: dir)
        let original = try modelBytes(ck)
        let pth = dir.appendingPathComponent("resnet20.pth")

        let exported = try dtrain(["export", ck.path, "--format", "pth", "--output", pth.path])
        XCTAssertEqual(exported.status, 0, exported.transcript)
        let read = try PthFile(contentsOf: pth)
        XCTAssertEqual(read.archiveName, "resnet20")
        let order = try ModelZoo.make("resnet20").state.map(\.name)
        XCTAssertEqual(read.tensors.map(\.name), order, "not in torchvision's state_dict order")
        XCTAssertEqual(Set(read.tensors.map(\.dtype)), [.f32, .i64])
        for t in read.tensors { XCTAssertEqual(t.data, original[t.name], "\(t.name) differs in the .pth") }

        let imported = dir.appendingPathComponent("imported.safetensors")
        let imp = try dtrain(["import", pth.path, "--model", "resnet20", "--output", imported.path])
        XCTAssertEqual(imp.status, 0, imp.transcript)
        XCTAssertEqual(try modelBytes(imported), original)
        XCTAssertEqual(try Checkpoint.read(imported).info.classNames, (0..<10).map { "digit\($0)" })

        // Exporting the imported checkpoint gives the same file, byte for byte.
        let again = dir.appendingPathComponent("again/resnet20.pth")
        try FileManager.default.createDirectory(at: again.deletingLastPathComponent(), withIntermediateDirectories: true)
        XCTAssertEqual(try dtrain(["export", imported.path, "--format", "pth", "--output", again.path]).status, 0)
        XCTAssertEqual(try Data(contentsOf: again), try Data(contentsOf: pth))

        // safetensors export: model tensors only.
        let st = dir.appendingPathComponent("weights.safetensors")
        XCTAssertEqual(try dtrain(["export", ck.path, "--format", "safetensors", "--output", st.path]).status, 0)
        let stFile = try SafeTensorsFile(contentsOf: st)
        XCTAssertFalse(stFile.names.contains { $0.hasPrefix("optimizer.") })
        XCTAssertEqual(try modelBytes(st), original)
        XCTAssertTrue(try checkpointTensors(ck).keys.contains { $0.hasPrefix("optimizer.momentum_buffer.") })

        // An existing output is refused (and left as it was) unless --overwrite.
        let before = try Data(contentsOf: pth)
        assertCommandFails(try dtrain(["export", st.path, "--format", "pth", "--output", pth.path]), mentioning: [pth.path, "--overwrite"])
        XCTAssertEqual(try Data(contentsOf: pth), before)
        XCTAssertEqual(try dtrain(["export", st.path, "--format", "pth", "--output", pth.path, "--overwrite"]).status, 0)
        assertCommandFails(try dtrain(["export", ck.path, "--format", "onnx", "--output", dir.appendingPathComponent("x").path]), mentioning: ["--format", "onnx"])
    }

    func testImportReportsMismatchesByName() throws {
        let dir = temporaryDirectory(self)
        let ck = try checkpoint(in: dir)
        let out = dir.appendingPathComponent("out.safetensors")
        assertCommandFails(try dtrain(["import", ck.path, "--model", "resnet32", "--output", out.path]),
                    mentioning: ["resnet20, not resnet32"])
        let plain = dir.appendingPathComponent("plain.pth")
        XCTAssertEqual(try dtrain(["export", ck.path, "--format", "pth", "--output", plain.path]).status, 0)
        // A plain state_dict (no dtrain metadata) for another model: the keys are named.
        var writer = PthWriter()
        for t in try PthFile(contentsOf: plain).tensors where !t.name.hasPrefix("layer3.2.") {
            try writer.add(t.name, dtype: t.dtype, shape: t.name == "fc.bias" ? [5] : t.shape,
                           data: t.name == "fc.bias" ? t.data.prefix(20) : t.data)
        }
        let broken = dir.appendingPathComponent("broken.pth")
        try writer.serialized(archiveName: "broken").write(to: broken)
        assertCommandFails(try dtrain(["import", broken.path, "--model", "resnet20", "--output", out.path]),
                    mentioning: ["missing keys: layer3.2.conv1.weight", "shape mismatches: fc.bias [5] vs [10]"])
        assertCommandFails(try dtrain(["import", dir.appendingPathComponent("none.pth").path,
                                "--model", "resnet20", "--output", out.path]), mentioning: ["none.pth"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a failed import wrote its output")
    }

    /// --pretrained reads through the verified door: one flipped byte in a checkpoint's tensor
    /// data (its checksum) or in an exported .pth's tensor record (its zip CRC) is a one-line error,
    /// and nothing is trained.
    func testPretrainedRefusesCorruptedFiles() throws {
        let dir = temporaryDirectory(self)
        let ck = try checkpoint(in: dir)
        let pth = dir.appendingPathComponent("model.pth")
        XCTAssertEqual(try dtrain(["export", ck.path, "--format", "pth", "--output", pth.path]).status, 0)

        var data = try Data(contentsOf: ck)
        let headerEnd = 8 + data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        data[headerEnd + (data.count - headerEnd) / 3] ^= 0x04
        let badCheckpoint = dir.appendingPathComponent("flipped.safetensors")
        try data.write(to: badCheckpoint)
        let runA = dir.appendingPathComponent("a")
        assertCommandFails(try dtrain(["resnet20", "--pretrained", badCheckpoint.path, "--epochs", "1", "--output", runA.path, "--threads", "2"]),
                    mentioning: ["--pretrained", badCheckpoint.path, "checksum mismatch"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: runA.appendingPathComponent("checkpoint-last.safetensors").path))

        // The .pth's first tensor record (conv1.weight, 432 floats) holds the checkpoint's bytes.
        var exported = try Data(contentsOf: pth)
        let conv1 = try XCTUnwrap(try modelBytes(ck)["conv1.weight"])
        let at = try XCTUnwrap(exported.range(of: conv1)).lowerBound + 100
        exported[at] ^= 0x04
        let badPth = dir.appendingPathComponent("flipped.pth")
        try exported.write(to: badPth)
        assertCommandFails(try dtrain(["resnet20", "--pretrained", badPth.path, "--epochs", "1", "--output", dir.appendingPathComponent("b").path, "--threads", "2"]),
                    mentioning: ["--pretrained", badPth.path, "CRC mismatch"])
    }

    /// torch.save's formats from before PyTorch 1.6 (the legacy pickle stream, the tar archive, a
    /// training script's .th with "module." keys and no num_batches_tracked) work with import,
    /// --pretrained, eval --checkpoint and predict --checkpoint; the reports name the format.
    func testOldTorchFormatsWorkEverywhere() throws {
        let dir = temporaryDirectory(self)
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DTrainWeightsTests/Fixtures/legacy")
        let legacy = fixtures.appendingPathComponent("resnet20_legacy.pth")
        let tar = fixtures.appendingPathComponent("resnet20_tar.pth.tar")
        let module = fixtures.appendingPathComponent("resnet20_module.th")
        var imported: [URL] = []
        for (file, format) in [(legacy, "legacy format, PyTorch 0.4 to 1.5"), (tar, "tar format, PyTorch 0.3 or earlier"),
                               (module, "legacy format, PyTorch 0.4 to 1.5")] {
            let out = dir.appendingPathComponent(file.lastPathComponent + ".safetensors")
            let run = try dtrain(["import", file.path, "--model", "resnet20", "--output", out.path])
            XCTAssertEqual(run.status, 0, run.transcript)
            XCTAssertTrue(run.output.contains("imported \(file.path) (pth: torch.save \(format)): "), run.output)
            imported.append(out)
        }
        // The legacy and tar files hold the same weights; the .th has them without the counters.
        let fromLegacy = try modelBytes(imported[0]), fromModule = try modelBytes(imported[2])
        XCTAssertEqual(fromLegacy, try modelBytes(imported[1]))
        for (name, bytes) in fromLegacy {
            if name.hasSuffix("num_batches_tracked") {
                XCTAssertEqual(fromModule[name], Data(count: 8), name)
            } else {
                XCTAssertEqual(fromModule[name], bytes, name)
            }
        }

        let images = dir.appendingPathComponent("digits")
        _ = try DatasetWriter.write(DigitsSource(split: .val), to: images.appendingPathComponent("val").path, format: .png, limit: 8)
        try FileManager.default.copyItem(at: images.appendingPathComponent("val"), to: images.appendingPathComponent("train"))
        let files = try FileManager.default.subpathsOfDirectory(atPath: images.path).filter { $0.hasPrefix("val/") && $0.hasSuffix(".png") }
            .sorted().map { images.appendingPathComponent($0).path }
        var predictions: [String] = []
        var evaluations: [String] = []
        for file in [legacy, tar, module] {
            let p = try dtrain(["predict", "--checkpoint", file.path, "--model", "resnet20", "--threads", "2"] + files)
            XCTAssertEqual(p.status, 0, p.transcript)
            predictions.append(p.output)
            let e = try dtrain(["eval", "resnet20", "--checkpoint", file.path, "--data", images.path, "--json",
                                "--batch-size", "4", "--threads", "2", "--workers", "1", "--output", dir.path])
            XCTAssertEqual(e.status, 0, e.transcript)
            evaluations.append(try XCTUnwrap(e.lines.first { $0.hasPrefix("{") }, e.transcript))
        }
        XCTAssertEqual(Set(predictions).count, 1, "\(predictions)")
        XCTAssertEqual(Set(evaluations).count, 1, "\(evaluations)")
        XCTAssertFalse(predictions[0].isEmpty)

        let run = dir.appendingPathComponent("run")
        let trained = try dtrain(["resnet20", "--pretrained", module.path, "--epochs", "1", "--batch-size", "16", "--limit-train-batches", "2",
                                  "--no-val", "--output", run.path, "--threads", "2", "--workers", "1"])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        XCTAssertTrue(trained.output.contains("pretrained \(module.path) (pth-legacy): loaded"), trained.output)
        XCTAssertTrue(trained.output.contains("num_batches_tracked at 0"), trained.output)
    }

    /// predict takes the exported .pth and answers as with the checkpoint it came from; train
    /// takes it with --pretrained, replaces the head for another class count and reports it.
    func testPredictAndTrainTakePth() throws {
        let dir = temporaryDirectory(self)
        let ck = try checkpoint(in: dir)
        let pth = dir.appendingPathComponent("model.pth")
        XCTAssertEqual(try dtrain(["export", ck.path, "--format", "pth", "--output", pth.path]).status, 0)
        let images = dir.appendingPathComponent("images")
        _ = try DatasetWriter.write(DigitsSource(split: .val), to: images.path, format: .png, limit: 6)
        let files = try FileManager.default.subpathsOfDirectory(atPath: images.path).filter { $0.hasSuffix(".png") }.sorted()
            .map { images.appendingPathComponent($0).path }
        let a = try dtrain(["predict", "--checkpoint", ck.path, "--threads", "2"] + files)
        let b = try dtrain(["predict", "--checkpoint", pth.path, "--threads", "2"] + files)
        XCTAssertEqual(a.status, 0, a.transcript)
        XCTAssertEqual(b.output, a.output)
        XCTAssertTrue(a.output.contains("digit"), a.output)

        let run = dir.appendingPathComponent("run")
        let trained = try dtrain(["resnet20", "--pretrained", pth.path, "--num-classes", "12", "--freeze", "backbone",
                                  "--head-lr-mult", "10", "--epochs", "1", "--batch-size", "16", "--limit-train-batches", "2",
                                  "--no-val", "--output", run.path, "--threads", "2", "--workers", "1"])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        XCTAssertTrue(trained.output.contains("pretrained \(pth.path) (pth): loaded"), trained.output)
        XCTAssertTrue(trained.output.contains("pretrained: new: fc.weight [12, 64], fc.bias [12]"), trained.output)
        XCTAssertTrue(trained.output.contains("pretrained: ignored: fc.weight [10, 64], fc.bias [10] (the file's head)"), trained.output)
        XCTAssertTrue(trained.output.contains("freeze backbone:"), trained.output)

        assertCommandFails(try dtrain(["resnet20", "--freeze", "most", "--output", dir.appendingPathComponent("b").path]), mentioning: ["--freeze", "most"])
        assertCommandFails(try dtrain(["resnet20", "--pretrained", dir.appendingPathComponent("missing.pth").path,
                                "--output", dir.appendingPathComponent("c").path]), mentioning: ["--pretrained", "missing.pth"])
        assertCommandFails(try dtrain(["resnet20", "--freeze", "until=layer7", "--epochs", "1", "--output", dir.appendingPathComponent("d").path,
                                "--threads", "2"]), mentioning: ["until=layer7", "layer3"])
    }
}

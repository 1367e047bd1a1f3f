import XCTest
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainData
@testable import DTrainWeights
@testable import DTrainTraining

/// --interpolation, --train-crop-size, --val-resize-size and --val-crop-size: validated with a
/// one-line error, carried into the plan's train and eval geometry, recorded in the checkpoint and
/// picked up (or overridden) by eval and predict.
final class GeometryFlagsTests: XCTestCase {
    let output = URL(fileURLWithPath: "/nonexistent/plan-test")
    let digits = DataSummary(classNames: (0...9).map(String.init), trainCount: 1433, valCount: 364, flipsByDefault: false)

    func dtrain(_ args: [String]) throws -> ProcessRunner.Run {
        try ProcessRunner.dtrain(args + ["--threads", "2"], timeout: 300)
    }

    func assertFails(_ run: ProcessRunner.Run, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(run.status, 0, run.transcript, file: file, line: line)
        let errorLine = run.lines.last(where: { $0.contains("Error") || $0.contains("error") }) ?? ""
        for w in words { XCTAssertTrue(errorLine.contains(w), "error line lacks '\(w)': \(run.transcript)", file: file, line: line) }
    }

    func plan(_ config: TrainConfig) throws -> TrainingPlan {
        try TrainingPlan(config: config, spec: try ModelZoo.spec(named: config.model), data: digits, ranks: 1, version: "9.8.7")
    }

    func testFlagsReachThePlanAndTheCheckpointInfo() throws {
        // Defaults: bilinear, the preset's resize, nothing new recorded.
        let plain = try plan(try TrainConfig.defaults(for: "resnet18", epochs: 2, output: output))
        XCTAssertEqual(plain.evalTransform.interpolation, .bilinear)
        XCTAssertEqual(plain.trainTransform.interpolation, .bilinear)
        XCTAssertEqual(plain.evalResize, 256)
        XCTAssertNil(plain.initialInfo.evalResize)
        XCTAssertNil(plain.initialInfo.interpolation)

        var c = try TrainConfig.defaults(for: "resnet18", epochs: 2, output: output)
        c.resolution = 176
        c.valResizeSize = 232
        c.interpolation = .bicubic
        let p = try plan(c)
        XCTAssertEqual(p.trainTransform.geometry, .randomResizedCrop(size: 176, scale: 0.08...1.0, ratio: (3.0 / 4.0)...(4.0 / 3.0)))
        XCTAssertEqual(p.trainTransform.interpolation, .bicubic)
        XCTAssertEqual(p.evalTransform.geometry, .resizeCenterCrop(resize: 232, crop: 176))
        XCTAssertEqual(p.evalTransform.interpolation, .bicubic)
        XCTAssertEqual(p.initialInfo.evalResize, 232)
        XCTAssertEqual(p.initialInfo.interpolation, "bicubic")
        // --overfit-batches trains on the evaluation transform, with the same settings.
        c.overfitBatches = 1
        XCTAssertEqual(try plan(c).trainTransform.geometry, .resizeCenterCrop(resize: 232, crop: 176))

        c.valResizeSize = 100
        XCTAssertThrowsError(try plan(c)) { XCTAssertTrue("\($0)".contains("--val-resize-size 100"), "\($0)") }
    }

    /// argument-parser appends "(default: X)" to every option declared with a value; no help text
    /// says its default a second time.
    func testHelpStatesEachDefaultOnce() throws {
        for command in ["train", "eval", "predict", "bench", "bench-data", "stats", "import", "export"] {
            let run = try ProcessRunner.dtrain([command, "--help"], timeout: 60)
            XCTAssertEqual(run.status, 0, run.transcript)
            let text = run.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            var parserDefaults = 0, searchFrom = text.startIndex
            while let range = text.range(of: "(default:", range: searchFrom..<text.endIndex) {
                parserDefaults += 1
                let before = text[text.startIndex..<range.lowerBound]
                let option = before.range(of: " --", options: .backwards).map { before[$0.lowerBound...] } ?? before
                XCTAssertFalse(option.contains("Default:"), "\(command) --help says the default twice: \(option)(default: …")
                searchFrom = range.upperBound
            }
            if command == "train" || command == "eval" { XCTAssertGreaterThan(parserDefaults, 2, run.output) }
        }
    }

    func testBadGeometryFlagsGiveOneLineErrors() throws {
        let out = temporaryDirectory(self).appendingPathComponent("never").path
        assertFails(try dtrain(["resnet20", "--interpolation", "lanczos", "--output", out]), mentioning: ["--interpolation lanczos", "bilinear", "bicubic"])
        assertFails(try dtrain(["resnet20", "--val-resize-size", "0", "--output", out]), mentioning: ["--val-resize-size", "0"])
        assertFails(try dtrain(["resnet20", "--val-crop-size", "2", "--output", out]), mentioning: ["--val-crop-size", "2"])
        assertFails(try dtrain(["resnet20", "--train-crop-size", "0", "--output", out]), mentioning: ["--train-crop-size", "0"])
        assertFails(try dtrain(["resnet20", "--train-crop-size", "40", "--resolution", "48", "--output", out]),
                    mentioning: ["--train-crop-size 40", "--resolution 48"])
        assertFails(try dtrain(["resnet20", "--val-crop-size", "48", "--output", out]), mentioning: ["--val-crop-size 48", "32"])
        assertFails(try dtrain(["resnet20", "--train-crop-size", "40", "--val-resize-size", "36", "--output", out]),
                    mentioning: ["--val-resize-size 36", "40"])
        assertFails(try dtrain(["resnet20", "--val-crop-size", "40", "--val-resize-size", "36", "--output", out]),
                    mentioning: ["--val-crop-size 40", "--val-resize-size 36"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a refused start created the output")
        assertFails(try dtrain(["predict", "--checkpoint", "/nonexistent.safetensors", "--interpolation", "nearest", "x.png"]),
                    mentioning: ["--interpolation nearest"])
    }

    /// A run with --train-crop-size, --val-resize-size and --interpolation records them; eval and
    /// predict read them back, their flags override them, and another crop takes the preset's resize.
    func testCheckpointCarriesTheEvaluationGeometry() throws {
        let dir = temporaryDirectory(self)
        let run = dir.appendingPathComponent("run")
        let trained = try dtrain(["resnet20", "--epochs", "1", "--batch-size", "8", "--limit-train-batches", "1", "--no-val",
                                  "--train-crop-size", "40", "--val-resize-size", "44", "--interpolation", "bicubic",
                                  "--output", run.path, "--workers", "1"])
        XCTAssertEqual(trained.status, 0, trained.transcript)
        let path = run.appendingPathComponent("checkpoint-last.safetensors").path
        let (_, info) = try Checkpoint.read(URL(fileURLWithPath: path), plainModel: nil)
        XCTAssertEqual(info.resolution, 40)
        XCTAssertEqual(info.evalResize, 44)
        XCTAssertEqual(info.interpolation, "bicubic")

        let loaded = try LoadedCheckpoint(path: path, expectedModel: "resnet20", batchSize: 2)
        XCTAssertEqual(loaded.evalTransform.geometry, .resizeCenterCrop(resize: 44, crop: 40))
        XCTAssertEqual(loaded.evalTransform.interpolation, .bicubic)
        let overridden = loaded.evalTransform(resize: 50, interpolation: .bilinear)
        XCTAssertEqual(overridden.geometry, .resizeCenterCrop(resize: 50, crop: 40))
        XCTAssertEqual(overridden.interpolation, .bilinear)
        let other = try LoadedCheckpoint(path: path, expectedModel: "resnet20", batchSize: 2, resolution: 48)
        XCTAssertEqual(other.evalTransform.geometry, .resizeCenterCrop(resize: 48, crop: 48))

        // eval at another crop (the model built at 48) and a resize smaller than the crop.
        let eval = try dtrain(["eval", "resnet20", "--checkpoint", path, "--json", "--limit-val-batches", "1", "--batch-size", "8",
                               "--val-crop-size", "48", "--val-resize-size", "56", "--output", dir.appendingPathComponent("eval").path])
        XCTAssertEqual(eval.status, 0, eval.transcript)
        assertFails(try dtrain(["eval", "resnet20", "--checkpoint", path, "--val-resize-size", "36", "--output", dir.appendingPathComponent("e2").path]),
                    mentioning: ["--val-resize-size 36", "40"])
    }
}

import Foundation
import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainTraining

/// The model EMA, MixUp/CutMix and the soft-target cross-entropy against PyTorch 2.15 and
/// torchvision 0.29.2 (`Tests/FixtureScripts/ema_mixup_fixtures.py`, files in
/// Fixtures/ema_mixup): torchvision's ExponentialMovingAverage (AveragedModel, use_buffers=True)
/// with its n_averaged reset, transforms.v2 MixUp and CutMix with a fixed λ and box centre, and
/// CrossEntropyLoss(label_smoothing:) on the mixed targets with its gradient.
final class EMAMixupFixtureTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    private func fixture(_ name: String) throws -> SafeTensorsFile {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures/ema_mixup"),
                                "missing fixture \(name)")
        return try SafeTensorsFile(contentsOf: url)
    }

    /// A float64 scalar of the fixture, exactly.
    private func double(_ file: SafeTensorsFile, _ name: String) throws -> Double {
        try file.bytes(name).withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
    }

    private func assertClose(_ a: [Float], _ b: [Float], relative: Float = 1e-6, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > relative * max(abs(y), scale * 1e-3) {
            XCTFail("\(what)[\(i)]: \(x) vs PyTorch's \(y)", file: file, line: line)
            return
        }
    }

    /// NCHW (torch) to NHWC (dtrain).
    private func nhwc(_ x: [Float], n: Int, c: Int, h: Int, w: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for y in 0..<h { for xx in 0..<w { for ch in 0..<c {
            out[((b * h + y) * w + xx) * c + ch] = x[((b * c + ch) * h + y) * w + xx]
        } } } }
        return out
    }

    // MARK: EMA

    /// A tiny torchvision-style module's state (conv with bias, BatchNorm2d with running statistics
    /// and num_batches_tracked, linear head), given a sequence of weights and buffers: the EMA after
    /// each step equals torchvision's, including the first update's copy, the copies while
    /// n_averaged is reset during warmup, and num_batches_tracked's float32 average truncated.
    func testEMAMatchesTorchvisionExponentialMovingAverage() throws {
        let f = try fixture("ema")
        let settings = try f.int64s("settings").map(Int.init)
        let (worldSize, batchSize, emaSteps, epochs, steps, warmupSteps) = (settings[0], settings[1], settings[2], settings[3], settings[4], settings[5])
        let decay = ModelEMA.adjustedDecay(try double(f, "model_ema_decay"), globalBatch: worldSize * batchSize, steps: emaSteps, epochs: epochs)
        XCTAssertEqual(decay, try double(f, "decay"), "train.py's adjusted decay")
        XCTAssertEqual(ModelEMA.adjustedDecay(0.99998, globalBatch: 1024, steps: 32, epochs: 600), 1 - min(1, (1 - 0.99998) * (32768.0 / 600)))
        XCTAssertEqual(ModelEMA.adjustedDecay(0.5, globalBatch: 1024, steps: 32, epochs: 1), 0, "alpha is capped at 1")

        let shapes: [(String, [Int], ParameterRole)] = [("conv.weight", [3, 2, 3, 3], .weight), ("conv.bias", [3], .bias),
                                                        ("bn.weight", [3], .normWeight), ("bn.bias", [3], .normBias)]
        let head: [(String, [Int], ParameterRole)] = [("fc.weight", [4, 3], .weight), ("fc.bias", [4], .bias)]
        var entries: [StateEntry] = []
        var parameters: [Parameter] = []
        func addParameter(_ spec: (String, [Int], ParameterRole)) {
            let p = Parameter(torchShape: spec.1, role: spec.2, initializer: .constant(0))
            parameters.append(p)
            entries.append(StateEntry(name: spec.0, kind: .parameter(p)))
        }
        shapes.forEach(addParameter)
        let mean = StateBuffer(torchShape: [3], fill: 0), variance = StateBuffer(torchShape: [3], fill: 1), tracked = StateCounter()
        entries += [StateEntry(name: "bn.running_mean", kind: .buffer(mean)), StateEntry(name: "bn.running_var", kind: .buffer(variance)),
                    StateEntry(name: "bn.num_batches_tracked", kind: .counter(tracked))]
        head.forEach(addParameter)
        let store = ParameterStore(parameters)

        func setModel(_ prefix: String) throws {
            for entry in entries {
                switch entry.kind {
                case .parameter(let p): p.setTorchValues(try f.floats(prefix + entry.name))
                case .buffer(let b): _ = b.storage.buffer.update(fromContentsOf: try f.floats(prefix + entry.name))
                case .counter(let c): c.value = try f.int64s(prefix + entry.name)[0]
                }
            }
        }
        try setModel("initial.")
        let ema = ModelEMA(store: store, state: entries, decay: decay, every: emaSteps)
        XCTAssertEqual(ema.nAveraged, 0)
        for s in 0..<steps {
            try setModel("step\(s).model.")
            // train.py: an update at steps 0, every, 2·every, …; n_averaged reset while epoch < warmup.
            let epoch = s < warmupSteps ? 0 : 1
            XCTAssertFalse(ema.afterOptimizerStep(epoch: epoch, step: emaSteps - 1, warmupEpochs: 1), "not an update step")
            XCTAssertTrue(ema.afterOptimizerStep(epoch: epoch, step: emaSteps * s, warmupEpochs: 1))
            XCTAssertEqual(ema.nAveraged, try f.int64s("step\(s).n_averaged")[0], "n_averaged after step \(s)")
            let values = ema.stateValues()
            for entry in entries {
                let reference = try f.floats("step\(s).ema.\(entry.name)")
                if case .counter = entry.kind {
                    XCTAssertEqual(ema.counterValues()[entry.name], try f.int64s("step\(s).ema.\(entry.name)")[0], "step \(s) \(entry.name)")
                } else {
                    assertClose(try XCTUnwrap(values[entry.name]), reference, "step \(s) \(entry.name)")
                }
            }
        }
        // The model's own values are untouched by the updates, and a swap restores both exactly.
        let modelBefore = Array(store.values.buffer), emaBefore = ema.stateValues()
        ema.withWeightsSwapped {
            XCTAssertEqual(parameters[0].torchValues(), emaBefore["conv.weight"])
            XCTAssertEqual(Array(mean.storage.buffer), emaBefore["bn.running_mean"])
            XCTAssertEqual(Float(tracked.value), emaBefore["bn.num_batches_tracked"]?[0])
        }
        XCTAssertEqual(Array(store.values.buffer), modelBefore)
        XCTAssertEqual(ema.stateValues(), emaBefore)
    }

    // MARK: MixUp and CutMix

    private let classes = 5, n = 4, c = 3, h = 5, w = 7

    private func mixing() -> BatchMixing {
        BatchMixing(mixupAlpha: 0.2, cutmixAlpha: 1.0, classes: classes, maxBatch: n, height: h, width: w, channels: c)
    }

    /// Mixes the fixture's batch with `draw` and compares images and targets with PyTorch's.
    private func assertMixes(_ f: SafeTensorsFile, _ draw: BatchMixing.Draw, file: StaticString = #filePath, line: UInt = #line) throws {
        let m = mixing()
        var images = nhwc(try f.floats("x"), n: n, c: c, h: h, w: w)
        let labels = try f.int64s("labels").map(Int32.init)
        images.withUnsafeMutableBufferPointer { x in
            labels.withUnsafeBufferPointer { m.apply(draw, images: x.baseAddress!, labels: $0.baseAddress!, count: n) }
        }
        assertClose(images, nhwc(try f.floats("mixed"), n: n, c: c, h: h, w: w), "\(draw.kind) images", file: file, line: line)
        assertClose(Array(m.targets.buffer.prefix(n * classes)), try f.floats("target"), "\(draw.kind) targets", file: file, line: line)
    }

    func testMixUpMatchesTorchvision() throws {
        let f = try fixture("mixup")
        try assertMixes(f, BatchMixing.Draw(kind: .mixup, lambda: try double(f, "lam")))
    }

    func testCutMixBoxAndImagesMatchTorchvision() throws {
        let f = try fixture("cutmix")
        let draws = try f.int64s("draws").map(Int.init), box = try f.int64s("box").map(Int.init)
        let (b, adjusted) = BatchMixing.cutmixBox(lambda: try double(f, "lam"), centreX: draws[0], centreY: draws[1], height: h, width: w)
        XCTAssertEqual([b.x1, b.y1, b.x2, b.y2], box, "torchvision's box (x1, y1, x2, y2)")
        XCTAssertEqual(adjusted, try double(f, "lam_adjusted"), "λ adjusted to the box area")
        try assertMixes(f, BatchMixing.Draw(kind: .cutmix, lambda: adjusted, box: b))
    }

    /// Draws are a function of (seed, rank, epoch, step): the same key draws the same, another key
    /// another; with both alphas each method is drawn; λ stays in [0, 1] and the box in the image.
    func testDrawsAreKeyedAndBothMethodsAreChosen() {
        let m = mixing()
        var a = BatchMixing.random(seed: 3, rank: 1, epoch: 2, step: 5), b = BatchMixing.random(seed: 3, rank: 1, epoch: 2, step: 5)
        XCTAssertEqual(m.draw(random: &a), m.draw(random: &b))
        var kinds: [BatchMixing.Kind: Int] = [:]
        var lambdas: Set<Double> = []
        for step in 0..<400 {
            var r = BatchMixing.random(seed: 3, rank: 0, epoch: 0, step: step)
            let d = m.draw(random: &r)
            kinds[d.kind, default: 0] += 1
            lambdas.insert(d.lambda)
            XCTAssertTrue(d.lambda >= 0 && d.lambda <= 1, "λ \(d.lambda)")
            if let box = d.box { XCTAssertTrue(0 <= box.x1 && box.x1 <= box.x2 && box.x2 <= w && 0 <= box.y1 && box.y1 <= box.y2 && box.y2 <= h) }
            XCTAssertEqual(d.box == nil, d.kind == .mixup)
        }
        XCTAssertGreaterThan(kinds[.mixup] ?? 0, 150)
        XCTAssertGreaterThan(kinds[.cutmix] ?? 0, 150)
        XCTAssertGreaterThan(lambdas.count, 150)
        var other = BatchMixing.random(seed: 3, rank: 0, epoch: 2, step: 5), same = BatchMixing.random(seed: 3, rank: 1, epoch: 2, step: 5)
        XCTAssertNotEqual(m.draw(random: &other), m.draw(random: &same), "rank 0 and rank 1 draw alike")
        // Beta(α, α) has mean ½ and variance 1 / (4 (2α + 1)).
        for alpha in [0.2, 1.0, 4.0] {
            var r = SeededRandom(seed: 9)
            let xs = (0..<20_000).map { _ in r.beta(alpha, alpha) }
            let mean = xs.reduce(0, +) / Double(xs.count)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
            XCTAssertEqual(mean, 0.5, accuracy: 0.01, "Beta(\(alpha), \(alpha)) mean")
            XCTAssertEqual(variance, 1 / (4 * (2 * alpha + 1)), accuracy: 0.01, "Beta(\(alpha), \(alpha)) variance")
        }
    }

    // MARK: Soft-target cross-entropy

    func testSoftTargetCrossEntropyAndGradientMatchPyTorch() throws {
        let f = try fixture("soft_ce")
        let logits = try f.floats("logits"), targets = try f.floats("target"), argmax = try f.int64s("argmax").map(Int.init)
        let rows = logits.count / classes
        for name in ["plain", "smooth"] {
            let loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: Float(try double(f, "\(name).eps")))
            loss.build(maxBatch: rows)
            let s = Storage(count: logits.count)
            _ = s.buffer.update(fromContentsOf: logits)
            let value = targets.withUnsafeBufferPointer {
                loss.forward(logits: Tensor(storage: s, batch: rows, shape: FeatureShape(features: classes)), targets: $0.baseAddress!)
            }
            XCTAssertEqual(Double(value), try double(f, "\(name).loss"), accuracy: 1e-6 * abs(try double(f, "\(name).loss")), name)
            assertClose(loss.backward().toArray(), try f.floats("\(name).dlogits"), relative: 1e-5, "\(name) dlogits")
            let expected = (0..<rows).filter { r in
                let row = logits[(r * classes)..<((r + 1) * classes)]
                return row.firstIndex(of: row.max()!)! - r * classes == argmax[r]
            }.count
            XCTAssertEqual(loss.correct(topK: 1), expected, "\(name): top-1 against the targets' argmax")
        }
    }

    /// Train top-1 with mixed targets counts against each row's most probable class, the first of
    /// tied ones, as torchvision's `target.max(dim=1)[1]` (λ = ½ ties every pair).
    func testTopOneCountsAgainstTheFirstOfTiedTargetClasses() throws {
        let f = try fixture("mixup")
        let tied = try f.floats("tied_target"), argmax = try f.int64s("tied_argmax").map(Int.init)
        XCTAssertEqual(argmax, [3, 0, 0, 3])
        let loss = SoftmaxCrossEntropy(classes: classes)
        loss.build(maxBatch: n)
        // Rows 0 and 2 peak at torch's argmax; rows 1 and 3 at the other class of their tie.
        let peaks = [argmax[0], 3, argmax[2], 4]
        let s = Storage(count: n * classes)
        for r in 0..<n { s.pointer[r * classes + peaks[r]] = 5 }
        _ = tied.withUnsafeBufferPointer {
            loss.forward(logits: Tensor(storage: s, batch: n, shape: FeatureShape(features: classes)), targets: $0.baseAddress!)
        }
        XCTAssertEqual(loss.correct(topK: 1), 2)
    }

    /// One-hot targets give the hard-label loss and gradient, with and without smoothing.
    func testOneHotTargetsEqualHardLabels() {
        for smoothing: Float in [0, 0.1] {
            let loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: smoothing)
            loss.build(maxBatch: n)
            var rng = SeededRandom(seed: 5)
            let s = Storage(count: n * classes)
            for i in 0..<s.count { s.pointer[i] = Float(rng.normal() * 3) }
            let labels: [Int32] = [4, 0, 2, 2]
            var onehot = [Float](repeating: 0, count: n * classes)
            for (r, l) in labels.enumerated() { onehot[r * classes + Int(l)] = 1 }
            let t = Tensor(storage: s, batch: n, shape: FeatureShape(features: classes))
            let hard = labels.withUnsafeBufferPointer { loss.forward(logits: t, labels: $0.baseAddress!) }
            let hardGrad = loss.backward().toArray(), hardCorrect = loss.correct(topK: 1)
            let soft = onehot.withUnsafeBufferPointer { loss.forward(logits: t, targets: $0.baseAddress!) }
            XCTAssertEqual(soft, hard, accuracy: 1e-6 * abs(hard))
            assertClose(loss.backward().toArray(), hardGrad, relative: 1e-5, "smoothing \(smoothing)")
            XCTAssertEqual(loss.correct(topK: 1), hardCorrect)
        }
    }
}

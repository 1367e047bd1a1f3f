import XCTest
import Foundation
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainDistributed
@testable import DTrainTraining
import DTrainTestSupport

/// torchvision's recipe options against PyTorch's own results (Tests/FixtureScripts/
/// lr_schedule_fixtures.py and recipe_fixtures.py): warmup method and decay, --lr-min, and the
/// exponential schedule (torch.optim.lr_scheduler), --clip-grad-norm (clip_grad_norm_, alone and
/// through the training step on two ranks) and --norm-weight-decay / --bias-weight-decay
/// (torch.optim.SGD with parameter groups).
final class RecipeOptionsTests: XCTestCase {
    func fixture(_ name: String) throws -> [String: Any] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/recipe/\(name)", withExtension: "json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    // MARK: learning rate

    func schedule(_ c: [String: Any]) throws -> LRSchedule {
        var s = LRSchedule(kind: try XCTUnwrap(LRSchedule.Kind(rawValue: c["kind"] as! String)), baseLR: c["lr"] as! Double,
                           totalEpochs: c["epochs"] as! Int)
        s.warmupEpochs = c["warmup"] as! Double
        s.warmupMethod = try XCTUnwrap(LRSchedule.WarmupMethod(rawValue: c["method"] as! String))
        s.warmupStartFactor = c["decay"] as! Double
        s.minLR = c["lr_min"] as! Double
        s.gamma = c["gamma"] as! Double
        s.stepSize = c["step"] as! Int
        s.milestones = c["milestones"] as! [Int]
        return s
    }

    /// Every iteration's rate equals torch's LinearLR/ConstantLR + SequentialLR + StepLR /
    /// MultiStepLR / CosineAnnealingLR(eta_min) / ExponentialLR to 1e-12 relative, stepped per
    /// epoch (one iteration per epoch, as references/classification/train.py) and per iteration.
    func testSchedulesMatchTorchSchedulers() throws {
        let all = try XCTUnwrap(try fixture("lr_schedules")["schedules"] as? [[String: Any]])
        XCTAssertEqual(all.count, 10)
        for c in all {
            let name = c["name"] as! String, iters = c["iters"] as! Int
            let s = try schedule(c)
            let rates = c["rates"] as! [Double]
            XCTAssertEqual(rates.count, s.totalEpochs * iters, name)
            for (t, expected) in rates.enumerated() {
                let rate = s.rate(at: Double(t / iters) + Double(t % iters) / Double(iters))
                XCTAssertLessThanOrEqual(abs(rate - expected), 1e-12 * max(abs(expected), 1e-300),
                                         "\(name) iteration \(t): \(rate) against torch's \(expected)")
            }
        }
    }

    /// The plan builds its schedule from --lr-warmup-method, --lr-warmup-decay and --lr-min, and
    /// steps it per iteration (epoch + step / steps per epoch).
    func testPlanSchedulesWithTheRecipeOptions() throws {
        let c0 = try XCTUnwrap(try fixture("lr_schedules")["schedules"] as? [[String: Any]])
            .first { $0["name"] as? String == "cosine-constant-warmup-per-iteration" }
        let c = try XCTUnwrap(c0)
        var config = try TrainConfig.defaults(for: "resnet20", epochs: c["epochs"] as? Int, output: URL(fileURLWithPath: "/nonexistent/x"))
        config.lr = c["lr"] as! Double
        config.schedule = .cosine
        config.warmupEpochs = c["warmup"] as! Double
        config.warmupMethod = .constant
        config.warmupDecay = c["decay"] as! Double
        config.lrMin = c["lr_min"] as! Double
        config.batchSize = 10
        let iters = c["iters"] as! Int
        let data = DataSummary(classNames: ["a", "b"], trainCount: 10 * iters)
        let plan = try TrainingPlan(config: config, spec: try ModelZoo.spec(named: "resnet20"), data: data, ranks: 1, version: "0")
        XCTAssertEqual(plan.stepsPerEpoch, iters)
        let expected = try schedule(c)
        XCTAssertEqual(plan.schedule.warmupMethod, expected.warmupMethod)
        XCTAssertEqual(plan.schedule.warmupStartFactor, expected.warmupStartFactor)
        XCTAssertEqual(plan.schedule.warmupEpochs, expected.warmupEpochs)
        XCTAssertEqual(plan.schedule.minLR, expected.minLR)
        XCTAssertEqual(plan.schedule.kind, .cosine)
        for (t, expected) in (c["rates"] as! [Double]).enumerated() {
            XCTAssertEqual(plan.learningRate(epoch: t / iters, step: t % iters), expected, accuracy: 1e-12 * expected)
        }
    }

    /// Today's rates are unchanged by the new settings at their defaults: linear warmup from 1 %,
    /// cosine to 0.
    func testDefaultsKeepTheLinearWarmupAndCosineToZero() {
        var c = LRSchedule(kind: .cosine, baseLR: 0.4, totalEpochs: 12)
        c.warmupEpochs = 2
        XCTAssertEqual(c.warmupMethod, .linear)
        XCTAssertEqual(c.warmupStartFactor, 0.01)
        XCTAssertEqual(c.minLR, 0)
        for e in stride(from: 0.0, through: 12, by: 0.25) {
            let old = e < 2 ? 0.4 * (0.01 + (1 - 0.01) * (e / 2)) : 0.4 * 0.5 * (1 + cos(Double.pi * min((e - 2) / 10, 1)))
            XCTAssertEqual(c.rate(at: e).bitPattern, old.bitPattern, "epoch \(e)")
        }
        let config = TrainConfig(model: "resnet20", epochs: 1, batchSize: 1, lr: 0.1, schedule: .step, output: URL(fileURLWithPath: "/x"))
        XCTAssertEqual(config.warmupMethod, .linear)
        XCTAssertEqual(config.warmupDecay, 0.01)
        XCTAssertEqual(config.lrMin, 0)
        XCTAssertNil(config.clipGradNorm)
        XCTAssertNil(config.raReps)
    }

    // MARK: gradient clipping

    /// clip_grad_norm_'s total norm and clipped gradients, for a max norm below the total and one
    /// above it; a frozen parameter's gradient neither counts nor changes.
    func testGradientClippingMatchesTorch() throws {
        let cases = try XCTUnwrap(try fixture("clip_grad_norm")["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let shapes = c["shapes"] as! [[Int]], grads = c["grads"] as! [[Double]], clipped = c["clipped"] as! [[Double]]
            let maxNorm = Float(c["max_norm"] as! Double), total = c["total_norm"] as! Double
            var params = shapes.map { Parameter(torchShape: $0, role: .weight, initializer: .constant(0)) }
            let frozen = Parameter(torchShape: [5], role: .weight, initializer: .constant(0))
            frozen.trainable = false
            params.insert(frozen, at: 2)
            let store = ParameterStore(params)
            for (p, g) in zip(params.filter { $0 !== frozen }, grads) { for i in 0..<p.count { p.grad[i] = Float(g[i]) } }
            for i in 0..<5 { frozen.grad[i] = 100 }
            for threads in [1, 2] {
                Compute.setThreads(threads)
                let saved = Array(store.grads.buffer)
                let clipping = GradientClipping(store: store, maxNorm: maxNorm)
                let norm = clipping.clip()
                XCTAssertEqual(Double(norm), total, accuracy: 1e-6 * total, "max norm \(maxNorm)")
                XCTAssertEqual(clipping.lastNorm, norm)
                for (p, want) in zip(params.filter { $0 !== frozen }, clipped) {
                    for i in 0..<p.count { XCTAssertEqual(Double(p.grad[i]), want[i], accuracy: 1e-6 * max(1, abs(want[i]))) }
                }
                XCTAssertEqual(Array(frozen.grads), [Float](repeating: 100, count: 5), "a frozen gradient was clipped")
                _ = store.grads.buffer.update(fromContentsOf: saved)
            }
        }
        Compute.setThreads(2)
    }

    /// A tiny linear model for 3-channel 1×1 images and 3 classes.
    func tinyModel(batch: Int) -> Model {
        let spec = ModelSpec(name: "tiny", family: .cifar, defaultResolution: 1, defaultClasses: 3, summary: "test") { _, _ in
            Sequential([("flatten", Flatten()), ("fc", Linear(inFeatures: 3, outFeatures: 3))])
        }
        let model = Model(spec: spec, options: ModelOptions())
        model.initialize(seed: 3)
        model.build(batch: batch)
        return model
    }

    /// One update of `steps` micro-batches on two loopback ranks (different data per rank) with
    /// clipping at `maxNorm` (nil: none): every rank's weights, the averaged gradients the update
    /// used, and the norm the clipping saw.
    func clippedRun(maxNorm: Float?, accumulation: Int) throws -> [(weights: [Float], grads: [Float], norm: Float?)] {
        try LoopbackCommunicator.run(ranks: 2, recording: false) { comm -> (weights: [Float], grads: [Float], norm: Float?) in
            let batch = 4
            let model = self.tinyModel(batch: batch)
            let loss = SoftmaxCrossEntropy(classes: 3)
            loss.build(maxBatch: batch)
            let step = try TrainingStep(model: model, loss: loss, optimizer: SGD(store: model.store, momentum: 0, weightDecay: 0),
                                        communicator: comm, accumulation: accumulation)
            step.gradientClipping = maxNorm.map { GradientClipping(store: model.store, maxNorm: $0) }
            var rng = SeededRandom(keys: 99, UInt64(comm.rank))
            let x = Storage(count: batch * 3)
            var labels = [Int32](repeating: 0, count: batch)
            for micro in 0..<accumulation {
                for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) * 3 }
                for n in 0..<batch { labels[n] = Int32(rng.int(below: 3)) }
                let outcome = try labels.withUnsafeMutableBufferPointer {
                    try step.run(images: Tensor(storage: x, batch: batch, shape: model.inputShape), labels: $0.baseAddress!, lr: 0.5)
                }
                XCTAssertEqual(outcome.updated, micro == accumulation - 1)
            }
            return (Array(model.store.values.buffer), Array(model.store.grads.buffer), step.gradientClipping?.lastNorm)
        }
    }

    /// Through the real step on two ranks, with and without gradient accumulation: the clipped
    /// update is the unclipped one with the averaged gradients scaled by maxNorm / (norm + 1e-6),
    /// every rank clips alike, and a max norm above the norm changes nothing.
    func testClippedStepOnTwoRanks() throws {
        Compute.setThreads(1)
        defer { Compute.setThreads(2) }
        let initial = tinyModel(batch: 4)
        let start = withExtendedLifetime(initial) { Array(initial.store.values.buffer) }
        for accumulation in [1, 2] {
            let plain = try clippedRun(maxNorm: nil, accumulation: accumulation)
            XCTAssertEqual(plain[0].weights, plain[1].weights)
            let g = plain[0].grads
            let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertGreaterThan(norm, 0.1)
            let maxNorm = Float(norm / 4)
            let clipped = try clippedRun(maxNorm: maxNorm, accumulation: accumulation)
            XCTAssertEqual(clipped[0].weights, clipped[1].weights, "ranks differ after a clipped update")
            XCTAssertEqual(clipped[0].grads, clipped[1].grads)
            XCTAssertEqual(Double(try XCTUnwrap(clipped[0].norm)), norm, accuracy: 1e-5 * norm)
            let scale = maxNorm / (Float(norm) + 1e-6)
            for i in 0..<g.count {
                XCTAssertEqual(clipped[0].grads[i], g[i] * scale, accuracy: 1e-6 * max(1, abs(g[i])))
                XCTAssertEqual(clipped[0].weights[i], start[i] - 0.5 * g[i] * scale, accuracy: 1e-5, "accumulation \(accumulation) element \(i)")
            }
            XCTAssertNotEqual(clipped[0].weights, plain[0].weights)
            let loose = try clippedRun(maxNorm: Float(norm * 2), accumulation: accumulation)
            XCTAssertEqual(loose[0].weights, plain[0].weights, "a max norm above the norm changed the update")
        }
    }

    // MARK: weight decay groups

    /// A conv (no bias), BatchNorm, linear (with bias) model.
    func groupsModel() -> Model {
        let spec = ModelSpec(name: "groups", family: .cifar, defaultResolution: 3, defaultClasses: 4, summary: "test") { _, _ in
            Sequential([("conv", Conv2d(inChannels: 3, outChannels: 3, kernelSize: 3, bias: false)), ("bn", BatchNorm2d(channels: 3)),
                        ("pool", AdaptiveAvgPool2d(outputSize: 1)), ("flatten", Flatten()), ("fc", Linear(inFeatures: 3, outFeatures: 4))])
        }
        return Model(spec: spec, options: ModelOptions())
    }

    /// Two SGD steps with the optimizer the trainer makes equal torch.optim.SGD with torchvision's
    /// weight-decay parameter groups, for --norm-weight-decay and --bias-weight-decay alone and
    /// together; --no-bn-weight-decay equals --norm-weight-decay 0 --bias-weight-decay 0.
    func testNormAndBiasWeightDecayMatchTorchParameterGroups() throws {
        let runs = try XCTUnwrap(try fixture("weight_decay_sgd")["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 6)
        for run in runs {
            let norm = run["norm_weight_decay"] as? Double, bias = run["bias_weight_decay"] as? Double
            var settings: [TrainConfig] = []
            var config = TrainConfig(model: "resnet20", epochs: 1, batchSize: 1, lr: 0.5, schedule: .constant, output: URL(fileURLWithPath: "/x"))
            config.weightDecay = run["weight_decay"] as! Double
            config.momentum = run["momentum"] as! Double
            config.normWeightDecay = norm
            config.biasWeightDecay = bias
            settings.append(config)
            if norm == 0 && bias == 0 {
                config.normWeightDecay = nil
                config.biasWeightDecay = nil
                config.noBNWeightDecay = true
                settings.append(config)
            }
            for config in settings {
                let model = groupsModel()
                let entries = Dictionary(uniqueKeysWithValues: model.state.compactMap { e -> (String, Parameter)? in
                    if case .parameter(let p) = e.kind { return (e.name, p) } else { return nil }
                })
                XCTAssertEqual(Set(entries.keys), ["conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias"])
                for (name, values) in run["start"] as! [String: [Double]] { entries[name]!.setTorchValues(values.map(Float.init)) }
                let optimizer = TrainingSetup.optimizer(config, model: model)
                for grads in run["grads"] as! [[String: [Double]]] {
                    for (name, g) in grads { _ = entries[name]!.grads.update(fromContentsOf: entries[name]!.internalOrder(g.map(Float.init))) }
                    optimizer.step(lr: Float(config.lr))
                }
                for (name, want) in run["end"] as! [String: [Double]] {
                    let got = entries[name]!.torchValues()
                    for i in 0..<want.count {
                        XCTAssertEqual(Double(got[i]), want[i], accuracy: 2e-6 * max(1, abs(want[i])),
                                       "norm \(String(describing: norm)) bias \(String(describing: bias)) no-bn \(config.noBNWeightDecay): \(name)[\(i)]")
                    }
                }
            }
        }
    }

    /// Which decay each kind of parameter takes.
    func testWeightDecayRule() {
        var c = TrainConfig(model: "resnet20", epochs: 1, batchSize: 1, lr: 0.1, schedule: .step, output: URL(fileURLWithPath: "/x"))
        c.weightDecay = 1e-4
        let roles: [ParameterRole] = [.weight, .bias, .normWeight, .normBias]
        XCTAssertEqual(roles.map(c.weightDecay(for:)), [1e-4, 1e-4, 1e-4, 1e-4])
        c.normWeightDecay = 0
        XCTAssertEqual(roles.map(c.weightDecay(for:)), [1e-4, 1e-4, 0, 0])
        c.biasWeightDecay = 0.5
        XCTAssertEqual(roles.map(c.weightDecay(for:)), [1e-4, 0.5, 0, 0.5])
        c.normWeightDecay = nil
        XCTAssertEqual(roles.map(c.weightDecay(for:)), [1e-4, 0.5, 1e-4, 0.5])
        c.biasWeightDecay = nil
        c.noBNWeightDecay = true
        XCTAssertEqual(roles.map(c.weightDecay(for:)), [1e-4, 0, 0, 0])
    }
}

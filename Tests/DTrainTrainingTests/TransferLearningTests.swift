import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainDistributed
@testable import DTrainTraining

/// --pretrained, --freeze and --head-lr-mult: what loads, what trains, what stays bit-identical.
final class TransferLearningTests: XCTestCase {
    /// A resnet20 "pretrained" on 7 classes with non-trivial BatchNorm statistics, as a .pth.
    func pretrainedFile(in dir: URL, classes: Int = 7) throws -> URL {
        let model = try ModelZoo.make("resnet20", options: ModelOptions(numClasses: classes))
        model.initialize(seed: 99)
        var rng = SeededRandom(seed: 5)
        for entry in model.state {
            switch entry.kind {
            case .buffer(let b): for i in 0..<b.count { b.pointer[i] = Float(rng.uniform(0.5, 1.5)) }
            case .counter(let c): c.value = 321
            case .parameter: break
            }
        }
        let info = CheckpointInfo(model: "resnet20", numClasses: classes)
        let url = dir.appendingPathComponent("pretrained.pth")
        try WeightsTransfer.exportData(model: model, info: info, format: .pth, archiveName: "pretrained").write(to: url)
        return url
    }

    /// Model tensors of a checkpoint as raw bytes by name.
    func modelTensors(_ url: URL) throws -> [String: Data] {
        let file = try WeightsFile.open(url).file
        var out: [String: Data] = [:]
        for name in file.names where !name.hasPrefix(Checkpoint.optimizerPrefix) {
            let e = try file.entry(name)
            // Compare values as float32 / int64 bytes whatever the stored dtype.
            out[name] = e.dtype == .i64 ? try file.int64s(name).withUnsafeBytes { Data($0) } : try file.floats(name).withUnsafeBytes { Data($0) }
        }
        return out
    }

    func config(_ dir: URL, pretrained: URL, freeze: TrainConfig.Freeze) throws -> TrainConfig {
        var c = try digitsConfig(output: dir.appendingPathComponent("run"), batch: 16)
        c.pretrained = pretrained.path
        c.freeze = freeze
        c.limitTrainBatches = 4
        c.noVal = true
        c.lr = 0.05
        return c
    }

    /// Feature extraction: after training, every backbone tensor (BatchNorm statistics and
    /// num_batches_tracked included) is bit-identical to the pretrained file's, and the new head
    /// has moved from its initialisation. The report names what was loaded, new and ignored.
    func testFeatureExtractionLeavesTheBackboneBitIdentical() throws {
        let dir = temporaryDirectory(self)
        let pretrained = try pretrainedFile(in: dir)
        let before = try modelTensors(pretrained)
        let c = try config(dir, pretrained: pretrained, freeze: .backbone)

        // The head the run starts from: the pretrained file with a head for 10 classes, initialised anew.
        let initial = try ModelZoo.make("resnet20", options: ModelOptions(numClasses: 10))
        initial.initialize(seed: c.seed)
        _ = try Pretrained.load(pretrained.path, into: initial, seed: c.seed)
        let initialHead = initial.headEntries.map { e -> [Float] in if case .parameter(let p) = e.kind { return Array(p.values) } else { return [] } }

        let backbone = initial.state.count - 2
        let trainer = try Trainer(config: c, version: testVersion, communicator: SingleProcessCommunicator(), progress: quietProgress())
        let report = trainer.transferLines.joined(separator: "\n")
        XCTAssertTrue(report.contains("loaded \(backbone) tensors: conv1 (1), bn1 (5), layer1"), report)
        XCTAssertTrue(report.contains("new: fc.weight [10, 64], fc.bias [10]"), report)
        XCTAssertTrue(report.contains("ignored: fc.weight [7, 64], fc.bias [7] (the file's head)"), report)
        XCTAssertTrue(report.contains("freeze backbone:"), report)
        XCTAssertEqual(trainer.model.trainableParameterCount, 64 * 10 + 10)
        _ = try trainer.train()

        let after = try modelTensors(c.output.appendingPathComponent("checkpoint-last.safetensors"))
        var checked = 0
        for (name, bytes) in after where !name.hasPrefix("fc.") {
            XCTAssertEqual(bytes, before[name], "\(name) changed in feature extraction")
            checked += 1
        }
        XCTAssertEqual(checked, backbone)
        let trainedHead = [after["fc.weight"]!, after["fc.bias"]!].map { $0.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        XCTAssertNotEqual(trainedHead[0], initialHead[0], "the head did not train")
        XCTAssertNotEqual(trainedHead[1], initialHead[1], "the head bias did not train")
    }

    /// until=layer2: conv1, bn1, layer1 and layer2 (BatchNorm statistics included) stay as loaded;
    /// layer3 and the head train. The head fits here (10 classes), so it is loaded too.
    func testFreezeUntilLayer() throws {
        let dir = temporaryDirectory(self)
        let pretrained = try pretrainedFile(in: dir, classes: 10)
        let before = try modelTensors(pretrained)
        let c = try config(dir, pretrained: pretrained, freeze: .until("layer2"))
        let trainer = try Trainer(config: c, version: testVersion, communicator: SingleProcessCommunicator(), progress: quietProgress())
        XCTAssertTrue(trainer.transferLines.joined().contains("new: nothing"), trainer.transferLines.joined(separator: "\n"))
        _ = try trainer.train()
        let after = try modelTensors(c.output.appendingPathComponent("checkpoint-last.safetensors"))
        for (name, bytes) in after {
            let frozen = ["conv1", "bn1", "layer1", "layer2"].contains(String(name.split(separator: ".")[0]))
            if frozen {
                XCTAssertEqual(bytes, before[name], "\(name) is frozen but changed")
            } else if name.hasSuffix("weight") || name.hasSuffix("running_mean") {
                XCTAssertNotEqual(bytes, before[name], "\(name) should train")
            }
        }
    }

    func testUnknownFreezeLayerNamesTheModules() throws {
        let model = try ModelZoo.make("resnet18")
        XCTAssertThrowsError(try TrainConfig.Freeze.until("layer9").apply(to: model)) { error in
            XCTAssertTrue("\(error)".contains("--freeze until=layer9: resnet18 has no module layer9; its modules are conv1, bn1, layer1, layer2, layer3, layer4, fc"), "\(error)")
        }
        XCTAssertThrowsError(try TrainConfig.Freeze.until("fc").apply(to: model)) { error in
            XCTAssertTrue("\(error)".contains("nothing would train"), "\(error)")
        }
        XCTAssertEqual(TrainConfig.Freeze.parse("until=layer3"), .until("layer3"))
        XCTAssertNil(TrainConfig.Freeze.parse("everything"))
    }

    /// Backward stops at the first layer that trains: no frozen layer's backward produces an input
    /// gradient, frozen parameters get no gradient, and frozen BatchNorms leave their statistics.
    func testBackwardStopsAtTheFirstTrainableLayer() throws {
        final class Recorder: LayerInspector {
            var backward: [String] = []
            func inspectForward(_ path: String, _ output: Tensor) {}
            func inspectBackward(_ path: String, _ inputGradient: Tensor) { backward.append(path) }
        }
        func run(_ freeze: TrainConfig.Freeze) throws -> (paths: [String], model: Model) {
            Compute.setThreads(2)
            let model = try ModelZoo.make("resnet20")
            model.initialize(seed: 1)
            try freeze.apply(to: model)
            model.build(batch: 4)
            let recorder = Recorder()
            model.attachInspector(recorder)
            let x = Storage(count: 4 * model.inputShape.count)
            var rng = SeededRandom(seed: 2)
            for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) }
            let loss = SoftmaxCrossEntropy(classes: 10)
            loss.build(maxBatch: 4)
            var labels: [Int32] = [1, 2, 3, 4]
            // The training step with a zero rate: gradients are computed, weights stay.
            let step = TrainingStep(model: model, loss: loss, optimizer: SGD(store: model.store, momentum: 0, weightDecay: 0),
                                    gradients: LocalGradients())
            let images = Tensor(storage: x, batch: 4, shape: model.inputShape)
            _ = try labels.withUnsafeMutableBufferPointer { try step.run(images: images, labels: $0.baseAddress!, lr: 0) }
            return (recorder.backward, model)
        }
        let all = try run(.none).paths
        XCTAssertTrue(all.contains("bn1") && all.contains("layer1.0.conv1"), "\(all)")

        let (paths, model) = try run(.until("layer2"))
        XCTAssertTrue(paths.contains("layer3.0.bn1"), "\(paths)")
        XCTAssertFalse(paths.contains { ["conv1", "bn1", "relu", "layer1", "layer2"].contains(String($0.split(separator: ".")[0])) }, "\(paths)")
        for entry in model.state {
            guard case .parameter(let p) = entry.kind else { continue }
            let nonzero = p.grads.contains { $0 != 0 }
            XCTAssertEqual(nonzero, p.trainable, "\(entry.name): trainable \(p.trainable), gradient nonzero \(nonzero)")
        }
        // Frozen BatchNorms kept their statistics through a train-mode forward; trained ones did not.
        for name in ["bn1.running_mean", "layer2.2.bn2.running_var", "layer3.0.bn1.running_mean"] {
            guard case .buffer(let b) = model.entry(named: name)!.kind else { return XCTFail(name) }
            let initial: Float = name.hasSuffix("mean") ? 0 : 1
            XCTAssertEqual(b.storage.buffer.allSatisfy { $0 == initial }, !name.hasPrefix("layer3"), name)
        }
        XCTAssertEqual(model.entry(named: "bn1.num_batches_tracked").map { if case .counter(let c) = $0.kind { return c.value } else { return Int64(-1) } }, Int64(0))
    }

    /// The replaced head is nn.Linear's initialisation: U(−1/√fan_in, 1/√fan_in) for weight and
    /// bias (kaiming_uniform with a = √5), whatever the zoo initialises that layer with.
    func testReplacedHeadIsInitialisedAsNNLinear() throws {
        let dir = temporaryDirectory(self)
        let source = try ModelZoo.make("resnet18", options: ModelOptions(numClasses: 1000))
        source.initialize(seed: 4)
        let url = dir.appendingPathComponent("r18.pth")
        try WeightsTransfer.exportData(model: source, info: CheckpointInfo(model: "resnet18", numClasses: 1000), format: .pth,
                                       archiveName: "r18").write(to: url)
        let model = try ModelZoo.make("resnet18", options: ModelOptions(numClasses: 40))
        model.initialize(seed: 0)
        let report = try Pretrained.load(url.path, into: model, seed: 0)
        XCTAssertEqual(report.new, ["fc.weight [40, 512]", "fc.bias [40] (a head for 40 classes, initialised as nn.Linear)"])
        let bound = 1 / Float(512).squareRoot()
        for e in model.headEntries {
            guard case .parameter(let p) = e.kind else { continue }
            let v = Array(p.values)
            XCTAssertTrue(v.allSatisfy { abs($0) <= bound }, e.name)
            if v.count > 1000 {
                // Uniform on [−b, b]: mean 0, standard deviation b/√3.
                let mean = v.reduce(0, +) / Float(v.count)
                let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(v.count)).squareRoot()
                XCTAssertEqual(std, bound / 3.0.squareRoot().asFloat, accuracy: bound * 0.03)
                XCTAssertEqual(mean, 0, accuracy: bound * 0.03)
            }
        }
        // Everything else is the file's, bit for bit.
        guard case .parameter(let a) = model.entry(named: "layer4.1.conv2.weight")!.kind,
              case .parameter(let b) = source.entry(named: "layer4.1.conv2.weight")!.kind else { return XCTFail() }
        XCTAssertEqual(Array(a.values), Array(b.values))
    }

    func testPretrainedMismatchesAreNamed() throws {
        let dir = temporaryDirectory(self)
        let url = try pretrainedFile(in: dir)
        let model = try ModelZoo.make("resnet32")
        XCTAssertThrowsError(try Pretrained.load(url.path, into: model, seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("missing keys: layer1.3.conv1.weight"), "\(error)")
        }
    }

    /// --head-lr-mult: the head's update is the multiple of what it is without.
    func testHeadLearningRateMultiplier() throws {
        let w = Parameter(torchShape: [3], role: .weight, initializer: .constant(1))
        let head = Parameter(torchShape: [2], role: .weight, initializer: .constant(1))
        let store = ParameterStore([w, head])
        store.initialize(seed: 0)
        for i in 0..<store.count { store.grads.pointer[i] = 0.5 }
        let sgd = SGD(store: store, momentum: 0, weightDecay: 0)
        sgd.learningRateScales.set(10, on: head.offset..<(head.offset + head.count))
        sgd.step(lr: 0.1)
        for v in w.values { XCTAssertEqual(v, 0.95, accuracy: 1e-6) }
        for v in head.values { XCTAssertEqual(v, 0.5, accuracy: 1e-6) }

        let adam = AdamW(store: store) { _ in 0 }
        adam.learningRateScales.set(4, on: head.offset..<(head.offset + head.count))
        let w0 = Array(w.values), h0 = Array(head.values)
        adam.step(lr: 0.01)
        // Adam's first step moves every element by lr (g/|g|, bias-corrected).
        for (a, b) in zip(w.values, w0) { XCTAssertEqual(b - a, 0.01, accuracy: 1e-6) }
        for (a, b) in zip(head.values, h0) { XCTAssertEqual(b - a, 0.04, accuracy: 1e-6) }
    }

    /// Frozen parameters are not in the allreduce buckets: feature extraction sends only the head.
    func testFrozenParametersAreNotCommunicated() throws {
        let model = try ModelZoo.make("resnet18")
        try TrainConfig.Freeze.backbone.apply(to: model)
        let buckets = GradientBuckets(trainableOf: model.store)
        XCTAssertEqual(buckets.count, 512 * 1000 + 1000)
        guard case .parameter(let fc) = model.entry(named: "fc.weight")!.kind else { return XCTFail() }
        XCTAssertEqual(buckets.ranges, [fc.offset..<model.store.count])

        try TrainConfig.Freeze.until("layer3").apply(to: model)
        let partial = GradientBuckets(trainableOf: model.store)
        let layer4 = model.state.filter { $0.name.hasPrefix("layer4.") || $0.name.hasPrefix("fc.") }
            .compactMap { if case .parameter(let p) = $0.kind { return p.count } else { return nil } }.reduce(0, +)
        XCTAssertEqual(partial.count, layer4)
        XCTAssertEqual(partial.ranges.map(\.lowerBound).min(), model.store.count - layer4)

        // Gaps between trainable parameters split buckets; frozen values in a gap are never covered.
        let gapped = GradientBuckets(parameters: [(0, 10), (30, 10)])
        XCTAssertEqual(gapped.ranges, [30..<40, 0..<10])
    }
}

private extension Double {
    var asFloat: Float { Float(self) }
}

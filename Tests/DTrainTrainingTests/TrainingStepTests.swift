import XCTest
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainDistributed
@testable import DTrainTraining

/// The training step's contract with its gradient synchronizer, for any root layer, with gradient
/// accumulation and with the debug inspector attached.
final class TrainingStepTests: XCTestCase {
    /// Records what the step tells it.
    final class RecordingSynchronizer: GradientSynchronizer {
        var events: [String] = []
        var offsets: [Int] = []
        func beginBackward() { events.append("begin") }
        func gradientsReady(from offset: Int) { offsets.append(offset) }
        func synchronize() throws { events.append("synchronize") }
    }

    final class Recorder: LayerInspector {
        var backward: [String] = []
        func inspectForward(_ path: String, _ output: Tensor) {}
        func inspectBackward(_ path: String, _ inputGradient: Tensor) { backward.append(path) }
    }

    /// A model of `root` for 3-channel 1×1 images and 3 classes.
    func tinyModel(_ root: @escaping @Sendable () -> Layer) -> Model {
        let spec = ModelSpec(name: "tiny", family: .cifar, defaultResolution: 1, defaultClasses: 3, summary: "test") { _, _ in root() }
        let model = Model(spec: spec, options: ModelOptions())
        model.initialize(seed: 3)
        model.build(batch: 2)
        return model
    }

    func runStep(_ step: TrainingStep, batch: Int, seed: UInt64 = 5) throws -> TrainingStep.Outcome {
        let model = step.model
        let x = Storage(count: batch * model.inputShape.count)
        var rng = SeededRandom(seed: seed)
        for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) }
        var labels = (0..<batch).map { Int32($0 % model.numClasses) }
        let images = Tensor(storage: x, batch: batch, shape: model.inputShape)
        return try labels.withUnsafeMutableBufferPointer { try step.run(images: images, labels: $0.baseAddress!, lr: 0.1) }
    }

    func step(_ model: Model, _ gradients: GradientSynchronizer, accumulation: Int = 1) -> TrainingStep {
        let loss = SoftmaxCrossEntropy(classes: model.numClasses)
        loss.build(maxBatch: model.builtBatch)
        return TrainingStep(model: model, loss: loss, optimizer: SGD(store: model.store, weightDecay: 0), gradients: gradients,
                            accumulation: accumulation)
    }

    /// A root that is not a Sequential (a leaf, a residual block) still tells the synchronizer when
    /// the gradients are final: once backward is done, from offset 0.
    func testReadyHookReachesTheSynchronizerWhateverTheRoot() throws {
        let roots: [(String, @Sendable () -> Layer)] = [
            ("leaf", { Linear(inFeatures: 3, outFeatures: 3) }),
            ("residual", { Residual(main: Sequential([("fc", Linear(inFeatures: 3, outFeatures: 3))]), reluAfterAdd: false) }),
        ]
        for (name, root) in roots {
            let model = tinyModel(root)
            let gradients = RecordingSynchronizer()
            let s = step(model, gradients)
            let before = Array(model.store.values.buffer)
            XCTAssertTrue(try runStep(s, batch: 2).updated, name)
            XCTAssertEqual(gradients.offsets, [0], name)
            XCTAssertEqual(gradients.events, ["begin", "synchronize"], name)
            XCTAssertNotEqual(Array(model.store.values.buffer), before, "\(name): the update was applied")
        }
    }

    /// In a ResNet, blocks report as backward completes them, from the end of the flat buffer to
    /// its start, then the whole buffer once more.
    func testReadyOffsetsDescendBlockByBlock() throws {
        Compute.setThreads(2)
        let model = try ModelZoo.make("resnet20")
        model.initialize(seed: 1)
        model.build(batch: 2, resolution: 8)
        let gradients = RecordingSynchronizer()
        _ = try runStep(step(model, gradients), batch: 2)
        let offsets = gradients.offsets
        XCTAssertGreaterThan(offsets.count, 3, "\(offsets)")
        XCTAssertEqual(offsets.last, 0)
        XCTAssertGreaterThan(offsets[0], 0)
        XCTAssertEqual(offsets, offsets.sorted(by: >), "offsets only go down")
        let fc = try XCTUnwrap(model.headEntries.compactMap { if case .parameter(let p) = $0.kind { return p.offset } else { return nil } }.min())
        XCTAssertEqual(offsets[0], fc, "the head is final first")
    }

    /// With accumulation, only the last micro-batch's backward is the synchronized one, and the
    /// update comes after it.
    func testAccumulationSynchronizesOncePerUpdate() throws {
        let model = tinyModel { Linear(inFeatures: 3, outFeatures: 3) }
        let gradients = RecordingSynchronizer()
        let s = step(model, gradients, accumulation: 3)
        XCTAssertFalse(try runStep(s, batch: 2, seed: 1).updated)
        XCTAssertFalse(try runStep(s, batch: 2, seed: 2).updated)
        XCTAssertEqual(gradients.events, [])
        XCTAssertTrue(try runStep(s, batch: 2, seed: 3).updated)
        XCTAssertEqual(gradients.events, ["begin", "synchronize"])
        XCTAssertFalse(try runStep(s, batch: 2, seed: 4).updated)
        XCTAssertEqual(gradients.events, ["begin", "synchronize"])
    }

    /// --debug under mpirun: the inspector sees every layer's input gradient and the overlapped
    /// averaging still hears from every block.
    func testDebugInspectorAndReadyHookWorkTogether() throws {
        Compute.setThreads(2)
        let model = try ModelZoo.make("resnet20")
        model.initialize(seed: 1)
        model.build(batch: 2, resolution: 8)
        let recorder = Recorder()
        model.attachInspector(recorder)
        let withInspector = RecordingSynchronizer()
        _ = try runStep(step(model, withInspector), batch: 2)
        XCTAssertTrue(recorder.backward.contains("layer3.2") && recorder.backward.contains("fc"), "\(recorder.backward)")

        model.attachInspector(nil)
        let without = RecordingSynchronizer()
        _ = try runStep(step(model, without), batch: 2)
        XCTAssertGreaterThan(withInspector.offsets.count, 3)
        XCTAssertEqual(withInspector.offsets, without.offsets)
    }
}

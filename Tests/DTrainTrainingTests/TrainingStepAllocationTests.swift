import Foundation
import XCTest
import CAllocationCounter
import DTrainCore
import DTrainNN
import DTrainDistributed
import DTrainTraining
import DTrainTestSupport

/// A model built for a batch allocates everything once: full training steps (zero gradients,
/// forward, loss, backward, gradient averaging, optimizer update) make no heap allocation, on one
/// rank and on two loopback ranks (overlapped gradient allreduce and synchronized BatchNorm), also
/// with the averaged gradients clipped (--clip-grad-norm).
final class TrainingStepAllocationTests: XCTestCase {
    override func tearDown() {
        Compute.setThreads(2)
        super.tearDown()
    }

    private let modelName = "resnet20", batch = 8, warmupSteps = 2, countedSteps = 3

    /// A built model with seeded weights and a batch of random images and labels drawn from `dataSeed`.
    private final class Setup {
        let model: Model
        let images: Storage
        let labels: UnsafeMutablePointer<Int32>
        let x: Tensor

        init(model name: String, batch: Int, dataSeed: UInt64, resolution: Int? = nil, precision: Precision = .fp32) throws {
            model = try ModelZoo.make(name)
            model.initialize(seed: 7)
            model.build(batch: batch, resolution: resolution, seed: 7, precision: precision)
            var rng = SeededRandom(seed: dataSeed)
            images = Storage(count: batch * model.inputShape.count)
            for i in 0..<images.count { images.pointer[i] = Float(rng.normal()) }
            labels = .allocate(capacity: batch)
            for n in 0..<batch { labels[n] = Int32(rng.int(below: model.numClasses)) }
            x = Tensor(storage: images, batch: batch, shape: model.inputShape)
        }

        deinit { labels.deallocate() }
    }

    /// The one place that drives `TrainingStep`: builds loss, SGD and gradient averaging for
    /// `setup.model` as the trainer does (the overlapped allreduce fed by backward's ready hook
    /// when there are several ranks) and returns one full training step.
    private func trainingStep(_ setup: Setup, communicator: Communicator, clipGradNorm: Float? = nil,
                              allreduceDType: AllreduceDType = .fp32) throws -> () throws -> TrainingStep.Outcome {
        let model = setup.model
        let loss = SoftmaxCrossEntropy(classes: model.numClasses)
        loss.build(maxBatch: setup.x.batch)
        let optimizer = SGD(store: model.store, momentum: 0.9, weightDecay: 5e-4)
        let gradients: GradientSynchronizer
        if communicator.size > 1 {
            let overlapped = try OverlappedGradientAllreduce(store: model.store, communicator: communicator, dtype: allreduceDType)
            model.onGradientsReady = { [unowned overlapped] offset in overlapped.gradientsReady(from: offset) }
            gradients = overlapped
        } else {
            gradients = LocalGradients()
        }
        let step = TrainingStep(model: model, loss: loss, optimizer: optimizer, gradients: gradients)
        step.gradientClipping = clipGradNorm.map { GradientClipping(store: model.store, maxNorm: $0) }
        let x = setup.x, labels = setup.labels
        return {
            let outcome = try step.run(images: x, labels: labels, lr: 0.05)
            // A max norm this small clips every update: the clipping itself is what is counted.
            if let maxNorm = clipGradNorm, let norm = step.gradientClipping?.lastNorm, !(norm > maxNorm) {
                XCTFail("the gradients' norm \(norm) was not above --clip-grad-norm \(maxNorm)")
            }
            return outcome
        }
    }

    func testATrainingStepAllocatesNothingOnOneRank() throws {
        try checkOneRank(clipGradNorm: nil)
    }

    func testAClippedTrainingStepAllocatesNothingOnOneRank() throws {
        try checkOneRank(clipGradNorm: 1e-3)
    }

    /// bf16 precision with its activation storage (bf16 copies, shared output slots, ReLU bit
    /// masks) on bottleneck blocks with convolution shortcuts, through the bf16 GEMM path this CPU
    /// takes (VDPBF16PS kernels with AVX512_BF16, else operands rounded for sgemm).
    func testABF16TrainingStepAllocatesNothingOnOneRank() throws {
        try checkOneRank(clipGradNorm: nil, model: "resnet50", resolution: 64, batch: 4, precision: .bf16)
    }

    /// resnet50's 2048 × 1000 head is large enough that a multithreaded OpenBLAS call would
    /// allocate: linear layers cut their products across dtrain's threads instead.
    func testAResNet50TrainingStepAllocatesNothingOnOneRank() throws {
        try checkOneRank(clipGradNorm: nil, model: "resnet50", resolution: 64, batch: 4)
    }

    private func checkOneRank(clipGradNorm: Float?, model name: String? = nil, resolution: Int? = nil, batch: Int? = nil,
                              precision: Precision = .fp32) throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let setup = try Setup(model: name ?? modelName, batch: batch ?? self.batch, dataSeed: 1, resolution: resolution,
                                  precision: precision)
            let step = try trainingStep(setup, communicator: SingleProcessCommunicator(), clipGradNorm: clipGradNorm)
            let before = Array(setup.model.store.values.buffer)
            for _ in 0..<warmupSteps { _ = try step() }
            var outcomes: [TrainingStep.Outcome] = []
            outcomes.reserveCapacity(countedSteps)
            dtrain_allocations_start()
            for _ in 0..<countedSteps { outcomes.append(try step()) }
            let allocations = dtrain_allocations_stop()
            XCTAssertEqual(allocations, 0, "threads \(threads): \(allocations) heap allocations in \(countedSteps) training steps")
            XCTAssertEqual(outcomes.count, countedSteps)
            XCTAssertTrue(outcomes.allSatisfy { $0.updated && $0.loss.isFinite }, "threads \(threads): \(outcomes.map(\.loss))")
            XCTAssertNotEqual(Array(setup.model.store.values.buffer), before, "the steps changed no weight")
        }
    }

    /// MixUp and CutMix (in place, in the batch's memory, with soft targets for the loss) and the
    /// model EMA's update after each step allocate nothing either, as the trainer runs them.
    func testATrainingStepWithMixUpCutMixAndModelEMAAllocatesNothing() throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        Compute.setThreads(2)
        let setup = try Setup(model: modelName, batch: batch, dataSeed: 3)
        let model = setup.model
        let loss = SoftmaxCrossEntropy(classes: model.numClasses, labelSmoothing: 0.1)
        loss.build(maxBatch: batch)
        let step = TrainingStep(model: model, loss: loss, optimizer: SGD(store: model.store, momentum: 0.9, weightDecay: 5e-4),
                                gradients: LocalGradients())
        let shape = model.inputShape
        // One mixing of each kind, used in turn, so both run in the counted steps.
        let mixings = [(0.2, 0.0), (0.0, 1.0)].map { alphas in
            BatchMixing(mixupAlpha: alphas.0, cutmixAlpha: alphas.1, classes: model.numClasses, maxBatch: batch,
                        height: shape.height, width: shape.width, channels: shape.channels)
        }
        let ema = ModelEMA(model: model, decay: 0.9, every: 1)
        var index = 0
        func train() throws -> TrainingStep.Outcome {
            let mixing = mixings[index % 2]
            var random = BatchMixing.random(seed: 1, rank: 0, epoch: 0, step: index)
            mixing.apply(images: setup.x.data, labels: setup.labels, count: batch, random: &random)
            let outcome = try step.run(images: setup.x, labels: setup.labels, targets: UnsafePointer(mixing.targets.pointer), lr: 0.05)
            ema.afterOptimizerStep(epoch: 0, step: index, warmupEpochs: 0)
            index += 1
            return outcome
        }
        for _ in 0..<warmupSteps { _ = try train() }
        var outcomes: [TrainingStep.Outcome] = []
        outcomes.reserveCapacity(2 * countedSteps)
        dtrain_allocations_start()
        for _ in 0..<(2 * countedSteps) { outcomes.append(try train()) }
        let allocations = dtrain_allocations_stop()
        XCTAssertEqual(allocations, 0, "\(allocations) heap allocations in \(2 * countedSteps) steps with MixUp/CutMix and the EMA")
        XCTAssertTrue(outcomes.allSatisfy { $0.updated && $0.loss.isFinite }, "\(outcomes.map(\.loss))")
        XCTAssertEqual(ema.nAveraged, Int64(warmupSteps + 2 * countedSteps))
    }

    func testATrainingStepAllocatesNothingOnTwoLoopbackRanks() throws {
        try checkTwoRanks(clipGradNorm: nil)
    }

    func testAClippedTrainingStepAllocatesNothingOnTwoLoopbackRanks() throws {
        try checkTwoRanks(clipGradNorm: 1e-3)
    }

    /// Gradients sent as bf16 (`--allreduce-dtype bf16`): rounded into and widened from the staging
    /// buffer the synchronizer allocated once.
    func testABF16AllreduceTrainingStepAllocatesNothingOnTwoLoopbackRanks() throws {
        try checkTwoRanks(clipGradNorm: nil, allreduceDType: .bf16)
    }

    private func checkTwoRanks(clipGradNorm: Float?, allreduceDType: AllreduceDType = .fp32) throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        Compute.setThreads(1)   // the ranks share the process's thread pool
        let (modelName, batch, warmupSteps, countedSteps) = (self.modelName, self.batch, self.warmupSteps, self.countedSteps)
        let outcomes = try LoopbackCommunicator.run(ranks: 2, recording: false) { comm -> (allocations: Int, losses: [Float], weights: [Float]) in
            // Same weights on both ranks, different data: only averaged gradients keep them equal.
            let setup = try Setup(model: modelName, batch: batch, dataSeed: 10 + UInt64(comm.rank))
            setup.model.synchronizeBatchNorm(over: comm)
            let step = try self.trainingStep(setup, communicator: comm, clipGradNorm: clipGradNorm, allreduceDType: allreduceDType)
            for _ in 0..<warmupSteps { _ = try step() }
            var losses = [Float](repeating: .nan, count: countedSteps)
            var allocations = 0
            // Rank 0 counts, while rank 1 waits in a barrier, so the count spans both ranks' steps.
            try comm.barrier()
            if comm.rank == 0 { dtrain_allocations_start() }
            try comm.barrier()
            for i in 0..<countedSteps { losses[i] = try step().loss }
            try comm.barrier()
            if comm.rank == 0 { allocations = dtrain_allocations_stop() }
            try comm.barrier()
            return (allocations, losses, Array(setup.model.store.values.buffer))
        }
        XCTAssertEqual(outcomes[0].allocations, 0, "\(outcomes[0].allocations) heap allocations in \(countedSteps) training steps of 2 ranks")
        XCTAssertTrue(outcomes.allSatisfy { $0.losses.allSatisfy(\.isFinite) }, "\(outcomes.map(\.losses))")
        XCTAssertNotEqual(outcomes[0].losses, outcomes[1].losses, "the ranks trained on the same data")
        XCTAssertEqual(outcomes[0].weights, outcomes[1].weights, "weights differ between ranks after averaged steps")
    }
}

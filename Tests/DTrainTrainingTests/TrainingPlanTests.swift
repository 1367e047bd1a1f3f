import XCTest
import Foundation
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainData
@testable import DTrainWeights
@testable import DTrainTraining

/// The plan of a run from its configuration alone: no data files, no ranks, no model built.
final class TrainingPlanTests: XCTestCase {
    let output = URL(fileURLWithPath: "/nonexistent/plan-test")
    /// The embedded digits' training split: 1,433 samples of 10 classes, not flipped by default.
    let digits = DataSummary(classNames: (0...9).map(String.init), trainCount: 1433, valCount: 364, flipsByDefault: false)

    func plan(_ config: TrainConfig, data: DataSummary? = nil, ranks: Int = 1,
              resuming resumed: (info: CheckpointInfo, path: String)? = nil) throws -> TrainingPlan {
        try TrainingPlan(config: config, spec: try ModelZoo.spec(named: config.model), data: data ?? digits, ranks: ranks,
                         version: "9.8.7", resuming: resumed)
    }

    func testCIFARAndImageNetPresets() throws {
        let cifar = try plan(try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output))
        XCTAssertEqual(cifar.preset, .cifar)
        XCTAssertEqual(cifar.resolution, 32)
        XCTAssertEqual(cifar.mean, Preset.cifar.mean)
        XCTAssertEqual(cifar.std, Preset.cifar.std)
        XCTAssertEqual(cifar.evalTransform.geometry, .resizeCenterCrop(resize: 32, crop: 32))
        XCTAssertEqual(cifar.trainTransform.geometry, .paddedRandomCrop(size: 32, padding: 4))

        let imagenet = try plan(try TrainConfig.defaults(for: "resnet18", epochs: 2, output: output))
        XCTAssertEqual(imagenet.preset, .imagenet)
        XCTAssertEqual(imagenet.resolution, 224)
        XCTAssertEqual(imagenet.mean, Preset.imagenet.mean)
        XCTAssertEqual(imagenet.evalTransform.geometry, .resizeCenterCrop(resize: 256, crop: 224))

        // --preset, --resolution, --mean and --std win over the model's family.
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        c.preset = "imagenet"
        c.resolution = 64
        c.mean = [0.5, 0.5, 0.5]
        c.std = [0.25, 0.25, 0.25]
        let custom = try plan(c)
        XCTAssertEqual(custom.preset, .imagenet)
        XCTAssertEqual(custom.resolution, 64)
        XCTAssertEqual(custom.mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(custom.std, [0.25, 0.25, 0.25])
        XCTAssertEqual(custom.evalTransform.geometry, .resizeCenterCrop(resize: 73, crop: 64))
        XCTAssertEqual(custom.initialInfo.preset, "imagenet")
        XCTAssertEqual(custom.initialInfo.resolution, 64)
        XCTAssertEqual(custom.initialInfo.mean, [0.5, 0.5, 0.5])
        let known = TrainingPlan.resolution(c, spec: try ModelZoo.spec(named: "resnet20"))
        XCTAssertEqual(known.resolution, 64)
        XCTAssertEqual(known.preset, .imagenet)
    }

    /// --lr-scaling linear: lr × (batch per rank × ranks × accumulation) / 256; the schedule uses it.
    func testLinearLearningRateScaling() throws {
        var c = try TrainConfig.defaults(for: "resnet18", epochs: 90, output: output)
        XCTAssertEqual(c.lrScaling, .linear)
        c.batchSize = 64
        c.gradAccum = 3
        let p = try plan(c, ranks: 2)
        XCTAssertEqual(p.lr, 0.1 * 64 * 2 * 3 / 256, accuracy: 1e-15)
        XCTAssertEqual(p.schedule.baseLR, p.lr)
        XCTAssertEqual(p.schedule.kind, .step)
        XCTAssertEqual(p.schedule.stepSize, 30)
        XCTAssertEqual(p.schedule.totalEpochs, 90)
        XCTAssertEqual(try plan(c, ranks: 4).lr, 2 * p.lr, accuracy: 1e-15)

        c.lrScaling = .none
        XCTAssertEqual(try plan(c, ranks: 4).lr, 0.1)

        var cifar = try TrainConfig.defaults(for: "resnet20", epochs: 8, output: output)
        cifar.lrGamma = 0.5
        cifar.warmupEpochs = 1.5
        let q = try plan(cifar, ranks: 8)
        XCTAssertEqual(q.lr, 0.1)
        XCTAssertEqual(q.schedule.milestones, [4, 6])
        XCTAssertEqual(q.schedule.stepSize, 4)
        XCTAssertEqual(q.schedule.gamma, 0.5)
        XCTAssertEqual(q.schedule.warmupEpochs, 1.5)
    }

    /// Steps per epoch: the padded shard in batches (the last one partial, or dropped with
    /// --drop-last), the overfit batches when given; --limit-train-batches caps the steps run, the
    /// schedule still counts whole epochs.
    func testStepsPerEpoch() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        c.batchSize = 32
        // 1,433 samples on 2 ranks: padded to 1,434, 717 per rank, 23 batches (the last of 13).
        let padded = try plan(c, ranks: 2)
        XCTAssertEqual(padded.stepsPerEpoch, 23)
        var epoch = padded.epoch(0, rank: 1, samplesIntoEpoch: 0)
        XCTAssertEqual(epoch.steps, 23)
        XCTAssertEqual(epoch.stepsDone, 0)
        XCTAssertEqual(epoch.indices, padded.sampler(rank: 1).indices(epoch: 0))
        XCTAssertEqual(epoch.indices.count, 717)

        c.dropLast = true
        // Truncated to 1,432, 716 per rank: 22 full batches, the rest dropped.
        let dropped = try plan(c, ranks: 2)
        XCTAssertEqual(dropped.stepsPerEpoch, 22)
        epoch = dropped.epoch(1, rank: 0, samplesIntoEpoch: 0)
        XCTAssertEqual(epoch.steps, 22)
        XCTAssertEqual(epoch.indices, Array(dropped.sampler(rank: 0).indices(epoch: 1).prefix(22 * 32)))
        c.dropLast = false

        // The limit counts the epoch's steps, those before a resume included.
        c.limitTrainBatches = 5
        let limited = try plan(c, ranks: 2)
        XCTAssertEqual(limited.stepsPerEpoch, 23)
        XCTAssertEqual(limited.epoch(0, rank: 0, samplesIntoEpoch: 0).steps, 5)
        XCTAssertEqual(limited.samplesConsumed(steps: 3), 3 * 32 * 2)
        epoch = limited.epoch(0, rank: 0, samplesIntoEpoch: limited.samplesConsumed(steps: 3))
        XCTAssertEqual(epoch.stepsDone, 3)
        XCTAssertEqual(epoch.steps, 2)
        XCTAssertEqual(epoch.indices, Array(limited.sampler(rank: 0).indices(epoch: 0, skippingFirst: 192).prefix(64)))
        c.limitTrainBatches = nil

        // Overfitting: the same first batches of epoch 0's order in every epoch.
        c.overfitBatches = 2
        let overfit = try plan(c, ranks: 1)
        XCTAssertEqual(overfit.stepsPerEpoch, 2)
        let first = overfit.epoch(0, rank: 0, samplesIntoEpoch: 0)
        XCTAssertEqual(first.steps, 2)
        XCTAssertEqual(first.indices, Array(overfit.sampler(rank: 0).indices(epoch: 0).prefix(64)))
        XCTAssertEqual(overfit.epoch(7, rank: 0, samplesIntoEpoch: 0), first)
        XCTAssertEqual(overfit.trainTransform.geometry, overfit.evalTransform.geometry)

        // A world of one, 100 samples in batches of 32: 4 steps, or 3 dropping the last partial.
        c.overfitBatches = nil
        let small = DataSummary(classNames: (0...9).map(String.init), trainCount: 100)
        XCTAssertEqual(try plan(c, data: small).stepsPerEpoch, 4)
        c.dropLast = true
        XCTAssertEqual(try plan(c, data: small).stepsPerEpoch, 3)
        // Fewer samples than a batch, dropped: the schedule still counts one step per epoch.
        XCTAssertEqual(try plan(c, data: DataSummary(classNames: ["a", "b"], trainCount: 20)).stepsPerEpoch, 1)
    }

    func testLearningRateFollowsTheScheduleByStep() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        c.schedule = .cosine
        c.batchSize = 32
        let p = try plan(c, ranks: 2)
        XCTAssertEqual(p.learningRate(epoch: 0, step: 0), 0.1, accuracy: 1e-15)
        XCTAssertEqual(p.learningRate(epoch: 1, step: 0), 0.05, accuracy: 1e-12)
        XCTAssertEqual(p.learningRate(epoch: 0, step: 10), p.schedule.rate(at: 10.0 / 23), accuracy: 1e-15)
    }

    /// Classes: --num-classes, else the resumed checkpoint's, else the data's; a larger head gets
    /// placeholder names.
    func testNumberOfClasses() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        let fromData = try plan(c)
        XCTAssertEqual(fromData.numClasses, 10)
        XCTAssertEqual(fromData.modelOptions.numClasses, 10)
        XCTAssertEqual(fromData.classNames, digits.classNames)

        c.modelOptions.numClasses = 12
        let wider = try plan(c)
        XCTAssertEqual(wider.numClasses, 12)
        XCTAssertEqual(wider.classNames, digits.classNames + ["class10", "class11"])
        XCTAssertEqual(wider.initialInfo.numClasses, 12)
        XCTAssertEqual(wider.initialInfo.classNames, wider.classNames)

        var saved = CheckpointInfo(model: "resnet20", numClasses: 12)
        c.modelOptions.numClasses = nil
        XCTAssertEqual(try plan(c, resuming: (saved, "/runs/a/checkpoint-last.safetensors")).numClasses, 12)

        c.modelOptions.numClasses = 11
        XCTAssertThrowsError(try plan(c, resuming: (saved, "/runs/a/checkpoint-last.safetensors"))) { error in
            XCTAssertEqual("\(error)", "--num-classes 11 disagrees with the checkpoint /runs/a/checkpoint-last.safetensors, which has 12 classes")
        }
        c.modelOptions.numClasses = 8
        XCTAssertThrowsError(try plan(c)) { error in
            XCTAssertEqual("\(error)", "--num-classes 8 is smaller than the 10 classes in the data")
        }
        c.modelOptions.numClasses = nil
        saved.model = "resnet32"
        XCTAssertThrowsError(try plan(c, resuming: (saved, "/runs/b.safetensors"))) { error in
            XCTAssertEqual("\(error)", "--resume /runs/b.safetensors: checkpoint is of model resnet32, not resnet20")
        }
    }

    /// --resume refuses a checkpoint trained on another class list, training-set size or
    /// resolution, naming the difference, instead of rewriting the class names.
    func testResumeRefusesOtherClassesDataSizeOrResolution() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        let path = "/runs/a/checkpoint-last.safetensors"
        let letters = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
        var saved = try plan(c, data: DataSummary(classNames: letters, trainCount: 500)).initialInfo
        XCTAssertEqual(try plan(c, data: DataSummary(classNames: letters, trainCount: 500), resuming: (saved, path)).classNames, letters,
                       "the same data resumes")

        let nine = DataSummary(classNames: Array(letters.prefix(9)), trainCount: 500)
        XCTAssertThrowsError(try plan(c, data: nine, resuming: (saved, path))) { error in
            XCTAssertEqual("\(error)", "--resume \(path): the checkpoint was trained on 10 classes [a, b, c, d, e, …], the data has 9 "
                           + "[a, b, c, d, e, …]; to start a new run from its weights, use --pretrained \(path)")
        }
        let renamed = DataSummary(classNames: ["z"] + letters.dropFirst(), trainCount: 500)
        XCTAssertThrowsError(try plan(c, data: renamed, resuming: (saved, path))) { error in
            XCTAssertTrue("\(error)".contains("the checkpoint was trained on 10 classes [a, b, c, d, e, …], the data has 10 [z, b, c, d, e, …]"),
                          "\(error)")
        }
        XCTAssertThrowsError(try plan(c, data: DataSummary(classNames: letters, trainCount: 501), resuming: (saved, path))) { error in
            XCTAssertTrue("\(error)".contains("the checkpoint was trained on 500 training samples, the data has 501"), "\(error)")
        }
        // An explicit --num-classes that differs is named as such, before the class list.
        c.modelOptions.numClasses = 12
        XCTAssertThrowsError(try plan(c, data: DataSummary(classNames: letters, trainCount: 500), resuming: (saved, path))) { error in
            XCTAssertEqual("\(error)", "--num-classes 12 disagrees with the checkpoint \(path), which has 10 classes")
        }
        c.modelOptions.numClasses = nil
        c.resolution = 48
        XCTAssertThrowsError(try plan(c, data: DataSummary(classNames: letters, trainCount: 500), resuming: (saved, path))) { error in
            XCTAssertTrue("\(error)".contains("the checkpoint was trained at resolution 32, this run is at 48"), "\(error)")
        }
        // A checkpoint that records none of these (an older one) is not refused for them.
        c.resolution = nil
        saved.classNames = []
        saved.settings = [:]
        saved.resolution = 0
        XCTAssertNoThrow(try plan(c, data: nine, resuming: (saved, path)))
    }

    /// The smallest training batch: a last partial batch, unless dropped or never reached.
    func testSmallestTrainBatch() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        c.batchSize = 32
        // 1,433 samples: 44 full batches and one of 25; on 2 ranks 717 each, the last of 13.
        XCTAssertEqual(try plan(c).smallestTrainBatch, 25)
        XCTAssertEqual(try plan(c, ranks: 2).smallestTrainBatch, 13)
        c.batchSize = 4
        XCTAssertEqual(try plan(c).smallestTrainBatch, 1)
        c.dropLast = true
        XCTAssertEqual(try plan(c).smallestTrainBatch, 4)
        c.dropLast = false
        c.limitTrainBatches = 10
        XCTAssertEqual(try plan(c).smallestTrainBatch, 4)
        c.limitTrainBatches = nil
        c.batchSize = 64
        XCTAssertEqual(try plan(c, data: DataSummary(classNames: ["a", "b"], trainCount: 20)).smallestTrainBatch, 20)
        c.overfitBatches = 1
        XCTAssertEqual(try plan(c).smallestTrainBatch, 64)
    }

    /// Flips: the data's default (none for the digits) unless --no-flip or set explicitly.
    func testFlips() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        XCTAssertFalse(DigitsSource(split: .train).flipsByDefault)
        XCTAssertTrue(SyntheticSource(count: 4, resolution: 8).flipsByDefault)
        XCTAssertEqual(DataSummary(train: DigitsSource(split: .train), val: DigitsSource(split: .val)), digits)

        let digitsPlan = try plan(c)
        XCTAssertFalse(digitsPlan.flips)
        XCTAssertEqual(digitsPlan.trainTransform.flipProbability, 0)
        let photos = DataSummary(classNames: ["cat", "dog"], trainCount: 50)
        XCTAssertTrue(try plan(c, data: photos).flips)
        XCTAssertEqual(try plan(c, data: photos).trainTransform.flipProbability, 0.5)
        c.flip = false
        XCTAssertEqual(try plan(c, data: photos).trainTransform.flipProbability, 0)
        c.flip = true
        XCTAssertEqual(try plan(c).trainTransform.flipProbability, 0.5)
    }

    /// The initial checkpoint metadata: what the run is, and where a resumed run stands.
    func testInitialCheckpointInfo() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 3, output: output)
        c.seed = 11
        c.optimizer = .adamw
        c.modelOptions.zeroInitResidual = true
        c.modelOptions.cifarShortcut = .b
        c.pretrained = "/weights/r20.pth"
        c.freeze = .until("layer1")
        c.headLRMultiplier = 10
        let fresh = try plan(c, ranks: 3).initialInfo
        XCTAssertEqual(fresh.dtrainVersion, "9.8.7")
        XCTAssertEqual(fresh.model, "resnet20")
        XCTAssertEqual(fresh.seed, 11)
        XCTAssertEqual(fresh.worldSize, 3)
        XCTAssertEqual(fresh.optimizer, "adamw")
        XCTAssertTrue(fresh.zeroInitResidual)
        XCTAssertEqual(fresh.cifarShortcut, "B")
        XCTAssertEqual(fresh.preset, "cifar")
        XCTAssertEqual(fresh.resolution, 32)
        XCTAssertEqual(fresh.mean, Preset.cifar.mean.map(Double.init))
        XCTAssertEqual(fresh.std, Preset.cifar.std.map(Double.init))
        XCTAssertEqual(fresh.settings, ["pretrained": "/weights/r20.pth", "freeze": "until=layer1", "head_lr_mult": "10.0",
                                        "train_samples": "1433"])
        XCTAssertEqual(fresh.epoch, 0)
        XCTAssertEqual(fresh.globalStep, 0)
        XCTAssertNil(fresh.bestTop1)

        var saved = CheckpointInfo(model: "resnet20", numClasses: 10)
        saved.epoch = 1
        saved.globalStep = 30
        saved.samplesIntoEpoch = 256
        saved.bestTop1 = 0.75
        saved.optimizerSteps = 30
        saved.worldSize = 2
        let resumed = try plan(c, ranks: 3, resuming: (saved, "/runs/last.safetensors"))
        let info = resumed.initialInfo
        XCTAssertEqual(info.epoch, 1)
        XCTAssertEqual(info.globalStep, 30)
        XCTAssertEqual(info.samplesIntoEpoch, 256)
        XCTAssertEqual(info.bestTop1, 0.75)
        XCTAssertEqual(info.worldSize, 3, "the world size is this run's")
        XCTAssertEqual(info.optimizerSteps, 0, "set from the optimizer when saved")
        let fields = Dictionary(uniqueKeysWithValues: resumed.agreementFields(trainableParameters: 1234).map { ($0.name, $0.value) })
        XCTAssertEqual(fields["resumed step"], "1/30/256")
        XCTAssertEqual(fields["dtrain version"], "9.8.7")
        XCTAssertEqual(fields["validation set size"], "364")
        XCTAssertEqual(fields["trainable parameters"], "1234")
        XCTAssertEqual(fields["class list"], "0,1,2,3,4,5,6,7,8,9")
    }
}

extension TrainingPlanTests {
    /// --auto-augment and --random-erase reach the training transform (not the evaluation one,
    /// nor --overfit-batches' un-augmented one) and the checkpoint's settings; without them the
    /// transform and the settings are as before.
    func testAugmentationReachesTheTrainTransform() throws {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output)
        let plain = try plan(c)
        XCTAssertTrue(plain.trainTransform.augmentation.isNone)
        XCTAssertNil(plain.initialInfo.settings["augmentation"])

        c.augmentation = Augmentation(autoAugment: .trivialAugmentWide, randomErase: 0.25)
        let augmented = try plan(c)
        XCTAssertEqual(augmented.trainTransform.augmentation.autoAugment, .trivialAugmentWide)
        XCTAssertEqual(augmented.trainTransform.augmentation.randomErase, 0.25)
        XCTAssertEqual(augmented.trainTransform.augmentation.interpolation, .bilinear)
        XCTAssertEqual(augmented.trainTransform.geometry, plain.trainTransform.geometry)
        XCTAssertTrue(augmented.evalTransform.augmentation.isNone)
        XCTAssertEqual(augmented.initialInfo.settings["augmentation"], "ta_wide (bilinear), random erase 0.25")
        let fields = Dictionary(uniqueKeysWithValues: c.agreementFields.map { ($0.name, $0.value) })
        XCTAssertEqual(fields["augmentation"], "ta_wide (bilinear), random erase 0.25")

        c.augmentation = Augmentation(autoAugment: .randAugment, raMagnitude: 15)
        XCTAssertEqual(try plan(c).trainTransform.augmentation.raMagnitude, 15)
        c.overfitBatches = 1
        XCTAssertTrue(try plan(c).trainTransform.augmentation.isNone)
    }
}

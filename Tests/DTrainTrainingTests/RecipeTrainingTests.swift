import XCTest
import Foundation
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainData
@testable import DTrainWeights
@testable import DTrainDistributed
@testable import DTrainTraining

/// torchvision's recipe options in a run: the repeated-augmentation sampler in the plan (its
/// epochs, resume position and refusals), the settings every rank must share, and a run with all
/// of them that is interrupted mid-epoch and resumed ending as the uninterrupted run.
final class RecipeTrainingTests: XCTestCase {
    let output = URL(fileURLWithPath: "/nonexistent/recipe-test")
    /// The embedded digits' training split: 1,433 samples.
    let digits = DataSummary(classNames: (0...9).map(String.init), trainCount: 1433, valCount: 364, flipsByDefault: false)

    func plan(_ config: TrainConfig, data: DataSummary? = nil, ranks: Int = 1,
              resuming resumed: (info: CheckpointInfo, path: String)? = nil) throws -> TrainingPlan {
        try TrainingPlan(config: config, spec: try ModelZoo.spec(named: config.model), data: data ?? digits, ranks: ranks,
                         version: "1", resuming: resumed)
    }

    func raConfig(reps: Int = 3) throws -> TrainConfig {
        var c = try TrainConfig.defaults(for: "resnet20", epochs: 3, output: output)
        c.batchSize = 32
        c.seed = 9
        c.raReps = reps
        return c
    }

    /// With --ra-sampler an epoch is the sampler's shard with each position's repeat number; steps
    /// follow RASampler's count per rank; a resumed epoch continues the same sequence.
    func testRepeatedAugmentationEpochsAndResume() throws {
        for ranks in [1, 2, 3] {
            let p = try plan(try raConfig(), ranks: ranks)
            XCTAssertEqual(p.samplesPerRank, 1433 / 256 * 256 / ranks)
            XCTAssertEqual(p.stepsPerEpoch, (p.samplesPerRank + 31) / 32)
            XCTAssertEqual(p.initialInfo.settings["ra_reps"], "3")
            var repeatNumbers = Set<Int>()
            for rank in 0..<ranks {
                let sampler = try XCTUnwrap(p.repeatedAugmentationSampler(rank: rank))
                let epoch = p.epoch(1, rank: rank, samplesIntoEpoch: 0)
                XCTAssertEqual(epoch.indices, sampler.indices(epoch: 1))
                XCTAssertEqual(epoch.repetitions, sampler.samples(epoch: 1).map(\.repetition))
                XCTAssertEqual(epoch.steps, p.stepsPerEpoch)
                repeatNumbers.formUnion(epoch.repetitions)
                for done in [1, 4] {
                    let resumed = p.epoch(1, rank: rank, samplesIntoEpoch: p.samplesConsumed(steps: done))
                    XCTAssertEqual(resumed.stepsDone, done)
                    XCTAssertEqual(resumed.indices, Array(epoch.indices.dropFirst(done * 32)), "ranks \(ranks) rank \(rank)")
                    XCTAssertEqual(resumed.repetitions, Array(epoch.repetitions.dropFirst(done * 32)))
                }
            }
            XCTAssertEqual(repeatNumbers, [0, 1, 2], "ranks \(ranks)")
        }
        // The ordinary sampler is unchanged and has no repeat numbers.
        var ordinary = try raConfig()
        ordinary.raReps = nil
        let p = try plan(ordinary, ranks: 2)
        XCTAssertNil(p.repeatedAugmentationSampler(rank: 0))
        XCTAssertEqual(p.epoch(0, rank: 1, samplesIntoEpoch: 0).indices, p.sampler(rank: 1).indices(epoch: 0))
        XCTAssertEqual(p.epoch(0, rank: 1, samplesIntoEpoch: 0).repetitions, [])
        XCTAssertEqual(p.samplesPerRank, p.sampler(rank: 0).samplesPerRank)
        XCTAssertNil(p.initialInfo.settings["ra_reps"])
    }

    /// Too few samples for RASampler's floor(N / 256) · 256 / W is a clear error; a checkpoint
    /// written mid-epoch with another sampler is refused, one written at an epoch's end is not.
    func testRepeatedAugmentationRefusals() throws {
        XCTAssertThrowsError(try plan(try raConfig(), data: DataSummary(classNames: ["a", "b"], trainCount: 255))) { error in
            XCTAssertTrue("\(error)".contains("--ra-sampler") && "\(error)".contains("255"), "\(error)")
        }
        XCTAssertThrowsError(try plan(try raConfig(), data: DataSummary(classNames: ["a", "b"], trainCount: 300), ranks: 257)) { error in
            XCTAssertTrue("\(error)".contains("257 ranks"), "\(error)")
        }
        XCTAssertNoThrow(try plan(try raConfig(), data: DataSummary(classNames: ["a", "b"], trainCount: 256)))

        let ra = try plan(try raConfig())
        var saved = ra.initialInfo
        saved.epoch = 1
        saved.samplesIntoEpoch = 64
        var ordinary = try raConfig()
        ordinary.raReps = nil
        XCTAssertThrowsError(try plan(ordinary, resuming: (saved, "ck.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("--ra-sampler --ra-reps 3") && "\(error)".contains("ck.safetensors"), "\(error)")
        }
        XCTAssertThrowsError(try plan(try raConfig(reps: 2), resuming: (saved, "ck.safetensors")))
        XCTAssertNoThrow(try plan(try raConfig(), resuming: (saved, "ck.safetensors")))
        var ordinarySaved = try plan(ordinary).initialInfo
        ordinarySaved.samplesIntoEpoch = 64
        XCTAssertThrowsError(try plan(try raConfig(), resuming: (ordinarySaved, "ck.safetensors")))
        saved.samplesIntoEpoch = 0
        XCTAssertNoThrow(try plan(ordinary, resuming: (saved, "ck.safetensors")))
    }

    /// The new settings are among what every rank must agree on.
    func testRecipeSettingsAreAgreedOn() throws {
        var c = try raConfig()
        c.clipGradNorm = 2
        c.normWeightDecay = 0
        c.lrMin = 1e-5
        c.warmupMethod = .constant
        let fields = Dictionary(c.agreementFields.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(fields["ra reps"], "3")
        XCTAssertEqual(fields["clip grad norm"], "2.0")
        XCTAssertEqual(fields["norm weight decay"], "0.0")
        XCTAssertEqual(fields["bias weight decay"], "none")
        XCTAssertEqual(fields["lr min"], "1e-05")
        XCTAssertEqual(fields["warmup method"], "constant")
        XCTAssertEqual(fields["warmup decay"], "0.01")
    }

    /// A run with every recipe option (repeated augmentation, clipping, norm and bias weight decay,
    /// constant warmup into cosine with a floor) interrupted after 4 steps, its last save at step 3,
    /// and resumed, ends with the same checkpoint, bit for bit, as the uninterrupted run.
    func testRunWithRecipeOptionsResumesMidEpochBitExactly() throws {
        func config(_ dir: URL) throws -> TrainConfig {
            var c = try digitsConfig(output: dir, epochs: 2, batch: 32)
            c.limitTrainBatches = 5
            c.noVal = true
            c.schedule = .cosine
            c.warmupEpochs = 1
            c.warmupMethod = .constant
            c.warmupDecay = 0.1
            c.lrMin = 0.001
            c.clipGradNorm = 1
            c.normWeightDecay = 0
            c.biasWeightDecay = 1e-3
            c.raReps = 3
            return c
        }
        let full = temporaryDirectory(self), split = temporaryDirectory(self)
        try train(try config(full))
        var first = try config(split)
        first.saveEverySteps = 3
        let trainer = try Trainer(config: first, version: testVersion, communicator: SingleProcessCommunicator(), progress: quietProgress())
        trainer.interruptAfterSteps = 4
        try trainer.train()
        var resumed = try config(split)
        resumed.resume = ""
        try train(resumed)
        let a = try checkpointTensors(full.appendingPathComponent("checkpoint-last.safetensors"))
        let b = try checkpointTensors(split.appendingPathComponent("checkpoint-last.safetensors"))
        XCTAssertEqual(a.count, b.count)
        for (name, bytes) in a { XCTAssertEqual(bytes, b[name], "\(name) differs after a mid-epoch resume") }
    }
}

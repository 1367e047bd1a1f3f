import XCTest
import DTrainNN
import DTrainData
@testable import DTrainWeights

/// The one mapping from checkpoint metadata to model options and preprocessing preset.
final class CheckpointModelTests: XCTestCase {
    func testFamilyPresets() throws {
        XCTAssertEqual(Preset.default(for: .cifar), .cifar)
        XCTAssertEqual(Preset.default(for: .imagenet), .imagenet)
        for name in ["resnet20", "resnet56", "resnext29_8x64d"] where (try? ModelZoo.spec(named: name)) != nil {
            XCTAssertEqual(Preset.default(forModel: name), .cifar, name)
        }
        for name in ["resnet18", "resnet50", "mobilenet_v2", "vgg16"] where (try? ModelZoo.spec(named: name)) != nil {
            XCTAssertEqual(Preset.default(forModel: name), .imagenet, name)
        }
        XCTAssertEqual(Preset.default(forModel: "resnet20"), .cifar)
        XCTAssertEqual(Preset.default(forModel: "resnet18"), .imagenet)
        XCTAssertEqual(Preset.default(forModel: "no-such-model"), .imagenet)
    }

    func testModelOptionsFromMetadata() {
        var info = CheckpointInfo(model: "resnet20", numClasses: 7)
        var options = info.modelOptions
        XCTAssertEqual(options.numClasses, 7)
        XCTAssertFalse(options.zeroInitResidual)
        XCTAssertNil(options.cifarShortcut)

        info.zeroInitResidual = true
        info.cifarShortcut = "B"
        options = info.modelOptions
        XCTAssertTrue(options.zeroInitResidual)
        XCTAssertEqual(options.cifarShortcut, .b)
        info.cifarShortcut = "A"
        XCTAssertEqual(info.modelOptions.cifarShortcut, .a)
        info.cifarShortcut = "Z"  // not a shortcut type: the model's default
        XCTAssertNil(info.modelOptions.cifarShortcut)
    }

    /// The options build the recorded model: a head of the recorded size.
    func testOptionsBuildTheRecordedHead() throws {
        let info = CheckpointInfo(model: "resnet20", numClasses: 13)
        let model = try ModelZoo.make(info.model, options: info.modelOptions)
        XCTAssertEqual(model.numClasses, 13)
    }

    func testPresetFromMetadata() {
        var info = CheckpointInfo(model: "resnet18", numClasses: 10)
        XCTAssertEqual(info.resolvedPreset, .imagenet, "none recorded: the family's")
        info.preset = "cifar"
        XCTAssertEqual(info.resolvedPreset, .cifar, "the recorded one wins over the family's")
        info = CheckpointInfo(model: "resnet20", numClasses: 10)
        XCTAssertEqual(info.resolvedPreset, .cifar)
        info.preset = "imagenet"
        XCTAssertEqual(info.resolvedPreset, .imagenet)
        info.preset = "unknown"
        XCTAssertEqual(info.resolvedPreset, .cifar, "an unreadable preset: the family's")

        XCTAssertNil(info.recordedMean)
        XCTAssertNil(info.recordedStd)
        info.mean = [0.5, 0.25, 0.125]
        info.std = [1, 2]
        XCTAssertEqual(info.recordedMean, [0.5, 0.25, 0.125])
        XCTAssertNil(info.recordedStd, "two values are not three channels")
    }

    func testPlainWeightsStandForTheFamilyDefaults() throws {
        let cifar = try CheckpointInfo.plain(model: "resnet20", numClasses: 7)
        XCTAssertEqual(cifar.model, "resnet20")
        XCTAssertEqual(cifar.numClasses, 7)
        XCTAssertEqual(cifar.preset, "cifar")
        XCTAssertEqual(cifar.mean, Preset.cifar.mean.map(Double.init))
        XCTAssertEqual(cifar.std, Preset.cifar.std.map(Double.init))
        XCTAssertEqual(cifar.resolution, 32)

        let imagenet = try CheckpointInfo.plain(model: "resnet18", numClasses: 1000)
        XCTAssertEqual(imagenet.preset, "imagenet")
        XCTAssertEqual(imagenet.mean, Preset.imagenet.mean.map(Double.init))
        XCTAssertEqual(imagenet.resolution, 224)
        XCTAssertThrowsError(try CheckpointInfo.plain(model: "no-such-model", numClasses: 1))
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// bf16 activation storage (`EngineOptimisations.bf16ActivationStorage`): layers keep what
/// backward reads of activations as bf16 and float32 outputs share a few slots of memory. The only
/// change in arithmetic is that a BatchNorm reads its input rounded to bf16, as autocast's bf16
/// convolution returns it, so two training steps must give bit-identical gradients to the same
/// bf16 model with storage off and convolution outputs rounded, for every kind of container in the
/// zoo. A slot reused too early would change them. The model with storage must hold less memory.
final class BF16ActivationStorageTests: XCTestCase {
    /// `twoTrainingSteps` at bf16 with storage on or off; off, convolutions round their outputs.
    func run(_ name: String, batch: Int, resolution: Int, stored: Bool, engine: EngineOptimisations) throws -> (state: [Float], bytes: Int) {
        var engine = engine
        if stored { engine.insert(.bf16ActivationStorage) } else { engine.remove(.bf16ActivationStorage) }
        return try twoTrainingSteps(name, batch: batch, resolution: resolution, engine: engine, precision: .bf16) { model in
            if !stored { model.visitLayers { ($0 as? Conv2d)?.roundsOutputToBF16 = true } }
        }
    }

    @discardableResult
    func check(_ name: String, batch: Int = 3, resolution: Int, engine: EngineOptimisations = .all) throws -> (stored: Int, own: Int) {
        let own = try run(name, batch: batch, resolution: resolution, stored: false, engine: engine)
        let stored = try run(name, batch: batch, resolution: resolution, stored: true, engine: engine)
        assertSameBits(own.state, stored.state, name, with: "bf16 activation storage")
        XCTAssertLessThan(stored.bytes, own.bytes, "\(name): bf16 activation storage saved nothing")
        return (stored.bytes, own.bytes)
    }

    func testCIFARResNetsWithPaddingAndConvolutionShortcuts() throws {
        try check("resnet20", resolution: 32)
        try check("resnet20_b", resolution: 32)
    }

    func testBasicAndBottleneckBlocks() throws {
        try check("resnet18", resolution: 32)
        try check("resnet50", batch: 2, resolution: 64)
    }

    func testGroupedBottlenecksAndInvertedResiduals() throws {
        try check("resnext29_8x64d", batch: 2, resolution: 16)
        try check("mobilenet_v2", batch: 2, resolution: 64)
    }

    func testPlainNetworkWithDropout() throws {
        try check("vgg16_bn", batch: 2, resolution: 32)
    }

    func testUnfusedReLUsAndOwnGradients() throws {
        try check("resnet20", resolution: 32, engine: EngineOptimisations.all.subtracting(.fuseBatchNormReLU))
        try check("resnet18", resolution: 32, engine: EngineOptimisations.all.subtracting(.sharedGradientMemory))
    }

    /// resnet50 at batch 8 and 112 px: activations kept as bf16, outputs in a few slots. The
    /// build also holds the input gradients' slots and the workspace, which do not change, so
    /// the whole is about two thirds (measured 0.66).
    func testResNet50HoldsFarLessActivationMemory() throws {
        let (stored, own) = try check("resnet50", batch: 8, resolution: 112)
        print("resnet50 bf16 at batch 8, 112 px: the build holds \(stored >> 20) MiB with bf16 activation storage, \(own >> 20) MiB without")
        XCTAssertLessThan(Double(stored), 0.75 * Double(own), "resnet50: \(stored) bytes stored as bf16 against \(own)")
    }
}

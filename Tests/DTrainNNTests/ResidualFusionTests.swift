import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// A residual block whose main branch ends with a BatchNorm has that BatchNorm add the identity
/// shortcut and apply the ReLU (`EngineOptimisations.fuseResidualAdd`): two training steps must
/// give parameter gradients and running statistics bit-identical to the separate add, for basic,
/// bottleneck, grouped and inverted-residual blocks (no ReLU after the add), at fp32 and at bf16
/// with bf16 activation storage (where the BatchNorm writes the block's ReLU mask and the output
/// lives in shared memory), and the fusion must have happened.
final class ResidualFusionTests: XCTestCase {
    func check(_ name: String, batch: Int = 3, resolution: Int, precision: Precision) throws {
        try assertBitIdentical(without: .fuseResidualAdd, name, batch: batch, resolution: resolution, precision: precision,
                               what: "the add in the BatchNorm") { model, enabled in
            // Which of the model's blocks add in their BatchNorm.
            var fusedBlocks = 0
            model.visitLayers { if let block = $0 as? Residual, block.addsInBatchNorm { fusedBlocks += 1 } }
            if enabled {
                XCTAssertGreaterThan(fusedBlocks, 0, "\(name): no block adds in its BatchNorm")
            } else {
                XCTAssertEqual(fusedBlocks, 0, "\(name): a block adds in its BatchNorm with the fusion off")
            }
        }
    }

    func testBasicBlocks() throws {
        for precision in [Precision.fp32, .bf16] {
            try check("resnet20", resolution: 32, precision: precision)
            try check("resnet18", resolution: 32, precision: precision)
        }
    }

    func testBottleneckGroupedAndInvertedResidualBlocks() throws {
        for precision in [Precision.fp32, .bf16] {
            // 64 px: layer4 keeps more than one value per channel at the second step's batch of one.
            try check("resnet50", batch: 2, resolution: 64, precision: precision)
            try check("resnext29_8x64d", batch: 2, resolution: 16, precision: precision)
            try check("mobilenet_v2", batch: 2, resolution: 64, precision: precision)
        }
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// At bf16 on the float32 kernels, a BatchNorm after a convolution writes its input gradient
/// rounded to bf16 and the convolution skips its rounding pass over dy
/// (`EngineOptimisations.bf16RoundingInBatchNorm`): two training steps must give parameter
/// gradients and running statistics bit-identical to the convolution rounding dy itself, for the
/// im2col, pointwise, grouped and depthwise convolutions of the zoo, and the fold must have
/// happened wherever a convolution rounds dy in a pass (none at fp32).
final class BF16RoundingFoldTests: XCTestCase {
    func check(_ name: String, batch: Int = 3, resolution: Int, precision: Precision = .bf16) throws {
        try assertBitIdentical(without: .bf16RoundingInBatchNorm, name, batch: batch, resolution: resolution,
                               precision: precision, what: "dy rounded by the BatchNorm") { model, enabled in
            var folded = 0, roundingInPass = 0, convolutions = 0
            model.visitLayers {
                if let bn = $0 as? BatchNorm2d, bn.roundsInputGradientToBF16 { folded += 1 }
                if let conv = $0 as? Conv2d {
                    convolutions += 1
                    if conv.roundsOutputGradientInPass { roundingInPass += 1 }
                    if conv.outputGradientArrivesRounded { XCTAssertTrue(conv.roundsOutputGradientInPass, "\(name): folded where nothing rounds") }
                }
            }
            XCTAssertGreaterThan(convolutions, 0)
            if enabled && roundingInPass > 0 {
                XCTAssertGreaterThan(folded, 0, "\(name) \(precision): no BatchNorm rounds the dy of the convolution before it")
            } else {
                XCTAssertEqual(folded, 0, "\(name) \(precision): a BatchNorm rounds its input gradient (fold \(enabled))")
            }
            if precision == .fp32 { XCTAssertEqual(roundingInPass, 0, "\(name): fp32 rounds dy") }
        }
    }

    func testPlainAndStridedConvolutions() throws {
        try check("resnet18", resolution: 32)
        try check("resnet20_b", resolution: 32)
    }

    func testPointwiseGroupedAndDepthwiseConvolutions() throws {
        try check("resnet50", batch: 2, resolution: 64)
        try check("resnext29_8x64d", batch: 2, resolution: 16)
        try check("mobilenet_v2", batch: 2, resolution: 64)
    }

    func testNothingFoldsAtFP32() throws {
        try check("resnet18", resolution: 32, precision: .fp32)
    }
}

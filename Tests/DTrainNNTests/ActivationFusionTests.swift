import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// A ReLU or ReLU6 right after a BatchNorm is applied by the BatchNorm
/// (`EngineOptimisations.fuseBatchNormReLU`): two training steps must give parameter gradients
/// and running statistics bit-identical to the separate activation layers, for ResNet's ReLUs and
/// MobileNetV2's ReLU6s, at fp32 and at bf16 with bf16 activation storage, and the fusion must
/// have happened with the activation the model has. BatchNorm weights are set large so that the
/// ReLU6's upper clamp is reached often.
final class ActivationFusionTests: XCTestCase {
    func check(_ name: String, batch: Int = 2, resolution: Int, precision: Precision,
               expecting activation: BatchNormKernels.Activation) throws {
        // BatchNorm weights of 5 and biases of 1: about a sixth of the normalised values lie above
        // 6, where a ReLU6 clamps and passes no gradient.
        let largeWeights: (Model) -> Void = { model in
            model.visitLayers { layer in
                guard let bn = layer as? BatchNorm2d else { return }
                bn.weight.value!.update(repeating: 5, count: bn.channels)
                bn.bias.value!.update(repeating: 1, count: bn.channels)
            }
        }
        try assertBitIdentical(without: .fuseBatchNormReLU, name, batch: batch, resolution: resolution, precision: precision,
                               what: "the activation in the BatchNorm", prepare: largeWeights) { model, enabled in
            // Which of the model's BatchNorms apply an activation.
            var fused: [BatchNormKernels.Activation: Int] = [:]
            model.visitLayers { if let bn = $0 as? BatchNorm2d { fused[bn.fusedActivation, default: 0] += 1 } }
            if enabled {
                XCTAssertGreaterThan(fused[activation] ?? 0, 0, "\(name): no BatchNorm applies its \(activation)")
            } else {
                XCTAssertEqual(fused[.none], fused.values.reduce(0, +), "\(name): a BatchNorm applies an activation with the fusion off")
            }
        }
    }

    func testReLU() throws {
        for precision in [Precision.fp32, .bf16] {
            try check("resnet20", batch: 3, resolution: 32, precision: precision, expecting: .relu)
        }
    }

    func testReLU6() throws {
        for precision in [Precision.fp32, .bf16] {
            try check("mobilenet_v2", resolution: 64, precision: precision, expecting: .relu6)
        }
    }
}

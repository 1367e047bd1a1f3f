import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Finite-difference checks of every non-convolution layer's input and parameter gradients.
final class LayerGradientTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    func testBatchNormTrainMode() {
        GradientCheck().check(BatchNorm2d(channels: 3), input: FeatureShape(height: 3, width: 4, channels: 3), batch: 2)
        // One value per channel and sample: statistics over N rows only.
        GradientCheck(seed: 5).check(BatchNorm2d(channels: 5), input: FeatureShape(features: 5), batch: 4)
    }

    func testBatchNormEvalMode() {
        let bn = BatchNorm2d(channels: 3)
        for c in 0..<3 {
            bn.runningMean.pointer[c] = Float(c) * 0.3 - 0.2
            bn.runningVar.pointer[c] = 0.5 + Float(c)
        }
        GradientCheck(mode: .eval).check(bn, input: FeatureShape(height: 2, width: 3, channels: 3), batch: 2)
    }

    func testBatchNormFrozenParametersGetNoGradient() {
        let bn = BatchNorm2d(channels: 2)
        let store = ParameterStore(layer: bn)
        store.initialize(seed: 0)
        bn.weight.trainable = false
        bn.bias.trainable = false
        _ = bn.build(input: FeatureShape(height: 2, width: 2, channels: 2), maxBatch: 2, inputNeedsGradient: true,
                     context: BuildContext(workspace: Workspace()))
        let x = Storage(count: 16), dy = Storage(count: 16)
        for i in 0..<16 { x.pointer[i] = Float(i % 5); dy.pointer[i] = 1 }
        let shape = FeatureShape(height: 2, width: 2, channels: 2)
        _ = bn.forward(Tensor(storage: x, batch: 2, shape: shape), mode: .train)
        _ = bn.backward(Tensor(storage: dy, batch: 2, shape: shape))
        XCTAssertTrue(store.grads.buffer.allSatisfy { $0 == 0 })
    }

    func testReLU() {
        let awayFromZero: (Float) -> Float = { v in abs(v) < 0.05 ? (v < 0 ? -0.05 : 0.05) : v }
        GradientCheck(inputTransform: awayFromZero)
            .check(ReLU(), input: FeatureShape(height: 3, width: 3, channels: 4), batch: 2)
    }

    func testReLU6() {
        // Values spread to ±12 so many exceed 6, kept 0.05 (5 steps) away from the kinks at 0 and 6.
        let awayFromKinks: (Float) -> Float = { v in
            var v = v
            for kink: Float in [0, 6] where abs(v - kink) < 0.05 { v = v < kink ? kink - 0.05 : kink + 0.05 }
            return v
        }
        let errors = GradientCheck(samplesPerTensor: 48, inputTransform: awayFromKinks)
            .check(ReLU6(), input: FeatureShape(height: 3, width: 3, channels: 4), batch: 2, inputScale: 6)
        XCTAssertNotNil(errors["input"])
    }

    func testMaxPool3x3Stride2Pad1() {
        // Large spread keeps window maxima far apart compared with the finite-difference step.
        GradientCheck().check(MaxPool2d(kernelSize: 3, stride: 2, padding: 1),
                              input: FeatureShape(height: 7, width: 6, channels: 3), batch: 2, inputScale: 100)
    }

    func testMaxPool2x2Stride2() {
        GradientCheck().check(MaxPool2d(kernelSize: 2, stride: 2),
                              input: FeatureShape(height: 6, width: 5, channels: 3), batch: 2, inputScale: 100)
    }

    func testAdaptiveAvgPoolToOne() {
        GradientCheck().check(AdaptiveAvgPool2d(outputSize: 1), input: FeatureShape(height: 4, width: 3, channels: 5), batch: 2)
    }

    func testAdaptiveAvgPoolOverlappingBins() {
        GradientCheck().check(AdaptiveAvgPool2d(outputSize: 3), input: FeatureShape(height: 5, width: 5, channels: 2), batch: 2)
    }

    func testLinearWithBias() {
        GradientCheck().check(Linear(inFeatures: 6, outFeatures: 4), input: FeatureShape(features: 6), batch: 3)
        // A 2×2×3 input is read as 12 flat features.
        GradientCheck().check(Linear(inFeatures: 12, outFeatures: 5), input: FeatureShape(height: 2, width: 2, channels: 3), batch: 2)
    }

    func testLinearWithoutBias() {
        let linear = Linear(inFeatures: 5, outFeatures: 3, bias: false)
        XCTAssertNil(linear.bias)
        XCTAssertEqual(linear.parameters.count, 1)
        GradientCheck().check(linear, input: FeatureShape(features: 5), batch: 2)
    }

    func testFlatten() {
        GradientCheck().check(Flatten(), input: FeatureShape(height: 3, width: 2, channels: 4), batch: 2)
    }

    func testPadShortcut() {
        GradientCheck().check(PadShortcut(inChannels: 4, outChannels: 8, stride: 2),
                              input: FeatureShape(height: 5, width: 5, channels: 4), batch: 2)
        GradientCheck(samplesPerTensor: 60).check(PadShortcut(inChannels: 3, outChannels: 8, stride: 2),
                                                  input: FeatureShape(height: 4, width: 4, channels: 3), batch: 2)
    }

    func testDropoutTrainMode() {
        let dropout = Dropout(p: 0.3)
        dropout.step = 17
        GradientCheck().check(dropout, input: FeatureShape(height: 2, width: 2, channels: 6), batch: 3)
    }
}

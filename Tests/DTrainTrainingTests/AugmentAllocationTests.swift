import XCTest
import CAllocationCounter
@testable import DTrainCore
@testable import DTrainData

/// The augmented transform allocates nothing once a worker's scratch has grown: the uint8 image,
/// the ops' spare image and AugMix's chains live in `ResampleScratch.augment`. The transform runs on
/// one thread, so only this thread's allocations are counted.
final class AugmentAllocationTests: XCTestCase {
    func testOpsAllocateNothing() throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        let image = SyntheticSource(count: 4, resolution: 40).imageForTests(1)
        var pixels = image.pixels, spare = image.pixels
        pixels.withUnsafeMutableBufferPointer { p in
            spare.withUnsafeMutableBufferPointer { s in
                let a = RGB8Image(pixels: p.baseAddress!, width: 40, height: 40), b = RGB8Image(pixels: s.baseAddress!, width: 40, height: 40)
                for op in AugmentOp.allCases {
                    for interpolation in AffineInterpolation.allCases {
                        op.apply(to: a, magnitude: 0.3, interpolation: interpolation, spare: b)
                        dtrain_allocations_start_on_this_thread()
                        op.apply(to: a, magnitude: 2, interpolation: interpolation, spare: b)
                        op.apply(to: a, magnitude: -0.3, interpolation: interpolation, spare: b)
                        let allocations = dtrain_allocations_stop()
                        XCTAssertEqual(allocations, 0, "\(op) \(interpolation)")
                    }
                }
            }
        }
    }

    func testAugmentedTransformAllocatesNothingOnceWarm() throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        let image = SyntheticSource(count: 4, resolution: 40).imageForTests(0)
        for policy in AutoAugmentPolicy.allCases {
            var t = ImageTransform(geometry: .randomResizedCrop(size: 24, scale: 0.08...1, ratio: 0.75...(4.0 / 3)), flipProbability: 0.5,
                                   mean: Preset.imagenet.mean, std: Preset.imagenet.std)
            t.augmentation = Augmentation(autoAugment: policy, randomErase: 0.5)
            let scratch = ResampleScratch()
            let out = Storage(count: t.outputFloats)
            for index in 0..<20 { t.apply(image, seed: 1, epoch: 0, index: index, into: out.pointer, scratch: scratch) }
            dtrain_allocations_start_on_this_thread()
            for index in 20..<120 { t.apply(image, seed: 1, epoch: 0, index: index, into: out.pointer, scratch: scratch) }
            let allocations = dtrain_allocations_stop()
            XCTAssertEqual(allocations, 0, "\(policy): \(allocations) heap allocations in 100 samples")
        }
    }
}

private extension SyntheticSource {
    func imageForTests(_ index: Int) -> DecodedImage { try! image(at: index, targetSize: nil) }
}

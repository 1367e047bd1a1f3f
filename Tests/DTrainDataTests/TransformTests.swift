import XCTest
import DTrainCore
@testable import DTrainData

final class TransformTests: XCTestCase {
    let mean: [Float] = [0.485, 0.456, 0.406]
    let std: [Float] = [0.229, 0.224, 0.225]

    func output(_ t: ImageTransform, _ image: DecodedImage, seed: UInt64 = 7, epoch: Int = 0, index: Int = 0) -> [Float] {
        let out = Storage(count: t.outputFloats)
        t.apply(image, seed: seed, epoch: epoch, index: index, into: out.pointer, scratch: ResampleScratch())
        return Array(out.buffer)
    }

    func testRandomResizedCropBoxesStayInBoundsAndRanges() {
        var random = SeededRandom(seed: 1)
        var fallbacks = 0
        for _ in 0..<2000 {
            let box = ImageTransform.randomResizedCropBox(width: 300, height: 200, scale: 0.08...1, ratio: (3.0 / 4)...(4.0 / 3), random: &random)
            XCTAssertGreaterThanOrEqual(box.top, 0)
            XCTAssertGreaterThanOrEqual(box.left, 0)
            XCTAssertGreaterThan(box.width, 0)
            XCTAssertGreaterThan(box.height, 0)
            XCTAssertLessThanOrEqual(box.top + box.height, 200)
            XCTAssertLessThanOrEqual(box.left + box.width, 300)
            if box == CropBox(top: 0, left: 0, height: 200, width: 300) { fallbacks += 1; continue }
            // w and h are rounded, so allow half a pixel on each side.
            let area = Double(box.width * box.height) / 60000
            let maxArea = Double((box.width + 1) * (box.height + 1)) / 60000
            XCTAssertGreaterThanOrEqual(maxArea, 0.08)
            XCTAssertLessThanOrEqual(area, 1.0)
            let ratio = Double(box.width) / Double(box.height)
            XCTAssertGreaterThanOrEqual(Double(box.width) + 0.5, 0.75 * (Double(box.height) - 0.5), "ratio \(ratio)")
            XCTAssertLessThanOrEqual(Double(box.width) - 0.5, 4.0 / 3 * (Double(box.height) + 0.5), "ratio \(ratio)")
        }
        XCTAssertLessThan(fallbacks, 20, "the fallback should be rare for a 3:2 image")
    }

    func testRandomResizedCropFallbackForExtremeAspect() {
        var random = SeededRandom(seed: 3)
        // No crop of 8 % or more fits with a ratio ≤ 4/3 in a 200x10 strip: centre crop at ratio 4/3.
        XCTAssertEqual(ImageTransform.randomResizedCropBox(width: 200, height: 10, scale: 0.08...1, ratio: 0.75...(4.0 / 3), random: &random),
                       CropBox(top: 0, left: 93, height: 10, width: 13))
        XCTAssertEqual(ImageTransform.randomResizedCropBox(width: 10, height: 200, scale: 0.08...1, ratio: 0.75...(4.0 / 3), random: &random),
                       CropBox(top: 93, left: 0, height: 13, width: 10))
        let t = ImageTransform(geometry: .randomResizedCrop(size: 16, scale: 0.08...1, ratio: 0.75...(4.0 / 3)), mean: mean, std: std)
        var r = SeededRandom(seed: 4)
        let plan = t.plan(width: 200, height: 10, random: &r)
        XCTAssertEqual(plan.x.sourceStart, 93)
        XCTAssertEqual(plan.x.sourceLength, 13)
        XCTAssertEqual(plan.outputWidth, 16)
        XCTAssertEqual(output(t, referencePattern(width: 200, height: 10)).count, 16 * 16 * 3)
    }

    func testResizeRuleAndCenterCropOffsetsAreTorchvision() {
        XCTAssertTrue(ImageTransform.resizedSize(width: 500, height: 375, shorter: 256) == (341, 256))
        XCTAssertTrue(ImageTransform.resizedSize(width: 375, height: 500, shorter: 256) == (256, 341))
        XCTAssertTrue(ImageTransform.resizedSize(width: 300, height: 300, shorter: 256) == (256, 256))
        XCTAssertEqual(ImageTransform.centerCropOffset(length: 256, crop: 224), 16)
        XCTAssertEqual(ImageTransform.centerCropOffset(length: 257, crop: 224), 16) // round(16.5) = 16
        XCTAssertEqual(ImageTransform.centerCropOffset(length: 259, crop: 224), 18) // round(17.5) = 18
        XCTAssertEqual(ImageTransform.centerCropOffset(length: 341, crop: 224), 58) // round(58.5) = 58
        XCTAssertEqual(ImageTransform.centerCropOffset(length: 200, crop: 224), -12)

        let eval = Preset.imagenet.eval()
        var random = SeededRandom(seed: 0)
        let plan = eval.plan(width: 500, height: 375, random: &random)
        XCTAssertEqual(plan.x.resizedLength, 341)
        XCTAssertEqual(plan.y.resizedLength, 256)
        XCTAssertEqual(plan.x.offset, 58)
        XCTAssertEqual(plan.y.offset, 16)
        XCTAssertEqual(plan.outputWidth, 224)
        XCTAssertFalse(plan.flip)
    }

    func testPaddedRandomCropOffsetsWithinPadding() {
        let t = Preset.cifar.train()
        guard case let .paddedRandomCrop(size, padding) = t.geometry else { return XCTFail("cifar train is a padded crop") }
        XCTAssertEqual(size, 32)
        XCTAssertEqual(padding, 4)
        var seen = Set<Int>()
        for index in 0..<500 {
            var random = ImageTransform.random(seed: 1, epoch: 0, index: index)
            let plan = t.plan(width: 32, height: 32, random: &random)
            for axis in [plan.x, plan.y] {
                let offset = axis.offset + 4 // the torchvision crop position in the padded 40x40 image
                XCTAssertTrue((0...8).contains(offset))
                XCTAssertEqual(axis.valid, 0..<32)
                seen.insert(offset)
            }
        }
        XCTAssertEqual(seen, Set(0...8))
    }

    func testPaddingIsZeroBeforeNormalisation() {
        let t = ImageTransform(geometry: .paddedRandomCrop(size: 8, padding: 4), mean: mean, std: std)
        let image = constantImage(width: 8, height: 8, rgb: (200, 100, 50))
        // Find a draw that puts the image 4 rows down: the top 4 rows are padding.
        for index in 0..<200 {
            var random = ImageTransform.random(seed: 9, epoch: 0, index: index)
            guard t.plan(width: 8, height: 8, random: &random).y.offset == -4 else { continue }
            let out = output(t, image, seed: 9, index: index)
            for c in 0..<3 {
                XCTAssertEqual(out[c], -mean[c] / std[c], accuracy: 1e-5) // row 0: padding
                XCTAssertEqual(out[4 * 8 * 3 + c], ([200, 100, 50][c] / 255 - mean[c]) / std[c], accuracy: 1e-5)
            }
            return
        }
        XCTFail("no draw with the image 4 rows down")
    }

    func testFlipMirrorsExactly() {
        let image = referencePattern(width: 12, height: 9)
        let geometry = ImageTransform.Geometry.randomResizedCrop(size: 10, scale: 0.08...1, ratio: 0.75...(4.0 / 3))
        let plain = output(ImageTransform(geometry: geometry, flipProbability: 0, mean: mean, std: std), image)
        let flipped = output(ImageTransform(geometry: geometry, flipProbability: 1, mean: mean, std: std), image)
        for y in 0..<10 {
            for x in 0..<10 {
                for c in 0..<3 { XCTAssertEqual(flipped[(y * 10 + x) * 3 + c], plain[(y * 10 + 9 - x) * 3 + c]) }
            }
        }
        var flips = 0
        let half = ImageTransform(geometry: geometry, flipProbability: 0.5, mean: mean, std: std)
        for index in 0..<400 {
            var random = ImageTransform.random(seed: 2, epoch: 0, index: index)
            if half.plan(width: 12, height: 9, random: &random).flip { flips += 1 }
        }
        XCTAssertTrue((150...250).contains(flips), "\(flips) flips in 400")
    }

    func testNormalizeMapsConstantImage() {
        let image = constantImage(width: 64, height: 48, rgb: (255, 128, 0))
        let out = output(Preset.imagenet.train(resolution: 16), image)
        let expected: [Float] = [(1 - mean[0]) / std[0], (128 / 255 - mean[1]) / std[1], (0 - mean[2]) / std[2]]
        for p in 0..<(16 * 16) {
            for c in 0..<3 { XCTAssertEqual(out[3 * p + c], expected[c], accuracy: 1e-4) }
        }
    }

    func testAntialiasedDownscaleOfConstantStaysConstant() {
        let image = constantImage(width: 517, height: 311, rgb: (77, 77, 77))
        let t = ImageTransform(geometry: .resizeCenterCrop(resize: 20, crop: 20), mean: [0, 0, 0], std: [1, 1, 1])
        for v in output(t, image) { XCTAssertEqual(v, 77.0 / 255, accuracy: 1e-5) }
    }

    func testIdentityCopiesPixels() {
        let image = referencePattern(width: 32, height: 32)
        let t = Preset.cifar.eval()
        XCTAssertEqual(t.flipProbability, 0)
        let out = output(t, image)
        let m = Preset.cifar.mean, s = Preset.cifar.std
        for i in 0..<(32 * 32 * 3) {
            XCTAssertEqual(out[i], (Float(image.pixels[i]) / 255 - m[i % 3]) / s[i % 3], accuracy: 1e-5)
        }
    }

    func testCifarPresetResizesOtherSizes() {
        let t = Preset.cifar.eval(resolution: 16)
        var random = SeededRandom(seed: 0)
        let plan = t.plan(width: 32, height: 32, random: &random)
        XCTAssertEqual(plan.x.resizedLength, 16)
        XCTAssertEqual(plan.x.offset, 0)
        XCTAssertEqual(output(t, referencePattern(width: 32, height: 32)).count, 16 * 16 * 3)
        let train = Preset.cifar.train(resolution: 16)
        var r2 = ImageTransform.random(seed: 0, epoch: 0, index: 0)
        let p2 = train.plan(width: 32, height: 32, random: &r2)
        XCTAssertEqual(p2.x.resizedLength, 16)
        XCTAssertEqual(p2.x.valid, 0..<16)
    }

    func testPresetsSizesAndTargets() {
        XCTAssertEqual(Preset.imagenet.train().outputSize, 224)
        XCTAssertEqual(Preset.imagenet.train().targetSize, 224)
        // Evaluation decodes at full size, as PIL does (a DCT-scaled decode is off by up to 0.03
        // in the logits on a 512×512 photo that Resize(256) halves).
        XCTAssertNil(Preset.imagenet.eval().targetSize)
        XCTAssertNil(Preset.imagenet.eval(resolution: 128).targetSize)
        XCTAssertEqual(Preset.imagenet.eval(resolution: 128).outputSize, 128)
        XCTAssertEqual(Preset.imagenet.eval(resolution: 128).geometry, .resizeCenterCrop(resize: 146, crop: 128))
        XCTAssertEqual(Preset.cifar.eval(resolution: 40).geometry, .resizeCenterCrop(resize: 40, crop: 40))
        XCTAssertEqual(Preset.imagenet.eval(resize: 320).geometry, .resizeCenterCrop(resize: 320, crop: 224))
        // The interpolation reaches the plan of both pipelines.
        XCTAssertEqual(Preset.imagenet.eval().interpolation, .bilinear)
        var random = SeededRandom(seed: 1)
        XCTAssertEqual(Preset.imagenet.train(interpolation: .bicubic).plan(width: 300, height: 200, random: &random).interpolation, .bicubic)
        XCTAssertEqual(Preset.imagenet.eval(interpolation: .bicubic).plan(width: 300, height: 200, random: &random).interpolation, .bicubic)
        XCTAssertEqual(Preset.imagenet.eval().plan(width: 300, height: 200, random: &random).interpolation, .bilinear)
        XCTAssertNil(Preset.cifar.train().targetSize)
        XCTAssertEqual(Preset.cifar.train().outputSize, 32)
        XCTAssertEqual(Preset.imagenet.train(mean: [0.5, 0.5, 0.5]).mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(Preset.cifar.eval().std, [0.2470, 0.2435, 0.2616])
    }

    func testSameKeysSameOutputOtherEpochDiffers() {
        let t = Preset.imagenet.train(resolution: 24)
        let image = referencePattern(width: 61, height: 47)
        let a = output(t, image, seed: 5, epoch: 3, index: 11)
        XCTAssertEqual(a, output(t, image, seed: 5, epoch: 3, index: 11))
        XCTAssertNotEqual(a, output(t, image, seed: 5, epoch: 4, index: 11))
        XCTAssertNotEqual(a, output(t, image, seed: 6, epoch: 3, index: 11))
        XCTAssertNotEqual(a, output(t, image, seed: 5, epoch: 3, index: 12))
    }

    func testScratchIsReusedAcrossSizes() {
        let scratch = ResampleScratch()
        let t = Preset.imagenet.eval(resolution: 32)
        let out = Storage(count: t.outputFloats)
        t.apply(referencePattern(width: 90, height: 70), seed: 0, epoch: 0, index: 0, into: out.pointer, scratch: scratch)
        let bytes = scratch.bytes
        t.apply(referencePattern(width: 60, height: 50), seed: 0, epoch: 0, index: 1, into: out.pointer, scratch: scratch)
        XCTAssertEqual(scratch.bytes, bytes)
    }
}

import XCTest
import DTrainCore
@testable import DTrainData

/// The policies that pick ops and magnitudes, and how the transform runs them: the magnitude
/// tables and AutoAugment's sub-policies equal torchvision's (Fixtures/augment_fixtures.json),
/// draws are seeded per sample, and the order is crop, flip, policy, normalize, erase.
final class AugmentPolicyTests: XCTestCase {
    let mean: [Float] = [0.485, 0.456, 0.406]
    let std: [Float] = [0.229, 0.224, 0.225]

    func testMagnitudeTablesEqualTorchvision() throws {
        let fixture = try AugmentFixture.load()
        let spaces: [(String, AugmentationSpace, Int)] = [
            ("ra", .randAugment, 31), ("ta_wide", .trivialAugmentWide, 31), ("augmix", .augMix, 10), ("autoaugment", .autoAugment, 10),
        ]
        var checked = 0
        for (size, tables) in fixture.spaces {
            let wh = size.split(separator: "x").map { Int($0)! }
            for (name, space, bins) in spaces {
                let expected = try XCTUnwrap(tables[name], name)
                XCTAssertEqual(space.ops.map(\.rawValue), expected.map(\.op), "\(name) op order")
                for entry in expected {
                    let op = try XCTUnwrap(AugmentOp(rawValue: entry.op))
                    XCTAssertEqual(space.isSigned(op), entry.signed, "\(name) \(entry.op) signed")
                    XCTAssertEqual(space.hasMagnitudes(op), !entry.magnitudes.isEmpty, "\(name) \(entry.op)")
                    if entry.magnitudes.isEmpty { continue }
                    XCTAssertEqual(entry.magnitudes.count, bins)
                    let got = (0..<bins).map { space.magnitude(op, bin: $0, bins: bins, width: wh[0], height: wh[1]) }
                    XCTAssertEqual(got, entry.magnitudes, "\(name) \(entry.op) at \(size)")
                    checked += 1
                }
            }
        }
        // 2 sizes × 4 policies × the 11 ops with bins (all but Identity, AutoContrast, Equalize, Invert).
        XCTAssertEqual(checked, 2 * 4 * 11)
    }

    func testAutoAugmentPoliciesEqualTorchvision() throws {
        let fixture = try AugmentFixture.load()
        for (name, table) in [("imagenet", AutoAugmentTables.imagenet), ("cifar10", AutoAugmentTables.cifar10)] {
            let expected = try XCTUnwrap(fixture.policies[name])
            XCTAssertEqual(table.count, 25)
            XCTAssertEqual(expected.count, table.count)
            for (k, (a, b)) in table.enumerated() {
                for (step, want) in zip([a, b], expected[k]) {
                    XCTAssertEqual(step.op.rawValue, want.op, "\(name) \(k)")
                    XCTAssertEqual(step.probability, want.probability, "\(name) \(k)")
                    XCTAssertEqual(step.bin, want.bin, "\(name) \(k)")
                }
            }
        }
        XCTAssertEqual(AutoAugmentPolicy.names, "ra, ta_wide, augmix, imagenet, cifar10")
    }

    /// The fixture's photo-like 24x20 image.
    func photo() throws -> DecodedImage {
        let fixture = try AugmentFixture.load()
        let p = try XCTUnwrap(fixture.images["photo"])
        return DecodedImage(width: p.width, height: p.height, pixels: bytes(hex: p.hex))
    }

    func transform(_ augmentation: Augmentation) -> ImageTransform {
        var t = ImageTransform(geometry: .randomResizedCrop(size: 16, scale: 0.3...1, ratio: 0.75...(4.0 / 3)), flipProbability: 0.5,
                               mean: mean, std: std)
        t.augmentation = augmentation
        return t
    }

    func output(_ t: ImageTransform, _ image: DecodedImage, seed: UInt64 = 5, epoch: Int = 0, index: Int = 0,
                scratch: ResampleScratch = ResampleScratch()) -> [Float] {
        let out = Storage(count: t.outputFloats)
        t.apply(image, seed: seed, epoch: epoch, index: index, into: out.pointer, scratch: scratch)
        return Array(out.buffer)
    }

    /// The same (seed, epoch, index) gives the same augmented sample, whatever scratch (worker)
    /// computes it; other samples and epochs are augmented differently.
    func testSeededTransformIsDeterministic() throws {
        let image = try photo()
        let shared = ResampleScratch()
        for policy in AutoAugmentPolicy.allCases {
            let t = transform(Augmentation(autoAugment: policy, randomErase: 0.5))
            var distinct = Set<[Float]>()
            for index in 0..<8 {
                let a = output(t, image, index: index, scratch: shared)
                let b = output(t, image, index: index)
                XCTAssertEqual(a, b, "\(policy) sample \(index)")
                XCTAssertTrue(a.allSatisfy(\.isFinite))
                distinct.insert(a)
            }
            XCTAssertGreaterThan(distinct.count, 4, "\(policy): samples are augmented differently")
            XCTAssertNotEqual(output(t, image, epoch: 0, index: 3), output(t, image, epoch: 1, index: 3), "\(policy)")
        }
    }

    /// The transform's order: crop and flip (one resampling to uint8), the policy on that image,
    /// Normalize, then RandomErasing, all from the sample's one generator.
    func testTransformOrderIsCropFlipPolicyNormalizeErase() throws {
        let image = try photo()
        for policy in AutoAugmentPolicy.allCases {
            let augmentation = Augmentation(autoAugment: policy, raMagnitude: 12, augmixSeverity: 5, randomErase: 1)
            let t = transform(augmentation)
            for index in 0..<6 {
                var random = ImageTransform.random(seed: 5, epoch: 0, index: index)
                let plan = t.plan(width: image.width, height: image.height, random: &random)
                let n = plan.outputWidth * plan.outputHeight * 3
                let floats = Storage(count: n)
                plan.execute(image, scale: (1, 1, 1), bias: (0, 0, 0), into: floats.pointer, scratch: ResampleScratch())
                let rounded = Array(floats.buffer).map { UInt8(min(max(($0 + 0.5).rounded(.down), 0), 255)) }
                let augmented = withImage(rounded, width: plan.outputWidth, height: plan.outputHeight) { img, _ in
                    augmentation.policy!.apply(to: img, random: &random, scratch: AugmentScratch(), mix: floats.pointer)
                }
                var expected = (0..<n).map { k in (Float(augmented[k]) / 255 - mean[k % 3]) / std[k % 3] }
                // RandomErasing(p = 1): the draw that decides, then the box.
                XCTAssertLessThan(random.uniform(), 1)
                if let box = RandomErasing.box(width: plan.outputWidth, height: plan.outputHeight, scale: 0.02...0.33, ratio: 0.3...3.3,
                                               random: &random) {
                    for y in box.top..<(box.top + box.height) {
                        for x in box.left..<(box.left + box.width) { for c in 0..<3 { expected[3 * (y * plan.outputWidth + x) + c] = 0 } }
                    }
                }
                let got = output(t, image, index: index)
                for k in 0..<n { XCTAssertEqual(got[k], expected[k], accuracy: 1e-5, "\(policy) sample \(index) value \(k)") }
            }
        }
    }

    /// Without augmentation the transform is the fused pass, unchanged; RandomErasing alone keeps
    /// that pass and only zeroes a box of its output.
    func testNoAugmentationKeepsTheFusedPass() throws {
        let image = try photo()
        let plain = transform(Augmentation())
        XCTAssertTrue(Augmentation().isNone)
        var random = ImageTransform.random(seed: 5, epoch: 0, index: 2)
        let plan = plain.plan(width: image.width, height: image.height, random: &random)
        let fused = Storage(count: plain.outputFloats)
        plan.execute(image, scale: (1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2])),
                     bias: (-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]), into: fused.pointer, scratch: ResampleScratch())
        XCTAssertEqual(output(plain, image, index: 2), Array(fused.buffer))
        let erasing = output(transform(Augmentation(autoAugment: nil, randomErase: 1)), image, index: 2)
        var changed = 0
        for k in erasing.indices where erasing[k] != fused.buffer[k] {
            XCTAssertEqual(erasing[k], 0)
            changed += 1
        }
        XCTAssertGreaterThan(changed, 0)
    }

    /// RandomErasing's boxes: inside the image, strictly smaller than it, about the asked share of
    /// it; p decides how often.
    func testRandomErasingBoxesAndProbability() {
        var random = SeededRandom(seed: 9)
        var boxes = 0
        for _ in 0..<2000 {
            guard let b = RandomErasing.box(width: 32, height: 24, scale: 0.02...0.33, ratio: 0.3...3.3, random: &random) else { continue }
            boxes += 1
            XCTAssertTrue(b.top >= 0 && b.left >= 0 && b.top + b.height <= 24 && b.left + b.width <= 32, "\(b)")
            XCTAssertTrue(b.height < 24 && b.width < 32, "\(b)")
            XCTAssertLessThanOrEqual(Double(max(0, b.width - 1) * max(0, b.height - 1)), 0.33 * 768, "\(b)")
        }
        XCTAssertGreaterThan(boxes, 1900)
        let erasing = RandomErasing(probability: 0.25)
        var erased = 0
        let pixels = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 16 * 3)
        defer { pixels.deallocate() }
        for _ in 0..<2000 {
            pixels.update(repeating: 1, count: 16 * 16 * 3)
            erasing.apply(to: pixels, width: 16, height: 16, random: &random)
            if (0..<(16 * 16 * 3)).contains(where: { pixels[$0] == 0 }) { erased += 1 }
        }
        XCTAssertEqual(Double(erased) / 2000, 0.25, accuracy: 0.04)
    }

    /// Each policy changes images, and TrivialAugmentWide draws every one of its ops.
    func testPoliciesDrawTheirOps() throws {
        let image = try photo()
        let t = transform(Augmentation(autoAugment: .trivialAugmentWide))
        let plain = transform(Augmentation())
        var unchanged = 0
        for index in 0..<64 where output(t, image, index: index) == output(plain, image, index: index) { unchanged += 1 }
        // Identity, and a few ops at magnitude bin 0, leave the sample unchanged: about 1/14 + a little.
        XCTAssertLessThan(unchanged, 20)
    }

    func testAugmentationSettingsAreChecked() {
        XCTAssertNil(Augmentation(autoAugment: .randAugment, raMagnitude: 30, randomErase: 1).problem)
        XCTAssertEqual(Augmentation(autoAugment: nil, randomErase: 1.5).problem, "--random-erase must be a probability in [0, 1], got 1.5")
        XCTAssertEqual(Augmentation(autoAugment: .randAugment, raMagnitude: 31).problem, "--ra-magnitude must be in 0...30, got 31")
        XCTAssertEqual(Augmentation(autoAugment: .augMix, augmixSeverity: 0).problem, "--augmix-severity must be in 1...10, got 0")
        XCTAssertNotNil(Augmentation(autoAugment: nil, randomErase: .nan).problem)
        XCTAssertEqual(Augmentation(autoAugment: .trivialAugmentWide, randomErase: 0.25).description, "ta_wide (bilinear), random erase 0.25")
        XCTAssertEqual(Augmentation().description, "none")
    }
}

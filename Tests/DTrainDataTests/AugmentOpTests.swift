import XCTest
import DTrainCore
@testable import DTrainData

/// dtrain's uint8 augmentation ops against torchvision's `autoaugment._apply_op` on uint8 tensors
/// (Fixtures/augment_fixtures.json): colour ops byte for byte; geometric ops with nearest
/// interpolation equal but for a few pixels whose source coordinate lies within float32 rounding
/// of a half-pixel boundary; bilinear within ±1.
final class AugmentOpTests: XCTestCase {
    var fixture: AugmentFixture!

    override func setUpWithError() throws {
        fixture = try AugmentFixture.load()
    }

    func run(_ c: AugmentFixture.OpCase) throws -> (got: [UInt8], expected: [UInt8]) {
        let input = try XCTUnwrap(fixture.images[c.image])
        let op = try XCTUnwrap(AugmentOp(rawValue: c.op), c.op)
        let interpolation = try XCTUnwrap(AffineInterpolation(rawValue: c.interpolation))
        let got = withImage(bytes(hex: input.hex), width: input.width, height: input.height) { image, spare in
            op.apply(to: image, magnitude: c.magnitude, interpolation: interpolation, spare: spare)
        }
        return (got, bytes(hex: c.hex))
    }

    func isGeometric(_ op: String) -> Bool { ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"].contains(op) }

    func testColourOpsEqualTorchvision() throws {
        var checked = Set<String>()
        for c in fixture.ops where !isGeometric(c.op) {
            let (got, expected) = try run(c)
            XCTAssertEqual(got.count, expected.count)
            let wrong = zip(got, expected).filter { $0 != $1 }.count
            XCTAssertEqual(wrong, 0, "\(c.op) \(c.magnitude) on \(c.image): \(wrong) of \(got.count) values differ")
            checked.insert(c.op)
        }
        XCTAssertEqual(checked, ["Identity", "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
                                 "AutoContrast", "Equalize", "Invert"])
    }

    func testGeometricOpsWithNearestEqualTorchvision() throws {
        var cases = 0, differing = 0, total = 0
        for c in fixture.ops where isGeometric(c.op) && c.interpolation == "nearest" {
            let (got, expected) = try run(c)
            let pixels = got.count / 3
            let wrong = (0..<pixels).filter { got[3 * $0..<3 * $0 + 3] != expected[3 * $0..<3 * $0 + 3] }.count
            // A pixel whose source coordinate is within float32 rounding of .5 may round the other way.
            XCTAssertLessThanOrEqual(wrong, 2, "\(c.op) \(c.magnitude): \(wrong) of \(pixels) pixels differ")
            if c.op.hasPrefix("Translate") { XCTAssertEqual(wrong, 0, "\(c.op) \(c.magnitude) moves by whole pixels") }
            differing += wrong
            total += pixels
            cases += 1
        }
        XCTAssertEqual(cases, 21)
        XCTAssertLessThanOrEqual(Double(differing) / Double(total), 0.002, "\(differing) of \(total) pixels differ")
        print("nearest: \(differing) of \(total) pixels differ from torchvision's")
    }

    func testGeometricOpsWithBilinearWithinOne() throws {
        var cases = 0, exact = 0, total = 0
        for c in fixture.ops where isGeometric(c.op) && c.interpolation == "bilinear" {
            let (got, expected) = try run(c)
            let worst = zip(got, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1, "\(c.op) \(c.magnitude)")
            exact += zip(got, expected).filter { $0 == $1 }.count
            total += got.count
            cases += 1
        }
        XCTAssertEqual(cases, 21)
        XCTAssertGreaterThan(Double(exact) / Double(total), 0.99, "most values are equal")
        print("bilinear: \(total - exact) of \(total) values differ from torchvision's by 1")
    }

    /// The shear, translation and rotation matrices are torchvision's `_get_inverse_affine_matrix`.
    func testInverseAffineMatrix() {
        // F.rotate(img, 90) passes angle −90: the output (x, y) reads the source at (−y, x).
        let m = ImageOps.inverseAffineMatrix(center: (0, 0), angle: -90, translate: (0, 0), scale: 1, shear: (0, 0))
        XCTAssertEqual(m.m0, 0, accuracy: 1e-15)
        XCTAssertEqual(m.m1, -1, accuracy: 1e-15)
        XCTAssertEqual(m.m3, 1, accuracy: 1e-15)
        XCTAssertEqual(m.m4, 0, accuracy: 1e-15)
        let t = ImageOps.inverseAffineMatrix(center: (0, 0), angle: 0, translate: (3, -2), scale: 1, shear: (0, 0))
        XCTAssertEqual(t, AffineMatrix(1, 0, -3, 0, 1, 2))
        let s = ImageOps.inverseAffineMatrix(center: (-12, -10), angle: 0, translate: (0, 0), scale: 1, shear: (ImageOps.degrees(atan(0.5)), 0))
        XCTAssertEqual(s.m1, 0.5, accuracy: 1e-12)
        // About the top-left corner: source x = x + 0.5·(y + 10), in coordinates from the centre.
        XCTAssertEqual(s.m2, 5, accuracy: 1e-12)
    }

    /// Posterize to 0 bits is black and to 8 unchanged; solarize at 0 inverts everything.
    func testPixelMapEdges() throws {
        let photo = try XCTUnwrap(fixture.images["photo"])
        let pixels = bytes(hex: photo.hex)
        XCTAssertEqual(withImage(pixels, width: 24, height: 20) { i, _ in ImageOps.posterize(i, bits: 0) }, [UInt8](repeating: 0, count: pixels.count))
        XCTAssertEqual(withImage(pixels, width: 24, height: 20) { i, _ in ImageOps.posterize(i, bits: 8) }, pixels)
        XCTAssertEqual(withImage(pixels, width: 24, height: 20) { i, _ in ImageOps.solarize(i, threshold: 0) }, pixels.map { 255 - $0 })
    }

    /// AugMix's mixture: the float32 weighted sum of the original and the chains, truncated.
    func testAugMixMixingEqualsTorchvision() throws {
        let photo = try XCTUnwrap(fixture.images["photo"])
        let count = photo.width * photo.height * 3
        var mix = [Float](repeating: 0, count: count)
        let got = withImage(bytes(hex: photo.hex), width: photo.width, height: photo.height) { image, _ in
            mix.withUnsafeMutableBufferPointer { m in
                AutoAugmentation.startMix(image, weight: Float(fixture.mix.original), into: m.baseAddress!)
                for (k, chainHex) in fixture.mix.chains.enumerated() {
                    _ = withImage(bytes(hex: chainHex), width: photo.width, height: photo.height) { chain, _ in
                        AutoAugmentation.addToMix(chain, weight: Float(fixture.mix.weights[k]), into: m.baseAddress!)
                    }
                }
                AutoAugmentation.truncate(m.baseAddress!, into: image)
            }
        }
        XCTAssertEqual(got, bytes(hex: fixture.mix.hex))
    }

    /// Normalize then `F.erase(i, j, h, w, 0)`, as torchvision computes them.
    func testNormalizeAndEraseEqualTorchvision() throws {
        let photo = try XCTUnwrap(fixture.images["photo"])
        let e = fixture.erase
        var out = [Float](repeating: .nan, count: photo.width * photo.height * 3)
        let mean = e.mean, std = e.std
        _ = withImage(bytes(hex: photo.hex), width: photo.width, height: photo.height) { image, _ in
            out.withUnsafeMutableBufferPointer { o in
                ImageTransform.normalize(image, scale: (1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2])),
                                         bias: (-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]), into: o.baseAddress!)
                RandomErasing(probability: 1).erase(CropBox(top: e.i, left: e.j, height: e.h, width: e.w), in: o.baseAddress!,
                                                   width: photo.width, height: photo.height)
            }
        }
        XCTAssertEqual(out.count, e.values.count)
        var zeros = 0
        for k in out.indices {
            XCTAssertEqual(out[k], e.values[k], accuracy: 2e-6, "value \(k)")
            if out[k] == 0 { zeros += 1 }
        }
        XCTAssertEqual(zeros, e.h * e.w * 3)
    }
}

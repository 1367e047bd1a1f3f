import Foundation
import XCTest
@testable import DTrainData

final class CodecTests: XCTestCase {
    func testJPEGRoundTripIsClose() throws {
        let image = smoothImage(width: 64, height: 48)
        let data = JPEGCodec.encode(image, quality: 95)
        XCTAssertEqual(ImageCodec.format(of: data), .jpeg)
        let decoded = try ImageCodec.decode(data, path: "smooth.jpg")
        XCTAssertEqual(decoded.width, 64)
        XCTAssertEqual(decoded.height, 48)
        XCTAssertLessThan(meanAbsoluteError(decoded.pixels, image.pixels), 3)
    }

    func testScaledSizeRule() {
        // 512x384 for 96: 1/4 gives 128x96 (both >= 96); 1/8 gives 64x48 (too small).
        XCTAssertTrue(JPEGCodec.scaledSize(width: 512, height: 384, targetSize: 96) == (128, 96))
        XCTAssertTrue(JPEGCodec.scaledSize(width: 512, height: 384, targetSize: 97) == (256, 192))
        XCTAssertTrue(JPEGCodec.scaledSize(width: 512, height: 384, targetSize: 193) == (512, 384))
        XCTAssertTrue(JPEGCodec.scaledSize(width: 512, height: 384, targetSize: nil) == (512, 384))
        XCTAssertTrue(JPEGCodec.scaledSize(width: 4000, height: 3000, targetSize: 224) == (500, 375))
        // Scaled sides round up, as TurboJPEG's TJSCALED does.
        XCTAssertTrue(JPEGCodec.scaledSize(width: 500, height: 375, targetSize: 94) == (125, 94))
        XCTAssertTrue(JPEGCodec.scaledSize(width: 10, height: 10, targetSize: 224) == (10, 10))
    }

    func testJPEGDecodesDCTScaled() throws {
        let image = smoothImage(width: 512, height: 384)
        let data = JPEGCodec.encode(image, quality: 95)
        let decoded = try ImageCodec.decode(data, path: "big.jpg", targetSize: 96)
        XCTAssertEqual(decoded.width, 128)
        XCTAssertEqual(decoded.height, 96)
        // Compare against a box-downscaled original: DCT scaling averages 4x4 blocks.
        var reference = [UInt8](repeating: 0, count: 128 * 96 * 3)
        for y in 0..<96 {
            for x in 0..<128 {
                for c in 0..<3 {
                    var sum = 0
                    for dy in 0..<4 { for dx in 0..<4 { sum += Int(image.pixels[3 * ((4 * y + dy) * 512 + 4 * x + dx) + c]) } }
                    reference[3 * (y * 128 + x) + c] = UInt8((sum + 8) / 16)
                }
            }
        }
        XCTAssertLessThan(meanAbsoluteError(decoded.pixels, reference), 3)
        let half = try ImageCodec.decode(data, path: "big.jpg", targetSize: 150)
        XCTAssertEqual(half.width, 256)
        XCTAssertEqual(half.height, 192)
    }

    func testLargeJPEGTakesTheEighthPath() throws {
        // A cheap pattern: horizontal bands.
        let width = 4000, height = 3000
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let v = UInt8(y * 255 / (height - 1))
            for x in 0..<width { pixels[3 * (y * width + x)] = v; pixels[3 * (y * width + x) + 2] = 255 - v }
        }
        let data = JPEGCodec.encode(DecodedImage(width: width, height: height, pixels: pixels), quality: 80)
        let scaled = try ImageCodec.decode(data, path: "huge.jpg", targetSize: 224)
        XCTAssertEqual(scaled.width, 500)
        XCTAssertEqual(scaled.height, 375)
        let full = try ImageCodec.decode(data, path: "huge.jpg")
        XCTAssertEqual(full.width, 4000)
        XCTAssertEqual(full.height, 3000)
    }

    func testOnePixelImagesDecode() throws {
        let pixel = DecodedImage(width: 1, height: 1, pixels: [200, 100, 50])
        let jpeg = try ImageCodec.decode(JPEGCodec.encode(pixel, quality: 100), path: "1.jpg", targetSize: 224)
        XCTAssertEqual(jpeg.width, 1)
        XCTAssertEqual(jpeg.height, 1)
        XCTAssertLessThan(meanAbsoluteError(jpeg.pixels, pixel.pixels), 4)
        let png = try ImageCodec.decode(PNGCodec.encode(pixel), path: "1.png")
        XCTAssertEqual(png.pixels, pixel.pixels)
    }

    func testPNGRoundTripIsExact() throws {
        let image = smoothImage(width: 33, height: 17)
        let data = PNGCodec.encode(image)
        XCTAssertEqual(ImageCodec.format(of: data), .png)
        let decoded = try ImageCodec.decode(data, path: "smooth.png", targetSize: 8)
        XCTAssertEqual(decoded.width, 33)
        XCTAssertEqual(decoded.height, 17)
        XCTAssertEqual(decoded.pixels, image.pixels)
    }

    /// Every PNG variant decodes to what Pillow's convert("RGB") gives (alpha dropped).
    func testPNGVariantsMatchPillow() throws {
        let expected = try fixtureExpectations()
        for name in ["rgb8.png", "gray8.png", "graya8.png", "rgba8.png", "palette.png", "palette_trns.png",
                     "gray16.png", "rgb16.png", "rgba16.png"] {
            let want = try XCTUnwrap(expected[name], name)
            let got = try ImageCodec.decode(fixtureData(name), path: name)
            XCTAssertEqual(got.width, want.width, name)
            XCTAssertEqual(got.height, want.height, name)
            let worst = zip(got.pixels, want.rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, name.contains("16") ? 1 : 0, "\(name): \(got.pixels) vs \(want.rgb)")
        }
    }

    func testGreyAndCMYKJPEGsComeOutRGBLikePillow() throws {
        let expected = try fixtureExpectations()
        for name in ["gray.jpg", "cmyk.jpg"] {
            let want = try XCTUnwrap(expected[name], name)
            let got = try ImageCodec.decode(fixtureData(name), path: name)
            XCTAssertEqual(got.width, want.width, name)
            XCTAssertEqual(got.height, want.height, name)
            XCTAssertLessThan(meanAbsoluteError(got.pixels, want.rgb), 1.5, "\(name): \(Array(got.pixels.prefix(12))) vs \(Array(want.rgb.prefix(12)))")
        }
    }

    func testBadFilesThrowDataError() throws {
        assertDataError("empty file") { try ImageCodec.decode(Data(), path: "empty.jpg") }
        assertDataError("not a JPEG or PNG image") { try ImageCodec.decode(Data("hello, world\n".utf8), path: "text.jpg") }
        assertDataError("unsupported image format (BMP)") { try ImageCodec.decode(Data("BM\u{0}\u{0}\u{0}\u{0}".utf8), path: "a.bmp") }
        let jpeg = JPEGCodec.encode(smoothImage(width: 256, height: 256), quality: 90)
        for cut in [3, 20, jpeg.count / 2, jpeg.count - 2] {
            assertDataError("JPEG") { try ImageCodec.decode(jpeg.prefix(cut), path: "cut\(cut).jpg") }
        }
        assertDataError("truncated or corrupt JPEG") { try ImageCodec.decode(jpeg.prefix(jpeg.count / 2), path: "half.jpg") }
        // A PNG cut anywhere before the end of its image data fails; one missing only its IEND
        // chunk decodes, as it does with PIL.
        let png = PNGCodec.encode(smoothImage(width: 64, height: 64))
        XCTAssertNoThrow(try ImageCodec.decode(png.prefix(png.count - 12), path: "noend.png"))
        for cut in [4, 20, png.count / 2, png.count - 20] {
            assertDataError("PNG") { try ImageCodec.decode(png.prefix(cut), path: "cut\(cut).png") }
        }
        var corrupted = jpeg
        for i in stride(from: jpeg.count / 3, to: jpeg.count - 2, by: 7) { corrupted[i] = 0xFF }
        // Corrupt entropy data must not crash; it either throws or gives an image of the right size.
        if let image = try? ImageCodec.decode(corrupted, path: "corrupt.jpg") {
            XCTAssertEqual(image.pixels.count, 256 * 256 * 3)
        }
    }

    /// A failed decode must not spoil the next one on the same thread (decompressors are reused).
    func testDecoderRecoversAfterErrors() throws {
        let good = JPEGCodec.encode(smoothImage(width: 64, height: 48), quality: 90)
        let reference = try ImageCodec.decode(good, path: "good.jpg")
        var badHeader = good.prefix(200)
        badHeader[badHeader.startIndex + 3] = 0x00
        for bad in [good.prefix(30), good.prefix(good.count / 2), badHeader, Data([0xFF, 0xD8, 0xFF, 0xFF, 0xFF])] {
            XCTAssertThrowsError(try ImageCodec.decode(bad, path: "bad.jpg"))
            XCTAssertEqual(try ImageCodec.decode(good, path: "good.jpg").pixels, reference.pixels)
            XCTAssertEqual(try ImageCodec.decode(good, path: "good.jpg", targetSize: 20).width, 32)
        }
    }

    /// libjpeg warnings other than truncation are accepted, as PIL accepts such files.
    func testHarmlessJPEGWarningIsAccepted() throws {
        let image = smoothImage(width: 40, height: 24)
        let clean = JPEGCodec.encode(image, quality: 95)
        // Garbage between the entropy-coded data and the end-of-image marker: libjpeg warns
        // "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9".
        let padded = clean.prefix(clean.count - 2) + Data([0x12, 0x34, 0x56, 0xFF, 0xD9])
        let decoded = try ImageCodec.decode(padded, path: "padded.jpg")
        XCTAssertEqual(decoded.pixels, try ImageCodec.decode(clean, path: "clean.jpg").pixels)
        // Trailing bytes after the end-of-image marker are ignored.
        XCTAssertNoThrow(try ImageCodec.decode(clean + Data(repeating: 0, count: 100), path: "trailing.jpg"))
    }

    func testAbsurdDimensionsAreRejectedBeforeDecoding() throws {
        // A PNG header claiming 20000x20000 (400 megapixels); the data after it does not matter.
        var png = PNGCodec.encode(DecodedImage(width: 1, height: 1, pixels: [0, 0, 0]))
        png.replaceSubrange(16..<24, with: [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20])
        // Fix the IHDR CRC so libpng reads the header.
        let crc = crc32(Array(png[12..<29]))
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        assertDataError("too large") { try ImageCodec.decode(png, path: "huge.png") }
    }

    func testDecodeFileReportsMissingFiles() {
        assertDataError("cannot read") { try ImageCodec.decodeFile(atPath: "/nonexistent/dtrain/x.jpg") }
    }

    func testConcurrentDecodesAgree() throws {
        let data = JPEGCodec.encode(smoothImage(width: 96, height: 80), quality: 90)
        let reference = try ImageCodec.decode(data, path: "a.jpg")
        let mismatches = NSLock()
        var bad = 0
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            let image = try? ImageCodec.decode(data, path: "a.jpg", targetSize: i % 2 == 0 ? nil : 40)
            let ok = i % 2 == 0 ? image?.pixels == reference.pixels : image?.width == 48
            if !ok { mismatches.lock(); bad += 1; mismatches.unlock() }
        }
        XCTAssertEqual(bad, 0)
    }
}

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}

import XCTest
import DTrainCore
@testable import DTrainData

/// Resampling against PIL 13's `Image.resize(..., BILINEAR)` and torchvision 0.29's
/// `Resize`/`CenterCrop` (values generated once with Python). dtrain computes PIL's fixed-point
/// arithmetic with its 8-bit rounding after each pass, so the values are equal.
final class ResampleReferenceTests: XCTestCase {
    /// 37x23 -> 11x7 (antialiased downscale).
    static let down: [UInt8] = [
        113, 128, 136, 122, 118, 126, 125, 112, 126, 136, 132, 133, 135, 113, 122, 145, 124, 124, 122, 124, 131, 130, 133, 120,
        125, 134, 116, 124, 145, 124, 135, 127, 117, 112, 137, 120, 120, 116, 124, 136, 120, 127, 140, 130, 141, 139, 133, 132,
        134, 129, 129, 136, 138, 132, 116, 130, 138, 140, 128, 129, 125, 133, 130, 137, 139, 135, 118, 129, 141, 125, 121, 113,
        136, 129, 132, 122, 133, 143, 128, 146, 110, 146, 119, 112, 124, 135, 131, 131, 135, 135, 154, 130, 133, 123, 121, 145,
        118, 139, 137, 133, 129, 120, 116, 151, 86, 126, 142, 108, 122, 129, 144, 142, 125, 111, 116, 146, 118, 98, 144, 123,
        115, 128, 147, 154, 136, 123, 109, 127, 138, 123, 103, 138, 125, 137, 129, 120, 153, 114, 115, 132, 136, 94, 129, 141,
        119, 128, 136, 125, 133, 125, 114, 137, 115, 145, 142, 102, 152, 124, 107, 126, 125, 124, 123, 126, 127, 117, 138, 143,
        131, 138, 121, 107, 116, 132, 118, 136, 131, 130, 119, 123, 123, 140, 121, 128, 126, 137, 126, 136, 131, 143, 116, 116,
        128, 125, 137, 116, 120, 122, 127, 129, 134, 131, 128, 138, 132, 102, 117, 119, 115, 134, 132, 109, 121, 125, 137, 137,
        140, 124, 123, 118, 128, 146, 135, 120, 135, 126, 122, 142, 132, 118, 115,
    ]
    /// 7x5 -> 16x12 (upscale).
    static let up: [UInt8] = [
        0, 53, 106, 6, 59, 112, 22, 75, 128, 38, 91, 144, 54, 107, 160, 71, 124, 177, 87, 140, 193, 103, 156, 209,
        119, 172, 225, 135, 188, 241, 151, 204, 233, 168, 221, 138, 184, 237, 42, 200, 149, 50, 216, 53, 66, 222, 19, 72,
        11, 64, 117, 18, 71, 124, 34, 87, 140, 50, 103, 155, 66, 119, 157, 84, 137, 161, 100, 142, 174, 116, 144, 190,
        125, 153, 206, 128, 170, 223, 133, 186, 218, 150, 203, 137, 167, 220, 56, 183, 145, 65, 199, 63, 81, 205, 34, 87,
        49, 102, 155, 56, 109, 162, 73, 126, 179, 90, 143, 192, 108, 161, 149, 125, 178, 105, 142, 148, 110, 160, 105, 127,
        147, 91, 144, 104, 109, 162, 73, 126, 168, 91, 144, 134, 108, 161, 101, 125, 131, 114, 142, 96, 131, 149, 85, 138,
        87, 140, 193, 94, 147, 200, 112, 165, 218, 130, 183, 228, 149, 202, 140, 167, 220, 51, 185, 153, 45, 204, 65, 64,
        168, 29, 82, 79, 48, 101, 13, 66, 118, 31, 84, 131, 50, 103, 145, 68, 116, 163, 86, 130, 181, 93, 135, 188,
        125, 178, 135, 132, 170, 142, 151, 147, 161, 167, 127, 175, 145, 147, 125, 122, 166, 74, 132, 130, 78, 151, 79, 97,
        135, 63, 116, 85, 83, 136, 49, 102, 146, 68, 121, 123, 88, 141, 101, 106, 120, 116, 125, 97, 135, 132, 89, 142,
        163, 216, 66, 170, 191, 73, 190, 123, 94, 204, 60, 112, 136, 81, 109, 67, 101, 106, 68, 103, 121, 88, 100, 141,
        96, 108, 161, 94, 128, 181, 95, 148, 182, 115, 168, 114, 136, 189, 45, 155, 126, 59, 176, 58, 79, 183, 33, 86,
        148, 201, 51, 155, 176, 58, 176, 109, 80, 191, 47, 100, 123, 68, 121, 56, 90, 143, 57, 110, 145, 79, 132, 143,
        99, 141, 152, 121, 139, 173, 136, 141, 175, 134, 162, 108, 132, 184, 40, 166, 115, 47, 203, 40, 61, 215, 12, 65,
        79, 132, 89, 87, 125, 97, 109, 105, 119, 128, 88, 141, 107, 109, 162, 88, 132, 185, 100, 153, 151, 123, 176, 104,
        144, 162, 90, 166, 114, 112, 173, 81, 125, 125, 103, 105, 77, 125, 85, 138, 87, 83, 206, 43, 81, 231, 28, 81,
        21, 74, 127, 29, 82, 133, 52, 105, 152, 75, 128, 170, 97, 145, 192, 120, 164, 216, 140, 186, 154, 158, 209, 70,
        178, 177, 38, 201, 93, 62, 201, 31, 84, 115, 53, 106, 28, 73, 126, 110, 64, 117, 204, 50, 103, 238, 46, 99,
        59, 112, 165, 67, 120, 155, 91, 144, 127, 115, 164, 104, 138, 136, 127, 162, 109, 151, 146, 122, 127, 118, 146, 90,
        116, 138, 83, 140, 102, 107, 147, 74, 127, 93, 81, 134, 39, 88, 141, 95, 92, 145, 159, 95, 148, 182, 96, 149,
        97, 150, 203, 106, 159, 177, 130, 183, 103, 155, 201, 37, 180, 128, 62, 204, 54, 86, 152, 58, 100, 79, 83, 111,
        54, 100, 128, 78, 110, 152, 93, 117, 170, 72, 110, 163, 50, 102, 155, 80, 120, 173, 114, 140, 193, 126, 147, 200,
        108, 161, 214, 117, 170, 183, 142, 195, 96, 167, 212, 17, 192, 125, 42, 217, 38, 67, 154, 39, 92, 67, 64, 117,
        35, 88, 141, 60, 113, 166, 77, 130, 183, 65, 118, 171, 53, 106, 159, 75, 128, 181, 100, 153, 206, 109, 162, 215,
    ]
    /// 40x30, crop (left 5, top 3, right 33, bottom 24) -> 9x13.
    static let cropped: [UInt8] = [
        121, 106, 131, 167, 150, 125, 130, 102, 138, 147, 156, 133, 142, 130, 127, 133, 159, 144, 112, 106, 117, 111, 139, 149,
        137, 139, 111, 140, 98, 100, 127, 136, 148, 150, 127, 131, 128, 116, 130, 136, 128, 127, 136, 119, 127, 117, 140, 151,
        159, 116, 120, 115, 127, 150, 106, 114, 144, 127, 134, 136, 134, 136, 151, 159, 155, 105, 128, 114, 127, 135, 160, 139,
        117, 130, 141, 150, 139, 141, 155, 95, 118, 152, 110, 123, 121, 142, 147, 122, 131, 132, 113, 144, 108, 166, 108, 105,
        118, 126, 134, 148, 144, 124, 160, 115, 132, 123, 113, 165, 119, 151, 79, 149, 133, 128, 115, 136, 126, 133, 134, 93,
        129, 137, 120, 98, 140, 112, 117, 115, 153, 152, 170, 122, 109, 111, 134, 85, 134, 94, 128, 165, 128, 142, 107, 137,
        138, 152, 119, 105, 158, 112, 94, 147, 135, 111, 129, 161, 160, 127, 131, 101, 151, 130, 140, 173, 67, 117, 141, 126,
        112, 102, 137, 126, 98, 113, 112, 135, 142, 95, 146, 99, 102, 140, 105, 157, 116, 97, 110, 140, 139, 95, 140, 153,
        109, 121, 160, 73, 125, 149, 119, 160, 153, 131, 122, 132, 121, 149, 115, 184, 140, 91, 150, 137, 113, 154, 126, 97,
        148, 137, 89, 84, 113, 152, 139, 166, 126, 118, 126, 118, 150, 158, 84, 123, 105, 129, 139, 149, 133, 160, 109, 91,
        110, 119, 146, 123, 132, 139, 107, 117, 130, 132, 144, 129, 120, 96, 120, 110, 125, 131, 124, 130, 134, 111, 124, 133,
        146, 118, 115, 122, 121, 143, 128, 97, 115, 94, 108, 120, 133, 95, 110, 121, 133, 148, 144, 154, 148, 129, 139, 157,
        133, 149, 128, 124, 131, 144, 137, 151, 136, 149, 123, 124, 131, 92, 114, 123, 127, 141, 126, 101, 113, 127, 129, 125,
        149, 120, 104, 112, 118, 153, 141, 122, 132, 121, 106, 138, 115, 104, 111, 127, 129, 150, 156, 111, 132, 129, 148, 139,
        120, 126, 116, 110, 124, 129, 127, 95, 142, 129, 115, 154, 164, 126, 142,
    ]
    /// torchvision Resize(9) + CenterCrop(8) of 37x23.
    static let resizeCrop: [UInt8] = [
        121, 109, 126, 134, 143, 134, 136, 115, 109, 146, 100, 127, 138, 131, 122, 117, 117, 125, 135, 134, 120, 132, 141, 109,
        136, 133, 131, 147, 123, 139, 131, 129, 138, 139, 133, 131, 140, 136, 136, 130, 140, 133, 117, 124, 127, 124, 127, 130,
        126, 139, 146, 133, 128, 141, 141, 139, 135, 144, 128, 105, 124, 118, 130, 133, 145, 141, 116, 137, 142, 151, 124, 138,
        137, 139, 130, 113, 130, 145, 120, 152, 108, 137, 132, 98, 157, 111, 120, 112, 140, 123, 136, 128, 134, 153, 142, 131,
        136, 147, 123, 120, 124, 150, 162, 119, 111, 109, 146, 116, 113, 154, 119, 90, 141, 126, 109, 128, 165, 166, 131, 121,
        122, 137, 137, 84, 123, 138, 120, 106, 139, 115, 136, 129, 119, 125, 138, 101, 149, 99, 135, 141, 95, 154, 124, 103,
        94, 107, 149, 111, 151, 144, 133, 144, 122, 113, 136, 117, 152, 137, 104, 116, 122, 127, 142, 139, 129, 163, 128, 97,
        100, 112, 125, 116, 123, 126, 141, 111, 118, 111, 121, 143, 134, 143, 140, 124, 133, 142, 120, 137, 131, 138, 134, 127,
    ]

    /// Runs `plan` with no normalisation (values stay in 0...255).
    func run(_ plan: ResamplePlan, _ image: DecodedImage) -> [Float] {
        let out = Storage(count: plan.outputWidth * plan.outputHeight * 3)
        plan.execute(image, scale: (1, 1, 1), bias: (0, 0, 0), into: out.pointer, scratch: ResampleScratch())
        return Array(out.buffer)
    }

    func assertClose(_ got: [Float], _ expected: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, file: file, line: line)
        var worst: Float = 0
        for (g, e) in zip(got, expected) { worst = max(worst, abs(g - Float(e))) }
        XCTAssertEqual(worst, 0, "largest difference to PIL", file: file, line: line)
    }

    func testDownscaleMatchesPIL() {
        let plan = ResamplePlan(x: .init(sourceStart: 0, sourceLength: 37, resizedLength: 11),
                                y: .init(sourceStart: 0, sourceLength: 23, resizedLength: 7), outputWidth: 11, outputHeight: 7)
        assertClose(run(plan, referencePattern(width: 37, height: 23)), Self.down)
    }

    func testUpscaleMatchesPIL() {
        let plan = ResamplePlan(x: .init(sourceStart: 0, sourceLength: 7, resizedLength: 16),
                                y: .init(sourceStart: 0, sourceLength: 5, resizedLength: 12), outputWidth: 16, outputHeight: 12)
        assertClose(run(plan, referencePattern(width: 7, height: 5)), Self.up)
    }

    func testCropThenResizeMatchesPIL() {
        let plan = ResamplePlan(x: .init(sourceStart: 5, sourceLength: 28, resizedLength: 9),
                                y: .init(sourceStart: 3, sourceLength: 21, resizedLength: 13), outputWidth: 9, outputHeight: 13)
        assertClose(run(plan, referencePattern(width: 40, height: 30)), Self.cropped)
    }

    func testResizeCenterCropMatchesTorchvision() {
        let plan = ImageTransform.resizeCenterCropPlan(width: 37, height: 23, resize: 9, crop: 8)
        XCTAssertEqual(plan.x.resizedLength, 14)
        XCTAssertEqual(plan.y.resizedLength, 9)
        XCTAssertEqual(plan.x.offset, 3)
        XCTAssertEqual(plan.y.offset, 0) // round(0.5) == 0, half to even
        assertClose(run(plan, referencePattern(width: 37, height: 23)), Self.resizeCrop)
    }

    /// The fused, four-pixels-at-a-time `execute` equals a direct evaluation of PIL's separable
    /// fixed-point filter (clip8(½ + Σy wy · clip8(½ + Σx wx · pixel)), then scale and bias,
    /// padding = 0, flip after the crop) for random windows, sizes, offsets, padding, flips and
    /// both filters.
    func testExecuteEqualsDirectEvaluation() {
        var random = SeededRandom(keys: 99)
        let scratch = ResampleScratch()
        for trial in 0..<300 {
            let width = 1 + random.int(below: 60), height = 1 + random.int(below: 50)
            func axis(_ length: Int) -> ResamplePlan.Axis {
                let start = random.int(below: length), sourceLength = 1 + random.int(below: length - start)
                let resized = 1 + random.int(below: 48)
                let offset = random.int(below: 3) == 0 ? random.int(below: 9) - 4 : 0
                let lo = random.int(below: 3) == 0 ? random.int(below: 5) : 0
                let hi = max(lo, random.int(below: 3) == 0 ? resized - random.int(below: 5) : resized)
                return ResamplePlan.Axis(sourceStart: start, sourceLength: sourceLength, resizedLength: resized, offset: offset, valid: lo..<hi)
            }
            let plan = ResamplePlan(x: axis(width), y: axis(height), outputWidth: 1 + random.int(below: 41),
                                    outputHeight: 1 + random.int(below: 33), flip: random.int(below: 2) == 1,
                                    interpolation: random.int(below: 2) == 1 ? .bicubic : .bilinear)
            let image = referencePattern(width: width, height: height)
            let scale: (Float, Float, Float) = (Float(random.uniform(0.001, 0.02)), Float(random.uniform(0.001, 0.02)), Float(random.uniform(0.001, 0.02)))
            let bias: (Float, Float, Float) = (Float(random.uniform(-2, 2)), Float(random.uniform(-2, 2)), Float(random.uniform(-2, 2)))
            let out = Storage(count: plan.outputWidth * plan.outputHeight * 3)
            plan.execute(image, scale: scale, bias: bias, into: out.pointer, scratch: scratch)

            // The taps, from a separate scratch.
            let sx = GrowableBuffer<Int32>(), cx = GrowableBuffer<Int32>(), wx = GrowableBuffer<Int32>()
            let sy = GrowableBuffer<Int32>(), cy = GrowableBuffer<Int32>(), wy = GrowableBuffer<Int32>()
            let kx = computeTaps(plan.x, interpolation: plan.interpolation, outputCount: plan.outputWidth, starts: sx, counts: cx, weights: wx)
            let ky = computeTaps(plan.y, interpolation: plan.interpolation, outputCount: plan.outputHeight, starts: sy, counts: cy, weights: wy)
            let half = 1 << 21
            var worst = 0.0
            for oy in 0..<plan.outputHeight {
                for ox in 0..<plan.outputWidth {
                    let k = plan.flip ? plan.outputWidth - 1 - ox : ox
                    for c in 0..<3 {
                        var sum = half
                        for ty in 0..<Int(cy.pointer![oy]) {
                            var row = half
                            for tx in 0..<Int(cx.pointer![k]) {
                                let pixel = image.pixels[((Int(sy.pointer![oy]) + ty) * width + Int(sx.pointer![k]) + tx) * 3 + c]
                                row += Int(wx.pointer![k * kx + tx]) * Int(pixel)
                            }
                            sum += Int(wy.pointer![oy * ky + ty]) * min(max(row >> 22, 0), 255)
                        }
                        let value = cy.pointer![oy] == 0 ? 0 : min(max(sum >> 22, 0), 255)
                        let s = [scale.0, scale.1, scale.2][c], b = [bias.0, bias.1, bias.2][c]
                        let expected = Double(Float(value) * s + b)
                        worst = max(worst, abs(Double(out.pointer[(oy * plan.outputWidth + ox) * 3 + c]) - expected))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-6, "trial \(trial): \(plan)")
        }
    }
}

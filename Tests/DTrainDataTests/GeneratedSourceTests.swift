import Foundation
import XCTest
@testable import DTrainData

final class DigitsTests: XCTestCase {
    func testDigitsDataset() throws {
        let all = DigitsSource(split: nil)
        XCTAssertEqual(all.count, 1797)
        XCTAssertEqual(all.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
        var perClass = [Int](repeating: 0, count: 10)
        for i in 0..<all.count { perClass[all.label(i)] += 1 }
        // scikit-learn's digits: 174 to 183 samples per class.
        XCTAssertEqual(perClass, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])

        // The first row of digits.csv.gz, a "0".
        XCTAssertEqual(all.label(0), 0)
        XCTAssertEqual(all.rawPixels(0), [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
                                          0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
                                          0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0])
        XCTAssertEqual(all.label(1), 1)

        let image = try all.image(at: 0, targetSize: nil)
        XCTAssertEqual(image.width, 32)
        XCTAssertEqual(image.height, 32)
        // Grey: R = G = B everywhere.
        for p in 0..<(32 * 32) {
            XCTAssertEqual(image.pixels[3 * p], image.pixels[3 * p + 1])
            XCTAssertEqual(image.pixels[3 * p], image.pixels[3 * p + 2])
        }
        // torch.nn.functional.interpolate(x * 255 / 16, size=32, mode="bilinear",
        // align_corners=False) of the first sample, rounded: its row 4 and its sum.
        XCTAssertEqual((0..<32).map { Int(image.pixels[3 * (4 * 32 + $0)]) },
                       [0, 0, 0, 0, 0, 0, 20, 60, 100, 139, 168, 185, 202, 219, 218, 199,
                        181, 163, 154, 154, 155, 155, 142, 116, 89, 63, 44, 31, 19, 6, 0, 0])
        XCTAssertEqual((0..<(32 * 32)).reduce(0) { $0 + Int(image.pixels[3 * $1]) }, 74969)

        let train = DigitsSource(split: .train), val = DigitsSource(split: .val)
        XCTAssertEqual(train.count, 1433)
        XCTAssertEqual(val.count, 364)
        // The first sample of each class is held out; the 2nd to 5th "0" train.
        XCTAssertEqual((0..<10).map(val.label), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(val.rawPixels(0), all.rawPixels(0))
        XCTAssertEqual(train.label(0), all.label(10))
        var valPerClass = [Int](repeating: 0, count: 10)
        for i in 0..<val.count { valPerClass[val.label(i)] += 1 }
        XCTAssertEqual(valPerClass, [36, 37, 36, 37, 37, 37, 37, 36, 35, 36])
        let trainImages = Set((0..<train.count).map(train.rawPixels)), valImages = (0..<val.count).map(val.rawPixels)
        XCTAssertEqual(valImages.filter(trainImages.contains).count, 0)
        // The factory opens digits when given no path.
        XCTAssertEqual(try DataSourceFactory.open(path: nil, dataset: nil, split: .val).count, 364)
    }
}

final class SyntheticTests: XCTestCase {
    func testDeterministicLabelledImages() throws {
        let source = SyntheticSource(count: 50, classes: 10, resolution: 48, seed: 3)
        XCTAssertEqual(source.classNames, ["0-circle", "1-square", "2-triangle", "3-plus", "4-ring",
                                           "5-diamond", "6-stripes", "7-checker", "8-cross", "9-crescent"])
        XCTAssertEqual(Set((0..<50).map(source.label)), Set(0..<10))
        let again = SyntheticSource(count: 50, classes: 10, resolution: 48, seed: 3)
        for i in [0, 7, 49] {
            let a = try source.image(at: i, targetSize: nil)
            XCTAssertEqual(a.width, 48)
            XCTAssertEqual(a.height, 48)
            XCTAssertEqual(a.pixels, try again.image(at: i, targetSize: 224).pixels)
        }
        XCTAssertNotEqual(try source.image(at: 0, targetSize: nil).pixels, try source.image(at: 10, targetSize: nil).pixels)
        let otherSeed = SyntheticSource(count: 50, classes: 10, resolution: 48, seed: 4)
        XCTAssertNotEqual(try source.image(at: 0, targetSize: nil).pixels, try otherSeed.image(at: 0, targetSize: nil).pixels)
        // Concurrent calls agree with serial ones.
        let reference = try (0..<20).map { try source.image(at: $0, targetSize: nil).pixels }
        let lock = NSLock()
        var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 20) { i in
            if (try? source.image(at: i, targetSize: nil).pixels) != reference[i] { lock.lock(); mismatches += 1; lock.unlock() }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testManyClassesAndResolutions() throws {
        let source = SyntheticSource(count: 1000, classes: 100, resolution: 224)
        XCTAssertEqual(source.classNames[8], "08-cross")
        XCTAssertEqual(source.classNames[99], "99-crescent")
        XCTAssertEqual(source.classNames, source.classNames.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let image = try source.image(at: 999, targetSize: nil)
        XCTAssertEqual(image.width, 224)
        XCTAssertEqual(source.label(999), 99)
        // The shape is drawn: the image is not one flat colour plus noise.
        let mean = image.pixels.reduce(0) { $0 + Int($1) } / image.pixels.count
        XCTAssertGreaterThan(image.pixels.filter { abs(Int($0) - mean) > 60 }.count, 1000)
        let tiny = try SyntheticSource(count: 3, resolution: 1).image(at: 2, targetSize: nil)
        XCTAssertEqual(tiny.pixels.count, 3)
    }

    func testNonSquareImages() throws {
        let wide = SyntheticSource(count: 20, classes: 10, width: 50, height: 30, seed: 2)
        XCTAssertEqual(wide.resolution, 30)
        let image = try wide.image(at: 3, targetSize: nil)
        XCTAssertEqual(image.width, 50)
        XCTAssertEqual(image.height, 30)
        XCTAssertEqual(image.pixels, try wide.image(at: 3, targetSize: 8).pixels)
        let tall = try SyntheticSource(count: 20, width: 7, height: 40).image(at: 19, targetSize: nil)
        XCTAssertEqual(tall.width, 7)
        XCTAssertEqual(tall.height, 40)
        // A square source is the same whichever initializer made it.
        let square = SyntheticSource(count: 20, classes: 10, width: 33, height: 33, seed: 2)
        XCTAssertEqual(try square.image(at: 5, targetSize: nil).pixels,
                       try SyntheticSource(count: 20, classes: 10, resolution: 33, seed: 2).image(at: 5, targetSize: nil).pixels)
        // The shape is drawn inside a non-square image too: it differs from its background a lot.
        let big = try SyntheticSource(count: 10, width: 500, height: 375).image(at: 0, targetSize: nil)
        let mean = big.pixels.reduce(0) { $0 + Int($1) } / big.pixels.count
        XCTAssertGreaterThan(big.pixels.filter { abs(Int($0) - mean) > 60 }.count, 5000)
        // Through the factory, for both splits.
        let splits = try DataSourceFactory.openSplits(path: nil, dataset: .synthetic, syntheticSize: (width: 24, height: 18),
                                                      syntheticCount: 30)
        for source in [splits.train, splits.val!] {
            let i = try source.image(at: 0, targetSize: nil)
            XCTAssertEqual([i.width, i.height], [24, 18])
        }
        assertDataError("positive image size") {
            try DataSourceFactory.open(path: nil, dataset: .synthetic, split: .train, syntheticSize: (width: 0, height: 5))
        }
    }

    func testSyntheticThroughTheFactory() throws {
        let splits = try DataSourceFactory.openSplits(path: nil, dataset: .synthetic, resolution: 40, syntheticCount: 100, seed: 1)
        XCTAssertEqual(splits.train.count, 100)
        XCTAssertEqual(splits.val?.count, 20)
        XCTAssertNotEqual(try splits.train.image(at: 0, targetSize: nil).pixels, try splits.val!.image(at: 0, targetSize: nil).pixels)
        XCTAssertEqual(try splits.val!.image(at: 0, targetSize: nil).width, 40)
    }
}

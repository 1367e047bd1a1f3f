import XCTest
@testable import DTrainData

final class DatasetStatisticsTests: XCTestCase {
    func testExactPerPixelMeanAndStd() throws {
        let source = PatternSource(count: 9)
        var sum = [Double](repeating: 0, count: 3), squares = [Double](repeating: 0, count: 3)
        var pixels = 0
        for i in 0..<9 {
            let image = try source.image(at: i, targetSize: nil)
            pixels += image.width * image.height
            for (k, v) in image.pixels.enumerated() { let x = Double(v) / 255; sum[k % 3] += x; squares[k % 3] += x * x }
        }
        let stats = DatasetStatistics.compute(source: source, workers: 3)
        XCTAssertEqual(stats.images, 9)
        XCTAssertEqual(stats.pixels, pixels)
        for c in 0..<3 {
            let mean = sum[c] / Double(pixels)
            XCTAssertEqual(stats.mean[c], mean, accuracy: 1e-12)
            XCTAssertEqual(stats.std[c], (squares[c] / Double(pixels) - mean * mean).squareRoot(), accuracy: 1e-9)
        }
        let single = DatasetStatistics.compute(source: source, workers: 1)
        XCTAssertEqual(single.mean, stats.mean)
        XCTAssertEqual(single.std, stats.std)
    }

    func testLimitAndUnreadableSamples() {
        let source = FailingSource(base: PatternSource(count: 10), failing: [0])
        XCTAssertEqual(DatasetStatistics.compute(source: source, workers: 2).images, 9)
        XCTAssertEqual(DatasetStatistics.compute(source: source, limit: 5, workers: 2).images, 4) // 0, 2, 4, 6, 8
        let constant = DatasetStatistics.compute(source: ConstantSource(), workers: 2)
        XCTAssertEqual(constant.mean[0], 51.0 / 255, accuracy: 1e-12)
        XCTAssertEqual(constant.std[2], 0, accuracy: 1e-12)
    }

    func testLoaderBenchmarkCountsImages() {
        let result = LoaderBenchmark.run(source: PatternSource(count: 7), transform: Preset.cifar.train(resolution: 16),
                                         batchSize: 4, resolution: 16, workers: 2, batches: 5)
        XCTAssertEqual(result.images, 20)
        XCTAssertGreaterThan(result.imagesPerSecond, 0)
    }

    func testLoaderBenchmarkWarmupAndPasses() {
        let source = FailingSource(base: PatternSource(count: 7), failing: [2])
        let result = LoaderBenchmark.measure(source: source, transform: Preset.imagenet.train(resolution: 16), batchSize: 3,
                                             resolution: 16, workers: 2, batches: 2, passes: 3, warmupBatches: 1)
        XCTAssertEqual(result.passImagesPerSecond.count, 3)
        XCTAssertEqual(result.images, 18, "warm-up batch not timed")
        XCTAssertEqual(result.imagesPerSecond, result.passImagesPerSecond.sorted()[1])
        XCTAssertGreaterThan(result.seconds, 0)
        XCTAssertEqual(result.sourceImages, 7)
        // 21 samples wrap around the 7: index 2 is requested three times.
        XCTAssertEqual(result.replaced, 3)
        XCTAssertEqual(result.workers, 2)
    }
}

final class ConstantSource: DataSource, @unchecked Sendable {
    var count: Int { 3 }
    var classNames: [String] { ["a"] }
    func label(_ index: Int) -> Int { 0 }
    func sampleName(_ index: Int) -> String { "constant #\(index)" }
    func image(at index: Int, targetSize: Int?) throws -> DecodedImage { constantImage(width: 5, height: 4, rgb: (51, 0, 9)) }
}

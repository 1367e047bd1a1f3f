import Foundation
import XCTest
@testable import DTrainData

final class CIFARTests: XCTestCase {
    var tmp: TemporaryDirectory!

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    /// A record's planes: R[p] = p + seed, G[p] = 3p + seed, B[p] = 255 - p - seed (mod 256).
    func planes(seed: Int) -> [UInt8] {
        (0..<1024).map { UInt8(truncatingIfNeeded: $0 + seed) }
            + (0..<1024).map { UInt8(truncatingIfNeeded: 3 * $0 + seed) }
            + (0..<1024).map { UInt8(truncatingIfNeeded: 255 - $0 - seed) }
    }

    func assertPixels(_ image: DecodedImage, seed: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(image.width, 32, file: file, line: line)
        XCTAssertEqual(image.height, 32, file: file, line: line)
        for (x, y) in [(0, 0), (31, 0), (0, 31), (5, 7), (31, 31)] {
            let p = y * 32 + x, i = 3 * p
            XCTAssertEqual(image.pixels[i], UInt8(truncatingIfNeeded: p + seed), "R at (\(x),\(y))", file: file, line: line)
            XCTAssertEqual(image.pixels[i + 1], UInt8(truncatingIfNeeded: 3 * p + seed), "G at (\(x),\(y))", file: file, line: line)
            XCTAssertEqual(image.pixels[i + 2], UInt8(truncatingIfNeeded: 255 - p - seed), "B at (\(x),\(y))", file: file, line: line)
        }
    }

    func testCIFAR10Reader() throws {
        // Batch b holds b + 1 records; record r of batch b has label (3b + r) % 10 and seed 10b + r.
        var expectedLabels: [Int] = [], seeds: [Int] = []
        for b in 1...5 {
            var data = Data()
            for r in 0...b {
                data.append(UInt8((3 * b + r) % 10))
                data.append(contentsOf: planes(seed: 10 * b + r))
                expectedLabels.append((3 * b + r) % 10)
                seeds.append(10 * b + r)
            }
            try tmp.write(data, to: "cifar-10-batches-bin/data_batch_\(b).bin")
        }
        try tmp.write(Data([7] + planes(seed: 99) + [2] + planes(seed: 98)), to: "cifar-10-batches-bin/test_batch.bin")
        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        try tmp.write(Data((names.joined(separator: "\n") + "\n\n").utf8), to: "cifar-10-batches-bin/batches.meta.txt")

        // The parent directory works too.
        XCTAssertEqual(CIFARSource.detect(directory: tmp.path), .cifar10)
        XCTAssertEqual(try DataSourceFactory.detectKind(path: tmp.path), .cifar10)
        let train = try CIFARSource(directory: tmp.path, split: .train)
        XCTAssertEqual(train.variant, .cifar10)
        XCTAssertEqual(train.count, expectedLabels.count)
        XCTAssertEqual(train.classNames, names)
        XCTAssertEqual((0..<train.count).map(train.label), expectedLabels)
        for i in [0, 3, train.count - 1] { assertPixels(try train.image(at: i, targetSize: 8), seed: seeds[i]) }
        XCTAssertEqual(train.sampleName(3), "cifar10 train #3")

        let test = try DataSourceFactory.open(path: tmp.path + "/cifar-10-batches-bin", dataset: nil, split: .val)
        XCTAssertEqual(test.count, 2)
        XCTAssertEqual([test.label(0), test.label(1)], [7, 2])
        assertPixels(try test.image(at: 1, targetSize: nil), seed: 98)
        XCTAssertEqual(test.sampleName(1), "cifar10 test #1")
    }

    func testCIFAR100FineAndCoarseLabels() throws {
        var data = Data()
        for r in 0..<4 {
            data.append(UInt8(r * 5))        // coarse
            data.append(UInt8(r * 30 + 1))   // fine
            data.append(contentsOf: planes(seed: r))
        }
        try tmp.write(data, to: "c100/train.bin")
        try tmp.write(Data([19, 99] + planes(seed: 50)), to: "c100/test.bin")
        try tmp.write(Data((0..<100).map { "fine\($0)" }.joined(separator: "\n").utf8), to: "c100/fine_label_names.txt")
        try tmp.write(Data((0..<20).map { "coarse\($0)" }.joined(separator: "\n").utf8), to: "c100/coarse_label_names.txt")
        let dir = tmp.path + "/c100"
        XCTAssertEqual(try DataSourceFactory.detectKind(path: dir), .cifar100)

        let fine = try CIFARSource(directory: dir, split: .train)
        XCTAssertEqual(fine.variant, .cifar100)
        XCTAssertEqual(fine.classNames.count, 100)
        XCTAssertEqual((0..<4).map(fine.label), [1, 31, 61, 91])
        assertPixels(try fine.image(at: 2, targetSize: nil), seed: 2)

        let coarse = try CIFARSource(directory: dir, split: .train, coarseLabels: true)
        XCTAssertEqual(coarse.classNames.first, "coarse0")
        XCTAssertEqual((0..<4).map(coarse.label), [0, 5, 10, 15])

        let test = try CIFARSource(directory: dir, split: .val)
        XCTAssertEqual(test.label(0), 99)
        assertPixels(try test.image(at: 0, targetSize: nil), seed: 50)
    }

    func testCIFARErrors() throws {
        try tmp.write(Data(count: 3073 * 2 + 5), to: "bad/test_batch.bin")
        assertDataError("not a multiple of the 3073-byte cifar10 record") {
            try CIFARSource(directory: tmp.path + "/bad", split: .val)
        }
        assertDataError("missing cifar10 train file") { try CIFARSource(directory: tmp.path + "/bad", split: .train) }
        try tmp.write(Data([12] + planes(seed: 0)), to: "badlabel/test_batch.bin")
        assertDataError("record 0 has label 12 but there are only 10 classes") {
            try CIFARSource(directory: tmp.path + "/badlabel", split: .val)
        }
        try tmp.makeDirectory("nothing")
        assertDataError("no CIFAR binary files found") {
            try DataSourceFactory.open(path: tmp.path + "/nothing", dataset: .cifar100, split: .train)
        }
        assertDataError("validation fraction applies only to ImageFolder") {
            try DataSourceFactory.open(path: tmp.path + "/badlabel", dataset: nil, split: .train, valSplit: 0.1)
        }
    }
}

import Foundation
import XCTest
@testable import DTrainData

final class DatasetWriterTests: XCTestCase {
    var tmp: TemporaryDirectory!

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    func testSyntheticWrittenAndReadBack() throws {
        let train = SyntheticSource(count: 25, classes: 10, resolution: 40, seed: 5)
        let val = SyntheticSource(count: 10, classes: 10, resolution: 40, seed: 6)
        var calls = 0
        let written = try DatasetWriter.write(train, to: tmp.path + "/out/train", quality: 95) { done, total in
            XCTAssertEqual(total, 25)
            XCTAssertLessThanOrEqual(done, total)
            calls += 1
        }
        XCTAssertEqual(written.written, 25)
        XCTAssertTrue(written.skipped.isEmpty)
        XCTAssertGreaterThan(calls, 0)
        _ = try DatasetWriter.write(val, to: tmp.path + "/out/val", format: .png)

        let splits = try ImageFolderDataset.open(root: tmp.path + "/out")
        XCTAssertEqual(splits.train.classNames, train.classNames)
        XCTAssertEqual(splits.train.count, 25)
        // Files are named by zero-padded source index, so class-then-index order.
        XCTAssertTrue(splits.train.files[0].path.hasSuffix("/train/0-circle/00.jpg"))
        XCTAssertTrue(splits.train.files[1].path.hasSuffix("/train/0-circle/10.jpg"))
        for (i, f) in splits.train.files.enumerated() {
            let index = Int((f.path as NSString).lastPathComponent.dropLast(4))!
            XCTAssertEqual(f.label, train.label(index))
            if i % 6 == 0 {
                let back = try splits.train.image(at: i, targetSize: nil)
                // Loose: the synthetic pixel noise is what JPEG compresses worst.
                XCTAssertLessThan(meanAbsoluteError(back.pixels, try train.image(at: index, targetSize: nil).pixels), 12)
            }
        }
        // PNG is lossless.
        let v = try XCTUnwrap(splits.val)
        let index = Int((v.files[3].path as NSString).lastPathComponent.dropLast(4))!
        XCTAssertEqual(try v.image(at: 3, targetSize: nil).pixels, try val.image(at: index, targetSize: nil).pixels)
    }

    func testLimitAndRefusalToOverwrite() throws {
        let source = SyntheticSource(count: 100, classes: 10, resolution: 8)
        let result = try DatasetWriter.write(source, to: tmp.path + "/lim", limit: 4)
        XCTAssertEqual(result.written, 4)
        // Only classes with samples get folders.
        let folders = try FileManager.default.contentsOfDirectory(atPath: tmp.path + "/lim").sorted()
        XCTAssertEqual(folders, ["0-circle", "1-square", "2-triangle", "3-plus"])
        assertDataError("not empty; refusing to overwrite") { try DatasetWriter.write(source, to: self.tmp.path + "/lim") }
        try tmp.write(Data(), to: "file")
        assertDataError("not a directory") { try DatasetWriter.write(source, to: self.tmp.path + "/file") }
        XCTAssertEqual(DatasetWriter.folderName(forClass: "a/b"), "a_b")
        XCTAssertEqual(DatasetWriter.folderName(forClass: ".x"), "_.x")
        XCTAssertEqual(DatasetWriter.folderName(forClass: ""), "_")
    }

    func testLimitTakesClassesRoundRobin() throws {
        let source = LabelsOnlySource(labels: [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
        XCTAssertEqual(DatasetWriter.selection(source, limit: 3), [0, 4, 8])
        XCTAssertEqual(DatasetWriter.selection(source, limit: 7), [0, 1, 2, 4, 5, 8, 9])
        XCTAssertEqual(DatasetWriter.selection(source, limit: 99), Array(0..<10))
        let result = try DatasetWriter.write(source, to: tmp.path + "/rr", format: .png, limit: 4)
        XCTAssertEqual(result.written, 4)
        let back = try ImageFolderSource(root: tmp.path + "/rr")
        XCTAssertEqual(back.classNames, ["a", "b", "c"])
        XCTAssertEqual(back.files.map { ($0.path as NSString).lastPathComponent }, ["0.png", "1.png", "4.png", "8.png"])
    }

    func testUnreadableSamplesAreSkipped() throws {
        try tmp.write(PNGCodec.encode(DecodedImage(width: 1, height: 1, pixels: [1, 2, 3])), to: "src/a/good.png")
        try tmp.write(Data("not an image".utf8), to: "src/a/bad.jpg")
        try tmp.write(Data(), to: "src/b/empty.png")
        try tmp.write(PNGCodec.encode(DecodedImage(width: 1, height: 1, pixels: [4, 5, 6])), to: "src/b/fine.png")
        let source = try ImageFolderSource(root: tmp.path + "/src")
        let result = try DatasetWriter.write(source, to: tmp.path + "/dst", format: .png)
        XCTAssertEqual(result.written, 2)
        XCTAssertEqual(result.skipped.count, 2)
        XCTAssertTrue(result.skipped[0].hasSuffix("bad.jpg: not a JPEG or PNG image"), result.skipped[0])
        XCTAssertTrue(result.skipped[1].hasSuffix("empty.png: empty file"), result.skipped[1])
        let back = try ImageFolderSource(root: tmp.path + "/dst")
        XCTAssertEqual(back.count, 2)
        XCTAssertEqual(try back.image(at: 1, targetSize: nil).pixels, [4, 5, 6])
    }
}

/// Grey 1×1 images with the given labels and classes "a", "b", "c".
private final class LabelsOnlySource: DataSource {
    let labels: [Int]
    init(labels: [Int]) { self.labels = labels }
    var count: Int { labels.count }
    var classNames: [String] { ["a", "b", "c"] }
    func label(_ index: Int) -> Int { labels[index] }
    func sampleName(_ index: Int) -> String { "#\(index)" }
    func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        DecodedImage(width: 1, height: 1, pixels: [UInt8](repeating: UInt8(index), count: 3))
    }
}

import Foundation
import XCTest
@testable import DTrainData

/// Annotation list files opened through `DataSourceFactory`, as `--data path/to/cls_train.txt`.
final class AnnotationListDatasetTests: XCTestCase {
    var tmp: TemporaryDirectory!

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    /// Writes `count` 6×5 PNGs under `imgs/` and returns their paths (relative to the root).
    func makeImages(_ count: Int) throws -> [String] {
        try (0..<count).map { i in
            let image = constantImage(width: 6, height: 5, rgb: (UInt8(i * 20), 40, 200))
            let relative = "imgs/\(i).png"
            try tmp.write(PNGCodec.encode(image), to: relative)
            return relative
        }
    }

    func writeList(_ name: String, _ lines: [String]) throws -> String {
        try tmp.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: name)
    }

    func testPlatformLayoutIsDetectedWithValAndClassNames() throws {
        let images = try makeImages(8)
        // txt_annotation.py's format: "label;absolute path".
        let train = try writeList("cls_train.txt", (0..<6).map { "\($0 % 3);\(tmp.path)/\(images[$0])" })
        _ = try writeList("cls_test.txt", ["1;\(tmp.path)/\(images[6])", "2;\(tmp.path)/\(images[7])"])
        _ = try writeList("cls_classes.txt", ["cat", "dog", "emu"])

        XCTAssertEqual(try DataSourceFactory.detectKind(path: train), .list)
        let splits = try DataSourceFactory.openSplits(path: train, dataset: nil)
        XCTAssertEqual(splits.train.count, 6)
        XCTAssertEqual(splits.train.classNames, ["cat", "dog", "emu"])
        XCTAssertEqual((0..<6).map(splits.train.label), [0, 1, 2, 0, 1, 2])
        let val = try XCTUnwrap(splits.val)
        XCTAssertEqual(val.count, 2)
        XCTAssertEqual(val.classNames, ["cat", "dog", "emu"])
        XCTAssertEqual(val.sampleName(1), "\(tmp.path)/\(images[7])")
        XCTAssertEqual(try val.image(at: 0, targetSize: nil).pixels[0], 120)
        // The single-split opener agrees, and the explicit kind does the same as detection.
        XCTAssertEqual(try DataSourceFactory.open(path: train, dataset: .list, split: .val).count, 2)
        XCTAssertEqual(try DataSourceFactory.open(path: train, dataset: nil, split: .train).count, 6)

        // A val list is preferred to a test list.
        _ = try writeList("cls_val.txt", ["0;\(tmp.path)/\(images[7])"])
        XCTAssertEqual(AnnotationListDataset.siblings(of: train).heldOut, "\(tmp.path)/cls_val.txt")
        XCTAssertEqual(try DataSourceFactory.open(path: train, dataset: nil, split: .val).count, 1)
        // A held-out list and a validation fraction do not mix.
        assertDataError("already has a held-out list") { try DataSourceFactory.open(path: train, dataset: nil, split: .train, valSplit: 0.2) }

        // Batches load from the list like from a folder.
        let loader = BatchLoader(source: splits.train, transform: Preset.imagenet.train(resolution: 4), batchSize: 4, resolution: 4,
                                 workers: 1, seed: 0, rank: 0)
        loader.start(epoch: 0, indices: Array(0..<6))
        var labels: [Int32] = []
        while let batch = try loader.next() { labels += Array(batch.labelBuffer) }
        XCTAssertEqual(labels, [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(loader.skippedThisEpoch, 0)
    }

    func testRelativePathsNumberedClassesAndFractionSplit() throws {
        let images = try makeImages(10)
        // "path;label", relative to the list's directory; no class-name file: classes are numbered
        // up to the largest label of either list, so train (labels 0–1) and val (label 3) agree.
        try tmp.makeDirectory("lists")
        let train = try writeList("lists/my_train_list.txt", (0..<8).map { "../\(images[$0]);\($0 % 2)" })
        _ = try writeList("lists/my_val_list.txt", ["../\(images[8]);3"])
        let splits = try DataSourceFactory.openSplits(path: train, dataset: nil)
        XCTAssertEqual(splits.train.classNames, ["0", "1", "2", "3"])
        XCTAssertEqual(splits.val?.classNames, ["0", "1", "2", "3"])
        XCTAssertEqual(splits.train.sampleName(0), "\(tmp.path)/lists/../\(images[0])")
        XCTAssertEqual(try splits.train.image(at: 7, targetSize: nil).width, 6)

        // A list without "train" in its name and a classes.txt beside it: no val list, so a
        // fraction holds out part of each class, the same way every time.
        let all = try writeList("all.txt", (0..<10).map { "\($0 % 2);\(images[$0])" })
        _ = try writeList("classes.txt", ["even", "odd"])
        XCTAssertNil(try DataSourceFactory.openSplits(path: all, dataset: nil).val)
        assertDataError("no validation split") { try DataSourceFactory.open(path: all, dataset: nil, split: .val) }
        let parts = try DataSourceFactory.openSplits(path: all, dataset: nil, valSplit: 0.4)
        let heldOut = try XCTUnwrap(parts.val) as! AnnotationListSource
        let kept = parts.train as! AnnotationListSource
        XCTAssertEqual(kept.classNames, ["even", "odd"])
        XCTAssertEqual(heldOut.count, 4) // ⌈0.4·5⌉ = 2 of each class
        XCTAssertEqual(kept.count + heldOut.count, 10)
        XCTAssertTrue(Set(kept.files.map(\.path)).isDisjoint(with: heldOut.files.map(\.path)))
        let again = try DataSourceFactory.open(path: all, dataset: nil, split: .val, valSplit: 0.4) as! AnnotationListSource
        XCTAssertEqual(again.files, heldOut.files)
    }

    func testErrorsNameTheFile() throws {
        let images = try makeImages(2)
        let train = try writeList("cls_train.txt", ["0;\(images[0])", "7;\(images[1])"])
        _ = try writeList("cls_classes.txt", ["a", "b"])
        assertDataError("line 2: label 7 but") { try DataSourceFactory.open(path: train, dataset: nil, split: .train) }
        assertDataError("no such file or directory") { try DataSourceFactory.open(path: "\(tmp.path)/nope.txt", dataset: nil, split: .train) }
        assertDataError("not an annotation list file") { try DataSourceFactory.open(path: "\(tmp.path)/imgs", dataset: .list, split: .train) }
        assertDataError("expected a sibling list cls_val.txt, cls_eval.txt, cls_test.txt") {
            _ = try self.writeList("cls_classes.txt", ["a", "b", "c", "d", "e", "f", "g", "h"])
            return try DataSourceFactory.open(path: train, dataset: nil, split: .val)
        }
    }
}

import Foundation
import XCTest
@testable import DTrainData

final class ImageFolderTests: XCTestCase {
    var tmp: TemporaryDirectory!
    let tinyPNG = PNGCodec.encode(DecodedImage(width: 2, height: 2, pixels: [UInt8](repeating: 90, count: 12)))

    override func setUpWithError() throws { tmp = try TemporaryDirectory() }
    override func tearDown() { tmp.remove() }

    /// Writes `ROOT/<class>/<file>` for each class and file name.
    func makeTree(_ root: String, _ classes: [String: [String]]) throws {
        for (name, files) in classes {
            try tmp.makeDirectory("\(root)/\(name)")
            for file in files { try tmp.write(tinyPNG, to: "\(root)/\(name)/\(file)") }
        }
    }

    func testClassOrderFollowsTorchvision() throws {
        try makeTree("data", ["B": ["1.png"], "a": ["1.png"], "class10": ["1.png"], "class2": ["1.png"],
                              "_x": ["1.png"], "Zeta": ["1.png"], ".hidden": ["1.png"]])
        // A symbolic link to a class folder elsewhere is followed and named by the link.
        try makeTree("elsewhere", ["real": ["z.png", "a.png"]])
        try FileManager.default.createSymbolicLink(atPath: "\(tmp.path)/data/linked", withDestinationPath: "\(tmp.path)/elsewhere/real")
        // A stray file at the root is not a class.
        try tmp.write(tinyPNG, to: "data/stray.png")

        let source = try ImageFolderSource(root: "\(tmp.path)/data")
        // Python: sorted(["B", "a", "class10", "class2", "_x", "Zeta", "linked"])
        XCTAssertEqual(source.classNames, ["B", "Zeta", "_x", "a", "class10", "class2", "linked"])
        XCTAssertEqual(source.count, 8)
        let linked = source.classNames.firstIndex(of: "linked")!
        let linkedFiles = source.files.filter { $0.label == linked }.map { ($0.path as NSString).lastPathComponent }
        XCTAssertEqual(linkedFiles, ["a.png", "z.png"])
        XCTAssertEqual(source.files.map(\.label), [0, 1, 2, 3, 4, 5, 6, 6])
    }

    func testFilesAreSortedRecursiveAndFilteredByExtension() throws {
        try makeTree("data", ["cat": ["b.JPG", "a.png", "B.jpeg", "10.png", "2.png", "notes.txt", ".hidden.png"],
                              "cat/sub": ["z.png"], "cat/sub/deeper": ["w.png"], "cat/sub-1": ["y.png"], "cat/.git": ["q.png"]])
        try tmp.write(Data("RIFF\0\0\0\0WEBPVP8 ".utf8), to: "data/cat/x.webp")
        let source = try ImageFolderSource(root: "\(tmp.path)/data")
        XCTAssertEqual(source.classNames, ["cat"])
        let names = source.files.map { String($0.path.dropFirst("\(tmp.path)/data/cat/".count)) }
        // sorted(os.walk(...)) orders directories by path: ".../sub" < ".../sub-1" < ".../sub/deeper"
        // because "-" (0x2D) < "/" (0x2F); files are sorted within each directory.
        // The WebP is not indexed: only extensions dtrain decodes are images.
        XCTAssertEqual(names, ["10.png", "2.png", "B.jpeg", "a.png", "b.JPG", "sub/z.png", "sub-1/y.png", "sub/deeper/w.png"])
        XCTAssertEqual(try source.image(at: 0, targetSize: nil).width, 2)
        // A WebP named like a JPEG is indexed and fails at load with its format named.
        try tmp.write(Data("RIFF\0\0\0\0WEBPVP8 ".utf8), to: "data/cat/x.jpg")
        let renamed = try ImageFolderSource(root: "\(tmp.path)/data")
        let webp = renamed.files.firstIndex { $0.path.hasSuffix("x.jpg") }!
        assertDataError("unsupported image format (WebP)") { try renamed.image(at: webp, targetSize: nil) }
    }

    func testOpeningErrors() throws {
        assertDataError("no such directory") { try ImageFolderSource(root: "\(tmp.path)/missing") }
        try tmp.write(Data("x".utf8), to: "file")
        assertDataError("not a directory") { try ImageFolderSource(root: "\(tmp.path)/file") }
        try tmp.makeDirectory("noclasses")
        try tmp.write(tinyPNG, to: "noclasses/a.png")
        assertDataError("no class folders") { try ImageFolderSource(root: "\(tmp.path)/noclasses") }
        try makeTree("someempty", ["full": ["a.png"], "empty1": [], "empty2": ["readme.txt"]])
        assertDataError("class folders without images: empty1, empty2") { try ImageFolderSource(root: "\(tmp.path)/someempty") }
        try makeTree("allempty", ["one": [], "two": []])
        assertDataError("no images in any class folder: one, two") { try ImageFolderSource(root: "\(tmp.path)/allempty") }
    }

    func testSplitFoldersAndHeldOutNames() throws {
        for heldOut in ["val", "eval", "test"] {
            try makeTree("\(heldOut)-ds/train", ["a": ["1.png", "2.png"], "b": ["1.png"]])
            try makeTree("\(heldOut)-ds/\(heldOut)", ["a": ["3.png"], "b": ["2.png"]])
            let splits = try ImageFolderDataset.open(root: "\(tmp.path)/\(heldOut)-ds")
            XCTAssertEqual(splits.train.count, 3)
            XCTAssertEqual(splits.val?.count, 2, heldOut)
            XCTAssertEqual(splits.val?.classNames, ["a", "b"])
            XCTAssertTrue(splits.val!.files[0].path.hasSuffix("/\(heldOut)/a/3.png"))
        }
        try makeTree("trainonly/train", ["a": ["1.png"]])
        let trainOnly = try ImageFolderDataset.open(root: "\(tmp.path)/trainonly")
        XCTAssertNil(trainOnly.val)
        assertDataError("no validation split") {
            try DataSourceFactory.open(path: "\(tmp.path)/trainonly", dataset: nil, split: .val)
        }
        assertDataError("already has a held-out split (val)") {
            try ImageFolderDataset.open(root: "\(tmp.path)/val-ds", valSplit: 0.2)
        }
    }

    func testClassMismatchNamesTheDifferences() throws {
        try makeTree("ds/train", ["cat": ["1.png"], "dog": ["1.png"], "emu": ["1.png"]])
        try makeTree("ds/val", ["cat": ["1.png"], "dog": ["1.png"], "fox": ["1.png"], "gnu": ["1.png"]])
        assertDataError("only in train: emu; only in val: fox, gnu") { try ImageFolderDataset.open(root: "\(tmp.path)/ds") }
        try makeTree("ds2/train", ["cat": ["1.png"], "dog": ["1.png"]])
        try makeTree("ds2/test", ["cat": ["1.png"]])
        assertDataError("only in train: dog; only in test: none") { try ImageFolderDataset.open(root: "\(tmp.path)/ds2") }
    }

    func testValSplitIsDeterministicDisjointAndComplete() throws {
        let names = (0..<30).map { "img\($0).png" }
        try makeTree("single", ["a": names, "b": Array(names.prefix(7)), "c": ["only.png"]])
        let first = try ImageFolderDataset.open(root: "\(tmp.path)/single", valSplit: 0.1)
        let second = try ImageFolderDataset.open(root: "\(tmp.path)/single", valSplit: 0.1)
        let train = first.train.files, val = try XCTUnwrap(first.val).files
        XCTAssertEqual(train, second.train.files)
        XCTAssertEqual(val, second.val!.files)
        XCTAssertTrue(Set(train.map(\.path)).isDisjoint(with: val.map(\.path)))
        XCTAssertEqual(train.count + val.count, 38)
        // ⌈0.1·30⌉ = 3 of "a", ⌈0.1·7⌉ = 1 of "b", none of the one-file class "c".
        XCTAssertEqual(val.filter { $0.label == 0 }.count, 3)
        XCTAssertEqual(val.filter { $0.label == 1 }.count, 1)
        XCTAssertEqual(val.filter { $0.label == 2 }.count, 0)
        XCTAssertEqual(first.val!.classNames, ["a", "b", "c"])
        // Index order is kept within each part.
        let all = try ImageFolderSource(root: "\(tmp.path)/single").files.map(\.path)
        let order = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1, $0) })
        XCTAssertEqual(val.map { order[$0.path]! }, val.map { order[$0.path]! }.sorted())
        // A different fraction gives a different but still deterministic split.
        let half = try ImageFolderDataset.open(root: "\(tmp.path)/single", valSplit: 0.5)
        XCTAssertEqual(half.val!.files.filter { $0.label == 0 }.count, 15)
        assertDataError("between 0 and 1") { try ImageFolderDataset.open(root: "\(tmp.path)/single", valSplit: 1.5) }
        // The factory applies the same split.
        let viaFactory = try DataSourceFactory.open(path: "\(tmp.path)/single", dataset: nil, split: .val, valSplit: 0.1)
        XCTAssertEqual((viaFactory as! ImageFolderSource).files, val)
    }

    func testAnnotationListBothOrders() throws {
        try makeTree("imgs", ["cat": ["1.png"], "dog": ["1.png", "2.png"]])
        try tmp.write(Data("cat\ndog\n\n".utf8), to: "cls_classes.txt")
        // The classification platform's order: label;absolute path.
        try tmp.write(Data("0;\(tmp.path)/imgs/cat/1.png\n1;\(tmp.path)/imgs/dog/2.png\r\n# comment\n\n".utf8), to: "cls_train.txt")
        let platform = try AnnotationListSource(listFile: "\(tmp.path)/cls_train.txt", classNamesFile: "\(tmp.path)/cls_classes.txt")
        XCTAssertEqual(platform.classNames, ["cat", "dog"])
        XCTAssertEqual(platform.files, [LabelledFile(path: "\(tmp.path)/imgs/cat/1.png", label: 0),
                                        LabelledFile(path: "\(tmp.path)/imgs/dog/2.png", label: 1)])
        XCTAssertEqual(try platform.image(at: 1, targetSize: nil).width, 2)
        // path;label, relative to the list file's directory, then to an explicit root.
        try tmp.write(Data("dog/1.png;1\ncat/1.png ; 0\n".utf8), to: "imgs/list.txt")
        let relative = try AnnotationListSource(listFile: "\(tmp.path)/imgs/list.txt", classNamesFile: "\(tmp.path)/cls_classes.txt")
        XCTAssertEqual(relative.files.map(\.path), ["\(tmp.path)/imgs/dog/1.png", "\(tmp.path)/imgs/cat/1.png"])
        XCTAssertEqual(relative.files.map(\.label), [1, 0])
        XCTAssertEqual(try relative.image(at: 0, targetSize: nil).height, 2)
        try tmp.write(Data("imgs/dog/1.png;1\n".utf8), to: "lists/rooted.txt")
        let rooted = try AnnotationListSource(listFile: "\(tmp.path)/lists/rooted.txt", root: tmp.path)
        XCTAssertEqual(rooted.files.map(\.path), ["\(tmp.path)/imgs/dog/1.png"])
        XCTAssertEqual(rooted.classNames, ["0", "1"])
        // Errors name the line.
        try tmp.write(Data("0;a.png\n5;b.png\n".utf8), to: "bad-label.txt")
        assertDataError("line 2: label 5") {
            try AnnotationListSource(listFile: "\(tmp.path)/bad-label.txt", classNamesFile: "\(tmp.path)/cls_classes.txt")
        }
        try tmp.write(Data("0;a.png\nno separator\n".utf8), to: "bad-line.txt")
        assertDataError("line 2: expected") { try AnnotationListSource(listFile: "\(tmp.path)/bad-line.txt") }
        assertDataError("cannot read") { try AnnotationListSource(listFile: "\(tmp.path)/missing.txt") }
    }
}

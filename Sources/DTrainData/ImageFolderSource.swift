import Foundation

/// A labelled image file (path and class index), as indexed by the file-based sources.
public struct LabelledFile: Sendable, Equatable {
    public let path: String
    public let label: Int

    public init(path: String, label: Int) {
        self.path = path
        self.label = label
    }
}

/// An image tree in torchvision's ImageFolder layout: `ROOT/<class>/.../<image>`.
///
/// The index follows `torchvision.datasets.ImageFolder`, so labels and sample order match a
/// PyTorch run on the same tree:
/// - classes are the subdirectories of the root (symbolic links followed), sorted by code point
///   (`"B" < "a"`, `"class10" < "class2"`); the label is the position in that order;
/// - a class's images are found recursively (`os.walk(followlinks=True)`): directories in
///   code-point order of their paths, files sorted by name within each;
/// - a file is indexed when its lower-cased name ends with one of `imageExtensions`: the
///   extensions of the formats dtrain decodes (JPEG and PNG), a subset of torchvision's
///   IMG_EXTENSIONS. Files with torchvision's other image extensions (.bmp, .webp, …) are not
///   samples; a class folder holding only such files is named as having no images.
///
/// Differences from torchvision: names starting with "." (hidden files and directories) are
/// ignored, and a directory reached twice through symbolic links is walked once.
///
/// Opening fails, before any training, for a missing root, a root without class folders, and
/// class folders without images (all of them are named).
public final class ImageFolderSource: DataSource {
    /// The extensions indexed as images: those of the formats `ImageCodec` decodes.
    public static let imageExtensions = [".jpg", ".jpeg", ".png"]

    /// The directory the classes were read from.
    public let root: String
    public let classNames: [String]
    /// Every sample in index order.
    public let files: [LabelledFile]

    /// Indexes the tree under `root`.
    ///
    /// - Throws: `DataError` with `path` = `root` and reason "no such directory", "not a
    ///   directory", "no class folders (…)" or "class folders without images: …".
    public convenience init(root: String) throws {
        let (classNames, files) = try ImageFolderSource.index(root: root)
        self.init(root: root, classNames: classNames, files: files)
    }

    /// A source over an explicit file list (used for splits of a folder).
    public init(root: String, classNames: [String], files: [LabelledFile]) {
        self.root = root
        self.classNames = classNames
        self.files = files
    }

    public var count: Int { files.count }
    public func label(_ index: Int) -> Int { files[index].label }
    public func sampleName(_ index: Int) -> String { files[index].path }

    public func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        try ImageCodec.decodeFile(atPath: files[index].path, targetSize: targetSize)
    }

    /// The number of samples of each class, in label order.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for f in files { counts[f.label] += 1 }
        return counts
    }

    /// Whether a file name has one of `imageExtensions` (case-insensitive).
    public static func hasImageExtension(_ name: String) -> Bool {
        let lower = name.lowercased()
        return imageExtensions.contains { lower.hasSuffix($0) }
    }

    /// The class folder names under `root`, in label order.
    static func classFolders(root: String) throws -> [String] {
        guard let kind = DirectoryListing.kind(of: root) else { throw DataError(path: root, reason: "no such directory") }
        guard kind == .directory else { throw DataError(path: root, reason: "not a directory") }
        return try DirectoryListing.entries(of: root)
            .filter { $0.kind == .directory && !$0.name.hasPrefix(".") }
            .map(\.name)
            .sorted(by: DirectoryListing.codePointLess)
    }

    static func index(root: String) throws -> (classNames: [String], files: [LabelledFile]) {
        let classes = try classFolders(root: root)
        if classes.isEmpty {
            throw DataError(path: root, reason: "no class folders (expected \(DirectoryListing.join(root, "<class>/<image>")) files)")
        }
        var files: [LabelledFile] = []
        var empty: [String] = []
        for (label, name) in classes.enumerated() {
            let images = try imagesUnder(DirectoryListing.join(root, name))
            if images.isEmpty { empty.append(name) }
            files.append(contentsOf: images.map { LabelledFile(path: $0, label: label) })
        }
        if !empty.isEmpty {
            let what = empty.count == classes.count ? "no images in any class folder" : "class folders without images"
            throw DataError(path: root, reason: "\(what): \(empty.joined(separator: ", ")) (image extensions: \(imageExtensions.joined(separator: " ")))")
        }
        return (classes, files)
    }

    /// Image files under `directory`, in `sorted(os.walk(directory, followlinks=True))` order.
    static func imagesUnder(_ directory: String) throws -> [String] {
        var directories: [(path: String, files: [String])] = []
        var seen = Set<[UInt64]>()
        var pending = [directory]
        while let dir = pending.popLast() {
            if let id = DirectoryListing.identity(of: dir) {
                if seen.contains(id) { continue }
                seen.insert(id)
            }
            var names: [String] = [], subdirectories: [String] = []
            for entry in try DirectoryListing.entries(of: dir) where !entry.name.hasPrefix(".") {
                switch entry.kind {
                case .directory: subdirectories.append(entry.name)
                case .file: if hasImageExtension(entry.name) { names.append(entry.name) }
                case .other: break
                }
            }
            directories.append((dir, names.sorted(by: DirectoryListing.codePointLess)))
            // Depth-first in sorted order, so which of two linked paths is kept is deterministic.
            for name in subdirectories.sorted(by: DirectoryListing.codePointLess).reversed() {
                pending.append(DirectoryListing.join(dir, name))
            }
        }
        directories.sort { DirectoryListing.codePointLess($0.path, $1.path) }
        return directories.flatMap { d in d.files.map { DirectoryListing.join(d.path, $0) } }
    }
}

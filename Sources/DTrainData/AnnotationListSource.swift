import DTrainCore
import Foundation

/// Images listed in an annotation file with integer labels, plus a class-name file.
///
/// The list file has one sample per line, the path and the label separated by ";". Both orders
/// are read, decided once per file: `path;label`, or `label;path` as the classification
/// platform's `txt_annotation.py` writes `cls_train.txt` (`0;/data/train/cat/1.jpg`). When
/// every line fits `path;label` that order wins. Empty lines and lines starting with "#" are
/// skipped; surrounding spaces and "\r" are trimmed.
///
/// Relative paths are taken relative to `root` when given, otherwise to the list file's
/// directory. The class-name file (for example `cls_classes.txt`) has one name per line, in
/// label order; empty lines are skipped (a "#" there is part of a name). Without one, the classes are named "0", "1", … up to
/// the largest label.
public final class AnnotationListSource: DataSource {
    /// Labels must be below this (a million classes; ImageNet-21k has 21,841): a list claiming a
    /// larger label is refused rather than numbering that many classes.
    public static let maxClasses = 1_000_000

    public let listFile: String
    public let classNames: [String]
    public let files: [LabelledFile]

    /// Reads the list and class-name files (images are only opened by `image(at:targetSize:)`).
    ///
    /// - Throws: `DataError` naming the file and line for unreadable files, lines without a
    ///   ";" or an integer label, labels outside the class list or not below `maxClasses`, a
    ///   path holding a NUL character, or an empty list.
    public init(listFile: String, classNamesFile: String? = nil, root: String? = nil) throws {
        self.listFile = listFile
        let lines = try AnnotationListSource.lines(of: listFile)
        if lines.isEmpty { throw DataError(path: listFile, reason: "no samples listed") }

        func pathThenLabel(_ line: String) -> (String, Int)? {
            guard let cut = line.lastIndex(of: ";"), let label = Int(line[line.index(after: cut)...].trimmingCharacters(in: .whitespaces)) else { return nil }
            return (line[..<cut].trimmingCharacters(in: .whitespaces), label)
        }
        func labelThenPath(_ line: String) -> (String, Int)? {
            guard let cut = line.firstIndex(of: ";"), let label = Int(line[..<cut].trimmingCharacters(in: .whitespaces)) else { return nil }
            return (line[line.index(after: cut)...].trimmingCharacters(in: .whitespaces), label)
        }
        let parse = lines.allSatisfy({ pathThenLabel($0.text) != nil }) ? pathThenLabel : labelThenPath
        let base = root ?? (listFile as NSString).deletingLastPathComponent
        var parsed: [LabelledFile] = []
        for line in lines {
            guard let (path, label) = parse(line.text), !path.isEmpty, label >= 0 else {
                throw DataError(path: listFile, reason: "line \(line.number): expected \"path;label\" or \"label;path\" with an integer label, got \"\(MessageText.path(line.text))\"")
            }
            if label >= AnnotationListSource.maxClasses {
                throw DataError(path: listFile, reason: "line \(line.number): label \(label) is not below the limit of \(AnnotationListSource.maxClasses) classes")
            }
            if path.utf8.contains(0) {
                // A file name cannot hold NUL; open() would silently read the name cut there.
                throw DataError(path: listFile, reason: "line \(line.number): the path contains a NUL character")
            }
            let resolved = path.hasPrefix("/") || base.isEmpty ? path : DirectoryListing.join(base, path)
            parsed.append(LabelledFile(path: resolved, label: label))
        }
        if let classNamesFile {
            classNames = try AnnotationListSource.lines(of: classNamesFile, comments: false).map(\.text)
            if classNames.isEmpty { throw DataError(path: classNamesFile, reason: "no class names") }
            for (i, f) in parsed.enumerated() where f.label >= classNames.count {
                throw DataError(path: listFile, reason: "line \(lines[i].number): label \(f.label) but \(classNamesFile) names only \(classNames.count) classes")
            }
        } else {
            classNames = (0...(parsed.map(\.label).max() ?? 0)).map(String.init)
        }
        files = parsed
    }

    /// A source over an explicit, already resolved file list (used for splits and for class
    /// names shared between lists).
    public init(listFile: String, classNames: [String], files: [LabelledFile]) {
        precondition(files.allSatisfy { $0.label >= 0 && $0.label < classNames.count }, "label outside the class list")
        self.listFile = listFile
        self.classNames = classNames
        self.files = files
    }

    public var count: Int { files.count }
    public func label(_ index: Int) -> Int { files[index].label }
    public func sampleName(_ index: Int) -> String { files[index].path }

    public func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        try ImageCodec.decodeFile(atPath: files[index].path, targetSize: targetSize)
    }

    /// Non-empty lines (and, with `comments`, not starting with "#"), trimmed, with their
    /// 1-based line numbers.
    static func lines(of path: String, comments: Bool = true) throws -> [(number: Int, text: String)] {
        let data = try ImageCodec.readFile(atPath: path)
        let text = String(decoding: data, as: UTF8.self)
        var result: [(Int, String)] = []
        // "\r\n" is one Character, so splitting on newline characters handles it as one break.
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || (comments && line.hasPrefix("#")) { continue }
            result.append((i + 1, line))
        }
        return result
    }
}

/// Finds the splits and class names of a dataset given as an annotation list file, so that
/// `--data path/to/cls_train.txt` is enough.
///
/// For a list whose file name contains "train" (its last occurrence is the one replaced):
/// - the held-out split is the first sibling file that exists with "train" replaced by "val",
///   "eval" or "test", in that order (`cls_val.txt`, `cls_eval.txt`, `cls_test.txt`);
/// - the class names are read from the sibling with "train" replaced by "classes"
///   (`cls_classes.txt`).
///
/// Any list may instead use a `classes.txt` beside it. Without a class-name file the classes are
/// "0", "1", … up to the largest label in either list, so both splits have the same classes.
/// Without a held-out list, `valSplit` holds out that fraction of each class, as for an
/// ImageFolder tree (`ImageFolderDataset.split`). Relative image paths are taken relative to the
/// list file's directory (see `AnnotationListSource`).
public enum AnnotationListDataset {
    /// Names replacing "train" for the held-out list, in order of preference.
    public static let heldOutNames = ImageFolderDataset.heldOutSplitNames

    /// The sibling files of `listFile` that exist: its held-out list and its class-name file.
    public static func siblings(of listFile: String) -> (heldOut: String?, classNames: String?) {
        let directory = (listFile as NSString).deletingLastPathComponent
        let name = (listFile as NSString).lastPathComponent
        func sibling(_ fileName: String) -> String {
            directory.isEmpty ? fileName : DirectoryListing.join(directory, fileName)
        }
        var heldOut: String?
        var classFiles: [String] = []
        if let train = name.range(of: "train", options: .backwards) {
            heldOut = heldOutNames.lazy.map { sibling(name.replacingCharacters(in: train, with: $0)) }
                .first(where: DirectoryListing.isFile)
            classFiles.append(sibling(name.replacingCharacters(in: train, with: "classes")))
        }
        classFiles.append(sibling("classes.txt"))
        return (heldOut, classFiles.first(where: DirectoryListing.isFile))
    }

    /// Opens the training list at `listFile` and its held-out split (see the type's notes).
    ///
    /// - Returns: the training source and the held-out one, nil when there is no held-out list
    ///   and no `valSplit`.
    /// - Throws: `DataError` for a missing or unreadable list, the lists' own errors (see
    ///   `AnnotationListSource`), a `valSplit` outside (0, 1), or a `valSplit` when a held-out
    ///   list exists.
    public static func open(listFile: String, valSplit: Double? = nil) throws -> (train: AnnotationListSource, val: AnnotationListSource?) {
        guard let kind = DirectoryListing.kind(of: listFile) else { throw DataError(path: listFile, reason: "no such file") }
        guard kind == .file else { throw DataError(path: listFile, reason: "not an annotation list file") }
        if let valSplit, !(valSplit > 0 && valSplit < 1) {
            throw DataError(path: listFile, reason: "validation fraction must be between 0 and 1 (exclusive), got \(valSplit)")
        }
        let (heldOut, classNames) = siblings(of: listFile)
        if let heldOut, valSplit != nil {
            throw DataError(path: listFile, reason: "a validation fraction was given but the list already has a held-out list (\(heldOut))")
        }
        var train = try AnnotationListSource(listFile: listFile, classNamesFile: classNames)
        var val = try heldOut.map { try AnnotationListSource(listFile: $0, classNamesFile: classNames) }
        if classNames == nil, let v = val, v.classNames.count != train.classNames.count {
            // Numbered classes: both splits get as many as the larger label needs.
            let names = v.classNames.count > train.classNames.count ? v.classNames : train.classNames
            train = AnnotationListSource(listFile: train.listFile, classNames: names, files: train.files)
            val = AnnotationListSource(listFile: v.listFile, classNames: names, files: v.files)
        }
        if let valSplit {
            let parts = ImageFolderDataset.splitFiles(train.files, classes: train.classNames.count, valFraction: valSplit)
            return (AnnotationListSource(listFile: listFile, classNames: train.classNames, files: parts.train),
                    AnnotationListSource(listFile: listFile, classNames: train.classNames, files: parts.val))
        }
        return (train, val)
    }
}

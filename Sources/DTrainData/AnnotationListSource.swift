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
    public let listFile: String
    public let classNames: [String]
    public let files: [LabelledFile]

    /// Reads the list and class-name files (images are only opened by `image(at:targetSize:)`).
    ///
    /// - Throws: `DataError` naming the file and line for unreadable files, lines without a
    ///   ";" or an integer label, labels outside the class list, or an empty list.
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
                throw DataError(path: listFile, reason: "line \(line.number): expected \"path;label\" or \"label;path\" with an integer label, got \"\(line.text)\"")
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

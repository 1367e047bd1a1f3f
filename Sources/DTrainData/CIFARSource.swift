import Foundation

/// CIFAR-10 or CIFAR-100 in the original binary format, read whole into memory.
///
/// - CIFAR-10 (`cifar-10-batches-bin`): `data_batch_1.bin` … `data_batch_5.bin` (train) and
///   `test_batch.bin` (val), 3,073-byte records: a label byte, then 1,024 red, 1,024 green and
///   1,024 blue bytes, each plane 32×32 row-major. Class names from `batches.meta.txt`.
/// - CIFAR-100 (`cifar-100-binary`): `train.bin` and `test.bin`, 3,074-byte records: the coarse
///   label byte, the fine label byte, then the pixels as above. Fine labels (100 classes, names
///   from `fine_label_names.txt`) unless `coarseLabels` (20 superclasses,
///   `coarse_label_names.txt`).
///
/// The directory may be the one holding the files or its parent holding `cifar-10-batches-bin`
/// or `cifar-100-binary`. Without the name file, CIFAR-10 uses its standard names and CIFAR-100
/// zero-padded numbers ("00" … "99").
public final class CIFARSource: DataSource {
    /// The two CIFAR binary formats.
    public enum Variant: String, Sendable {
        case cifar10, cifar100

        var recordSize: Int { self == .cifar10 ? 3073 : 3074 }
        var extractedFolder: String { self == .cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary" }

        func files(for split: DataSplit) -> [String] {
            switch (self, split) {
            case (.cifar10, .train): return (1...5).map { "data_batch_\($0).bin" }
            case (.cifar10, .val): return ["test_batch.bin"]
            case (.cifar100, .train): return ["train.bin"]
            case (.cifar100, .val): return ["test.bin"]
            }
        }
    }

    /// CIFAR-10's class names, used when `batches.meta.txt` is absent.
    public static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    public static let imageSide = 32

    public let variant: Variant
    public let split: DataSplit
    /// The directory the files were read from.
    public let directory: String
    public let classNames: [String]
    private let records: [UInt8]
    private let labels: [UInt8]

    /// Reads the split's files from `directory` (or its CIFAR subfolder).
    ///
    /// - Parameters:
    ///   - variant: the format; detected from the files present when nil.
    ///   - coarseLabels: CIFAR-100 only: label by the 20 superclasses.
    /// - Throws: `DataError` when no CIFAR files are found, a split file is missing, a file's
    ///   size is not a whole number of records, or a label is out of range.
    public init(directory: String, split: DataSplit, variant: Variant? = nil, coarseLabels: Bool = false) throws {
        guard let (found, dir) = CIFARSource.locate(directory, variant: variant) else {
            let expected = variant.map { $0.files(for: split).joined(separator: ", ") }
                ?? "data_batch_1.bin…data_batch_5.bin and test_batch.bin (CIFAR-10) or train.bin and test.bin (CIFAR-100)"
            throw DataError(path: directory, reason: "no CIFAR binary files found (expected \(expected))")
        }
        self.variant = found
        self.split = split
        self.directory = dir

        let namesFile: String
        switch found {
        case .cifar10: namesFile = "batches.meta.txt"
        case .cifar100: namesFile = coarseLabels ? "coarse_label_names.txt" : "fine_label_names.txt"
        }
        let namesPath = DirectoryListing.join(dir, namesFile)
        if DirectoryListing.isFile(namesPath) {
            classNames = try AnnotationListSource.lines(of: namesPath, comments: false).map(\.text)
            if classNames.isEmpty { throw DataError(path: namesPath, reason: "no class names") }
        } else if found == .cifar10 {
            classNames = CIFARSource.cifar10Names
        } else {
            classNames = (0..<(coarseLabels ? 20 : 100)).map { $0 < 10 ? "0\($0)" : "\($0)" }
        }

        let size = found.recordSize
        let labelOffset = found == .cifar100 && !coarseLabels ? 1 : 0
        var records: [UInt8] = [], labels: [UInt8] = []
        for name in found.files(for: split) {
            let path = DirectoryListing.join(dir, name)
            guard DirectoryListing.isFile(path) else {
                throw DataError(path: path, reason: "missing \(found.rawValue) \(split.rawValue) file")
            }
            let data = try ImageCodec.readFile(atPath: path)
            if data.isEmpty || data.count % size != 0 {
                throw DataError(path: path, reason: "size \(data.count) bytes is not a multiple of the \(size)-byte \(found.rawValue) record")
            }
            let first = labels.count
            data.withUnsafeBytes { raw in
                let b = raw.bindMemory(to: UInt8.self)
                for r in 0..<(b.count / size) {
                    labels.append(b[r * size + labelOffset])
                    records.append(contentsOf: b[(r * size + size - 3072)..<(r * size + size)])
                }
            }
            let classCount = classNames.count
            if let bad = labels[first...].firstIndex(where: { Int($0) >= classCount }) {
                throw DataError(path: path, reason: "record \(bad - first) has label \(labels[bad]) but there are only \(classCount) classes")
            }
        }
        self.records = records
        self.labels = labels
    }

    /// Which CIFAR format `directory` (or its extracted subfolder) holds, if any.
    public static func detect(directory: String) -> Variant? { locate(directory, variant: nil)?.0 }

    /// The variant and the directory holding its files.
    static func locate(_ directory: String, variant: Variant?) -> (Variant, String)? {
        for v in variant.map({ [$0] }) ?? [.cifar10, .cifar100] {
            for dir in [directory, DirectoryListing.join(directory, v.extractedFolder)] {
                let marker = v.files(for: .train) + v.files(for: .val)
                if marker.contains(where: { DirectoryListing.isFile(DirectoryListing.join(dir, $0)) }) { return (v, dir) }
            }
        }
        return nil
    }

    public var count: Int { labels.count }
    public func label(_ index: Int) -> Int { Int(labels[index]) }
    public func sampleName(_ index: Int) -> String { "\(variant.rawValue) \(split == .train ? "train" : "test") #\(index)" }

    /// The record's 32×32 image, planes interleaved to RGB. `targetSize` is ignored.
    public func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        let plane = 1024
        let pixels = [UInt8](unsafeUninitializedCapacity: 3 * plane) { out, initialized in
            records.withUnsafeBufferPointer { all in
                let base = index * 3 * plane
                for p in 0..<plane {
                    out[3 * p] = all[base + p]
                    out[3 * p + 1] = all[base + plane + p]
                    out[3 * p + 2] = all[base + 2 * plane + p]
                }
            }
            initialized = 3 * plane
        }
        return DecodedImage(width: 32, height: 32, pixels: pixels)
    }
}

import Foundation

/// Opens a `DataSource` from a command line's dataset path and kind.
///
/// With no kind given it is detected from the path: no path → the embedded digits; a directory
/// holding CIFAR-10 batches (`data_batch_*.bin`/`test_batch.bin`, directly or in
/// `cifar-10-batches-bin`) → cifar10; one holding `train.bin`/`test.bin` (directly or in
/// `cifar-100-binary`) → cifar100; any other directory → an ImageFolder dataset
/// (`ImageFolderDataset`); a file → an annotation list such as `cls_train.txt`
/// (`AnnotationListDataset`).
///
/// The val split is: the folder's val/eval/test directory or the `valSplit` fraction of a single
/// tree; the list's sibling val/eval/test list (`cls_val.txt`…) or the `valSplit` fraction of
/// the list; CIFAR's test file; the digits' fixed fifth; for synthetic data, other images drawn
/// with the seed `~seed`.
public enum DataSourceFactory {
    /// Synthetic training samples when no count is given (val gets a fifth as many).
    public static let defaultSyntheticCount = 10_000

    /// The kind of dataset at `path` (see the type's notes).
    ///
    /// - Throws: `DataError` when `path` does not exist or is neither a directory nor a file.
    public static func detectKind(path: String) throws -> DatasetKind {
        guard let kind = DirectoryListing.kind(of: path) else {
            throw DataError(path: path, reason: "no such file or directory (expected an ImageFolder tree, CIFAR binary files or an annotation list)")
        }
        if kind == .file { return .list }
        guard kind == .directory else {
            throw DataError(path: path, reason: "not a directory or file (expected an ImageFolder tree, CIFAR binary files or an annotation list)")
        }
        switch CIFARSource.detect(directory: path) {
        case .cifar10?: return .cifar10
        case .cifar100?: return .cifar100
        case nil: return .folder
        }
    }

    /// Opens one split.
    ///
    /// - Parameters:
    ///   - path: the dataset directory or list file; nil for digits and synthetic data.
    ///   - dataset: the kind, or nil to detect it from `path`.
    ///   - valSplit: folders and lists only: hold out this fraction of each class as val (when
    ///     the dataset has no val split of its own).
    ///   - resolution: synthetic only: the image side.
    ///   - syntheticSize: synthetic only: width and height, replacing `resolution` (non-square
    ///     images, e.g. 500×375).
    ///   - syntheticCount: synthetic only: training samples (default `defaultSyntheticCount`);
    ///     val has a fifth as many, at least one per class.
    ///   - classes: synthetic only: the number of classes.
    ///   - seed: synthetic only: selects the images.
    /// - Throws: `DataError` naming the path and what was expected: a missing or unrecognised
    ///   path, a missing val split, an option that does not apply to the kind, or the source's own
    ///   errors.
    public static func open(path: String?, dataset: DatasetKind?, split: DataSplit, valSplit: Double? = nil,
                            resolution: Int = 32, syntheticSize: (width: Int, height: Int)? = nil,
                            syntheticCount: Int? = nil, classes: Int = 10, seed: UInt64 = 0) throws -> DataSource {
        let kind = try resolveKind(path: path, dataset: dataset, valSplit: valSplit)
        switch kind {
        case .folder, .list:
            let splits = try openFiles(kind, path: path!, valSplit: valSplit)
            switch split {
            case .train: return splits.train
            case .val:
                guard let val = splits.val else {
                    throw kind == .folder ? missingFolderVal(path!) : missingListVal(path!)
                }
                return val
            }
        default:
            return try openOther(kind, path: path, split: split, size: syntheticSize ?? (resolution, resolution),
                                 syntheticCount: syntheticCount, classes: classes, seed: seed)
        }
    }

    /// Opens the train split and, where the dataset has one, the val split (an ImageFolder tree
    /// or a list is read once for both).
    public static func openSplits(path: String?, dataset: DatasetKind?, valSplit: Double? = nil,
                                  resolution: Int = 32, syntheticSize: (width: Int, height: Int)? = nil,
                                  syntheticCount: Int? = nil, classes: Int = 10,
                                  seed: UInt64 = 0) throws -> (train: DataSource, val: DataSource?) {
        let kind = try resolveKind(path: path, dataset: dataset, valSplit: valSplit)
        if kind == .folder || kind == .list {
            return try openFiles(kind, path: path!, valSplit: valSplit)
        }
        let size = syntheticSize ?? (resolution, resolution)
        let train = try openOther(kind, path: path, split: .train, size: size,
                                  syntheticCount: syntheticCount, classes: classes, seed: seed)
        let val = try openOther(kind, path: path, split: .val, size: size,
                                syntheticCount: syntheticCount, classes: classes, seed: seed)
        return (train, val)
    }

    private static func openFiles(_ kind: DatasetKind, path: String, valSplit: Double?) throws -> (train: DataSource, val: DataSource?) {
        if kind == .folder {
            let splits = try ImageFolderDataset.open(root: path, valSplit: valSplit)
            return (splits.train, splits.val)
        }
        let splits = try AnnotationListDataset.open(listFile: path, valSplit: valSplit)
        return (splits.train, splits.val)
    }

    private static func resolveKind(path: String?, dataset: DatasetKind?, valSplit: Double?) throws -> DatasetKind {
        let kind: DatasetKind
        if let dataset {
            kind = dataset
        } else if let path {
            kind = try detectKind(path: path)
        } else {
            kind = .digits
        }
        switch kind {
        case .folder, .list, .cifar10, .cifar100:
            guard let path else { throw DataError(path: "(none)", reason: "the \(kind.rawValue) dataset needs a path") }
            if kind != .folder, kind != .list, valSplit != nil {
                throw DataError(path: path, reason: "a validation fraction applies only to ImageFolder datasets and annotation lists; \(kind.rawValue) has its own test split")
            }
        case .digits, .synthetic:
            if valSplit != nil {
                throw DataError(path: path ?? kind.rawValue, reason: "a validation fraction applies only to ImageFolder datasets and annotation lists; \(kind.rawValue) has its own val split")
            }
        }
        return kind
    }

    private static func openOther(_ kind: DatasetKind, path: String?, split: DataSplit, size: (width: Int, height: Int),
                                  syntheticCount: Int?, classes: Int, seed: UInt64) throws -> DataSource {
        switch kind {
        case .cifar10, .cifar100:
            return try CIFARSource(directory: path!, split: split, variant: kind == .cifar10 ? .cifar10 : .cifar100)
        case .digits:
            return DigitsSource(split: split)
        case .synthetic:
            guard size.width >= 1, size.height >= 1, classes >= 1 else {
                throw DataError(path: "synthetic", reason: "needs a positive image size and class count, got \(size.width)x\(size.height) and \(classes)")
            }
            let trainCount = syntheticCount ?? defaultSyntheticCount
            guard trainCount >= 1 else { throw DataError(path: "synthetic", reason: "needs at least one sample, got \(trainCount)") }
            switch split {
            case .train:
                return SyntheticSource(count: trainCount, classes: classes, width: size.width, height: size.height, seed: seed)
            case .val:
                return SyntheticSource(count: max(classes, trainCount / 5), classes: classes, width: size.width, height: size.height, seed: ~seed)
            }
        case .folder, .list:
            preconditionFailure("folders and lists are opened by openFiles")
        }
    }

    private static func missingListVal(_ listFile: String) -> DataError {
        let name = (listFile as NSString).lastPathComponent
        let expected = name.range(of: "train", options: .backwards).map { train in
            "a sibling list " + AnnotationListDataset.heldOutNames.map { name.replacingCharacters(in: train, with: $0) }.joined(separator: ", ")
        } ?? "a list whose name contains \"train\" with a sibling val list"
        return DataError(path: listFile, reason: "no validation split (expected \(expected), or a validation fraction)")
    }

    private static func missingFolderVal(_ root: String) -> DataError {
        DataError(path: root, reason: "no validation split (expected \(ImageFolderDataset.heldOutSplitNames.map { DirectoryListing.join(root, $0) }.joined(separator: ", ")) next to \(DirectoryListing.join(root, "train")), or a validation fraction)")
    }
}

import Foundation

/// Opens a `DataSource` from a command line's dataset path and kind.
///
/// With no kind given it is detected from the path: no path → the embedded digits; a directory
/// holding CIFAR-10 batches (`data_batch_*.bin`/`test_batch.bin`, directly or in
/// `cifar-10-batches-bin`) → cifar10; one holding `train.bin`/`test.bin` (directly or in
/// `cifar-100-binary`) → cifar100; any other directory → an ImageFolder dataset
/// (`ImageFolderDataset`).
///
/// The val split is: the folder's val/eval/test directory or the `valSplit` fraction of a single
/// tree; CIFAR's test file; the digits' fixed fifth; for synthetic data, other images drawn with
/// the seed `~seed`.
public enum DataSourceFactory {
    /// Synthetic training samples when no count is given (val gets a fifth as many).
    public static let defaultSyntheticCount = 10_000

    /// The kind of dataset at `path` (see the type's notes).
    ///
    /// - Throws: `DataError` when `path` does not exist or is not a directory.
    public static func detectKind(path: String) throws -> DatasetKind {
        guard let kind = DirectoryListing.kind(of: path) else {
            throw DataError(path: path, reason: "no such directory (expected an ImageFolder tree or CIFAR binary files)")
        }
        guard kind == .directory else {
            throw DataError(path: path, reason: "not a directory (expected an ImageFolder tree or CIFAR binary files)")
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
    ///   - path: the dataset directory; nil for digits and synthetic data.
    ///   - dataset: the kind, or nil to detect it from `path`.
    ///   - valSplit: folders only: hold out this fraction of a single tree's classes as val.
    ///   - resolution: synthetic only: the image side.
    ///   - syntheticCount: synthetic only: training samples (default `defaultSyntheticCount`);
    ///     val has a fifth as many, at least one per class.
    ///   - classes: synthetic only: the number of classes.
    ///   - seed: synthetic only: selects the images.
    /// - Throws: `DataError` naming the path and what was expected: a missing or unrecognised
    ///   path, a missing val split, an option that does not apply to the kind, or the source's own
    ///   errors.
    public static func open(path: String?, dataset: DatasetKind?, split: DataSplit, valSplit: Double? = nil,
                            resolution: Int = 32, syntheticCount: Int? = nil, classes: Int = 10,
                            seed: UInt64 = 0) throws -> DataSource {
        let kind = try resolveKind(path: path, dataset: dataset, valSplit: valSplit)
        switch kind {
        case .folder:
            let root = path!
            let splits = try ImageFolderDataset.open(root: root, valSplit: valSplit)
            switch split {
            case .train: return splits.train
            case .val:
                guard let val = splits.val else { throw missingFolderVal(root) }
                return val
            }
        default:
            return try openOther(kind, path: path, split: split, resolution: resolution,
                                 syntheticCount: syntheticCount, classes: classes, seed: seed)
        }
    }

    /// Opens the train split and, where the dataset has one, the val split (an ImageFolder tree
    /// is indexed once for both).
    public static func openSplits(path: String?, dataset: DatasetKind?, valSplit: Double? = nil,
                                  resolution: Int = 32, syntheticCount: Int? = nil, classes: Int = 10,
                                  seed: UInt64 = 0) throws -> (train: DataSource, val: DataSource?) {
        let kind = try resolveKind(path: path, dataset: dataset, valSplit: valSplit)
        if kind == .folder {
            let splits = try ImageFolderDataset.open(root: path!, valSplit: valSplit)
            return (splits.train, splits.val)
        }
        let train = try openOther(kind, path: path, split: .train, resolution: resolution,
                                  syntheticCount: syntheticCount, classes: classes, seed: seed)
        let val = try openOther(kind, path: path, split: .val, resolution: resolution,
                                syntheticCount: syntheticCount, classes: classes, seed: seed)
        return (train, val)
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
        case .folder, .cifar10, .cifar100:
            guard let path else { throw DataError(path: "(none)", reason: "the \(kind.rawValue) dataset needs a path") }
            if kind != .folder, valSplit != nil {
                throw DataError(path: path, reason: "a validation fraction applies only to ImageFolder datasets; \(kind.rawValue) has its own test split")
            }
        case .digits, .synthetic:
            if valSplit != nil {
                throw DataError(path: path ?? kind.rawValue, reason: "a validation fraction applies only to ImageFolder datasets; \(kind.rawValue) has its own val split")
            }
        }
        return kind
    }

    private static func openOther(_ kind: DatasetKind, path: String?, split: DataSplit, resolution: Int,
                                  syntheticCount: Int?, classes: Int, seed: UInt64) throws -> DataSource {
        switch kind {
        case .cifar10, .cifar100:
            return try CIFARSource(directory: path!, split: split, variant: kind == .cifar10 ? .cifar10 : .cifar100)
        case .digits:
            return DigitsSource(split: split)
        case .synthetic:
            guard resolution >= 1, classes >= 1 else {
                throw DataError(path: "synthetic", reason: "needs a positive resolution and class count, got \(resolution) and \(classes)")
            }
            let trainCount = syntheticCount ?? defaultSyntheticCount
            guard trainCount >= 1 else { throw DataError(path: "synthetic", reason: "needs at least one sample, got \(trainCount)") }
            switch split {
            case .train: return SyntheticSource(count: trainCount, classes: classes, resolution: resolution, seed: seed)
            case .val: return SyntheticSource(count: max(classes, trainCount / 5), classes: classes, resolution: resolution, seed: ~seed)
            }
        case .folder:
            preconditionFailure("folders are opened by ImageFolderDataset")
        }
    }

    private static func missingFolderVal(_ root: String) -> DataError {
        DataError(path: root, reason: "no validation split (expected \(ImageFolderDataset.heldOutSplitNames.map { DirectoryListing.join(root, $0) }.joined(separator: ", ")) next to \(DirectoryListing.join(root, "train")), or a validation fraction)")
    }
}

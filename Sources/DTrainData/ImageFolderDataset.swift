import DTrainCore
import Foundation

/// Finds the train and held-out splits of an ImageFolder dataset.
///
/// Two layouts are recognised:
/// - split folders: `ROOT/train/<class>/…` plus an optional held-out split named `val`, `eval`
///   or `test` (the first that exists, in that order). Both splits must have the same classes;
/// - a single tree: `ROOT/<class>/…`, used whole for training, or divided with `valSplit`
///   (see `split(_:valFraction:seed:)`).
///
/// A root that contains a `train` directory is always read as split folders, so a single-tree
/// dataset cannot have a class named "train".
public enum ImageFolderDataset {
    /// Names accepted for the held-out split, in order of preference.
    public static let heldOutSplitNames = ["val", "eval", "test"]

    /// The seed of the per-class shuffles behind `valSplit`; fixed so every run and every rank
    /// makes the same split.
    public static let splitSeed: UInt64 = 0

    /// Opens the dataset at `root`.
    ///
    /// - Parameter valSplit: for a single tree, the fraction (0 < f < 1) of each class held out.
    /// - Returns: the training source and the held-out one, nil for a single tree without
    ///   `valSplit`.
    /// - Throws: `DataError` for a missing root, folder errors of either split, class lists
    ///   that differ between the splits (naming the classes only in train and only in val),
    ///   a `valSplit` outside (0, 1), or a `valSplit` for a root that already has a held-out split.
    public static func open(root: String, valSplit: Double? = nil) throws -> (train: ImageFolderSource, val: ImageFolderSource?) {
        guard let kind = DirectoryListing.kind(of: root) else { throw DataError(path: root, reason: "no such directory") }
        guard kind == .directory else { throw DataError(path: root, reason: "not a directory") }
        if let valSplit, !(valSplit > 0 && valSplit < 1) {
            throw DataError(path: root, reason: "validation fraction must be between 0 and 1 (exclusive), got \(valSplit)")
        }
        let trainRoot = DirectoryListing.join(root, "train")
        guard DirectoryListing.isDirectory(trainRoot) else {
            let all = try ImageFolderSource(root: root)
            guard let valSplit else { return (all, nil) }
            return split(all, valFraction: valSplit)
        }
        let train = try ImageFolderSource(root: trainRoot)
        guard let heldOutName = heldOutSplitNames.first(where: { DirectoryListing.isDirectory(DirectoryListing.join(root, $0)) }) else {
            guard let valSplit else { return (train, nil) }
            return split(train, valFraction: valSplit)
        }
        if valSplit != nil {
            throw DataError(path: root, reason: "a validation fraction was given but the dataset already has a held-out split (\(heldOutName))")
        }
        let val = try ImageFolderSource(root: DirectoryListing.join(root, heldOutName))
        if train.classNames != val.classNames {
            let trainSet = Set(train.classNames), valSet = Set(val.classNames)
            let onlyTrain = train.classNames.filter { !valSet.contains($0) }
            let onlyVal = val.classNames.filter { !trainSet.contains($0) }
            throw DataError(path: root, reason: "train and \(heldOutName) have different classes: only in train: "
                + "\(onlyTrain.isEmpty ? "none" : onlyTrain.joined(separator: ", ")); only in \(heldOutName): "
                + "\(onlyVal.isEmpty ? "none" : onlyVal.joined(separator: ", "))")
        }
        return (train, val)
    }

    /// Divides a folder source into train and held-out parts, per class and deterministically.
    ///
    /// Each class's files (in index order) are shuffled by a Fisher–Yates shuffle driven by
    /// `SeededRandom(keys: seed, label)`; the last ⌈fraction·n⌉ of the shuffled files are held
    /// out, except that a class keeps at least one training file (a class of one file is not
    /// held out at all). Both parts keep the original index order and all class names, and are
    /// disjoint and together complete.
    public static func split(_ source: ImageFolderSource, valFraction: Double, seed: UInt64 = splitSeed) -> (train: ImageFolderSource, val: ImageFolderSource) {
        let (train, val) = splitFiles(source.files, classes: source.classNames.count, valFraction: valFraction, seed: seed)
        return (ImageFolderSource(root: source.root, classNames: source.classNames, files: train),
                ImageFolderSource(root: source.root, classNames: source.classNames, files: val))
    }

    /// The per-class split of `split(_:valFraction:seed:)` on a plain file list (labels below
    /// `classes`): (kept for training, held out), each in the original order.
    static func splitFiles(_ files: [LabelledFile], classes: Int, valFraction: Double,
                           seed: UInt64 = splitSeed) -> (train: [LabelledFile], val: [LabelledFile]) {
        var byClass = [[Int]](repeating: [], count: classes)
        for (i, f) in files.enumerated() { byClass[f.label].append(i) }
        var heldOut = [Bool](repeating: false, count: files.count)
        for (label, members) in byClass.enumerated() where members.count > 1 {
            var shuffled = members
            var rng = SeededRandom(keys: seed, UInt64(label))
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
                shuffled.swapAt(i, rng.int(below: i + 1))
            }
            // The small epsilon keeps 0.1 · 30 (= 3.0000000000000004) at 3.
            let wanted = Int((valFraction * Double(members.count) - 1e-9).rounded(.up))
            for i in shuffled.suffix(min(max(wanted, 0), members.count - 1)) { heldOut[i] = true }
        }
        return (files.indices.filter { !heldOut[$0] }.map { files[$0] },
                files.indices.filter { heldOut[$0] }.map { files[$0] })
    }
}

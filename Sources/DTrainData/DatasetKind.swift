/// Which part of a dataset to read.
public enum DataSplit: String, CaseIterable, Sendable {
    /// The training samples.
    case train
    /// The held-out samples: an ImageFolder's val/eval/test folder, an annotation list's sibling
    /// val/eval/test list, CIFAR's test batch, the digits' fixed fifth.
    case val
}

/// The kinds of dataset `DataSourceFactory` opens.
public enum DatasetKind: String, CaseIterable, Sendable {
    /// An ImageFolder tree (`ImageFolderDataset`).
    case folder
    /// An annotation list file with its sibling val list and class names (`AnnotationListDataset`).
    case list
    /// CIFAR-10 binary batches (`CIFARSource`).
    case cifar10
    /// CIFAR-100 binary files (`CIFARSource`).
    case cifar100
    /// The embedded 8×8 handwritten digits (`DigitsSource`).
    case digits
    /// Procedurally drawn shapes (`SyntheticSource`).
    case synthetic
}

extension DatasetKind {
    /// Parses the `--dataset` flag's value; nil stays nil (detect from the path).
    public static func parse(_ name: String?) throws -> DatasetKind? {
        guard let name else { return nil }
        guard let kind = DatasetKind(rawValue: name) else {
            throw DataError(path: "--dataset \(name)", reason: "expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }
}

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

import Foundation
import ArgumentParser
import DTrainCore
import DTrainData

/// Where the data comes from (train, eval).
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset path: an ImageFolder root (train/ and val/, or one tree with --val-split), a CIFAR binary directory, or an annotation list file (cls_train.txt; val from cls_val.txt or cls_test.txt beside it). Default: the embedded digits.")
    var data: String?
    @Option(help: "Dataset kind: folder, list, cifar10, cifar100, digits or synthetic. Default: detected from --data.")
    var dataset: String?
    @Option(name: .customLong("val-split"), help: "Hold out this fraction of a single-root ImageFolder as validation.")
    var valSplit: Double?

    func validate() throws {
        _ = try DatasetKind.parse(dataset)
        if let v = valSplit, !(v > 0 && v < 1) { throw ValidationError("--val-split must be a fraction in (0, 1), got \(v)") }
    }
}

/// Threads a rank uses (train, eval).
struct ResourceOptions: ParsableArguments {
    @Option(help: "Compute threads per rank. Default: cores ÷ ranks on this node.")
    var threads: Int?
    @Option(help: "Data loader threads per rank. Default: what the cores leave free, at least 1.")
    var workers: Int?

    /// Threads beyond this many per core only add memory and switching: a typo, not a setting.
    static let threadsPerCoreLimit = 4

    func validate() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let limit = ResourceOptions.threadsPerCoreLimit * cores
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        if let t = threads, t > limit { throw ValidationError("--threads \(t): this node has \(cores) cores; at most \(limit) (\(ResourceOptions.threadsPerCoreLimit) per core)") }
        if let w = workers, w < 0 { throw ValidationError("--workers must be 0 or more, got \(w)") }
        if let w = workers, w > limit { throw ValidationError("--workers \(w): this node has \(cores) cores; at most \(limit) (\(ResourceOptions.threadsPerCoreLimit) per core)") }
    }
}

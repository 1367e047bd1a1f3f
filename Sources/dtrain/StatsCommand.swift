import ArgumentParser
import DTrainCore
import DTrainData
import Foundation

/// `dtrain stats`: the per-channel mean and std of a dataset, for `--mean`/`--std`.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per-channel mean and std of a dataset's training images, for --mean/--std.",
        discussion: """
            Exact over every pixel of the decoded images at full resolution, as values in [0, 1] \
            (every pixel weighs the same), with the population standard deviation. With --limit, \
            that many images evenly spaced over the split are used. Unreadable images are left out \
            and counted. The last line pastes into dtrain train: --mean R,G,B --std R,G,B.
            """)

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Use at most this many images, evenly spaced over the split.")
    var limit: Int?
    @Option(help: "Decoding threads. Default: all cores.")
    var workers: Int?
    @Flag(help: "Print one JSON object: mean, std, images, pixels, unreadable.")
    var json = false

    struct Output: Codable {
        var mean: [Double]
        var std: [Double]
        var images: Int
        var pixels: Int
        var unreadable: Int
    }

    func validate() throws {
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1, got \(l)") }
        if let w = workers, w < 1 { throw ValidationError("--workers must be at least 1, got \(w)") }
    }

    func run() throws {
        let data = dataOptions.data, dataset = dataOptions.dataset
        let source = try DataSourceFactory.open(path: data, dataset: DatasetKind.parse(dataset), split: .train,
                                                valSplit: dataOptions.valSplit)
        let workers = self.workers ?? ProcessInfo.processInfo.activeProcessorCount
        let stats = DatasetStatistics.compute(source: source, limit: limit, workers: workers)
        let asked = min(source.count, limit ?? source.count)
        guard stats.images > 0 else {
            throw DataError(path: data ?? dataset ?? "digits", reason: "none of the \(asked) images could be read")
        }
        let output = Output(mean: stats.mean, std: stats.std, images: stats.images, pixels: stats.pixels, unreadable: asked - stats.images)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
            return
        }
        let mean = Self.triple(stats.mean), std = Self.triple(stats.std)
        print("\(stats.images) images, \(stats.pixels) pixels (train split of \(data ?? dataset ?? "digits"))"
              + (output.unreadable > 0 ? "; \(output.unreadable) unreadable left out" : ""))
        print("mean \(mean)")
        print("std  \(std)")
        print("--mean \(mean) --std \(std)")
    }

    /// Three values, comma-separated, as `--mean`/`--std` read them.
    static func triple(_ values: [Double]) -> String {
        values.map { String(format: "%.6f", $0) }.joined(separator: ",")
    }
}

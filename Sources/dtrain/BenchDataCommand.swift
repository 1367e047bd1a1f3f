import ArgumentParser
import DTrainCore
import DTrainData
import Foundation

/// `dtrain bench-data`: how fast the loader decodes and augments a dataset's training images.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Measure data-loading throughput: decoded and augmented training images per second.",
        discussion: """
            Opens the train split of --data (an ImageFolder tree, CIFAR files, an annotation list; \
            or --dataset synthetic/digits) and runs the threaded batch loader with the preset's \
            training transform (imagenet: RandomResizedCrop + flip + normalise). After --warmup \
            untimed batches it times --passes passes of --batches batches each, in one epoch of \
            one loader, and reports the median pass's images/s. Samples are taken in index order, \
            wrapping around when the dataset is smaller than the run; nothing consumes the batches, \
            so this is the loader's ceiling. The CPU time of the timed passes (all threads) is \
            reported too: images per CPU second depend less on other load on a shared machine.
            """)

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Loader worker threads (0 decodes on the main thread). Default: cores ÷ ranks on this node.")
    var workers: Int?
    @Option(name: .customLong("batch-size"), help: "Images per batch.")
    var batchSize: Int = 64
    @Option(help: "Batches per timed pass.")
    var batches: Int = 10
    @Option(help: "Timed passes; the median is reported.")
    var passes: Int = 3
    @Option(help: "Untimed batches before the first pass.")
    var warmup: Int = 1
    @Option(help: "Augmentation preset: imagenet or cifar.")
    var preset: String = "imagenet"
    @Option(help: "Output image side in pixels. Default: the preset's (224 or 32).")
    var resolution: Int?
    @Option(help: ArgumentHelp("Synthetic only: image width and height.", valueName: "WxH"))
    var size: String = "500x375"
    @Option(help: "Synthetic only: images in the train split.")
    var count: Int = 2000
    @Option(help: "Augmentation seed.")
    var seed: UInt64 = 0
    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard Preset(rawValue: preset) != nil else { throw ValidationError("--preset must be imagenet or cifar, got \(preset)") }
        if let w = workers, w < 0 { throw ValidationError("--workers must be 0 or more, got \(w)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard batches >= 1 else { throw ValidationError("--batches must be at least 1, got \(batches)") }
        guard passes >= 1 else { throw ValidationError("--passes must be at least 1, got \(passes)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if let r = resolution, r < 1 { throw ValidationError("--resolution must be at least 1, got \(r)") }
        guard DatasetWriteCommand.parseSize(size) != nil else { throw ValidationError("--size must be WIDTHxHEIGHT, e.g. 500x375, got \(size)") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
    }

    func run() throws {
        let preset = Preset(rawValue: self.preset)!
        let resolution = self.resolution ?? preset.defaultResolution
        let data = dataOptions.data, dataset = dataOptions.dataset
        let source = try DataSourceFactory.open(path: data, dataset: DatasetKind.parse(dataset), split: .train,
                                                valSplit: dataOptions.valSplit, syntheticSize: DatasetWriteCommand.parseSize(size), syntheticCount: count, seed: seed)
        let workers = self.workers ?? BatchLoader.defaultWorkers(computeThreads: 0)
        let result = LoaderBenchmark.measure(source: source, transform: preset.train(resolution: resolution), batchSize: batchSize,
                                             resolution: resolution, workers: workers, batches: batches, passes: passes,
                                             warmupBatches: warmup, seed: seed)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            return
        }
        let passRates = result.passImagesPerSecond.map { String(format: "%.1f", $0) }.joined(separator: ", ")
        print(String(format: "%.1f images/s decoded and augmented (median of %d passes: %@)", result.imagesPerSecond, passes, passRates))
        print(String(format: "%d images in %.2f s, %d worker%@, batch %d, %d batches per pass after %d warm-up, %@ train preset at %d px",
                     result.images, result.seconds, workers, workers == 1 ? "" : "s", batchSize, batches, warmup, preset.rawValue, resolution))
        print(String(format: "%.2f CPU seconds: %.1f images per CPU second", result.cpuSeconds, result.imagesPerCPUSecond))
        print("data: \(data ?? dataset ?? "digits") (\(result.sourceImages) train images\(result.replaced > 0 ? ", \(result.replaced) unreadable replaced" : ""))")
    }
}

import Foundation
import DTrainCore

/// What `LoaderBenchmark.measure` found (`dtrain bench-data --json` prints it).
public struct LoaderBenchmarkResult: Codable, Sendable {
    /// The median of `passImagesPerSecond`: decoded and augmented images per second.
    public var imagesPerSecond: Double
    /// Images timed, over all passes (warm-up excluded).
    public var images: Int
    /// Seconds timed, over all passes.
    public var seconds: Double
    /// Throughput of each timed pass, in order.
    public var passImagesPerSecond: [Double]
    /// CPU time (user + system, all threads of the process) used during the timed passes.
    public var cpuSeconds: Double
    /// `images / cpuSeconds`: a throughput per busy core, less sensitive than wall-clock time to
    /// other work on a shared machine.
    public var imagesPerCPUSecond: Double
    /// Loader worker threads (0 = decoding on the calling thread).
    public var workers: Int
    public var batchSize: Int
    /// Batches per timed pass.
    public var batches: Int
    /// Untimed batches before the first pass.
    public var warmupBatches: Int
    /// Samples in the data source (indices wrap around when a run needs more).
    public var sourceImages: Int
    /// Samples replaced because they could not be read.
    public var replaced: Int

    /// snake_case in JSON, as metrics.jsonl and `eval --json`.
    enum CodingKeys: String, CodingKey {
        case imagesPerSecond = "images_per_second", images, seconds, passImagesPerSecond = "pass_images_per_second"
        case cpuSeconds = "cpu_seconds", imagesPerCPUSecond = "images_per_cpu_second", workers, batchSize = "batch_size"
        case batches, warmupBatches = "warmup_batches", sourceImages = "source_images", replaced
    }
}

/// Measures how fast a `BatchLoader` can decode and augment.
public enum LoaderBenchmark {
    /// Loads `warmupBatches` untimed batches, then `passes` timed passes of `batches` batches each,
    /// all in one epoch of a single loader (so the worker threads and their scratch memory are
    /// warm and the prefetch ring stays full between passes), and reports the median pass.
    ///
    /// The samples are the source's indices in order, wrapping around when it is smaller than a
    /// run. A pass's clock starts when the batch before it (the last warm-up batch or the previous
    /// pass's last) has been handed out, and stops when its own last batch has; with no warm-up,
    /// the first pass starts at `start(epoch:indices:)`, after the worker threads exist. The
    /// consumer does nothing with the batches, so this is the loader's ceiling, not a training
    /// step's.
    public static func measure(source: any DataSource, transform: ImageTransform, batchSize: Int, resolution: Int,
                               workers: Int, batches: Int, passes: Int = 3, warmupBatches: Int = 1,
                               seed: UInt64 = 0) -> LoaderBenchmarkResult {
        precondition(batches >= 1 && passes >= 1 && warmupBatches >= 0, "need at least one timed batch and pass")
        let loader = BatchLoader(source: source, transform: transform, batchSize: batchSize, resolution: resolution,
                                 workers: workers, seed: seed, rank: 0)
        defer { loader.stop() }
        loader.warningHandler = { _ in }
        let total = (warmupBatches + passes * batches) * batchSize
        let indices = (0..<total).map { $0 % source.count }
        let clock = ContinuousClock()
        var passStart = clock.now
        var cpuStart = processCPUSeconds(), cpuSeconds = 0.0
        loader.start(epoch: 0, indices: indices)
        var handedOut = 0, imagesThisPass = 0
        var rates: [Double] = [], images = 0, seconds = 0.0
        while let batch = try? loader.next() {
            handedOut += 1
            if handedOut <= warmupBatches {
                if handedOut == warmupBatches { passStart = clock.now; cpuStart = processCPUSeconds() }
                continue
            }
            imagesThisPass += batch.count
            if (handedOut - warmupBatches) % batches == 0 {
                let now = clock.now
                let elapsed = now - passStart
                let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                rates.append(s > 0 ? Double(imagesThisPass) / s : 0)
                images += imagesThisPass
                seconds += s
                imagesThisPass = 0
                passStart = now
                if rates.count == passes { cpuSeconds = processCPUSeconds() - cpuStart }
            }
        }
        let sorted = rates.sorted()
        let median = sorted.isEmpty ? 0
            : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return LoaderBenchmarkResult(imagesPerSecond: median, images: images, seconds: seconds, passImagesPerSecond: rates,
                                     cpuSeconds: cpuSeconds, imagesPerCPUSecond: cpuSeconds > 0 ? Double(images) / cpuSeconds : 0,
                                     workers: workers, batchSize: batchSize, batches: batches, warmupBatches: warmupBatches,
                                     sourceImages: source.count, replaced: loader.skippedThisEpoch)
    }

    /// Loads `batches` batches (the source's indices in order, wrapping around when it is smaller)
    /// with no warm-up and reports the throughput of that single pass (see `measure`).
    public static func run(source: any DataSource, transform: ImageTransform, batchSize: Int, resolution: Int,
                           workers: Int, batches: Int, seed: UInt64 = 0)
        -> (imagesPerSecond: Double, images: Int, seconds: Double) {
        let r = measure(source: source, transform: transform, batchSize: batchSize, resolution: resolution,
                        workers: workers, batches: max(1, batches), passes: 1, warmupBatches: 0, seed: seed)
        return (r.imagesPerSecond, r.images, r.seconds)
    }
}

#if canImport(Glibc)
private let RUSAGE_SELF_ID = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
private let RUSAGE_SELF_ID = RUSAGE_SELF
#endif

/// User plus system CPU seconds of the whole process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(RUSAGE_SELF_ID, &usage) == 0 else { return 0 }
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

import Foundation
import DTrainCore

/// Measures how fast a `BatchLoader` can decode and augment.
public enum LoaderBenchmark {
    /// Loads `batches` batches (the source's indices in order, wrapping around when it is smaller)
    /// and reports the throughput. The clock starts at `start(epoch:indices:)` after the worker
    /// threads exist, and stops when the last batch has been handed out.
    public static func run(source: any DataSource, transform: ImageTransform, batchSize: Int, resolution: Int,
                           workers: Int, batches: Int, seed: UInt64 = 0)
        -> (imagesPerSecond: Double, images: Int, seconds: Double) {
        let loader = BatchLoader(source: source, transform: transform, batchSize: batchSize, resolution: resolution,
                                 workers: workers, seed: seed, rank: 0)
        defer { loader.stop() }
        loader.warningHandler = { _ in }
        let total = max(0, batches) * batchSize
        let indices = (0..<total).map { $0 % source.count }
        let clock = ContinuousClock()
        let started = clock.now
        loader.start(epoch: 0, indices: indices)
        var images = 0
        while let batch = try? loader.next() { images += batch.count }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return (seconds > 0 ? Double(images) / seconds : 0, images, seconds)
    }
}

import XCTest
import DTrainCore
@testable import DTrainData

final class BatchLoaderTests: XCTestCase {
    let transform = Preset.imagenet.train(resolution: 12)

    struct Collected: Equatable {
        var images: [[Float]] = []
        var labels: [[Int32]] = []
        var indices: [[Int]] = []
        var counts: [Int] = []
    }

    /// Runs an epoch and copies everything out.
    func collect(_ loader: BatchLoader, epoch: Int, indices: [Int]) throws -> Collected {
        loader.start(epoch: epoch, indices: indices)
        var c = Collected()
        var number = 0
        while let batch = try loader.next() {
            XCTAssertEqual(batch.number, number)
            number += 1
            XCTAssertEqual(batch.images.shape, FeatureShape(height: 12, width: 12, channels: 3))
            XCTAssertEqual(batch.images.batch, batch.count)
            c.images.append(batch.images.toArray())
            c.labels.append(Array(batch.labelBuffer))
            c.indices.append(Array(batch.indices))
            c.counts.append(batch.count)
        }
        XCTAssertNil(try loader.next(), "stays at the end")
        return c
    }

    func loader(_ source: any DataSource, workers: Int, batchSize: Int = 5, dropLastPartial: Bool = false,
                prefetch: Int? = nil) -> BatchLoader {
        let l = BatchLoader(source: source, transform: transform, batchSize: batchSize, resolution: 12, workers: workers,
                            prefetchBatches: prefetch, seed: 42, rank: 0, dropLastPartial: dropLastPartial)
        l.warningHandler = { _ in }
        return l
    }

    func testBatchesInOrderWithLabelsAndPartialLast() throws {
        let source = PatternSource(count: 30)
        let order = Array((0..<23).map { ($0 * 7) % 30 })
        let l = loader(source, workers: 2)
        let c = try collect(l, epoch: 1, indices: order)
        XCTAssertEqual(c.counts, [5, 5, 5, 5, 3])
        XCTAssertEqual(c.indices.flatMap { $0 }, order)
        XCTAssertEqual(c.labels.flatMap { $0 }, order.map { Int32($0 % 4) })
        // Each sample is exactly the transform of that sample with (seed, epoch, index) draws.
        let scratch = ResampleScratch()
        let one = Storage(count: transform.outputFloats)
        for (b, batch) in c.indices.enumerated() {
            for (i, index) in batch.enumerated() {
                transform.apply(try source.image(at: index, targetSize: 12), seed: 42, epoch: 1, index: index,
                                into: one.pointer, scratch: scratch)
                XCTAssertEqual(Array(c.images[b][(i * transform.outputFloats)..<((i + 1) * transform.outputFloats)]), Array(one.buffer))
            }
        }
        XCTAssertEqual(l.batchesThisEpoch, 5)
        XCTAssertEqual(l.skippedThisEpoch, 0)
    }

    func testDropLastPartial() throws {
        let c = try collect(loader(PatternSource(count: 30), workers: 1, dropLastPartial: true), epoch: 0, indices: Array(0..<23))
        XCTAssertEqual(c.counts, [5, 5, 5, 5])
        XCTAssertEqual(c.indices.flatMap { $0 }, Array(0..<20))
    }

    func testSameOutputForAnyWorkerCount() throws {
        let source = PatternSource(count: 40)
        let order = Array((0..<37).reversed())
        let reference = try collect(loader(source, workers: 0), epoch: 3, indices: order)
        for (workers, prefetch) in [(1, nil), (3, nil), (3, 1), (2, 8)] as [(Int, Int?)] {
            XCTAssertEqual(try collect(loader(source, workers: workers, prefetch: prefetch), epoch: 3, indices: order), reference,
                           "\(workers) workers, \(prefetch.map(String.init) ?? "default") slots")
        }
    }

    func testUnreadableSamplesAreReplacedAndCounted() throws {
        let source = FailingSource(base: PatternSource(count: 20), failing: [3, 4, 10])
        var results: [Collected] = []
        var warningsPerRun: [[String]] = []
        for workers in [0, 3] {
            let l = loader(source, workers: workers)
            var warnings: [String] = []
            l.warningHandler = { warnings.append($0) }
            let c = try collect(l, epoch: 0, indices: Array(0..<20))
            XCTAssertEqual(c.counts, [5, 5, 5, 5])
            let used = c.indices.flatMap { $0 }
            XCTAssertEqual(used[3], 5)
            XCTAssertEqual(used[4], 5)
            XCTAssertEqual(used[10], 11)
            XCTAssertEqual(c.labels.flatMap { $0 }[10], Int32(11 % 4))
            XCTAssertEqual(l.skippedThisEpoch, 3)
            XCTAssertEqual(l.reportedSkips.map(\.index), [3, 4, 10])
            XCTAssertEqual(l.reportedSkips[0].reason, "corrupt data")
            XCTAssertEqual(warnings.count, 4) // three by name, one end-of-epoch count
            XCTAssertTrue(warnings[0].contains("pattern #3"))
            XCTAssertTrue(warnings[3].contains("3 unreadable samples"))
            results.append(c)
            warningsPerRun.append(warnings)
            // A second epoch counts again but lists no more than five names over the loader's life.
            _ = try collect(l, epoch: 1, indices: Array(0..<20))
            XCTAssertEqual(l.skippedThisEpoch, 3)
            XCTAssertEqual(l.skippedTotal, 6)
            XCTAssertEqual(l.reportedSkips.count, 5)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(warningsPerRun[0], warningsPerRun[1])
    }

    func testRunOfUnreadableSamplesAndOtherErrorsAreThrown() {
        let all = FailingSource(base: PatternSource(count: 6), failing: Set(0..<6))
        let l = loader(all, workers: 2)
        l.start(epoch: 0, indices: [0, 1])
        XCTAssertThrowsError(try l.next()) { XCTAssertTrue($0 is LoaderError) }
        XCTAssertNil(try l.next())

        let fatal = FailingSource(base: PatternSource(count: 12), failing: [], fatal: [7])
        for workers in [0, 2] {
            let f = loader(fatal, workers: workers)
            f.start(epoch: 0, indices: Array(0..<12))
            XCTAssertNotNil(try f.next())
            XCTAssertThrowsError(try f.next()) { XCTAssertTrue(($0 as? LoaderError)?.underlying is FailingSource.Fatal) }
            // The loader recovers with a new epoch.
            f.start(epoch: 1, indices: [0, 1, 2])
            XCTAssertEqual(try f.next()?.count, 3)
        }
    }

    func testRestartMidEpochAndSecondEpoch() throws {
        let source = PatternSource(count: 50)
        let l = loader(source, workers: 3, batchSize: 4)
        l.start(epoch: 0, indices: Array(0..<50))
        _ = try l.next()
        _ = try l.next()
        let second = try collect(l, epoch: 1, indices: Array((0..<50).reversed()))
        let fresh = try collect(loader(source, workers: 0, batchSize: 4), epoch: 1, indices: Array((0..<50).reversed()))
        XCTAssertEqual(second, fresh)
        let again = try collect(l, epoch: 0, indices: Array((0..<50).reversed()))
        XCTAssertNotEqual(again.images, second.images, "another epoch, other augmentation")
        XCTAssertEqual(again.indices, second.indices)
    }

    func testStopJoinsWorkerThreads() throws {
        let l = loader(PatternSource(count: 100), workers: 3, batchSize: 2)
        XCTAssertEqual(l.liveWorkerThreads, 3)
        l.start(epoch: 0, indices: Array(0..<100))
        _ = try l.next() // workers are busy filling the ring
        l.stop()
        XCTAssertEqual(l.liveWorkerThreads, 0)
        l.stop()
    }

    func testEmptyEpoch() throws {
        let l = loader(PatternSource(count: 3), workers: 1)
        XCTAssertNil(try l.next(), "nothing before start")
        l.start(epoch: 0, indices: [])
        XCTAssertNil(try l.next())
    }

    func testRingMemoryIsAllocatedOnce() throws {
        let l = loader(PatternSource(count: 20), workers: 2, prefetch: 3)
        XCTAssertEqual(l.prefetchBatches, 3)
        let before = Storage.liveBytes
        _ = try collect(l, epoch: 0, indices: Array(0..<20))
        XCTAssertEqual(Storage.liveBytes, before)
        l.stop()
        XCTAssertEqual(before - Storage.liveBytes, 3 * 5 * transform.outputFloats * 4, "stop() frees the ring")
        XCTAssertEqual(loader(PatternSource(count: 2), workers: 4).prefetchBatches, 5)
        XCTAssertEqual(loader(PatternSource(count: 2), workers: 0).prefetchBatches, 1)
    }

    func testDefaultWorkers() {
        XCTAssertEqual(BatchLoader.defaultWorkers(computeThreads: 12, coresPerRank: 16), 4)
        XCTAssertEqual(BatchLoader.defaultWorkers(computeThreads: 16, coresPerRank: 16), 1)
        XCTAssertEqual(BatchLoader.defaultWorkers(computeThreads: 1, coresPerRank: 1), 1)
        XCTAssertGreaterThanOrEqual(BatchLoader.defaultWorkers(computeThreads: 1), 1)
    }

    func testShardsOfTwoRanksLoadTheSameSamplesAsOne() throws {
        // Augmentation is keyed by the dataset index, not the rank.
        let source = PatternSource(count: 16)
        let one = DistributedSampler(datasetSize: 16, rank: 0, worldSize: 1, shuffle: true, seed: 5, dropLast: false, padToEqual: true)
        let single = try collect(loader(source, workers: 1, batchSize: 16), epoch: 2, indices: one.indices(epoch: 2))
        var byIndex: [Int: [Float]] = [:]
        let n = transform.outputFloats
        for (i, index) in single.indices[0].enumerated() { byIndex[index] = Array(single.images[0][(i * n)..<((i + 1) * n)]) }
        for rank in 0..<2 {
            let sampler = DistributedSampler(datasetSize: 16, rank: rank, worldSize: 2, shuffle: true, seed: 5, dropLast: false, padToEqual: true)
            let c = try collect(loader(source, workers: 2, batchSize: 8), epoch: 2, indices: sampler.indices(epoch: 2))
            for (i, index) in c.indices[0].enumerated() { XCTAssertEqual(Array(c.images[0][(i * n)..<((i + 1) * n)]), byIndex[index]) }
        }
    }
}

import XCTest
import Foundation
@testable import DTrainCore
@testable import DTrainData

/// `RepeatedAugmentationSampler` against torchvision's RASampler run in PyTorch
/// (Tests/FixtureScripts/recipe_fixtures.py), its structure, its resume rule and the repeat keys
/// of the augmentation.
final class RepeatedAugmentationSamplerTests: XCTestCase {
    /// Every rank's indices equal RASampler's (torch.randperm seeded seed + epoch, repeated,
    /// sharded, cut to floor(N / 256) · 256 / W), shuffled and not.
    func testIndicesEqualTorchvisionRASampler() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/ra_sampler", withExtension: "json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let samplers = try XCTUnwrap(json["samplers"] as? [[String: Any]])
        XCTAssertEqual(samplers.count, 7)
        for s in samplers {
            let n = s["size"] as! Int, world = s["world"] as! Int, reps = s["reps"] as! Int
            let seed = UInt64(s["seed"] as! Int), epoch = s["epoch"] as! Int, shuffle = s["shuffle"] as! Bool
            let ranks = s["ranks"] as! [[Int]]
            for rank in 0..<world {
                let sampler = RepeatedAugmentationSampler(datasetSize: n, rank: rank, worldSize: world, repetitions: reps,
                                                          shuffle: shuffle, seed: seed)
                XCTAssertEqual(sampler.indices(epoch: epoch), ranks[rank], "N \(n) W \(world) reps \(reps) seed \(seed) epoch \(epoch) rank \(rank)")
                XCTAssertEqual(sampler.samplesPerRank, ranks[rank].count)
            }
        }
    }

    /// torch.randperm(n, generator=torch.Generator().manual_seed(s)) for small cases, as printed by
    /// PyTorch.
    func testRandpermEqualsTorch() {
        var g = MersenneTwister(seed: 0)
        XCTAssertEqual(g.randperm(10), [4, 1, 7, 5, 3, 9, 0, 8, 6, 2])
        var h = MersenneTwister(seed: 5)
        XCTAssertEqual(Array(h.randperm(1000).prefix(8)), [411, 49, 291, 695, 678, 515, 112, 606])
        var e = MersenneTwister(seed: 0)
        XCTAssertEqual(e.randperm(0), [])
        XCTAssertEqual(e.randperm(1), [0])
    }

    func all(_ n: Int, world: Int, reps: Int, seed: UInt64 = 4, epoch: Int = 1, skip: Int = 0) -> [[RepeatedAugmentationSampler.Sample]] {
        (0..<world).map {
            RepeatedAugmentationSampler(datasetSize: n, rank: $0, worldSize: world, repetitions: reps, seed: seed)
                .samples(epoch: epoch, skippingFirst: skip)
        }
    }

    /// Each index taken appears `reps` times (the last one possibly cut short), with repeat numbers
    /// 0 ..< reps, each on a different rank when there are at least `reps` ranks; every rank takes
    /// floor(floor(N / 256) · 256 / W) samples; the order depends only on seed and epoch.
    func testRepeatsSpreadAcrossRanks() {
        for (n, world, reps) in [(1000, 4, 3), (2000, 3, 3), (1797, 8, 4), (700, 2, 2), (600, 1, 3)] {
            let shards = all(n, world: world, reps: reps)
            XCTAssertEqual(shards.map(\.count), [Int](repeating: n / 256 * 256 / world, count: world))
            var ranksOf: [Int: [Int]] = [:], repeatsOf: [Int: [Int]] = [:]
            for (rank, shard) in shards.enumerated() {
                for s in shard {
                    ranksOf[s.index, default: []].append(rank)
                    repeatsOf[s.index, default: []].append(s.repetition)
                }
            }
            let short = repeatsOf.values.filter { $0.count != reps }
            XCTAssertLessThanOrEqual(short.count, 1, "N \(n) W \(world): more than one index cut short")
            for (index, repeats) in repeatsOf {
                XCTAssertEqual(repeats.sorted(), Array(0..<repeats.count), "index \(index) repeats \(repeats)")
                if world >= reps { XCTAssertEqual(Set(ranksOf[index]!).count, repeats.count, "index \(index) twice on a rank") }
            }
            XCTAssertEqual(all(n, world: world, reps: reps), shards, "not deterministic")
            XCTAssertNotEqual(all(n, world: world, reps: reps, epoch: 2), shards, "epochs share an order")
            XCTAssertNotEqual(all(n, world: world, reps: reps, seed: 5), shards, "seeds share an order")
        }
        XCTAssertEqual(all(255, world: 1, reps: 3).map(\.count), [0], "fewer than 256 samples: nothing, as RASampler")
    }

    /// Resuming after k positions (what a checkpoint records: steps × batch × ranks) continues each
    /// rank's sequence where it stopped; at another world size the ranks together continue the
    /// global order.
    func testResumeContinuesTheSameSequence() {
        let n = 1100, reps = 3
        for world in [1, 2, 4] {
            let full = all(n, world: world, reps: reps)
            for stepsDone in [1, 3, 7] {
                let k = stepsDone * 8 * world
                let rest = all(n, world: world, reps: reps, skip: k)
                for r in 0..<world { XCTAssertEqual(rest[r], Array(full[r].dropFirst(stepsDone * 8)), "world \(world) rank \(r)") }
            }
        }
        // Written at 2 ranks after 5 steps of 8, resumed at 4: the global order goes on.
        let global = RepeatedAugmentationSampler(datasetSize: n, rank: 0, worldSize: 4, repetitions: reps, seed: 4).globalOrder(epoch: 1)
        let resumed = all(n, world: 4, reps: reps, skip: 80)
        let interleaved = (0..<resumed[0].count).flatMap { j in resumed.map { $0[j] } }
        XCTAssertEqual(interleaved, Array(global.dropFirst(80).prefix(interleaved.count)))
        XCTAssertEqual(interleaved.count, (global.count - 80) / 4 * 4)
    }

    /// Repeat 0 is augmented exactly as before (ordinary runs unchanged); other repeats differently.
    func testRepeatsAreAugmentedDifferently() {
        var plain = ImageTransform.random(seed: 3, epoch: 2, index: 17)
        var zero = ImageTransform.random(seed: 3, epoch: 2, index: 17, repetition: 0)
        XCTAssertEqual(plain.state, zero.state)
        XCTAssertEqual(plain.next(), zero.next())
        let states = (0..<4).map { ImageTransform.random(seed: 3, epoch: 2, index: 17, repetition: $0).state }
        XCTAssertEqual(Set(states).count, 4)
    }

    /// The loader keys each position's augmentation by its repeat number: the repeats of one index
    /// differ, repeat 0 is the ordinary sample, and any worker count gives the same batch.
    func testLoaderAugmentsRepeatsDifferently() throws {
        let transform = Preset.imagenet.train(resolution: 12)
        let source = PatternSource(count: 8)
        let indices = [3, 3, 3, 5, 3], repetitions = [0, 1, 2, 0, 1]
        func images(workers: Int, repetitions: [Int]) throws -> [[Float]] {
            let loader = BatchLoader(source: source, transform: transform, batchSize: 5, resolution: 12, workers: workers, seed: 42, rank: 0)
            defer { loader.stop() }
            loader.start(epoch: 2, indices: indices, repetitions: repetitions)
            let batch = try XCTUnwrap(try loader.next())
            let all = batch.images.toArray(), f = transform.outputFloats
            return (0..<batch.count).map { Array(all[($0 * f)..<(($0 + 1) * f)]) }
        }
        let repeated = try images(workers: 0, repetitions: repetitions)
        XCTAssertNotEqual(repeated[0], repeated[1])
        XCTAssertNotEqual(repeated[0], repeated[2])
        XCTAssertNotEqual(repeated[1], repeated[2])
        XCTAssertEqual(repeated[1], repeated[4], "one (index, repeat) augmented two ways")
        let ordinary = try images(workers: 0, repetitions: [])
        XCTAssertEqual(ordinary[0], repeated[0])
        XCTAssertEqual(ordinary[3], repeated[3])
        XCTAssertEqual(try images(workers: 2, repetitions: repetitions), repeated)
        let scratch = ResampleScratch(), one = Storage(count: transform.outputFloats)
        var random = ImageTransform.random(seed: 42, epoch: 2, index: 3, repetition: 2)
        transform.apply(try source.image(at: 3, targetSize: 12), random: &random, into: one.pointer, scratch: scratch)
        XCTAssertEqual(Array(one.buffer), repeated[2])
    }
}

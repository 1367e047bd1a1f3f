import XCTest
@testable import DTrainData

final class DistributedSamplerTests: XCTestCase {
    func shards(_ n: Int, world: Int, shuffle: Bool = true, seed: UInt64 = 1, dropLast: Bool = false, pad: Bool = true,
                epoch: Int = 0, skip: Int = 0) -> [[Int]] {
        (0..<world).map {
            DistributedSampler(datasetSize: n, rank: $0, worldSize: world, shuffle: shuffle, seed: seed, dropLast: dropLast, padToEqual: pad)
                .indices(epoch: epoch, skippingFirst: skip)
        }
    }

    func testEvaluationShardsAreDisjointAndCoverTheDataset() {
        let s = shards(10, world: 3, shuffle: false, pad: false)
        XCTAssertEqual(s.map(\.count), [4, 3, 3])
        XCTAssertEqual(s[0], [0, 3, 6, 9])
        XCTAssertEqual(s[1], [1, 4, 7])
        XCTAssertEqual(s.flatMap { $0 }.sorted(), Array(0..<10))
        for (r, shard) in s.enumerated() {
            let sampler = DistributedSampler(datasetSize: 10, rank: r, worldSize: 3, shuffle: false, seed: 0, dropLast: false, padToEqual: false)
            XCTAssertEqual(sampler.samplesPerRank, shard.count)
        }
        // Shuffled evaluation also visits each sample once.
        XCTAssertEqual(shards(11, world: 4, shuffle: true, pad: false).flatMap { $0 }.sorted(), Array(0..<11))
    }

    func testTrainingShardsArePaddedToEqualLength() {
        let s = shards(10, world: 3)
        XCTAssertEqual(s.map(\.count), [4, 4, 4])
        let all = s.flatMap { $0 }
        XCTAssertEqual(Set(all), Set(0..<10))
        XCTAssertEqual(all.count, 12)
        // The padding repeats the beginning of the global order.
        let order = DistributedSampler(datasetSize: 10, rank: 0, worldSize: 3, shuffle: true, seed: 1, dropLast: false, padToEqual: true).order(epoch: 0)
        XCTAssertEqual(s[1][3], order[0])
        XCTAssertEqual(s[2][3], order[1])
        XCTAssertEqual(DistributedSampler(datasetSize: 10, rank: 2, worldSize: 3, shuffle: true, seed: 1, dropLast: false, padToEqual: true).samplesPerRank, 4)
        // World larger than half the dataset: padding wraps more than once.
        let tiny = shards(2, world: 5)
        XCTAssertEqual(tiny.map(\.count), [1, 1, 1, 1, 1])
    }

    func testDropLastTruncates() {
        let s = shards(10, world: 3, dropLast: true)
        XCTAssertEqual(s.map(\.count), [3, 3, 3])
        XCTAssertEqual(Set(s.flatMap { $0 }).count, 9)
        let sampler = DistributedSampler(datasetSize: 10, rank: 0, worldSize: 3, shuffle: true, seed: 1, dropLast: true, padToEqual: true)
        XCTAssertEqual(sampler.samplesPerRank, 3)
        XCTAssertEqual(sampler.stepsPerEpoch(batchSize: 2), 2)
        XCTAssertEqual(sampler.stepsPerEpoch(batchSize: 2, dropLastPartial: true), 1)
    }

    func testNewOrderEachEpochSameForSameSeed() {
        let a = shards(100, world: 1, epoch: 0)[0]
        XCTAssertEqual(a, shards(100, world: 1, epoch: 0)[0])
        XCTAssertNotEqual(a, shards(100, world: 1, epoch: 1)[0])
        XCTAssertNotEqual(a, shards(100, world: 1, seed: 2, epoch: 0)[0])
        XCTAssertNotEqual(a, Array(0..<100))
        XCTAssertEqual(a.sorted(), Array(0..<100))
        // The global order does not depend on the world size.
        let two = shards(100, world: 2, epoch: 0)
        XCTAssertEqual(two[0], stride(from: 0, to: 100, by: 2).map { a[$0] })
    }

    func testSkippingMatchesAFullPassAcrossWorldSizes() {
        for k in [0, 1, 7, 30, 99, 100] {
            let one = shards(100, world: 1, epoch: 2, skip: k)[0]
            XCTAssertEqual(one, Array(shards(100, world: 1, epoch: 2)[0].dropFirst(k)))
            if (100 - k) % 2 == 0 {
                let two = shards(100, world: 2, epoch: 2, skip: k)
                XCTAssertEqual(two[0].count, two[1].count)
                XCTAssertEqual(two.flatMap { $0 }.sorted(), one.sorted(), "skip \(k)")
                // Interleaving the ranks gives back the single-rank order.
                XCTAssertEqual(zip(two[0], two[1]).flatMap { [$0, $1] }, one)
            }
            // Evaluation (no padding): exact for any remainder.
            let evalOne = shards(100, world: 1, pad: false, epoch: 2, skip: k)[0]
            XCTAssertEqual(shards(100, world: 3, pad: false, epoch: 2, skip: k).flatMap { $0 }.sorted(), evalOne.sorted())
        }
        // An odd remainder on two training ranks is padded so both take the same steps.
        let odd = shards(100, world: 2, epoch: 2, skip: 7)
        XCTAssertEqual(odd.map(\.count), [47, 47])
        XCTAssertEqual(Set(odd.flatMap { $0 }), Set(shards(100, world: 1, epoch: 2, skip: 7)[0]))
    }

    func testStepsPerEpoch() {
        let s = DistributedSampler(datasetSize: 1000, rank: 3, worldSize: 4, shuffle: true, seed: 0, dropLast: false, padToEqual: true)
        XCTAssertEqual(s.samplesPerRank, 250)
        XCTAssertEqual(s.stepsPerEpoch(batchSize: 32), 8)
        XCTAssertEqual(s.stepsPerEpoch(batchSize: 32, dropLastPartial: true), 7)
        XCTAssertEqual(DistributedSampler(datasetSize: 0, rank: 0, worldSize: 2, shuffle: true, seed: 0, dropLast: false, padToEqual: true).indices(epoch: 0), [])
    }
}

import Foundation
import XCTest
import DTrainCore
import DTrainNN
@testable import DTrainDistributed
import DTrainTestSupport

/// The bucketed gradient allreduce that overlaps backward, over loopback ranks.
final class OverlappedGradientAllreduceTests: XCTestCase {
    override func setUp() { Compute.setThreads(1) }
    override func tearDown() { Compute.setThreads(2) }

    /// Parameter sizes in forward order, and which are frozen. With 1600-byte buckets this gives,
    /// from the end: [p6 p7] (up to the gap at p5), [p4] (full), [p2 p3] (full), [p0] (after the gap at p1).
    private let sizes = [300, 50, 700, 200, 500, 120, 400, 100]
    private let frozen: Set<Int> = [1, 5]
    private let bucketBytes = 1600

    /// Rank `rank`'s gradient at flat index `i` in step `step`.
    private func gradient(_ rank: Int, _ i: Int, step: Int) -> Float {
        Float((i * 7 + rank * 13 + step * 5) % 23) * 0.125 - 1.5 + Float(rank) * 0.01
    }

    /// What a rank saw: after each gradient-ready call of the simulated backward, how many buckets
    /// had started; the started collectives; the gradients after synchronize, per step.
    private struct Seen {
        var startedAfterReady: [[Int]] = []
        var starts: [(range: Range<Int>, purpose: String, context: Int)] = []
        var grads: [[Float]] = []
    }

    func testBucketsStartAsBackwardCompletesThemAndAverageOverRanks() throws {
        let ranks = 3, steps = 2
        let parameters = sizes.map { Parameter(torchShape: [$0], role: .weight, initializer: .constant(0)) }
        let layout = ParameterStore(parameters)   // offsets, as every rank's store has them
        let offsets = parameters.map { $0.offset }
        let trainable = sizes.indices.filter { !frozen.contains($0) }
        let buckets = GradientBuckets(parameters: trainable.map { (offsets[$0], sizes[$0]) }, bucketBytes: bucketBytes)
        XCTAssertEqual(buckets.ranges, [offsets[6]..<layout.count, offsets[4]..<offsets[5], offsets[2]..<offsets[4], 0..<offsets[1]])

        let seen = try LoopbackCommunicator.run(ranks: ranks) { comm -> Seen in
            let params = self.sizes.map { Parameter(torchShape: [$0], role: .weight, initializer: .constant(0)) }
            for i in self.frozen { params[i].trainable = false }
            let store = ParameterStore(params)
            let sync = try OverlappedGradientAllreduce(store: store, communicator: comm, bucketBytes: self.bucketBytes)
            var seen = Seen()
            func startedBuckets() -> Int { comm.records.filter { $0.operation == .startAllreduce(.sum) }.count }
            for step in 0..<steps {
                for i in 0..<store.count { store.grads.pointer[i] = self.gradient(comm.rank, i, step: step) }
                for p in self.frozen { (store.grads.pointer + params[p].offset).update(repeating: Float(-100 - comm.rank), count: params[p].count) }
                let before = startedBuckets()
                sync.beginBackward()
                // Backward: parameters complete from the end of the buffer, each layer reporting the
                // lowest offset of its parameters (frozen ones included), as Sequential does.
                var started: [Int] = []
                for p in params.reversed() {
                    sync.gradientsReady(from: p.offset)
                    started.append(startedBuckets() - before)
                }
                seen.startedAfterReady.append(started)
                try sync.synchronize()
                seen.grads.append(Array(store.grads.buffer))
            }
            let base = UnsafeRawPointer(store.grads.pointer)
            for r in comm.records where r.operation == .startAllreduce(.sum) {
                let start = base.distance(to: r.buffer!) / 4
                seen.starts.append((start..<(start + r.count), r.purpose, r.context))
            }
            return seen
        }

        // After the ready call for parameter p (backward order), the buckets lying at or after p's
        // offset have started, and no others.
        let expectedStarted = offsets.reversed().map { offset in buckets.ranges.filter { $0.lowerBound >= offset }.count }
        XCTAssertEqual(expectedStarted, [0, 1, 1, 2, 2, 3, 3, 4])
        for (rank, s) in seen.enumerated() {
            XCTAssertEqual(s.startedAfterReady, [[Int]](repeating: expectedStarted, count: steps), "rank \(rank)")
            // One non-blocking allreduce per bucket and step, in bucket order, on a duplicate.
            let ranges = s.starts.map { $0.range }
            XCTAssertEqual(ranges, Array([[Range<Int>]](repeating: buckets.ranges, count: steps).joined()), "rank \(rank)")
            XCTAssertEqual(s.starts.map { $0.purpose }, (0..<steps).flatMap { _ in (1...4).map { "gradient bucket \($0) of 4" } })
            XCTAssertTrue(s.starts.allSatisfy { $0.context != 0 }, "the allreduce communicates on a duplicate")
            // Frozen parameters are never sent.
            for p in frozen {
                let span = offsets[p]..<(offsets[p] + sizes[p])
                XCTAssertFalse(ranges.contains { $0.overlaps(span) }, "rank \(rank): frozen parameter \(p) sent")
            }
        }
        for step in 0..<steps {
            for (rank, s) in seen.enumerated() {
                let grads = s.grads[step]
                for p in sizes.indices {
                    for i in offsets[p]..<(offsets[p] + sizes[p]) {
                        if frozen.contains(p) {
                            XCTAssertEqual(grads[i], Float(-100 - rank), "rank \(rank) step \(step): frozen gradient \(i) changed")
                        } else {
                            // Summed in rank order, then scaled by 1/ranks.
                            let sum = (0..<ranks).dropFirst().reduce(gradient(0, i, step: step)) { $0 + gradient($1, i, step: step) }
                            let mean = sum * (1 / Float(ranks))
                            if grads[i] != mean {
                                return XCTFail("rank \(rank) step \(step): gradient \(i) is \(grads[i]), the mean over ranks is \(mean)")
                            }
                        }
                    }
                }
            }
        }
    }

    func testSynchronizeWithoutReadyCallsStartsEveryBucketThenAverages() throws {
        // A backward that reports no offsets (as with gradient accumulation's last micro-batch
        // outside a Sequential): synchronize() starts all buckets itself.
        let seen = try LoopbackCommunicator.run(ranks: 2) { comm -> ([Float], Int) in
            let params = [Parameter(torchShape: [10], role: .weight, initializer: .constant(0)), Parameter(torchShape: [6], role: .bias, initializer: .constant(0))]
            let store = ParameterStore(params)
            let sync = try OverlappedGradientAllreduce(store: store, communicator: comm)
            for i in 0..<store.count { store.grads.pointer[i] = Float(i + 10 * comm.rank) }
            try sync.synchronize()
            return (Array(store.grads.buffer), comm.records.count)
        }
        for (rank, (grads, collectives)) in seen.enumerated() {
            XCTAssertEqual(grads, (0..<16).map { Float($0) + 5 }, "rank \(rank)")
            XCTAssertEqual(collectives, 1, "one bucket, one collective")
        }
    }
}

import XCTest
import Foundation
import CAllocationCounter
import COpenBLAS
@testable import DTrainCore

final class ThreadPoolTests: XCTestCase {
    override func tearDown() {
        Compute.setThreads(2)
        super.tearDown()
    }

    /// Visits of each index, counted in a buffer (a double visit shows up as 2).
    private func visits(_ count: Int, _ run: (UnsafeMutablePointer<Int32>) -> Void) -> [Int32] {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        defer { p.deallocate() }
        run(p)
        return Array(UnsafeBufferPointer(start: p, count: count))
    }

    func testParallelForCoversEveryIndexOnceForManyCountsAndThreadCounts() {
        for threads in 1...5 {
            Compute.setThreads(threads)
            for count in [0, 1, 2, 3, 5, 7, 64, 100, 1001, 10_007] {
                for minChunk in [1, 3, 256] {
                    let seen = visits(count) { p in
                        parallelFor(count, minChunk: minChunk) { r in for i in r { p[i] += 1 } }
                    }
                    XCTAssertEqual(seen, [Int32](repeating: 1, count: count), "threads \(threads) count \(count) minChunk \(minChunk)")
                }
            }
        }
    }

    func testParallelChunksRunsEachChunkOnceWithItsFixedRange() {
        for threads in [1, 2, 3, 4, 8] {
            Compute.setThreads(threads)
            for (count, chunks) in [(0, 3), (10, 1), (10, 3), (100, 16), (5, 9), (1000, 64)] {
                let ranges = UnsafeMutablePointer<Int>.allocate(capacity: 2 * chunks)
                ranges.initialize(repeating: -1, count: 2 * chunks)
                defer { ranges.deallocate() }
                let seen = visits(count) { p in
                    parallelChunks(count, chunks: chunks) { k, r in
                        ranges[2 * k] = r.lowerBound
                        ranges[2 * k + 1] = r.upperBound
                        for i in r { p[i] += 1 }
                    }
                }
                XCTAssertEqual(seen, [Int32](repeating: 1, count: count), "threads \(threads) count \(count) chunks \(chunks)")
                for k in 0..<chunks {
                    let r = chunkRange(k, of: chunks, count: count)
                    XCTAssertEqual(ranges[2 * k], r.lowerBound, "chunk \(k) of \(chunks)")
                    XCTAssertEqual(ranges[2 * k + 1], r.upperBound, "chunk \(k) of \(chunks)")
                }
            }
        }
    }

    func testManyConsecutiveCallsStayCorrect() {
        Compute.setThreads(3)
        let n = 4096
        let s = Storage(count: n)
        let p = s.pointer
        for round in 0..<20_000 {
            let count = 1 + (round * 7919) % n
            parallelFor(count) { r in for i in r { p[i] += 1 } }
        }
        var expected = [Float](repeating: 0, count: n)
        for round in 0..<20_000 { for i in 0..<(1 + (round * 7919) % n) { expected[i] += 1 } }
        XCTAssertEqual(Array(s.buffer), expected)
    }

    func testNestedCallsRunSeriallyWithoutDeadlock() {
        for threads in [2, 4] {
            Compute.setThreads(threads)
            let outer = 16, inner = 1000
            var inRegion = [Bool](repeating: false, count: outer)
            let seen = visits(outer * inner) { p in
                inRegion.withUnsafeMutableBufferPointer { flags in
                parallelFor(outer) { r in
                    for o in r {
                        flags[o] = Compute.isInParallelRegion
                        parallelFor(inner) { q in for i in q { p[o * inner + i] += 1 } }
                        parallelChunks(inner, chunks: 5) { _, q in for i in q { p[o * inner + i] += 1 } }
                    }
                }
                }
            }
            XCTAssertEqual(inRegion, [Bool](repeating: true, count: outer))
            XCTAssertEqual(seen, [Int32](repeating: 2, count: outer * inner), "threads \(threads)")
            XCTAssertFalse(Compute.isInParallelRegion)
        }
    }

    func testCallsFromSeveralThreadsAtOnceAllComplete() {
        Compute.setThreads(2)
        let callers = 4, n = 5000, rounds = 200
        let storages = (0..<callers).map { _ in Storage(count: n) }
        let pointers = storages.map { $0.pointer }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            let p = pointers[c]
            for _ in 0..<rounds { parallelFor(n, minChunk: 16) { r in for i in r { p[i] += 1 } } }
        }
        for s in storages { XCTAssertEqual(Array(s.buffer), [Float](repeating: Float(rounds), count: n)) }
    }

    func testResizingKeepsResultsAndDeterminism() {
        let n = 100_003
        var rng = SeededRandom(seed: 7)
        let data = (0..<n).map { _ in Float(rng.normal()) }
        func chunkedSum(chunks: Int) -> Double {
            var partial = [Double](repeating: 0, count: chunks)
            data.withUnsafeBufferPointer { d in
                partial.withUnsafeMutableBufferPointer { out in
                    parallelChunks(n, chunks: chunks) { k, r in
                        var s = 0.0
                        for i in r { s += Double(d[i]) * Double(d[i]) }
                        out[k] = s
                    }
                }
            }
            return partial.reduce(0, +)
        }
        var reference: Double?
        for threads in [1, 4, 2, 3, 1, 2, 5, 2] {
            Compute.setThreads(threads)
            XCTAssertEqual(Compute.threads, threads)
            let sum = chunkedSum(chunks: 7)
            if let reference { XCTAssertEqual(sum, reference, "threads \(threads)") } else { reference = sum }
            let seen = visits(999) { p in parallelFor(999) { r in for i in r { p[i] += 1 } } }
            XCTAssertEqual(seen, [Int32](repeating: 1, count: 999), "threads \(threads)")
        }
    }

    func testWorkersRunChunksWhenThreadsAreIdleLong() {
        // Workers that went to sleep between calls are woken for the next one.
        Compute.setThreads(2)
        for _ in 0..<3 {
            usleep(2_000)
            let seen = visits(64) { p in parallelFor(64) { r in for i in r { p[i] += 1 } } }
            XCTAssertEqual(seen, [Int32](repeating: 1, count: 64))
        }
    }

    func testParallelCallsAllocateNothing() throws {
        try XCTSkipUnless(dtrain_allocations_supported() == 1, "allocation counting needs glibc")
        for threads in [2, 4] {
            Compute.setThreads(threads)
            let n = 1 << 16
            let s = Storage(count: n)
            let p = s.pointer
            let partial = Storage(count: 16)
            let q = partial.pointer
            func work() {
                parallelFor(n, minChunk: 1024) { r in for i in r { p[i] += 1 } }
                parallelChunks(n, chunks: 16) { k, r in
                    var t: Float = 0
                    for i in r { t += p[i] }
                    q[k] = t
                }
                parallelFor(8) { r in for i in r { parallelFor(4) { inner in for j in inner { p[i * 4 + j] += 0 } } } }
            }
            for _ in 0..<100 { work() }   // warm up (lazy runtime metadata, first wake-ups)
            dtrain_allocations_start()
            for _ in 0..<2000 { work() }
            let allocations = dtrain_allocations_stop()
            XCTAssertEqual(allocations, 0, "threads \(threads): \(allocations) heap allocations in 6000 parallel calls")
            XCTAssertEqual(p[n - 1], 2100)
        }
    }

    func testBLASIsSingleThreadedInsideParallelRegionsOnly() {
        Compute.setThreads(3)
        XCTAssertEqual(BLAS.threads, 3)
        let inside = UnsafeMutablePointer<Int32>.allocate(capacity: 3)
        defer { inside.deallocate() }
        parallelFor(3) { r in for i in r { inside[i] = openblas_threads() } }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: inside, count: 3)), [1, 1, 1])
        XCTAssertEqual(openblas_threads(), 3)
        BLAS.withSingleThreaded { XCTAssertEqual(openblas_threads(), 1) }
        XCTAssertEqual(openblas_threads(), 3)
        BLAS.threads = 1
        XCTAssertEqual(openblas_threads(), 1)
        Compute.setThreads(2)
        XCTAssertEqual(BLAS.threads, 2)
        XCTAssertEqual(openblas_threads(), 2)
    }
}

private func openblas_threads() -> Int32 { openblas_get_num_threads() }

import Foundation
import XCTest
import DTrainDistributed
import DTrainTestSupport

/// The in-process loopback transport itself: every collective against values computed here.
final class LoopbackCommunicatorTests: XCTestCase {
    private func bytes<T>(_ values: inout [T], _ body: (UnsafeMutableRawPointer) throws -> Void) rethrows {
        try values.withUnsafeMutableBytes { try body($0.baseAddress!) }
    }

    func testAllreduceOfEveryTypeAndOperationInRankOrder() throws {
        let ranks = 3
        // Per rank, its contribution; the expected results are reduced here in rank order.
        func floats(_ r: Int) -> [Float] { [0.1 * Float(r + 1), -1e8 + Float(r), 1e-3 / Float(r + 1), Float(r) * 3 - 4] }
        func doubles(_ r: Int) -> [Double] { floats(r).map { Double($0) / 7 } }
        func ints(_ r: Int) -> [Int64] { [Int64(r) - 1, (1 << 40) + Int64(r), -Int64(r) * 5, Int64(r % 2) << 50] }
        func bytes(_ r: Int) -> [UInt8] { [UInt8(r), 200, UInt8(250 - r * 100), 7] }
        func reduce<T>(_ of: (Int) -> [T], _ f: (T, T) -> T) -> [T] {
            (1..<ranks).reduce(of(0)) { acc, r in zip(acc, of(r)).map(f) }
        }
        struct Outcome: Equatable {
            var f: [[Float]] = [], d: [[Double]] = [], i: [[Int64]] = [], b: [[UInt8]] = []
        }
        let ops: [ReduceOp] = [.sum, .max, .min]
        let outcomes = try LoopbackCommunicator.run(ranks: ranks) { comm -> Outcome in
            var out = Outcome()
            for op in ops {
                var f = floats(comm.rank), d = doubles(comm.rank), i = ints(comm.rank), b = bytes(comm.rank)
                try self.bytes(&f) { try comm.allreduce($0, count: 4, type: .float32, op: op) }
                try self.bytes(&d) { try comm.allreduce($0, count: 4, type: .float64, op: op) }
                try self.bytes(&i) { try comm.allreduce($0, count: 4, type: .int64, op: op) }
                try self.bytes(&b) { try comm.allreduce($0, count: 4, type: .byte, op: op) }
                out.f.append(f); out.d.append(d); out.i.append(i); out.b.append(b)
            }
            return out
        }
        var expected = Outcome()
        for op in ops {
            switch op {
            case .sum:
                expected.f.append(reduce(floats, +)); expected.d.append(reduce(doubles, +))
                expected.i.append(reduce(ints, &+)); expected.b.append(reduce(bytes, &+))
            case .max:
                expected.f.append(reduce(floats, { Swift.max($0, $1) })); expected.d.append(reduce(doubles, { Swift.max($0, $1) }))
                expected.i.append(reduce(ints, { Swift.max($0, $1) })); expected.b.append(reduce(bytes, { Swift.max($0, $1) }))
            case .min:
                expected.f.append(reduce(floats, { Swift.min($0, $1) })); expected.d.append(reduce(doubles, { Swift.min($0, $1) }))
                expected.i.append(reduce(ints, { Swift.min($0, $1) })); expected.b.append(reduce(bytes, { Swift.min($0, $1) }))
            }
        }
        XCTAssertEqual(outcomes.count, ranks)
        for (rank, outcome) in outcomes.enumerated() { XCTAssertEqual(outcome, expected, "rank \(rank)") }
        // The float sum is rank 0 + rank 1, then + rank 2, bit for bit (not, say, 0 + (1 + 2)).
        XCTAssertEqual(outcomes[0].f[0][0], (floats(0)[0] + floats(1)[0]) + floats(2)[0])
        XCTAssertEqual(outcomes[0].f[0][1], -3e8 + 3)
    }

    func testBroadcastAllgatherBarrierAndRecords() throws {
        let outcomes = try LoopbackCommunicator.run(ranks: 3) { comm -> ([Float], [Int64], [UInt8], [LoopbackCommunicator.Record]) in
            var values: [Float] = [Float(comm.rank), Float(comm.rank) + 0.5]
            try self.bytes(&values) { try comm.broadcast($0, count: 2, type: .float32, root: 1) }
            let send: [Int64] = [Int64(comm.rank) * 10, Int64(comm.rank) * 10 + 1]
            var gathered = [Int64](repeating: -1, count: 6)
            try send.withUnsafeBytes { s in
                try self.bytes(&gathered) { try comm.allgather(s.baseAddress!, $0, count: 2, type: .int64) }
            }
            let text = Array("r\(comm.rank)".utf8)
            var letters = [UInt8](repeating: 0, count: 6)
            try text.withUnsafeBytes { s in
                try self.bytes(&letters) { try comm.labelled("names").allgather(s.baseAddress!, $0, count: 2, type: .byte) }
            }
            try comm.barrier()
            return (values, gathered, letters, comm.records)
        }
        for (rank, (values, gathered, letters, records)) in outcomes.enumerated() {
            XCTAssertEqual(values, [1, 1.5], "rank \(rank)")
            XCTAssertEqual(gathered, [0, 1, 10, 11, 20, 21], "rank \(rank)")
            XCTAssertEqual(String(decoding: letters, as: UTF8.self), "r0r1r2", "rank \(rank)")
            XCTAssertEqual(records.map(\.operation), [.broadcast(root: 1), .allgather, .allgather, .barrier], "rank \(rank)")
            XCTAssertEqual(records.map(\.sequence), [0, 1, 2, 3])
            XCTAssertEqual(records.map(\.count), [2, 2, 2, 0])
            XCTAssertEqual(records.map(\.type), [.float32, .int64, .byte, .byte])
            XCTAssertEqual(records.map(\.purpose), ["", "", "names", ""])
            XCTAssertNil(records[3].buffer)
        }
    }

    func testBroadcastFromARootOutsideTheWorldFails() {
        XCTAssertThrowsError(try LoopbackCommunicator.run(ranks: 2) { comm in
            var v: [Float] = [1]
            try self.bytes(&v) { try comm.broadcast($0, count: 1, type: .float32, root: 2) }
        }) { error in
            XCTAssertTrue("\(error)".contains("root 2 outside 0..<2"), "\(error)")
        }
    }

    func testDuplicateIsAnIndependentContext() throws {
        // Rank 0 starts on the duplicate and then reduces on the world; rank 1 reduces on the world
        // first. On one shared context rank 0's first collective would meet rank 1's world allreduce.
        let outcomes = try LoopbackCommunicator.run(ranks: 2) { comm -> ([Float], [Float], [Int]) in
            let dup = try comm.duplicate()
            var onWorld: [Float] = [Float(comm.rank + 1)]
            var onDup: [Float] = [Float(10 * (comm.rank + 1))]
            try onDup.withUnsafeMutableBytes { d in
                if comm.rank == 0 {
                    let handle = try dup.startAllreduce(d.baseAddress!, count: 1, type: .float32, op: .max)
                    try self.bytes(&onWorld) { try comm.allreduce($0, count: 1, type: .float32, op: .sum) }
                    try handle.wait()
                } else {
                    try self.bytes(&onWorld) { try comm.allreduce($0, count: 1, type: .float32, op: .sum) }
                    try dup.startAllreduce(d.baseAddress!, count: 1, type: .float32, op: .max).wait()
                }
            }
            return (onWorld, onDup, comm.records.map(\.context))
        }
        for (rank, (onWorld, onDup, contexts)) in outcomes.enumerated() {
            XCTAssertEqual(onWorld, [3], "rank \(rank)")
            XCTAssertEqual(onDup, [20], "rank \(rank)")
            XCTAssertEqual(contexts, rank == 0 ? [1, 0] : [0, 1])
        }
    }

    func testNonBlockingAllreduceCompletesOnlyOnceEveryRankContributed() throws {
        let rank0Checked = DispatchSemaphore(value: 0)
        let outcomes = try LoopbackCommunicator.run(ranks: 2) { comm -> ([Float], Bool) in
            var values: [Float] = [Float(comm.rank + 1), 4]
            var completeBeforeOthers = false
            try values.withUnsafeMutableBytes { v in
                if comm.rank == 0 {
                    let handle = try comm.startAllreduce(v.baseAddress!, count: 2, type: .float32, op: .sum)
                    completeBeforeOthers = try handle.test() || handle.isComplete
                    rank0Checked.signal()
                    try handle.wait()
                } else {
                    rank0Checked.wait()
                    let handle = try comm.startAllreduce(v.baseAddress!, count: 2, type: .float32, op: .sum)
                    try handle.wait()
                }
            }
            return (values, completeBeforeOthers)
        }
        XCTAssertFalse(outcomes[0].1, "rank 0's handle completed before rank 1 contributed")
        XCTAssertEqual(outcomes[0].0, [3, 8])
        XCTAssertEqual(outcomes[1].0, [3, 8])
    }

    func testManyOutstandingNonBlockingAllreducesAndHandleReuse() throws {
        // More collectives in flight than the loopback has slots (64), all waited for at the end;
        // then a second round, which reuses every handle of the first (the loopback keeps them;
        // the caller has let go of them).
        let n = 150
        let outcomes = try LoopbackCommunicator.run(ranks: 3, recording: false) { comm -> ([Double], Int) in
            var values = [Double](repeating: 0, count: n)
            var firstRound: [Weak] = []
            var reused = 0
            for round in 0..<2 {
                for i in 0..<n { values[i] = Double(i * (comm.rank + 1) + round) }
                try values.withUnsafeMutableBufferPointer { v in
                    var handles: [PendingCollective] = []
                    for i in 0..<n {
                        handles.append(try comm.startAllreduce(UnsafeMutableRawPointer(v.baseAddress! + i), count: 1, type: .float64, op: .sum))
                    }
                    for h in handles { try h.wait() }
                    if round == 0 {
                        firstRound = handles.map(Weak.init)
                    } else {
                        reused = handles.filter { h in firstRound.contains { $0.object === h } }.count
                    }
                }
            }
            return (values, reused)
        }
        for (rank, (values, reused)) in outcomes.enumerated() {
            XCTAssertEqual(values, (0..<n).map { Double($0 * 6 + 3) }, "rank \(rank)")
            XCTAssertEqual(reused, n, "rank \(rank)")
        }
    }

    func testMismatchedCollectivesFailTheRunNamingBothRanks() {
        XCTAssertThrowsError(try LoopbackCommunicator.run(ranks: 2, timeout: 60) { comm in
            var v: [Float] = [1, 2, 3]
            if comm.rank == 0 {
                try self.bytes(&v) { try comm.allreduce($0, count: 3, type: .float32, op: .sum) }
            } else {
                try self.bytes(&v) { try comm.broadcast($0, count: 3, type: .float32, root: 0) }
            }
        }) { error in
            guard let failure = error as? LoopbackCommunicator.RankFailure,
                  let mismatch = failure.error as? LoopbackCommunicator.Mismatch else {
                return XCTFail("expected a mismatch, got \(error)")
            }
            XCTAssertEqual(mismatch.sequence, 0)
            XCTAssertEqual(Set([mismatch.rank, mismatch.firstRank]), [0, 1])
            XCTAssertTrue("\(error)".contains("allreduce(sum) of 3 float32"), "\(error)")
            XCTAssertTrue("\(error)".contains("broadcast(root: 0) of 3 float32"), "\(error)")
        }
    }

    private struct Planted: Error, Equatable { let rank: Int }

    func testARankThatThrowsFailsTheRunAndReleasesTheOthers() {
        let released = LockedErrors()
        XCTAssertThrowsError(try LoopbackCommunicator.run(ranks: 3, timeout: 60) { comm in
            if comm.rank == 1 { throw Planted(rank: 1) }
            do { try comm.barrier() } catch { released.add(error); throw error }
        }) { error in
            guard let failure = error as? LoopbackCommunicator.RankFailure else { return XCTFail("\(error)") }
            XCTAssertEqual(failure.rank, 1)
            XCTAssertEqual(failure.error as? Planted, Planted(rank: 1))
        }
        XCTAssertEqual(released.count, 2, "ranks 0 and 2 leave their barrier with an error")
        XCTAssertTrue(released.all.allSatisfy { $0 is CommunicatorError })
    }

    func testAbortFailsTheRunWithTheRankAndCode() {
        XCTAssertThrowsError(try LoopbackCommunicator.run(ranks: 3, timeout: 60) { comm in
            var v: [Double] = [1]
            if comm.rank == 2 { comm.abort(code: 7) }
            try self.bytes(&v) { try comm.allreduce($0, count: 1, type: .float64, op: .sum) }
        }) { error in
            guard let failure = error as? LoopbackCommunicator.RankFailure else { return XCTFail("\(error)") }
            XCTAssertEqual(failure.rank, 2)
            XCTAssertEqual((failure.error as? LoopbackCommunicator.Aborted)?.code, 7)
        }
    }

    func testADeadlockTimesOut() {
        // Rank 1 never joins rank 0's barrier.
        XCTAssertThrowsError(try LoopbackCommunicator.run(ranks: 2, timeout: 1) { comm in
            if comm.rank == 0 { try comm.barrier() }
        }) { error in
            guard let failure = error as? LoopbackCommunicator.RankFailure,
                  let timedOut = failure.error as? LoopbackCommunicator.TimedOut else { return XCTFail("\(error)") }
            XCTAssertNil(failure.rank)
            XCTAssertEqual(timedOut.ranks, [0])
        }
    }
}

private final class Weak {
    weak var object: PendingCollective?
    init(_ object: PendingCollective) { self.object = object }
}

/// Errors collected from several rank threads.
private final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func add(_ error: Error) { lock.withLock { errors.append(error) } }
    var all: [Error] { lock.withLock { errors } }
    var count: Int { all.count }
}

import Foundation
import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// A two-party in-memory allreduce: each caller blocks until the other has contributed, then both
/// get the sum. Two threads stand in for two processes.
private final class TwoPartyReducer: ChannelReducer {
    private let condition = NSCondition()
    private var pending: [Double]?
    private var result: [Double]?
    private(set) var calls = 0

    func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        condition.lock()
        defer { condition.unlock() }
        calls += 1
        while result != nil { condition.wait() }          // the previous round is still being read
        if let first = pending {
            precondition(first.count == values.count, "the two parties reduce different sizes")
            let total = (0..<values.count).map { first[$0] + values[$0] }
            _ = values.update(fromContentsOf: total)
            pending = nil
            result = total
            condition.broadcast()
        } else {
            pending = Array(values)
            while result == nil { condition.wait() }
            _ = values.update(fromContentsOf: result!)
            result = nil
            condition.broadcast()
        }
    }
}

final class SyncBatchNormTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }

    private let shape = FeatureShape(height: 3, width: 2, channels: 5)

    private struct Run {
        var y: [Float]
        var dx: [Float]
        var grads: [Float]
        var runningMean: [Float]
        var runningVar: [Float]
        var batchesTracked: Int64
    }

    /// One BatchNorm2d with the shared parameters, trained one step on `x` with upstream `dy`.
    /// What each party's thread hands back.
    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var runs: [Run?] = [nil, nil]
        func set(_ party: Int, _ run: Run) { lock.lock(); runs[party] = run; lock.unlock() }
        func get(_ party: Int) -> Run? { lock.lock(); defer { lock.unlock() }; return runs[party] }
    }

    private func run(_ x: [Float], _ dy: [Float], batch: Int, maxBatch: Int, reducer: ChannelReducer?) -> Run {
        let bn = BatchNorm2d(channels: shape.channels)
        bn.reducer = reducer
        let store = ParameterStore(layer: bn)
        for c in 0..<shape.channels {
            bn.weight.value[c] = 0.5 + 0.25 * Float(c)
            bn.bias.value[c] = 0.1 * Float(c) - 0.2
            bn.runningMean.pointer[c] = 0.05 * Float(c)
            bn.runningVar.pointer[c] = 1 + 0.1 * Float(c)
        }
        _ = bn.build(input: shape, maxBatch: maxBatch, inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
        let xs = Storage(count: max(x.count, 1)), dys = Storage(count: max(dy.count, 1))
        _ = xs.buffer.update(fromContentsOf: x)
        _ = dys.buffer.update(fromContentsOf: dy)
        store.zeroGrads()
        let y = bn.forward(Tensor(data: xs.pointer, batch: batch, shape: shape), mode: .train).toArray()
        let dx = bn.backward(Tensor(data: dys.pointer, batch: batch, shape: shape)).toArray()
        return Run(y: y, dx: dx, grads: Array(store.grads.buffer),
                   runningMean: Array(bn.runningMean.storage.buffer), runningVar: Array(bn.runningVar.storage.buffer),
                   batchesTracked: bn.numBatchesTracked.value)
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ what: String, accuracy: Float = 2e-5, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, accuracy, "\(what): max abs difference \(worst)", line: line)
    }

    func testTwoProcessesEqualOneBatchNormOverTheWholeBatch() {
        let total = 4, per = shape.count
        var rng = SeededRandom(seed: 21)
        let x = (0..<(total * per)).map { i in Float(rng.normal() * 2 + Double(i % shape.channels) - 1) }
        let dy = (0..<(total * per)).map { _ in Float(rng.normal()) }
        let full = run(x, dy, batch: total, maxBatch: total, reducer: nil)

        for first in [2, 3, 1, 4, 0] {
            let second = total - first
            let reducer = TwoPartyReducer()
            let results = Results()
            let done = DispatchGroup()
            for (party, range) in [(0, 0..<first), (1, first..<total)] {
                done.enter()
                let thread = Thread { [self] in
                    let xs = Array(x[(range.lowerBound * per)..<(range.upperBound * per)])
                    let dys = Array(dy[(range.lowerBound * per)..<(range.upperBound * per)])
                    let r = run(xs, dys, batch: range.count, maxBatch: total, reducer: reducer)
                    results.set(party, r)
                    done.leave()
                }
                thread.start()
            }
            done.wait()
            guard let a = results.get(0), let b = results.get(1) else { return XCTFail("a party did not finish") }
            let label = "split \(first)+\(second)"
            XCTAssertEqual(reducer.calls, 4, "\(label): one forward and one backward reduction per party")
            assertClose(a.y + b.y, full.y, "\(label) output")
            assertClose(a.dx + b.dx, full.dx, "\(label) input gradient")
            assertClose(zip(a.grads, b.grads).map { $0 + $1 }, full.grads, "\(label) parameter gradients", accuracy: 1e-4)
            for party in [a, b] {
                assertClose(party.runningMean, full.runningMean, "\(label) running mean")
                assertClose(party.runningVar, full.runningVar, "\(label) running var")
                XCTAssertEqual(party.batchesTracked, 1)
            }
        }
    }
}

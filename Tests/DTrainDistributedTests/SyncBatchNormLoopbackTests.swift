import Foundation
import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainDistributed
import DTrainTestSupport

/// Synchronized BatchNorm (`AllreduceChannelReducer`) over 2 and 3 loopback ranks against one
/// BatchNorm2d over the concatenation of their batches.
final class SyncBatchNormLoopbackTests: XCTestCase {
    override func setUp() { Compute.setThreads(1) }
    override func tearDown() { Compute.setThreads(2) }

    private let shape = FeatureShape(height: 3, width: 2, channels: 5)

    private struct Run {
        var y: [Float]
        var dx: [Float]
        var grads: [Float]
        var runningMean: [Float]
        var runningVar: [Float]
        var batchesTracked: Int64
    }

    /// One training-mode forward and backward of a BatchNorm2d with fixed parameters and running
    /// statistics, on `x` with upstream gradient `dy`.
    private func run(_ x: [Float], _ dy: [Float], batch: Int, maxBatch: Int, communicator: Communicator?) -> Run {
        let bn = BatchNorm2d(channels: shape.channels)
        let store = ParameterStore(layer: bn)
        for c in 0..<shape.channels {
            bn.weight.value[c] = 0.5 + 0.25 * Float(c)
            bn.bias.value[c] = 0.1 * Float(c) - 0.2
            bn.runningMean.pointer[c] = 0.05 * Float(c)
            bn.runningVar.pointer[c] = 1 + 0.1 * Float(c)
        }
        bn.reducer = communicator.map { AllreduceChannelReducer(communicator: $0) }
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

    func testRanksTogetherEqualOneBatchNormOverTheConcatenatedBatch() throws {
        let total = 6, per = shape.count
        var rng = SeededRandom(seed: 33)
        // Channel means far from zero, so the statistics are not trivially those of one rank.
        let x = (0..<(total * per)).map { i in Float(rng.normal() * 1.5 + Double(i % shape.channels) * 2 - 3) }
        let dy = (0..<(total * per)).map { _ in Float(rng.normal()) }
        let full = run(x, dy, batch: total, maxBatch: total, communicator: nil)

        for split in [[3, 3], [1, 5], [0, 6], [2, 2, 2], [1, 4, 1], [0, 2, 4], [6, 0, 0]] {
            let starts = split.indices.map { split[..<$0].reduce(0, +) }
            let runs = try LoopbackCommunicator.run(ranks: split.count) { comm -> (Run, [LoopbackCommunicator.Record]) in
                let rows = (starts[comm.rank] * per)..<((starts[comm.rank] + split[comm.rank]) * per)
                let r = self.run(Array(x[rows]), Array(dy[rows]), batch: split[comm.rank], maxBatch: total, communicator: comm)
                return (r, comm.records)
            }
            let label = "split \(split)"
            for (rank, (_, records)) in runs.enumerated() {
                XCTAssertEqual(records.map(\.operation), [.allreduce(.sum), .allreduce(.sum)],
                               "\(label) rank \(rank): one reduction in forward, one in backward")
                XCTAssertEqual(records.map(\.type), [.float64, .float64])
                XCTAssertTrue(records.allSatisfy { $0.purpose == "synchronized BatchNorm" })
            }
            let parts = runs.map { $0.0 }
            assertClose(parts.flatMap(\.y), full.y, "\(label) output")
            assertClose(parts.flatMap(\.dx), full.dx, "\(label) input gradient")
            // Parameter gradients stay local; their sum over ranks (what the gradient allreduce
            // forms) is the whole batch's.
            let summed = parts.dropFirst().reduce(parts[0].grads) { zip($0, $1.grads).map { $0 + $1 } }
            assertClose(summed, full.grads, "\(label) parameter gradients", accuracy: 1e-4)
            for (rank, part) in parts.enumerated() {
                assertClose(part.runningMean, full.runningMean, "\(label) rank \(rank) running mean")
                assertClose(part.runningVar, full.runningVar, "\(label) rank \(rank) running var")
                XCTAssertEqual(part.batchesTracked, 1)
            }
        }
    }
}

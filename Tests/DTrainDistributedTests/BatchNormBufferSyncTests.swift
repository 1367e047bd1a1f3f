import XCTest
import Foundation
import DTrainTestSupport
@testable import DTrainCore
@testable import DTrainNN
@testable import DTrainDistributed

/// `--dist-bn`: the ranks' BatchNorm running statistics made equal in one collective, over
/// loopback ranks in one process.
final class BatchNormBufferSyncTests: XCTestCase {
    /// A model whose BatchNorms hold rank-specific running statistics: value = rank·100 + i.
    private func model(rank: Int) throws -> Model {
        let model = try ModelZoo.make("resnet20", options: ModelOptions(numClasses: 10))
        model.visitLayers { layer in
            guard let bn = layer as? BatchNorm2d else { return }
            for i in 0..<bn.channels {
                bn.runningMean.pointer[i] = Float(rank * 100 + i)
                bn.runningVar.pointer[i] = Float(rank + 1) * 0.5 + Float(i) * 0.25
            }
        }
        return model
    }

    private func statistics(_ model: Model) -> [Float] {
        var out: [Float] = []
        model.visitLayers { layer in
            guard let bn = layer as? BatchNorm2d else { return }
            out += Array(bn.runningMean.storage.buffer) + Array(bn.runningVar.storage.buffer)
        }
        return out
    }

    func testReduceGivesTheMeanOfTheRanksStatistics() throws {
        let ranks = 3
        let expected: [Float] = try {
            let all = try (0..<ranks).map { statistics(try model(rank: $0)) }
            return all[0].indices.map { i in (all[0][i] + all[1][i] + all[2][i]) * (1 / Float(ranks)) }
        }()
        let results = try LoopbackCommunicator.run(ranks: ranks) { comm -> [Float] in
            let m = try self.model(rank: comm.rank)
            let sync = BatchNormBufferSync(model: m, mode: .reduce, communicator: comm)
            XCTAssertEqual(sync.count, expected.count)
            try sync.equalize()
            return self.statistics(m)
        }
        for (rank, stats) in results.enumerated() {
            XCTAssertEqual(stats, expected, "rank \(rank) holds the mean over ranks, the same bits on every rank")
        }
        // The mean of rank·100 + i over ranks 0, 1, 2 is 100 + i.
        XCTAssertEqual(results[0][0], 100)
    }

    func testBroadcastTakesRankZeros() throws {
        let rankZero = statistics(try model(rank: 0))
        let results = try LoopbackCommunicator.run(ranks: 2) { comm -> [Float] in
            let m = try self.model(rank: comm.rank)
            try BatchNormBufferSync(model: m, mode: .broadcast, communicator: comm).equalize()
            return self.statistics(m)
        }
        XCTAssertEqual(results[0], rankZero)
        XCTAssertEqual(results[1], rankZero)
    }

    /// Synchronized BatchNorms are equal already and frozen ones never change: neither is sent,
    /// and with none left no collective is made at all.
    func testSynchronizedAndFrozenBatchNormsAreLeftOut() throws {
        let results = try LoopbackCommunicator.run(ranks: 2) { comm -> (Int, Int, Int) in
            let synced = try self.model(rank: comm.rank)
            synced.synchronizeBatchNorm(over: comm)
            let none = BatchNormBufferSync(model: synced, mode: .reduce, communicator: comm)
            try none.equalize()

            let frozen = try self.model(rank: comm.rank)
            frozen.freeze { !$0.hasPrefix("fc.") }
            let onlyHead = BatchNormBufferSync(model: frozen, mode: .reduce, communicator: comm)
            let before = self.statistics(frozen)
            try onlyHead.equalize()
            XCTAssertEqual(self.statistics(frozen), before, "frozen statistics untouched")
            return (none.count, onlyHead.count, comm.records.count)
        }
        for r in results {
            XCTAssertEqual(r.0, 0)
            XCTAssertEqual(r.1, 0)
            XCTAssertEqual(r.2, 0, "no collective was made")
        }
    }

    func testOneRankMakesNoCollective() throws {
        let m = try model(rank: 0)
        let sync = BatchNormBufferSync(model: m, mode: .reduce, communicator: SingleProcessCommunicator())
        XCTAssertEqual(sync.count, 0)
        try sync.equalize()
    }
}

import Foundation
import XCTest
import DTrainDistributed
import DTrainTestSupport

/// The start-up checks that every rank was given the same job, over loopback ranks.
final class RankAgreementTests: XCTestCase {
    private func fields(model: String = "resnet20", batch: String = "128", data: String = "cifar10") -> [(name: String, value: String)] {
        [("model", model), ("batch size", batch), ("dataset", data)]
    }

    func testEqualFieldsPassOnEveryRank() throws {
        let outcomes = try LoopbackCommunicator.run(ranks: 3) { comm -> Int in
            try RankAgreement.check(self.fields(), over: comm)
            return comm.records.count
        }
        XCTAssertEqual(outcomes, [1, 1, 1], "one allgather per rank")
    }

    func testAMismatchNamesTheFieldAndTheRanksOnEveryRank() throws {
        // Rank 2 has another model and rank 1 another batch size: the first field in order that
        // differs is reported, with rank 0's value and each differing rank's.
        let errors = try LoopbackCommunicator.run(ranks: 3) { comm -> RankDisagreement? in
            let mine = self.fields(model: comm.rank == 2 ? "resnet32" : "resnet20", batch: comm.rank == 1 ? "64" : "128")
            do {
                try RankAgreement.check(mine, over: comm)
                return nil
            } catch let error as RankDisagreement {
                return error
            }
        }
        for (rank, error) in errors.enumerated() {
            guard let error else { XCTFail("rank \(rank) passed the check"); continue }
            XCTAssertEqual(error.field, "model", "rank \(rank)")
            XCTAssertEqual(error.values.map(\.rank), [0, 2], "rank \(rank)")
            XCTAssertEqual(error.values.map(\.value), ["resnet20", "resnet32"], "rank \(rank)")
            XCTAssertEqual(error.description, "ranks disagree on model: rank 0 has resnet20, rank 2 has resnet32")
        }
    }

    func testValuesDifferingBeyondTheShownBytesAreStillCaught() throws {
        let prefix = String(repeating: "/data/imagenet/train/", count: 4)
        let errors = try LoopbackCommunicator.run(ranks: 2) { comm -> RankDisagreement? in
            do {
                try RankAgreement.check(self.fields(data: prefix + (comm.rank == 0 ? "a" : "b")), over: comm)
                return nil
            } catch let error as RankDisagreement {
                return error
            }
        }
        for (rank, error) in errors.enumerated() {
            XCTAssertEqual(error?.field, "dataset", "rank \(rank)")
            XCTAssertEqual(error?.values.map(\.rank), [0, 1], "rank \(rank)")
            XCTAssertEqual(error?.values.first?.value, String(prefix.prefix(56)), "rank \(rank): shown values are cut")
        }
    }

    func testAFailureOnOneRankFailsEveryRankAndOnlyItReports() throws {
        struct SetUpError: Error, CustomStringConvertible { var description: String { "no such dataset" } }
        let outcomes = try LoopbackCommunicator.run(ranks: 3) { comm -> (String, Bool)? in
            do {
                _ = try RankAgreement.together(over: comm) { () throws -> Int in
                    if comm.rank == 1 { throw SetUpError() }
                    return comm.rank
                }
                return nil
            } catch let failure as JobFailure {
                return (failure.message, failure.report)
            }
        }
        XCTAssertEqual(outcomes[0]?.0, "rank(s) 1 failed")
        XCTAssertEqual(outcomes[0]?.1, false)
        XCTAssertEqual(outcomes[1]?.0, "no such dataset")
        XCTAssertEqual(outcomes[1]?.1, true)
        XCTAssertEqual(outcomes[2]?.0, "rank(s) 1 failed")
        XCTAssertEqual(outcomes[2]?.1, false)

        let values = try LoopbackCommunicator.run(ranks: 2) { comm in try RankAgreement.together(over: comm) { comm.rank * 10 } }
        XCTAssertEqual(values, [0, 10], "every rank gets its own result when none failed")
    }
}

import XCTest
import Foundation
import DTrainTestSupport
@testable import DTrainDistributed
@testable import DTrainTraining

/// Rank agreement covers every field of `TrainConfig`, found by reflection, except those that may
/// differ per node; checked over loopback ranks.
final class ConfigurationAgreementTests: XCTestCase {
    let output = URL(fileURLWithPath: "/nonexistent/agreement-test")

    func config() throws -> TrainConfig { try TrainConfig.defaults(for: "resnet20", epochs: 2, output: output) }

    func testEveryFieldButThePerRankOnesIsAgreedOn() throws {
        let c = try config()
        let labels = Mirror(reflecting: c).children.compactMap(\.label)
        XCTAssertTrue(TrainConfig.perRankFields.isSubset(of: Set(labels)), "per-rank fields that TrainConfig does not have")
        let names = c.agreementFields.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "field names are unique: \(names)")
        for label in labels where !TrainConfig.perRankFields.contains(label) {
            let name = TrainConfig.readableName(label)
            XCTAssertTrue(names.contains { $0 == name || $0.hasPrefix(name + " ") }, "\(label) is not agreed on: \(names)")
        }
        for label in TrainConfig.perRankFields {
            XCTAssertFalse(names.contains(TrainConfig.readableName(label)), "\(label) may differ per node")
        }
        for name in ["lr", "momentum", "weight decay", "label smoothing", "mean", "preset", "optimizer", "batch size",
                     "model options num classes", "no BN weight decay"] {
            XCTAssertTrue(names.contains(name), "\(name) missing from \(names)")
        }
    }

    func testReadableNames() {
        XCTAssertEqual(TrainConfig.readableName("batchSize"), "batch size")
        XCTAssertEqual(TrainConfig.readableName("lr"), "lr")
        XCTAssertEqual(TrainConfig.readableName("noBNWeightDecay"), "no BN weight decay")
        XCTAssertEqual(TrainConfig.readableName("headLRMultiplier"), "head LR multiplier")
        XCTAssertEqual(TrainConfig.readableName("syncBN"), "sync BN")
    }

    func testValuesAreReadable() throws {
        var c = try config()
        c.mean = [0.5, 0.25, 0.125]
        let fields = Dictionary(uniqueKeysWithValues: c.agreementFields.map { ($0.name, $0.value) })
        XCTAssertEqual(fields["lr"], "0.1")
        XCTAssertEqual(fields["mean"], "[0.5, 0.25, 0.125]")
        XCTAssertEqual(fields["std"], "none")
        XCTAssertEqual(fields["optimizer"], "sgd")
        XCTAssertEqual(fields["freeze"], "none")
    }

    /// Different --lr, --optimizer or --label-smoothing on one rank is named at start.
    func testAMismatchInAnyFieldIsNamedWithTheRanks() throws {
        func disagreement(_ change: @escaping (inout TrainConfig) -> Void) throws -> [String] {
            let base = try config()
            return try LoopbackCommunicator.run(ranks: 2) { comm -> String in
                var c = base
                if comm.rank == 1 { change(&c) }
                do {
                    try RankAgreement.check(c.agreementFields, over: comm)
                    return "agreed"
                } catch let error as RankDisagreement {
                    return "\(error)"
                }
            }
        }
        XCTAssertEqual(try disagreement { $0.lr = 0.2 }, Array(repeating: "ranks disagree on lr: rank 0 has 0.1, rank 1 has 0.2", count: 2))
        XCTAssertEqual(try disagreement { $0.optimizer = .adamw },
                       Array(repeating: "ranks disagree on optimizer: rank 0 has sgd, rank 1 has adamw", count: 2))
        XCTAssertEqual(try disagreement { $0.labelSmoothing = 0.1 },
                       Array(repeating: "ranks disagree on label smoothing: rank 0 has 0.0, rank 1 has 0.1", count: 2))
        XCTAssertEqual(try disagreement { $0.threads = 3; $0.workers = 2; $0.dataPath = "/local/copy" }, ["agreed", "agreed"],
                       "threads, workers and where the data is may differ per node")
    }
}

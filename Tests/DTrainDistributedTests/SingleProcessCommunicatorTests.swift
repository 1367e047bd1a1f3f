import XCTest
@testable import DTrainDistributed

final class SingleProcessCommunicatorTests: XCTestCase {
    func testWorldOfOneLeavesDataAndGathersItself() throws {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        var values: [Float] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { try comm.allreduce($0) }
        XCTAssertEqual(values, [1, 2, 3])
        let send: [Int64] = [5, 6]
        var recv: [Int64] = [0, 0]
        try send.withUnsafeBytes { s in try recv.withUnsafeMutableBytes { r in
            try comm.allgather(s.baseAddress!, r.baseAddress!, count: 2, type: .int64)
        } }
        XCTAssertEqual(recv, [5, 6])
    }
}

import Foundation

/// Ranks that do not agree on how the job is set up: which field, and each rank's value.
public struct RankDisagreement: Error, CustomStringConvertible {
    public let field: String
    /// Rank and its value, for every rank whose value differs from rank 0's, and rank 0 first.
    public let values: [(rank: Int, value: String)]
    public var description: String {
        "ranks disagree on \(field): " + values.map { "rank \($0.rank) has \($0.value)" }.joined(separator: ", ")
    }
}

/// Checks at start that every rank was given the same job (one allgather), so a mistake fails
/// fast with a clear error on every rank instead of a hang or silently wrong training later.
public enum RankAgreement {
    /// Bytes of each value kept for the message (values are compared in full by hash).
    static let shownBytes = 56

    /// `fields` are (name, value) pairs in the same order on every rank. Throws
    /// `RankDisagreement` for the first field whose value differs between ranks.
    public static func check(_ fields: [(name: String, value: String)], over communicator: Communicator) throws {
        guard communicator.size > 1 else { return }
        let communicator = communicator.labelled("rank agreement check")
        let record = 8 + shownBytes
        var send = [UInt8](repeating: 0, count: fields.count * record)
        for (i, field) in fields.enumerated() {
            var hash = fnv1a(field.value)
            withUnsafeBytes(of: &hash) { for b in 0..<8 { send[i * record + b] = $0[b] } }
            for (j, byte) in field.value.utf8.prefix(shownBytes).enumerated() { send[i * record + 8 + j] = byte }
        }
        var all = [UInt8](repeating: 0, count: send.count * communicator.size)
        try send.withUnsafeBytes { s in
            try all.withUnsafeMutableBytes { r in
                try communicator.allgather(s.baseAddress!, r.baseAddress!, count: send.count, type: .byte)
            }
        }
        for (i, field) in fields.enumerated() {
            func hash(_ rank: Int) -> ArraySlice<UInt8> { all[(rank * send.count + i * record)..<(rank * send.count + i * record + 8)] }
            func shown(_ rank: Int) -> String {
                let start = rank * send.count + i * record + 8
                let bytes = all[start..<(start + shownBytes)].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            let differing = (1..<communicator.size).filter { hash($0) != hash(0) }
            if !differing.isEmpty {
                throw RankDisagreement(field: field.name, values: ([0] + differing).map { ($0, shown($0)) })
            }
        }
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Runs `body` on every rank and then agrees on the outcome (one allreduce): if it failed on
    /// any rank, every rank throws `JobFailure`, so no rank goes on into a collective the others
    /// never reach. The lowest failing rank's failure is the one to report.
    public static func together<T>(over communicator: Communicator, _ body: () throws -> T) throws -> T {
        var result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        guard communicator.size > 1 else { return try result.get() }
        let communicator = communicator.labelled("set-up outcome agreement")
        var failed = [Int64](repeating: 0, count: communicator.size)
        if case .failure = result { failed[communicator.rank] = 1 }
        let n = failed.count
        try failed.withUnsafeMutableBytes { try communicator.allreduce($0.baseAddress!, count: n, type: .int64, op: .sum) }
        let failedRanks = failed.indices.filter { failed[$0] != 0 }
        if case .failure(let error) = result {
            throw JobFailure(message: "\(error)", report: communicator.rank == failedRanks.first)
        }
        if !failedRanks.isEmpty {
            throw JobFailure(message: "rank(s) \(failedRanks.map(String.init).joined(separator: ", ")) failed", report: false)
        }
        return try result.get()
    }
}

/// A failure every rank of the job knows about; exactly one rank reports it.
public struct JobFailure: Error, CustomStringConvertible {
    public let message: String
    /// Whether this rank prints the message.
    public let report: Bool

    public init(message: String, report: Bool) {
        self.message = message
        self.report = report
    }
    public var description: String { message }
}

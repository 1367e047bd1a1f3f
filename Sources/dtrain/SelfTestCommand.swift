import ArgumentParser
import DTrainDistributed
import Foundation

/// `dtrain selftest-collectives`: checks every collective dtrain uses, on every rank.
///
/// Run it under mpirun (`mpirun -np 3 dtrain selftest-collectives`); alone it checks the
/// single-process communicator. Values depend on the rank and are small integers (or exact binary
/// fractions), so the expected sums are exact whatever order MPI reduces in. After each check the
/// ranks allreduce a failure flag, so all of them agree on the outcome and on the exit status;
/// rank 0 prints one line per check.
///
/// `--stall-rank R --stall-seconds S --collective-timeout T` checks the stall watchdog: rank R
/// sleeps S seconds before a check's collective (`--stall-in`: the blocking float32 allreduce, or
/// the non-blocking allreduce that the others then wait for), so with T < S the other ranks'
/// watchdog names the operation and aborts the job after about T seconds.
struct SelfTestCollectives: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest-collectives",
        abstract: "Check allreduce, broadcast, allgather, barrier and duplicates across the ranks of an MPI job.",
        shouldDisplay: false)

    @Option(help: "Elements of the large float32 allreduce.")
    var largeCount: Int = 3_000_000

    @Option(help: "Corrupt this rank's contribution to the float32 allreduce (checks the failure path).")
    var injectFailureOnRank: Int?

    @Option(help: "Abort the job when a collective waits longer than this many seconds (0: no watchdog).")
    var collectiveTimeout: Double = 0

    @Option(help: "This rank sleeps --stall-seconds before the collective of the --stall-in check.")
    var stallRank: Int?

    @Option(help: "Seconds the --stall-rank sleeps.")
    var stallSeconds: Double = 30

    @Option(help: "The check whose collective the --stall-rank is late for: allreduce (blocking) or wait (non-blocking).")
    var stallIn: StallPoint = .allreduce

    enum StallPoint: String, ExpressibleByArgument {
        case allreduce, wait
    }

    func validate() throws {
        guard collectiveTimeout >= 0 && collectiveTimeout.isFinite else { throw ValidationError("--collective-timeout must be 0 or more") }
        guard stallSeconds >= 0 else { throw ValidationError("--stall-seconds must be 0 or more") }
    }

    func run() throws {
        let world = try makeCommunicator()
        var comm = world
        if collectiveTimeout > 0 && world.size > 1 {
            comm = WatchdogCommunicator(wrapping: world, timeout: collectiveTimeout, purpose: "selftest-collectives")
        }
        let stall = stallRank.map { (rank: $0, seconds: stallSeconds, point: stallIn) }
        let checks = CollectiveChecks(comm: comm, largeCount: largeCount, faultyRank: injectFailureOnRank, stall: stall)
        let failed = checks.runAll()
        if let mpi = world as? MPICommunicator { try mpi.finalize() }
        if failed > 0 { throw ExitCode(1) }
    }
}

private final class CollectiveChecks {
    /// The job's communicator (watched or not).
    let world: Communicator
    /// The world labelled with the check that runs now.
    var comm: Communicator
    let largeCount: Int
    let faultyRank: Int?
    let stall: (rank: Int, seconds: Double, point: SelfTestCollectives.StallPoint)?
    var checksRun = 0
    var checksFailed = 0

    init(comm: Communicator, largeCount: Int, faultyRank: Int?, stall: (rank: Int, seconds: Double, point: SelfTestCollectives.StallPoint)?) {
        world = comm
        self.comm = comm
        self.largeCount = largeCount
        self.faultyRank = faultyRank
        self.stall = stall
    }

    /// The --stall-rank sleeps here before the collective of the --stall-in check.
    func stallIfAsked(at point: SelfTestCollectives.StallPoint) {
        guard let stall, stall.rank == rank, stall.point == point else { return }
        FileHandle.standardError.write("selftest-collectives: rank \(rank): sleeping \(stall.seconds) s before the collective\n".data(using: .utf8)!)
        Thread.sleep(forTimeInterval: stall.seconds)
    }

    var rank: Int { comm.rank }
    var size: Int { comm.size }
    /// 1 + 2 + ... + size: the sum of every rank's (rank + 1).
    var triangle: Int { size * (size + 1) / 2 }

    /// Runs every check; returns how many failed (the same number on every rank).
    func runAll() -> Int {
        if let mpi = world as? MPICommunicator ?? (world as? WatchdogCommunicator)?.base as? MPICommunicator {
            say("selftest-collectives: \(size) rank\(size == 1 ? "" : "s"), thread level \(mpi.threadLevel)")
        } else {
            say("selftest-collectives: 1 rank, single process (no MPI)")
        }
        check("allreduce float32 sum", allreduceFloat32)
        check("allreduce float64 sum", allreduceFloat64)
        check("allreduce int64 sum", allreduceInt64)
        check("allreduce int64 max/min", allreduceMaxMin)
        check("allreduce float32 sum of \(largeCount) elements", allreduceLarge)
        check("allreduce bfloat16 sum (blocking and non-blocking)", allreduceBFloat16)
        check("allreduce bfloat16 max refused", refuseBFloat16Max)
        check("non-blocking allreduce (test)", { try self.nonBlocking(polling: true) })
        check("non-blocking allreduce (wait)", { try self.nonBlocking(polling: false) })
        check("broadcast from rank 0", { try self.broadcast(root: 0) })
        check("broadcast from rank \(size - 1)", { try self.broadcast(root: self.size - 1) })
        check("allgather in rank order", allgather)
        check("barrier", { try self.comm.barrier(); return true })
        check("duplicate communicator", duplicate)
        if checksFailed == 0 {
            say("selftest-collectives: passed \(checksRun) checks on \(size) rank\(size == 1 ? "" : "s")")
        } else {
            say("selftest-collectives: FAILED \(checksFailed) of \(checksRun) checks on \(size) rank\(size == 1 ? "" : "s")")
        }
        return checksFailed
    }

    /// Runs one check on every rank and agrees on its outcome. A thrown error leaves the ranks out
    /// of step, so it ends the job.
    func check(_ name: String, _ body: () throws -> Bool) {
        var failing: Int64 = 0
        comm = world.labelled(name)
        do {
            failing = try body() ? 0 : 1
            try withUnsafeMutableBytes(of: &failing) {
                try world.labelled("outcome of \(name)").allreduce($0.baseAddress!, count: 1, type: .int64, op: .sum)
            }
        } catch {
            FileHandle.standardError.write("selftest-collectives: rank \(rank): \(name): \(error)\n".data(using: .utf8)!)
            comm.abort(code: 2)
        }
        checksRun += 1
        if failing == 0 {
            say("ok   \(name)")
        } else {
            checksFailed += 1
            say("FAIL \(name) (wrong on \(failing) of \(size) ranks)")
        }
    }

    func say(_ line: String) {
        guard rank == 0 else { return }
        print(line)
        fflush(stdout)
    }

    func complain(_ what: String) -> Bool {
        FileHandle.standardError.write("selftest-collectives: rank \(rank): \(what)\n".data(using: .utf8)!)
        return false
    }

    // MARK: Checks

    func allreduceFloat32() throws -> Bool {
        let n = 1000
        var x = (0..<n).map { Float((rank + 1) * ($0 % 13 + 1)) }
        if rank == faultyRank { x[n / 2] += 1 }
        stallIfAsked(at: .allreduce)
        try x.withUnsafeMutableBufferPointer { try comm.allreduce($0) }
        for i in 0..<n where x[i] != Float(triangle * (i % 13 + 1)) {
            return complain("float32 sum [\(i)] = \(x[i]), expected \(triangle * (i % 13 + 1))")
        }
        return true
    }

    func allreduceFloat64() throws -> Bool {
        let n = 777
        var x = (0..<n).map { Double(rank + 1) * 0.25 + Double($0) }
        try x.withUnsafeMutableBufferPointer { try comm.allreduce($0) }
        for i in 0..<n {
            let expected = Double(triangle) * 0.25 + Double(size * i)
            if x[i] != expected { return complain("float64 sum [\(i)] = \(x[i]), expected \(expected)") }
        }
        return true
    }

    func allreduceInt64() throws -> Bool {
        let n = 513
        var x = (0..<n).map { (Int64(rank + 1) << 40) + Int64($0 * (rank + 1)) }
        try x.withUnsafeMutableBytes { try comm.allreduce($0.baseAddress!, count: n, type: .int64, op: .sum) }
        for i in 0..<n {
            let expected = (Int64(triangle) << 40) + Int64(i * triangle)
            if x[i] != expected { return complain("int64 sum [\(i)] = \(x[i]), expected \(expected)") }
        }
        return true
    }

    func allreduceMaxMin() throws -> Bool {
        var hi: [Int64] = [Int64(rank), -Int64(rank)]
        var lo = hi
        try hi.withUnsafeMutableBytes { try comm.allreduce($0.baseAddress!, count: 2, type: .int64, op: .max) }
        try lo.withUnsafeMutableBytes { try comm.allreduce($0.baseAddress!, count: 2, type: .int64, op: .min) }
        let last = Int64(size - 1)
        if hi != [last, 0] { return complain("int64 max = \(hi), expected [\(last), 0]") }
        if lo != [0, -last] { return complain("int64 min = \(lo), expected [0, \(-last)]") }
        return true
    }

    func allreduceLarge() throws -> Bool {
        let n = largeCount
        var x = (0..<n).map { Float(rank + 1) + Float($0 % 1024) }
        try x.withUnsafeMutableBufferPointer { try comm.allreduce($0) }
        for i in 0..<n {
            let expected = Float(triangle + size * (i % 1024))
            if x[i] != expected { return complain("large float32 sum [\(i)] = \(x[i]), expected \(expected)") }
        }
        return true
    }

    /// bf16 sums (`--allreduce-dtype bf16`) through the shim's own MPI operation, blocking and
    /// non-blocking: small integers, exact in bf16 whatever the order; with two ranks also a sum at
    /// a rounding tie (1 + 2⁻⁸ → 1, ties to even) and one above it (1 + 2⁻⁸ + 2⁻¹⁰ → 1 + 2⁻⁷),
    /// where one addition makes the result independent of MPI's order.
    func allreduceBFloat16() throws -> Bool {
        func bits(_ x: Float) -> UInt16 { UInt16(truncatingIfNeeded: x.bitPattern >> 16) }
        func value(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
        let n = 1001
        var values = (0..<n).map { Float((rank + 1) * ($0 % 13 + 1)) }
        var expected = (0..<n).map { Float(triangle * ($0 % 13 + 1)) }
        if size == 2 {
            values += rank == 0 ? [1, 1] : [0x1p-8, 0x1p-8 + 0x1p-10]
            expected += [1, 1 + 0x1p-7]
        }
        for nonBlocking in [false, true] {
            var x = values.map(bits)
            let count = x.count
            try x.withUnsafeMutableBytes { buffer in
                if nonBlocking {
                    try comm.startAllreduce(buffer.baseAddress!, count: count, type: .bfloat16, op: .sum).wait()
                } else {
                    try comm.allreduce(buffer.baseAddress!, count: count, type: .bfloat16, op: .sum)
                }
            }
            for i in 0..<x.count where value(x[i]) != expected[i] {
                return complain("\(nonBlocking ? "non-blocking " : "")bfloat16 sum [\(i)] = \(value(x[i])), expected \(expected[i])")
            }
        }
        return true
    }

    /// A bf16 max has no MPI operation: every rank gets an error before anything is sent.
    func refuseBFloat16Max() throws -> Bool {
        var x: [UInt16] = [0x3F80]
        do {
            try x.withUnsafeMutableBytes { try comm.allreduce($0.baseAddress!, count: 1, type: .bfloat16, op: .max) }
        } catch {
            return true
        }
        return complain("bfloat16 max returned \(x[0]) instead of an error")
    }

    func nonBlocking(polling: Bool) throws -> Bool {
        let n = 100_003
        let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        defer { x.deallocate() }
        for i in 0..<n { x[i] = Float((rank + 1) * (i % 7 + 1)) }
        if !polling { stallIfAsked(at: .wait) }
        let pending = try comm.startAllreduce(UnsafeMutableRawPointer(x.baseAddress!), count: n, type: .float32, op: .sum)
        if polling {
            // Work while the reduction progresses, testing between pieces of work.
            var polls = 0
            var busy = 0.0
            while try !pending.test() {
                polls += 1
                for k in 0..<1000 { busy += Double(k) }
                if polls > 50_000_000 { return complain("non-blocking allreduce did not complete") }
            }
            if busy < 0 { return false }
        } else {
            try pending.wait()
        }
        guard pending.isComplete, try pending.test() else { return complain("handle not complete after wait") }
        for i in 0..<n where x[i] != Float(triangle * (i % 7 + 1)) {
            return complain("non-blocking sum [\(i)] = \(x[i]), expected \(triangle * (i % 7 + 1))")
        }
        return true
    }

    func broadcast(root: Int) throws -> Bool {
        let n = 4099
        var x = (0..<n).map { Double(rank * 100_000 + $0) }
        try x.withUnsafeMutableBytes { try comm.broadcast($0.baseAddress!, count: n, type: .float64, root: root) }
        for i in 0..<n where x[i] != Double(root * 100_000 + i) {
            return complain("broadcast from \(root) [\(i)] = \(x[i]), expected \(root * 100_000 + i)")
        }
        return true
    }

    func allgather() throws -> Bool {
        let k = 3
        let send = (0..<k).map { Int64(rank * 10 + $0) }
        var recv = [Int64](repeating: -1, count: size * k)
        try send.withUnsafeBytes { s in
            try recv.withUnsafeMutableBytes { r in
                try comm.allgather(s.baseAddress!, r.baseAddress!, count: k, type: .int64)
            }
        }
        let expected = (0..<size).flatMap { r in (0..<k).map { Int64(r * 10 + $0) } }
        if recv != expected { return complain("allgather = \(recv), expected \(expected)") }
        return true
    }

    /// A duplicate has the same ranks and reduces on its own; with MPI_THREAD_MULTIPLE a second
    /// thread reduces on the duplicate while this one reduces on the world, as the trainer does.
    func duplicate() throws -> Bool {
        let dup = try comm.duplicate()
        defer { if let mpi = dup as? MPICommunicator ?? (dup as? WatchdogCommunicator)?.base as? MPICommunicator { try? mpi.free() } }
        if dup.rank != rank || dup.size != size {
            return complain("duplicate is rank \(dup.rank) of \(dup.size), expected \(rank) of \(size)")
        }
        let concurrent = MPICommunicator.providedThreadLevel == .multiple
        let rounds = 20, n = 10_000
        var dupResult: Result<Bool, Error> = .success(false)
        let reduceOnDuplicate = {
            dupResult = Result {
                for round in 0..<rounds {
                    var x = [Double](repeating: Double(self.rank + round), count: n)
                    try x.withUnsafeMutableBufferPointer { try dup.allreduce($0) }
                    let expected = Double(self.triangle - self.size + self.size * round)
                    if x.contains(where: { $0 != expected }) { return false }
                }
                return true
            }
        }
        var worldOK = true
        let reduceOnWorld = {
            for round in 0..<rounds {
                var x = [Float](repeating: Float(2 * round + 1), count: n)
                try x.withUnsafeMutableBufferPointer { try self.comm.allreduce($0) }
                if x.contains(where: { $0 != Float(self.size * (2 * round + 1)) }) { worldOK = false }
            }
        }
        if concurrent {
            let done = DispatchSemaphore(value: 0)
            let thread = Thread { reduceOnDuplicate(); done.signal() }
            thread.start()
            try reduceOnWorld()
            done.wait()
        } else {
            reduceOnDuplicate()
            try reduceOnWorld()
        }
        if !(try dupResult.get()) { return complain("allreduce on the duplicate gave a wrong sum") }
        if !worldOK { return complain("allreduce on the world beside the duplicate gave a wrong sum") }
        return true
    }
}

import ArgumentParser
import Foundation
import DTrainCore
import DTrainDistributed

/// Runs a subcommand's work with the job's communicator (MPI under mpirun, a world of one
/// otherwise) and ends it the way a job must end:
/// - success: MPI is finalized on every rank;
/// - a failure all ranks know about (`JobFailure`, `RankDisagreement`): one rank prints the
///   one-line error, every rank finalizes and exits non-zero;
/// - any other error on one rank: it prints the error naming its rank and aborts the whole job,
///   so no other rank waits forever in a collective;
/// - a collective that waits longer than `collectiveTimeout` seconds (when given and positive):
///   the watchdog prints one line naming the operation and aborts the job (see
///   `WatchdogCommunicator`; `purpose` names the collectives `body` makes itself).
func runJob(collectiveTimeout: Double? = nil, purpose: String = "main loop", _ body: (Communicator) throws -> Void) throws {
    let communicator = try makeCommunicator()
    guard let mpi = communicator as? MPICommunicator else {
        do { try body(communicator) } catch let e as JobFailure { throw ValidationError(e.message) }
        return
    }
    var job: Communicator = mpi
    if let timeout = collectiveTimeout, timeout > 0, mpi.size > 1 {
        job = WatchdogCommunicator(wrapping: mpi, timeout: timeout, purpose: purpose)
    }
    do {
        try body(job)
        try mpi.finalize()
    } catch {
        func report(_ text: String) { FileHandle.standardError.write("Error: \(text)\n".data(using: .utf8)!) }
        switch error {
        case let e as JobFailure:
            if e.report { report(e.message) }
        case let e as RankDisagreement:
            if mpi.rank == 0 { report("\(e)") }
        case let e as ExitCode:
            try? mpi.finalize()
            throw e
        default:
            report("rank \(mpi.rank): \(MessageText.describe(error))")
            mpi.abort(code: 1)
        }
        try? mpi.finalize()
        throw ExitCode(1)
    }
}

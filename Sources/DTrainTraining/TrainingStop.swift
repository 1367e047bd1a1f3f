import Foundation
import DTrainCore

/// A run stopped early by a stop signal (SIGTERM, SIGINT or SIGUSR1, see `StopSignals`): every
/// rank finished the step it was in, the ranks agreed on that step, and rank 0 wrote
/// `checkpoint-last` there, so `--resume` continues bit for bit as if nothing had happened.
public struct TrainingStop: Sendable, Equatable {
    /// The process's exit status after such a stop: EX_TEMPFAIL (75), "preempted, checkpoint
    /// saved, resume with --resume".
    public static let exitStatus: Int32 = 75

    /// The signal this process received, or nil when the stop was asked for on another rank.
    public var signal: Int32?
    /// The 1-based epoch the run stopped in and the global steps done.
    public var epoch: Int
    public var globalStep: Int
    /// The checkpoint to resume from.
    public var checkpoint: URL

    /// The one line rank 0 prints.
    public var line: String {
        let cause = signal.map { "stopped by \(StopSignals.name($0))" } ?? "stopped by a signal on another rank"
        return "\(cause) at epoch \(epoch), global step \(globalStep): saved \(checkpoint.path); "
            + "resume with --resume (exit status \(TrainingStop.exitStatus))"
    }
}

import Foundation

extension Trainer {
    /// The end of the message of a run stopped by an error: where its last good checkpoint is
    /// kept, only when one exists. Rank 0 writes checkpoints; other ranks leave naming it to rank 0.
    var lastGoodCheckpointNote: String {
        guard communicator.rank == 0 else { return "stopped (rank 0 names the last good checkpoint, if any)" }
        return FileManager.default.fileExists(atPath: run.last.path)
            ? "stopped, the last good checkpoint is kept in \(run.url.path)"
            : "stopped; no checkpoint was written yet (none is kept in \(run.url.path))"
    }
}

import Foundation

/// How this process was started: alone, or as one rank of an MPI job.
public enum Launch {
    /// Whether this process is a rank of an MPI job (mpirun sets OMPI_COMM_WORLD_SIZE; PMIx
    /// launchers such as `srun --mpi=pmix` set PMIX_RANK).
    public static var isUnderMPI: Bool { isUnderMPI(ProcessInfo.processInfo.environment) }

    /// The same test on a given environment.
    public static func isUnderMPI(_ environment: [String: String]) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }
}

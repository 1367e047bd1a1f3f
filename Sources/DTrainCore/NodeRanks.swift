import Foundation

/// This process's place among the MPI ranks that share its node, as the launcher's environment
/// gives it: mpirun's OMPI_COMM_WORLD_LOCAL_RANK and OMPI_COMM_WORLD_LOCAL_SIZE, else the
/// MPICH/Hydra names MPI_LOCALRANKID and MPI_LOCALNRANKS. Started alone (none set), it is rank 0
/// of 1. Thread and loader-worker defaults divide the node's cores by `localSize`.
public struct NodeRanks: Equatable, Sendable {
    /// This process's rank on the node, from 0.
    public let localRank: Int
    /// Ranks on the node, at least 1.
    public let localSize: Int

    public init(localRank: Int, localSize: Int) {
        self.localRank = max(0, localRank)
        self.localSize = max(1, localSize)
    }

    /// Read from `environment` (an unset or unreadable value counts as rank 0 of 1).
    public init(environment: [String: String]) {
        self.init(localRank: Int(environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? environment["MPI_LOCALRANKID"] ?? "") ?? 0,
                  localSize: Int(environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? environment["MPI_LOCALNRANKS"] ?? "") ?? 1)
    }

    /// This process's, from its environment.
    public static var current: NodeRanks { NodeRanks(environment: ProcessInfo.processInfo.environment) }

    /// The node's cores divided between its ranks (0 when there are more ranks than cores).
    public var coresPerRank: Int { ProcessInfo.processInfo.activeProcessorCount / localSize }
}

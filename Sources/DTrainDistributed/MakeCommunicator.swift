/// The communicator for this process: MPI's world under mpirun (MPI is initialized here), otherwise a
/// world of one that makes no MPI call at all, not even MPI_Init.
public func makeCommunicator() throws -> Communicator {
    if Launch.isUnderMPI { return try MPICommunicator.initialize() }
    return SingleProcessCommunicator()
}

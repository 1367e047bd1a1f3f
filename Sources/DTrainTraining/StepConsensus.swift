import DTrainDistributed

/// What the ranks agree on after every step, in one allreduce of three doubles allocated once:
/// the step's loss over all ranks (so every rank sees the same value and stops together on a
/// non-finite one) and whether any rank was asked to stop (a stop signal), at no extra collective.
struct StepConsensus {
    private let communicator: Communicator
    private var totals = [Double](repeating: 0, count: 3)

    init(communicator: Communicator) { self.communicator = communicator }

    /// The mean loss over every rank's `count` samples, and whether any rank asked to stop.
    mutating func agree(loss: Float, count: Int, stop: Bool) throws -> (loss: Float, stop: Bool) {
        guard communicator.size > 1 else { return (loss, stop) }
        totals[0] = Double(loss) * Double(count)
        totals[1] = Double(count)
        totals[2] = stop ? 1 : 0
        try totals.withUnsafeMutableBufferPointer { try communicator.allreduce($0) }
        return (Float(totals[0] / max(totals[1], 1)), totals[2] > 0)
    }
}

import DTrainCore
import DTrainNN

/// Synchronized BatchNorm: per-channel statistics summed over all ranks with one allreduce per
/// BatchNorm forward and one per backward, so training-mode BatchNorm equals BatchNorm over the
/// concatenation of every rank's batch (unequal and empty per-rank batches included).
public final class AllreduceChannelReducer: ChannelReducer {
    public let communicator: Communicator

    public init(communicator: Communicator) { self.communicator = communicator.labelled("synchronized BatchNorm") }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        do {
            try communicator.allreduce(values)
        } catch {
            // BatchNorm cannot throw mid-pass; a failed collective ends the whole job.
            FileHandle.standardError.write("dtrain: rank \(communicator.rank): synchronized BatchNorm: \(error)\n".data(using: .utf8)!)
            communicator.abort(code: 1)
        }
    }
}

extension Model {
    /// Synchronizes every BatchNorm2d of the model across `communicator` (nil: local statistics).
    public func synchronizeBatchNorm(over communicator: Communicator?) {
        let reducer = communicator.map { AllreduceChannelReducer(communicator: $0) }
        visitLayers { ($0 as? BatchNorm2d)?.reducer = reducer }
    }
}

import Foundation

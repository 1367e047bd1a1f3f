import DTrainCore
import DTrainNN

/// How BatchNorm running statistics are made equal across ranks before every evaluation and
/// every checkpoint (`--dist-bn`), when BatchNorm is not synchronized: each rank's running mean
/// and variance otherwise follow its own shard, so the ranks would hold different models.
public enum DistributedBatchNormMode: String, CaseIterable, Sendable {
    /// The mean over ranks (timm's `--dist-bn reduce`): every shard's statistics count.
    case reduce
    /// Rank 0's (PyTorch DDP's `broadcast_buffers`): what rank 0 saw.
    case broadcast
}

/// Makes the running statistics of a model's BatchNorms equal on every rank, in one collective
/// over one flat buffer allocated once.
///
/// `reduce` gathers every rank's buffer and sums it in rank order on each rank, so the result is
/// the same bits on every rank and a deterministic function of the ranks' buffers (an MPI
/// allreduce may sum in an order that depends on the algorithm it picks). BatchNorms that are
/// synchronized (their statistics already equal) or frozen (they never update) are left out;
/// with none left, `equalize()` makes no collective at all.
public final class BatchNormBufferSync {
    public let mode: DistributedBatchNormMode
    private let communicator: Communicator
    private let buffers: [StateBuffer]
    private let flat: Storage
    private let gathered: Storage

    public init(model: Model, mode: DistributedBatchNormMode, communicator: Communicator) {
        self.mode = mode
        self.communicator = communicator.labelled("BatchNorm statistics (--dist-bn \(mode.rawValue))")
        var buffers: [StateBuffer] = []
        if communicator.size > 1 {
            model.visitLayers { layer in
                guard let bn = layer as? BatchNorm2d, bn.reducer == nil, !bn.frozenStatistics else { return }
                buffers += [bn.runningMean, bn.runningVar]
            }
        }
        self.buffers = buffers
        let count = buffers.reduce(0) { $0 + $1.count }
        flat = Storage(count: count)
        gathered = Storage(count: mode == .reduce ? count * max(communicator.size, 1) : 0)
    }

    /// Values exchanged per call (0: nothing to do).
    public var count: Int { flat.count }

    /// Averages (or broadcasts) the statistics. Every rank must call it at the same point.
    public func equalize() throws {
        guard count > 0 else { return }
        var offset = 0
        for b in buffers {
            (flat.pointer + offset).update(from: b.pointer, count: b.count)
            offset += b.count
        }
        switch mode {
        case .broadcast:
            try communicator.broadcast(UnsafeMutableRawPointer(flat.pointer), count: count, type: .float32, root: 0)
        case .reduce:
            try communicator.allgather(UnsafeRawPointer(flat.pointer), UnsafeMutableRawPointer(gathered.pointer), count: count, type: .float32)
            let ranks = communicator.size, n = count, all = gathered.pointer, out = flat.pointer
            let scale = 1 / Float(ranks)
            for i in 0..<n {
                var sum = all[i]
                for r in 1..<ranks { sum += all[r * n + i] }
                out[i] = sum * scale
            }
        }
        offset = 0
        for b in buffers {
            b.pointer.update(from: flat.pointer + offset, count: b.count)
            offset += b.count
        }
    }
}

import DTrainCore
import DTrainNN

/// Makes every rank start from the same state.
public enum ModelSync {
    /// Overwrites every rank's parameters, buffers and counters with `root`'s, so all ranks start
    /// identical whatever their seeds (the optimizer then keeps them identical).
    public static func broadcastState(of model: Model, from root: Int = 0, over communicator: Communicator) throws {
        guard communicator.size > 1 else { return }
        let communicator = communicator.labelled("initial state broadcast")
        let values = model.store.values
        try communicator.broadcast(UnsafeMutableRawPointer(values.pointer), count: values.count, type: .float32, root: root)
        var counters: [Int64] = []
        for entry in model.state {
            switch entry.kind {
            case .buffer(let b):
                try communicator.broadcast(UnsafeMutableRawPointer(b.pointer), count: b.count, type: .float32, root: root)
            case .counter(let c):
                counters.append(c.value)
            case .parameter:
                break
            }
        }
        if !counters.isEmpty {
            let n = counters.count
            try counters.withUnsafeMutableBytes {
                try communicator.broadcast($0.baseAddress!, count: n, type: .int64, root: root)
            }
            var i = 0
            for entry in model.state {
                if case .counter(let c) = entry.kind { c.value = counters[i]; i += 1 }
            }
        }
    }

    /// Broadcasts an optimizer's state buffers (after a resume every rank read the same file, but
    /// this keeps them identical by construction).
    public static func broadcast(_ storages: [Storage], from root: Int = 0, over communicator: Communicator) throws {
        guard communicator.size > 1 else { return }
        let communicator = communicator.labelled("optimizer state broadcast")
        for s in storages {
            try communicator.broadcast(UnsafeMutableRawPointer(s.pointer), count: s.count, type: .float32, root: root)
        }
    }
}

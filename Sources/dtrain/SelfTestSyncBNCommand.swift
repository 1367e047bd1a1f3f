import ArgumentParser
import Foundation
import DTrainCore
import DTrainNN
import DTrainDistributed

/// `dtrain selftest-syncbn --sizes 3,1` (hidden): under mpirun, checks synchronized BatchNorm
/// against one BatchNorm over the concatenation of every rank's batch. Each rank builds the same
/// global batch from a fixed seed and takes its own slice (the sizes may be unequal, and zero);
/// outputs, input gradients, the ranks' summed parameter gradients and the running statistics
/// must agree. Rank 0 prints one line; the exit status is 1 on any mismatch.
struct SelfTestSyncBN: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "selftest-syncbn", shouldDisplay: false)

    @Option(help: "Per-rank batch sizes, comma-separated, one per rank.")
    var sizes: String

    func run() throws {
        try runJob { comm in
            let sizes = self.sizes.split(separator: ",").compactMap { Int($0) }
            guard sizes.count == comm.size else { throw ValidationError("--sizes needs one size per rank (\(comm.size))") }
            let shape = FeatureShape(height: 3, width: 2, channels: 5)
            let total = sizes.reduce(0, +)
            var rng = SeededRandom(seed: 42)
            let x = Storage(count: total * shape.count), dy = Storage(count: total * shape.count)
            for i in 0..<x.count { x.pointer[i] = Float(rng.normal() * 2 + 0.5); dy.pointer[i] = Float(rng.normal()) }

            func make(maxBatch: Int, reducer: ChannelReducer?) -> (BatchNorm2d, ParameterStore) {
                let bn = BatchNorm2d(channels: shape.channels)
                let store = ParameterStore(layer: bn)
                var r = SeededRandom(seed: 7)
                for i in 0..<shape.channels { bn.weight.value[i] = Float(r.uniform(0.5, 1.5)); bn.bias.value[i] = Float(r.uniform(-1, 1)) }
                bn.reducer = reducer
                _ = bn.build(input: shape, maxBatch: max(maxBatch, 1), inputNeedsGradient: true, context: BuildContext(workspace: Workspace()))
                return (bn, store)
            }
            let (reference, refStore) = make(maxBatch: total, reducer: nil)
            let yRef = reference.forward(Tensor(storage: x, batch: total, shape: shape), mode: .train).toArray()
            let dxRef = reference.backward(Tensor(storage: dy, batch: total, shape: shape)).toArray()

            let mine = sizes[comm.rank], offset = sizes.prefix(comm.rank).reduce(0, +) * shape.count
            let (sync, store) = make(maxBatch: mine, reducer: AllreduceChannelReducer(communicator: comm))
            let y = sync.forward(Tensor(data: x.pointer + offset, batch: mine, shape: shape), mode: .train).toArray()
            let dx = sync.backward(Tensor(data: dy.pointer + offset, batch: mine, shape: shape)).toArray()
            try comm.allreduce(store.grads.buffer)

            func maxError(_ a: [Float], _ b: ArraySlice<Float>) -> Double {
                zip(a, b).map { Double(abs($0 - $1)) / max(1, Double(abs($1))) }.max() ?? 0
            }
            let slice = offset..<(offset + mine * shape.count)
            var worst = [maxError(y, yRef[slice]), maxError(dx, dxRef[slice]),
                         maxError(Array(store.grads.buffer), Array(refStore.grads.buffer)[...]),
                         maxError(Array(sync.runningMean.storage.buffer), Array(reference.runningMean.storage.buffer)[...]),
                         maxError(Array(sync.runningVar.storage.buffer), Array(reference.runningVar.storage.buffer)[...])]
            try worst.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .max) }
            let names = ["output", "input gradient", "parameter gradients", "running mean", "running var"]
            let failed = worst.indices.filter { worst[$0] > 1e-4 }
            if comm.rank == 0 {
                if failed.isEmpty {
                    print("ok   synchronized BatchNorm over sizes \(self.sizes) equals BatchNorm over the concatenation (max error \(String(format: "%.2g", worst.max()!)))")
                } else {
                    print("FAIL synchronized BatchNorm over sizes \(self.sizes): " + failed.map { "\(names[$0]) error \(worst[$0])" }.joined(separator: ", "))
                }
            }
            if !failed.isEmpty { throw JobFailure(message: "synchronized BatchNorm differs from BatchNorm over the concatenation", report: comm.rank == 0) }
        }
    }
}

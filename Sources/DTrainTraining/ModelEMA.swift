import DTrainCore
import DTrainNN
import DTrainWeights

/// An exponential moving average of a model's weights and BatchNorm buffers (`--model-ema`), as
/// torchvision's references/classification: utils.ExponentialMovingAverage, an
/// `AveragedModel(model, avg_fn=ema_avg, use_buffers=True)`, driven by train.py.
///
/// `update()` is AveragedModel.update_parameters: the first update after `nAveraged` is 0 copies
/// the model; every later one sets each parameter and buffer to `decay · ema + (1 − decay) · model`
/// in float32 (decay rounded to float32, `1 − decay` computed in double, then rounded), and each
/// int64 counter (num_batches_tracked) to that expression in float32 truncated toward zero, as
/// PyTorch's `copy_` into an int64 tensor does. Then `nAveraged` counts one more.
///
/// The averages are allocated once, when the EMA is made (a copy of the model, as AveragedModel's
/// deepcopy); `update()` allocates nothing. The EMA has no model of its own: `withWeightsSwapped`
/// exchanges its values with the model's in place (no copy kept), so the same built model
/// evaluates, equalizes across ranks and serializes the EMA.
public final class ModelEMA {
    /// The decay each update applies (train.py's adjusted one, see `adjustedDecay`).
    public let decay: Double
    /// Optimizer steps between updates (`--model-ema-steps`).
    public let every: Int
    /// AveragedModel.n_averaged: updates averaged since the last reset.
    public var nAveraged: Int64 = 0

    private let store: ParameterStore
    private let state: [StateEntry]
    private let values: Storage
    private let modelBuffers: [StateBuffer]
    private let buffers: [Storage]
    private let modelCounters: [StateCounter]
    private var counters: [Int64]

    /// An EMA over `store`'s parameter values and the buffers and counters in `state` (a model's
    /// `store` and `state`), starting as a copy of them.
    public init(store: ParameterStore, state: [StateEntry], decay: Double, every: Int = 1) {
        precondition(decay >= 0 && decay <= 1, "EMA decay \(decay) must lie in [0, 1]")
        precondition(every >= 1, "EMA update interval \(every) must be at least 1")
        self.store = store
        self.state = state
        self.decay = decay
        self.every = every
        values = Storage(count: store.count)
        values.pointer.update(from: store.values.pointer, count: store.count)
        var modelBuffers: [StateBuffer] = [], modelCounters: [StateCounter] = []
        for entry in state {
            switch entry.kind {
            case .parameter: break
            case .buffer(let b): modelBuffers.append(b)
            case .counter(let c): modelCounters.append(c)
            }
        }
        self.modelBuffers = modelBuffers
        self.modelCounters = modelCounters
        buffers = modelBuffers.map { b in
            let copy = Storage(count: b.count)
            copy.pointer.update(from: b.pointer, count: b.count)
            return copy
        }
        counters = modelCounters.map(\.value)
    }

    /// The EMA of `model`'s parameters, buffers and counters.
    public convenience init(model: Model, decay: Double, every: Int = 1) {
        self.init(store: model.store, state: model.state, decay: decay, every: every)
    }

    /// train.py's decay adjustment (after pycls), which keeps the EMA's horizon independent of the
    /// batch, the update interval and the run's length: adjust = global batch × steps ÷ epochs;
    /// alpha = min(1, (1 − decay) × adjust); the decay used is 1 − alpha. `globalBatch` is
    /// world_size × batch_size (× gradient accumulation in dtrain, the images of one update).
    public static func adjustedDecay(_ decay: Double, globalBatch: Int, steps: Int, epochs: Int) -> Double {
        let adjust = Double(globalBatch * steps) / Double(epochs)
        var alpha = 1.0 - decay
        alpha = min(1.0, alpha * adjust)
        return 1.0 - alpha
    }

    /// AveragedModel.update_parameters(model) with use_buffers=True.
    public func update() {
        let copy = nAveraged == 0
        let d = Float(decay), e = Float(1.0 - decay)
        ModelEMA.average(values.pointer, store.values.pointer, count: store.count, copy: copy, d, e)
        for (b, average) in zip(modelBuffers, buffers) {
            ModelEMA.average(average.pointer, b.pointer, count: b.count, copy: copy, d, e)
        }
        for i in counters.indices {
            let source = modelCounters[i].value
            if copy {
                counters[i] = source
            } else {
                let mixed = d * Float(counters[i]) + e * Float(source)
                counters[i] = mixed.isFinite ? Int64(mixed.rounded(.towardZero)) : source
            }
        }
        nAveraged += 1
    }

    private static func average(_ ema: UnsafeMutablePointer<Float>, _ model: UnsafeMutablePointer<Float>, count: Int, copy: Bool,
                                _ d: Float, _ e: Float) {
        if copy {
            ema.update(from: model, count: count)
        } else {
            for i in 0..<count { ema[i] = d * ema[i] + e * model[i] }
        }
    }

    /// train.py's schedule, after the optimizer update of step `step` (from 0, counted in updates
    /// within the epoch) of epoch `epoch`: an update every `every` steps (at steps 0, every, 2 ×
    /// every, …), and while `epoch < warmupEpochs` the count reset to 0 after it, so that the next
    /// update copies the model again ("keep copying weights during warmup"). True when it updated.
    @discardableResult
    public func afterOptimizerStep(epoch: Int, step: Int, warmupEpochs: Double) -> Bool {
        guard step % every == 0 else { return false }
        update()
        if Double(epoch) < warmupEpochs { nAveraged = 0 }
        return true
    }

    /// Runs `body` with the EMA's values in the model (parameters, buffers, counters) and the
    /// model's in the EMA, then swaps them back, also when `body` throws. What `body` changes in the
    /// model (BatchNorm statistics made equal across ranks) stays in the EMA.
    public func withWeightsSwapped<T>(_ body: () throws -> T) rethrows -> T {
        swap()
        defer { swap() }
        return try body()
    }

    private func swap() {
        ModelEMA.exchange(values.pointer, store.values.pointer, count: store.count)
        for (b, average) in zip(modelBuffers, buffers) { ModelEMA.exchange(average.pointer, b.pointer, count: b.count) }
        for i in counters.indices { (counters[i], modelCounters[i].value) = (modelCounters[i].value, counters[i]) }
    }

    private static func exchange(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { (a[i], b[i]) = (b[i], a[i]) }
    }

    /// The EMA's values as they are now, in the model's state order and torch's layouts, by
    /// state_dict name (tests and tools; allocates).
    public func stateValues() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        var b = 0, c = 0
        for entry in state {
            switch entry.kind {
            case .parameter(let p):
                out[entry.name] = p.torchOrder(Array(UnsafeBufferPointer(start: values.pointer + p.offset, count: p.count)))
            case .buffer:
                out[entry.name] = Array(buffers[b].buffer)
                b += 1
            case .counter:
                out[entry.name] = [Float(counters[c])]
                c += 1
            }
        }
        return out
    }

    /// The counters (num_batches_tracked) as they are now, by state_dict name.
    public func counterValues() -> [String: Int64] {
        var out: [String: Int64] = [:]
        var c = 0
        for entry in state {
            if case .counter = entry.kind {
                out[entry.name] = counters[c]
                c += 1
            }
        }
        return out
    }
}

extension ModelEMA {
    /// Adds the EMA to a checkpoint being written for `model` (whose state the EMA mirrors) as
    /// torchvision saves `model_ema.state_dict()`: `model_ema.n_averaged`, then every model tensor
    /// under `model_ema.module.`.
    public func write(into writer: inout SafeTensorsWriter, model: Model) {
        writer.add(Checkpoint.emaCountKey, int64s: [nAveraged], shape: [])
        withWeightsSwapped { StateDict.write(model, into: &writer, prefix: Checkpoint.emaModulePrefix) }
    }

    /// Restores the EMA from a checkpoint of `model` that holds one; an error names the file when it
    /// holds none (a run started without --model-ema) or when its tensors do not fit.
    public func restore(from file: SafeTensorsFile, path: String, model: Model) throws {
        guard file.entries[Checkpoint.emaCountKey] != nil else {
            throw CheckpointError(path: path, reason: "holds no model EMA (\(Checkpoint.emaPrefix)*) to resume --model-ema from: it was trained without --model-ema")
        }
        let count = try file.int64s(Checkpoint.emaCountKey).first ?? 0
        try withWeightsSwapped {
            do { try StateDict.load(file, into: model, prefix: Checkpoint.emaModulePrefix, source: path) } catch let m as StateDictMismatch {
                throw CheckpointError(path: path, reason: "model EMA: " + m.description)
            }
        }
        nAveraged = count
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Two training steps of a zoo model on random batches, as the memory-sharing tests compare them:
/// the second step runs a batch smaller than the one built for, after an eval-mode forward, over
/// memory the first step left behind. Returns the parameter gradients followed by the running
/// statistics, and the bytes the build allocated (activations, gradients, workspace).
/// `prepare` runs on the model before it is built.
func twoTrainingSteps(_ name: String, batch: Int, resolution: Int, engine: EngineOptimisations, precision: Precision = .fp32,
                      prepare: (Model) -> Void = { _ in }) throws -> (state: [Float], bytes: Int) {
    Compute.setThreads(2)
    let model = try ModelZoo.make(name)
    model.initialize(seed: 3)
    prepare(model)
    let before = Storage.liveBytes
    model.build(batch: batch, resolution: resolution, seed: 5, engine: engine, precision: precision)
    let bytes = Storage.liveBytes - before
    let loss = SoftmaxCrossEntropy(classes: model.numClasses)
    loss.build(maxBatch: batch)
    var rng = SeededRandom(seed: 7)
    let images = Storage(count: batch * model.inputShape.count)
    model.store.zeroGrads()
    for step in 0..<2 {
        for i in 0..<images.count { images.pointer[i] = Float(rng.normal()) }
        var labels = (0..<batch).map { Int32(($0 + step) % model.numClasses) }
        let n = step == 0 ? batch : batch - 1
        let x = Tensor(storage: images, batch: n, shape: model.inputShape)
        if step == 1 { _ = model.forward(x, mode: .eval) }
        let logits = model.forward(x, mode: .train)
        _ = labels.withUnsafeMutableBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
        model.backward(loss.backward())
    }
    var state = Array(model.store.grads.buffer)
    for entry in model.state { if case .buffer(let b) = entry.kind { state += Array(b.storage.buffer) } }
    return (state, bytes)
}

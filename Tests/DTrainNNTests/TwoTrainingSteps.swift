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

/// Asserts that an engine optimisation changes no result: two training steps (`twoTrainingSteps`)
/// with every optimisation and with all but `option` give bit-identical parameter gradients and
/// running statistics, not all zero. `built(model, enabled)` is called on the same model built
/// the same way with `option` on and then off, to check that the option took effect or did not.
func assertBitIdentical(without option: EngineOptimisations, _ name: String, batch: Int, resolution: Int,
                        precision: Precision, what: String, prepare: (Model) -> Void = { _ in },
                        built: (Model, Bool) -> Void, file: StaticString = #filePath, line: UInt = #line) throws {
    func run(_ engine: EngineOptimisations) throws -> [Float] {
        let state = try twoTrainingSteps(name, batch: batch, resolution: resolution, engine: engine, precision: precision,
                                         prepare: prepare).state
        let model = try ModelZoo.make(name)
        model.build(batch: batch, resolution: resolution, engine: engine, precision: precision)
        built(model, engine.contains(option))
        return state
    }
    assertSameBits(try run(.all), try run(EngineOptimisations.all.subtracting(option)), "\(name) \(precision)", with: what,
                   file: file, line: line)
}

/// Asserts that two runs' states (`twoTrainingSteps`) are the same bit for bit and not all zero;
/// messages say "`name`: k of n values differ with `what`".
func assertSameBits(_ reference: [Float], _ other: [Float], _ name: String, with what: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reference.count, other.count, "\(name): states of different sizes with \(what)", file: file, line: line)
    let differing = zip(reference, other).filter { $0.0.bitPattern != $0.1.bitPattern }.count
    XCTAssertEqual(differing, 0, "\(name): \(differing) of \(reference.count) values differ with \(what)", file: file, line: line)
    XCTAssertTrue(reference.contains { $0 != 0 }, "\(name): no gradient at all", file: file, line: line)
}

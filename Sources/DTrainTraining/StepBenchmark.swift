import Foundation
import DTrainCore
import DTrainNN

/// What `dtrain bench` measures: training-step throughput on a synthetic batch.
public struct StepBenchmarkResult: Codable, Sendable {
    public var model: String
    public var batchSize: Int
    public var resolution: Int
    public var threads: Int
    public var steps: Int
    /// Median seconds of one step (forward, loss, backward, SGD update).
    public var medianStepSeconds: Double
    public var imagesPerSecond: Double
    /// Achieved GFLOP/s, counting a training step as 3 × 2 × MACs per image.
    public var gflopsPerSecond: Double
    public var parameters: Int
    public var gmacsPerImage: Double
    /// Peak resident set size of the process so far.
    public var peakRSSBytes: Int
    /// `--freeze` setting timed (none: every parameter trains).
    public var freeze = "none"
    public var trainableParameters = 0
}

/// Times training steps of a zoo model on random data.
public enum StepBenchmark {
    public static func run(model name: String, batchSize: Int, resolution: Int?, threads: Int,
                           warmup: Int = 2, steps: Int = 5, seed: UInt64 = 0, freeze: TrainConfig.Freeze = .none,
                           progress: ((Int, Double) -> Void)? = nil) throws -> StepBenchmarkResult {
        Compute.setThreads(threads)
        let model = try ModelZoo.make(name)
        model.initialize(seed: seed)
        try freeze.apply(to: model)
        model.build(batch: batchSize, resolution: resolution, seed: seed)
        let classes = model.numClasses
        let loss = SoftmaxCrossEntropy(classes: classes)
        loss.build(maxBatch: batchSize)
        let sgd = SGD(store: model.store, momentum: 0.9, weightDecay: 1e-4)

        var rng = SeededRandom(seed: seed &+ 1)
        let images = Storage(count: batchSize * model.inputShape.count)
        for i in 0..<images.count { images.pointer[i] = Float(rng.normal()) }
        var labels = (0..<batchSize).map { _ in Int32(rng.int(below: classes)) }
        let x = Tensor(storage: images, batch: batchSize, shape: model.inputShape)

        var times: [Double] = []
        for step in 0..<(warmup + steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            model.store.zeroGrads()
            let logits = model.forward(x, mode: .train)
            _ = labels.withUnsafeMutableBufferPointer { loss.forward(logits: logits, labels: $0.baseAddress!) }
            model.backward(loss.backward())
            sgd.step(lr: 0.01)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if step >= warmup { times.append(seconds) }
            progress?(step, seconds)
        }
        let median = times.sorted()[times.count / 2]
        let macs = model.macsPerImage
        return StepBenchmarkResult(
            model: name, batchSize: batchSize, resolution: model.builtResolution, threads: threads, steps: steps,
            medianStepSeconds: median, imagesPerSecond: Double(batchSize) / median,
            gflopsPerSecond: 6 * Double(macs) * Double(batchSize) / median / 1e9,
            parameters: model.parameterCount, gmacsPerImage: Double(macs) / 1e9, peakRSSBytes: peakRSS(),
            freeze: freeze.description, trainableParameters: model.trainableParameterCount)
    }

    /// Peak resident set size in bytes.
    public static func peakRSS() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return usage.ru_maxrss * 1024
    }
}

import Foundation
import DTrainCore
import DTrainNN
import DTrainDistributed

/// Time per step of one `ProfileKind` in a benchmark.
public struct ProfileEntry: Codable, Sendable, Equatable {
    /// `ProfileKind.name`, or "unattributed" for step time no measure covered.
    public var kind: String
    /// Mean milliseconds per timed step.
    public var milliseconds: Double
    /// Share of the mean step time, in percent.
    public var percent: Double
    /// Mean measured calls per timed step.
    public var calls: Double

    public init(kind: String, milliseconds: Double, percent: Double, calls: Double) {
        self.kind = kind
        self.milliseconds = milliseconds
        self.percent = percent
        self.calls = calls
    }
}

/// What `dtrain bench` measures: training-step throughput on a synthetic batch.
public struct StepBenchmarkResult: Codable, Sendable {
    public var model: String
    public var batchSize: Int
    public var resolution: Int
    public var threads: Int
    /// The kernel set the model ran (`KernelSet` name: avx2, avx512).
    public var kernels = KernelSet.best.rawValue
    /// OpenBLAS's kernel set (`BLAS.core`: SkylakeX, Haswell, ...), which runs the im2col and
    /// pointwise convolutions at fp32.
    public var blasCore = BLAS.core
    /// Convolution and linear-layer arithmetic: fp32 or bf16.
    public var precision = Precision.fp32.rawValue
    /// At bf16, how the GEMM-path layers multiply (`KernelSet.bf16DotProductsPayOff`): vdpbf16ps,
    /// or fma (sgemm on bf16-rounded operands); nil at fp32.
    public var bf16Products: String?
    public var steps: Int
    /// Median seconds of one `TrainingStep` (zeroing gradients, forward, loss, backward, gradient
    /// averaging across ranks, SGD update).
    public var medianStepSeconds: Double
    /// Mean seconds of one timed step (the profile's 100%).
    public var meanStepSeconds: Double
    public var imagesPerSecond: Double
    /// Achieved GFLOP/s, counting a training step as 3 × 2 × MACs per image.
    public var gflopsPerSecond: Double
    public var parameters: Int
    public var gmacsPerImage: Double
    /// Peak resident set size of the process after the timed steps.
    public var peakRSSBytes: Int
    /// Time per step by kind (mean over the timed steps), the kinds that took any time, largest
    /// first, then "unattributed". Nil when not profiled.
    public var profile: [ProfileEntry]?
    /// Best sgemm GFLOP/s of an n×n×n product with the same thread count, measured after the steps.
    public var sgemmPeakGFLOPS: Double?
    /// n of that product.
    public var sgemmPeakSize: Int?
    /// gflopsPerSecond ÷ sgemmPeakGFLOPS.
    public var fractionOfPeak: Double?
    /// Ranks that ran the benchmark together (batchSize is per rank; imagesPerSecond and
    /// gflopsPerSecond are one rank's).
    public var ranks: Int = 1
    /// Images per second of all ranks together.
    public var globalImagesPerSecond: Double?
    /// With several ranks: median seconds of one blocking allreduce of all gradients (in the
    /// same buckets), run after the timed steps: what communication would cost if nothing hid it.
    public var allreduceSeconds: Double?
    /// With several ranks: mean seconds per timed step spent waiting for the overlapped allreduce
    /// after backward (the part not hidden behind backward), taking each step's least wait over
    /// the ranks (the others also wait for the slowest rank's backward).
    public var exposedAllreduceSeconds: Double?
    /// 1 − exposed ÷ blocking allreduce time, clamped to [0, 1].
    public var hiddenAllreduceFraction: Double?
    /// The element type gradients travel in (`--allreduce-dtype`): fp32 or bf16.
    public var allreduceDType = AllreduceDType.fp32.rawValue
    /// With several ranks: bytes of gradients each rank contributes to one step's allreduce.
    public var allreduceBytes: Int?
    /// `--freeze` setting timed (none: every parameter trains).
    public var freeze = "none"
    public var trainableParameters = 0

    /// snake_case in JSON, as metrics.jsonl and `eval --json`.
    enum CodingKeys: String, CodingKey {
        case model, batchSize = "batch_size", resolution, threads, kernels, blasCore = "blas_core", precision, bf16Products = "bf16_products", steps
        case medianStepSeconds = "median_step_seconds"
        case meanStepSeconds = "mean_step_seconds", imagesPerSecond = "images_per_second"
        case gflopsPerSecond = "gflops_per_second", parameters, gmacsPerImage = "gmacs_per_image"
        case peakRSSBytes = "peak_rss_bytes", profile, sgemmPeakGFLOPS = "sgemm_peak_gflops"
        case sgemmPeakSize = "sgemm_peak_size", fractionOfPeak = "fraction_of_peak", ranks
        case globalImagesPerSecond = "global_images_per_second", allreduceSeconds = "allreduce_seconds"
        case exposedAllreduceSeconds = "exposed_allreduce_seconds", hiddenAllreduceFraction = "hidden_allreduce_fraction"
        case freeze, trainableParameters = "trainable_parameters"
        case allreduceDType = "allreduce_dtype", allreduceBytes = "allreduce_bytes"
    }
}

/// Times training steps (`TrainingStep`, as the trainer runs them) of a zoo model on random data.
public enum StepBenchmark {
    /// - Parameters:
    ///   - profile: record time per `ProfileKind` during the timed steps.
    ///   - peakSize: measure the sgemm peak on an n×n×n product after the steps (nil: skip).
    ///   - engine: the engine optimisations the model is built with (`dtrain bench --without`).
    ///   - kernels: the kernel variants (`--kernels`).
    ///   - precision: the arithmetic of convolutions and linear layers (`--precision`).
    ///   - allreduceDType: the element type gradients travel in under mpirun (`--allreduce-dtype`).
    public static func run(model name: String, batchSize: Int, resolution: Int?, threads: Int,
                           warmup: Int = 2, steps: Int = 5, seed: UInt64 = 0, freeze: TrainConfig.Freeze = .none,
                           profile: Bool = true, peakSize: Int? = 2048, engine: EngineOptimisations = .all,
                           kernels: KernelSet = .best, precision: Precision = .fp32, allreduceDType: AllreduceDType = .fp32,
                           communicator: Communicator = SingleProcessCommunicator(),
                           progress: ((Int, Double) -> Void)? = nil) throws -> StepBenchmarkResult {
        Compute.setThreads(threads)
        let model = try ModelZoo.make(name)
        model.initialize(seed: seed)
        try freeze.apply(to: model)
        model.build(batch: batchSize, resolution: resolution, seed: seed, engine: engine, kernels: kernels, precision: precision)
        let classes = model.numClasses
        let loss = SoftmaxCrossEntropy(classes: classes)
        loss.build(maxBatch: batchSize)
        let sgd = SGD(store: model.store, momentum: 0.9, weightDecay: 1e-4, kernels: kernels)
        // The trainer's step; under mpirun gradients are averaged as in training, with the
        // overlapped allreduce.
        let step = try TrainingStep(model: model, loss: loss, optimizer: sgd, communicator: communicator,
                                    allreduceDType: allreduceDType)
        let overlapped = step.gradients as? OverlappedGradientAllreduce
        var waits: [Double] = []
        waits.reserveCapacity(steps)

        var rng = SeededRandom(seed: seed &+ 1)
        let images = Storage(count: batchSize * model.inputShape.count)
        for i in 0..<images.count { images.pointer[i] = Float(rng.normal()) }
        var labels = (0..<batchSize).map { _ in Int32(rng.int(below: classes)) }
        let x = Tensor(storage: images, batch: batchSize, shape: model.inputShape)

        let wasEnabled = Profiler.isEnabled
        defer { Profiler.isEnabled = wasEnabled }
        var times: [Double] = []
        var kinds = ProfileSnapshot()
        for index in 0..<(warmup + steps) {
            let timed = index >= warmup
            Profiler.isEnabled = profile && timed
            Profiler.reset()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try labels.withUnsafeMutableBufferPointer { try step.run(images: x, labels: $0.baseAddress!, lr: 0.01) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if timed {
                times.append(seconds)
                kinds = kinds + Profiler.snapshot()
                if let overlapped { waits.append(overlapped.lastWaitSeconds) }
            }
            progress?(index, seconds)
        }
        Profiler.isEnabled = wasEnabled
        let median = times.sorted()[times.count / 2]
        let mean = times.reduce(0, +) / Double(times.count)
        let macs = model.macsPerImage
        let gflops = 6 * Double(macs) * Double(batchSize) / median / 1e9
        var result = StepBenchmarkResult(
            model: name, batchSize: batchSize, resolution: model.builtResolution, threads: threads, steps: steps,
            medianStepSeconds: median, meanStepSeconds: mean, imagesPerSecond: Double(batchSize) / median,
            gflopsPerSecond: gflops, parameters: model.parameterCount, gmacsPerImage: Double(macs) / 1e9,
            peakRSSBytes: peakRSS(), freeze: freeze.description, trainableParameters: model.trainableParameterCount)
        result.kernels = kernels.rawValue
        if precision == .bf16 { result.bf16Products = kernels.multipliesBF16WithDotProducts ? "vdpbf16ps" : "fma" }
        result.precision = precision.rawValue
        result.allreduceDType = allreduceDType.rawValue
        if profile { result.profile = entries(kinds, steps: steps, meanStep: mean) }
        if overlapped != nil {
            let blocking = AllreduceGradients(store: model.store, communicator: communicator, dtype: allreduceDType)
            var allreduceTimes: [Double] = []
            for _ in 0..<3 {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try blocking.synchronize()
                allreduceTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let allreduce = allreduceTimes.sorted()[1]
            // A rank's wait also holds the time until the slowest rank finished backward; the
            // slowest rank's wait is the communication alone, so take the least wait per step.
            let timedSteps = waits.count
            try waits.withUnsafeMutableBytes { try communicator.allreduce($0.baseAddress!, count: timedSteps, type: .float64, op: .min) }
            let exposedPerStep = waits.reduce(0, +) / Double(steps)
            result.ranks = communicator.size
            result.globalImagesPerSecond = Double(batchSize * communicator.size) / median
            result.allreduceSeconds = allreduce
            result.allreduceBytes = blocking.buckets.count * allreduceDType.bytesPerElement
            result.exposedAllreduceSeconds = exposedPerStep
            result.hiddenAllreduceFraction = allreduce > 0 ? min(1, max(0, 1 - exposedPerStep / allreduce)) : nil
        } else {
            result.globalImagesPerSecond = Double(batchSize) / median
        }
        if let n = peakSize {
            let peak = BLAS.measurePeakGFLOPS(size: n)
            result.sgemmPeakGFLOPS = peak
            result.sgemmPeakSize = n
            result.fractionOfPeak = gflops / peak
        }
        return result
    }

    /// Per-step entries from times summed over `steps` steps: kinds with time, largest first, then
    /// the unattributed rest of the mean step.
    static func entries(_ total: ProfileSnapshot, steps: Int, meanStep: Double) -> [ProfileEntry] {
        let n = Double(max(steps, 1))
        var list: [ProfileEntry] = []
        for kind in ProfileKind.allCases where total[kind] > 0 || total.calls(kind) > 0 {
            let seconds = total[kind] / n
            list.append(ProfileEntry(kind: kind.name, milliseconds: seconds * 1e3, percent: 100 * seconds / meanStep,
                                     calls: Double(total.calls(kind)) / n))
        }
        list.sort { $0.milliseconds > $1.milliseconds }
        let rest = max(0, meanStep - total.total / n)
        list.append(ProfileEntry(kind: "unattributed", milliseconds: rest * 1e3, percent: 100 * rest / meanStep, calls: 0))
        return list
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

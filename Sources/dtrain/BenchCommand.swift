import ArgumentParser
import Foundation
import DTrainCore
import DTrainDistributed
import DTrainNN
import DTrainTraining

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time training steps (forward, backward, SGD update) of a model on a synthetic batch.",
        discussion: """
            Prints the median step time and throughput, the achieved GFLOP/s as a share of an sgemm \
            peak measured on the spot (an n×n×n product with the same thread count, best of 3), \
            and where a step's time goes by kind of work (convolutions, BatchNorm, pooling, \
            elementwise, linear, loss, optimizer), averaged over the timed steps.
            """)

    @Argument(help: "Model name (see `dtrain models`).")
    var model: String

    @Option(name: .customLong("batch-size"), help: "Images per step.")
    var batchSize: Int = 32

    @Option(help: "Image side in pixels (default: the model's).")
    var resolution: Int?

    @Option(help: "Compute threads (default: cores ÷ ranks on this node).")
    var threads: Int?

    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @OptionGroup var allreduceOptions: AllreduceOptions

    @Option(help: "Timed steps after warm-up; the median is reported.")
    var steps: Int = 5

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 2

    @Flag(inversion: .prefixedNo, help: "Time each kind of work in the timed steps.")
    var profile = true

    @Option(name: .customLong("peak-size"), help: "n of the n×n×n sgemm whose GFLOP/s is taken as the peak (0: skip).")
    var peakSize: Int = 2048
    @Option(help: ArgumentHelp("Switch optimisations off to measure what each gives: \(EngineOptimisations.names.map(\.name).joined(separator: ", ")) (comma-separated; bf16-activations only matters with --precision bf16).", valueName: "list"))
    var without: String?

    @Option(help: ArgumentHelp("Comma-separated --freeze settings to time one after the other in this run, e.g. none,backbone (GFLOP/s counts a full training step's work).", valueName: "none|backbone|until=LAYER,…"))
    var freeze: String = "none"

    @Flag(help: "Print one JSON object (one per --freeze setting).")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if let r = resolution, r < 8 { throw ValidationError("--resolution must be at least 8 pixels, got \(r)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        let known = EngineOptimisations.names.map(\.name)
        for name in (without ?? "").split(separator: ",").map(String.init) where !known.contains(name) {
            throw ValidationError("--without \(name): expected one of \(known.joined(separator: ", "))")
        }
        guard peakSize >= 0 else { throw ValidationError("--peak-size must be 0 or more, got \(peakSize)") }
        for f in freeze.split(separator: ",") where TrainConfig.Freeze.parse(String(f)) == nil {
            throw ValidationError("--freeze \(f): expected none, backbone or until=LAYER")
        }
    }

    func run() throws {
        try runJob(purpose: "benchmark") { communicator in try run(communicator) }
    }

    private func run(_ communicator: Communicator) throws {
        var engine = EngineOptimisations.all
        for name in (without ?? "").split(separator: ",").map(String.init) {
            if let named = EngineOptimisations.names.first(where: { $0.name == name }) {
                engine.remove(named.option)
            }
        }
        let threads = self.threads ?? Compute.defaultThreads
        let (kernels, precision) = try RankAgreement.together(over: communicator) {
            (try kernelOptions.request().resolve(), try precisionOptions.resolved())
        }
        let allreduceDType = try allreduceOptions.parsed()
        // Ranks sending different element types would not match their collectives.
        try RankAgreement.check([("allreduce dtype", allreduceDType.rawValue)], over: communicator)
        let leader = communicator.rank == 0
        for setting in freeze.split(separator: ",").map({ TrainConfig.Freeze.parse(String($0))! }) {
            let result = try StepBenchmark.run(
                model: model, batchSize: batchSize, resolution: resolution, threads: threads,
                warmup: warmup, steps: steps, freeze: setting, profile: profile, peakSize: peakSize > 0 ? peakSize : nil,
                engine: engine, kernels: kernels, precision: precision, allreduceDType: allreduceDType, communicator: communicator
            ) { step, seconds in
                if !json && leader {
                    let tag = step < warmup ? "warm-up" : "step"
                    FileHandle.standardError.write(String(format: "%@ %d: %.3f s (%.1f img/s)\n", tag, step + 1, seconds, Double(batchSize) / seconds).data(using: .utf8)!)
                }
            }
            if leader { try report(result) }
        }
    }

    private func report(_ result: StepBenchmarkResult) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(data: try encoder.encode(result), encoding: .utf8)!)
            return
        }
        let frozen = result.freeze == "none" ? "" : String(format: ", --freeze %@ (%d of %d parameters train)", result.freeze, result.trainableParameters, result.parameters)
        print(String(format: "%@ batch %d at %dpx, %d threads, %@ kernels, %@, %@%@: %.2f img/s (median of %d steps, %.3f s/step), %.1f GFLOP/s, peak RSS %.0f MiB",
                     result.model, result.batchSize, result.resolution, result.threads, result.kernels, BLAS.coreSummary, result.precision == "bf16" ? "bf16 (\((KernelSet(rawValue: result.kernels) ?? .best).bf16ProductsSummary))" : result.precision, frozen, result.imagesPerSecond,
                     result.steps, result.medianStepSeconds, result.gflopsPerSecond, Double(result.peakRSSBytes) / 1048576))
        if result.ranks > 1, let global = result.globalImagesPerSecond, let allreduce = result.allreduceSeconds,
           let exposed = result.exposedAllreduceSeconds, let hidden = result.hiddenAllreduceFraction {
            let megabytes = Double(result.allreduceBytes ?? 0) / 1048576
            print(String(format: "%d ranks: %.2f img/s together; gradient allreduce (%@, %.1f MiB per rank) %.1f ms blocking, %.1f ms per step left after backward: %.0f%% hidden",
                         result.ranks, global, result.allreduceDType, megabytes, allreduce * 1e3, exposed * 1e3, 100 * hidden))
        }
        if let peak = result.sgemmPeakGFLOPS, let n = result.sgemmPeakSize, let fraction = result.fractionOfPeak {
            print(String(format: "sgemm peak %.1f GFLOP/s (%dx%dx%d, %d threads): the step achieves %.1f%% of it",
                         peak, n, n, n, result.threads, 100 * fraction))
        }
        if let profile = result.profile {
            print(String(format: "time per step by kind (mean of %d timed steps, %.1f ms):", result.steps, result.meanStepSeconds * 1e3))
            let unsplitConv = !profile.contains { $0.kind == ProfileKind.convBackwardWeight.name }
            for e in profile {
                var label = e.kind
                if unsplitConv && e.kind == ProfileKind.convBackwardData.name { label = "conv_backward (data+weight)" }
                let calls = e.calls > 0 ? String(format: "  %6.0f calls", e.calls) : ""
                let padded = label.padding(toLength: max(label.count, 28), withPad: " ", startingAt: 0)
                print("  " + padded + String(format: "%10.1f ms %6.1f%%", e.milliseconds, e.percent) + calls)
            }
        }
    }
}

import ArgumentParser
import Foundation
import DTrainCore
import DTrainTraining

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time training steps (forward, backward, SGD update) of a model on a synthetic batch.")

    @Argument(help: "Model name (see `dtrain models`).")
    var model: String

    @Option(name: .customLong("batch-size"), help: "Images per step.")
    var batchSize: Int = 32

    @Option(help: "Image side in pixels (default: the model's).")
    var resolution: Int?

    @Option(help: "Compute threads (default: cores ÷ ranks on this node).")
    var threads: Int?

    @Option(help: "Timed steps after warm-up; the median is reported.")
    var steps: Int = 5

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 2

    @Option(help: ArgumentHelp("Comma-separated --freeze settings to time one after the other in this run, e.g. none,backbone (GFLOP/s counts a full training step's work).", valueName: "none|backbone|until=LAYER,…"))
    var freeze: String = "none"

    @Flag(help: "Print one JSON object (one per --freeze setting).")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if let r = resolution, r < 8 { throw ValidationError("--resolution must be at least 8 pixels, got \(r)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        for f in freeze.split(separator: ",") where TrainConfig.Freeze.parse(String(f)) == nil {
            throw ValidationError("--freeze \(f): expected none, backbone or until=LAYER")
        }
    }

    func run() throws {
        let threads = self.threads ?? Compute.defaultThreads
        for setting in freeze.split(separator: ",").map({ TrainConfig.Freeze.parse(String($0))! }) {
            let result = try StepBenchmark.run(
                model: model, batchSize: batchSize, resolution: resolution, threads: threads,
                warmup: warmup, steps: steps, freeze: setting
            ) { step, seconds in
                if !json {
                    let tag = step < warmup ? "warm-up" : "step"
                    FileHandle.standardError.write(String(format: "%@ %d: %.3f s (%.1f img/s)\n", tag, step + 1, seconds, Double(batchSize) / seconds).data(using: .utf8)!)
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(data: try encoder.encode(result), encoding: .utf8)!)
            } else {
                let frozen = result.freeze == "none" ? "" : String(format: ", --freeze %@ (%d of %d parameters train)", result.freeze, result.trainableParameters, result.parameters)
                print(String(format: "%@ batch %d at %dpx, %d threads%@: %.2f img/s (median of %d steps, %.3f s/step), %.1f GFLOP/s, peak RSS %.0f MiB",
                             result.model, result.batchSize, result.resolution, result.threads, frozen, result.imagesPerSecond,
                             result.steps, result.medianStepSeconds, result.gflopsPerSecond, Double(result.peakRSSBytes) / 1048576))
            }
        }
    }
}

import ArgumentParser
import Foundation
import DTrainCore
import DTrainData
import DTrainDistributed
import DTrainTraining

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: samples, loss, top-1, top-5; per-class accuracy and confusion matrix as CSV.")

    @Argument(help: "Model name; must match the checkpoint.")
    var model: String
    @Option(help: "Checkpoint to evaluate: safetensors or .pth, written by dtrain or plain weights of MODEL (a torchvision .pth).")
    var checkpoint: String?
    @Option(help: "Watch a training run's output directory: evaluate each new epoch checkpoint once, appending to DIR/eval.jsonl.")
    var watch: String?
    @Option(name: .customLong("until-epoch"), help: "With --watch: exit once the checkpoint of this epoch has been evaluated.")
    var untilEpoch: Int?
    @Option(name: .customLong("poll-seconds"), help: "With --watch: seconds between looks at the directory.")
    var pollSeconds: Double = 2
    @OptionGroup var dataOptions: DataOptions
    @Option(name: .customLong("batch-size"), help: "Images per batch.")
    var batchSize: Int = 64
    @Option(help: "Directory for per_class_accuracy.csv and confusion_matrix.csv. Default: the checkpoint's directory.")
    var output: String?
    @OptionGroup var resources: ResourceOptions
    @OptionGroup var geometry: EvalGeometryOptions
    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @Option(name: .customLong("limit-val-batches"), help: "At most N batches per rank.")
    var limitValBatches: Int?
    @Flag(help: "Print one JSON object with samples, loss, top1, top5 (fractions).")
    var json = false
    @Option(name: .customLong("collective-timeout"), help: "Under mpirun: abort the job, naming the operation, when a collective has waited this many seconds. 0: wait for ever.")
    var collectiveTimeout: Double = 300
    @Flag(name: .customLong("use-ema"), help: "Evaluate the checkpoint's model EMA (trained with --model-ema) instead of its model.")
    var useEMA = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard (checkpoint == nil) != (watch == nil) else { throw ValidationError("give either --checkpoint PATH or --watch DIR") }
        if untilEpoch != nil && watch == nil { throw ValidationError("--until-epoch applies only with --watch") }
        guard pollSeconds > 0 else { throw ValidationError("--poll-seconds must be positive, got \(pollSeconds)") }
        guard collectiveTimeout >= 0 && collectiveTimeout.isFinite else { throw ValidationError("--collective-timeout must be 0 or more seconds, got \(collectiveTimeout)") }
    }

    func run() throws {
        try runJob(collectiveTimeout: collectiveTimeout, purpose: "evaluation") { communicator in
            Compute.setThreads(resources.threads ?? Compute.defaultThreads)
            if let watch {
                try watchDirectory(watch, communicator)
            } else if let checkpoint {
                _ = try evaluate(checkpoint, communicator, output: output ?? (checkpoint as NSString).deletingLastPathComponent, report: true)
            }
        }
    }

    /// Evaluates one checkpoint on every rank (sharded) and, on rank 0, writes the CSVs into
    /// `output` and, with `report`, prints the result.
    func evaluate(_ checkpoint: String, _ communicator: Communicator, output: String, report: Bool) throws -> MetricTotals {
        let threads = Compute.threads
        let (loaded, source) = try RankAgreement.together(over: communicator) { () throws -> (LoadedCheckpoint, DataSource) in
            let loaded = try LoadedCheckpoint(path: checkpoint, expectedModel: model, batchSize: batchSize,
                                              resolution: geometry.valCropSize, ema: useEMA, kernels: try kernelOptions.request().resolve(),
                                              precision: try precisionOptions.resolved())
            _ = try geometry.transform(loaded)
            return (loaded, try openEvalData(loaded))
        }
        let trained = loaded.info.classNames
        let workers = resources.workers ?? BatchLoader.defaultWorkers(computeThreads: threads)

        let evaluator = Evaluator(model: loaded.model, source: source, transform: try geometry.transform(loaded), batchSize: batchSize,
                                  workers: workers, communicator: communicator, seed: loaded.info.seed)
        let confusion = ConfusionMatrix(classes: loaded.model.numClasses)
        let progress = ProgressReporter(printEvery: 50)
        let start = Date()
        let totals = try evaluator.run(limitBatches: limitValBatches, confusion: confusion) { step, total, t in
            if communicator.rank == 0 && !json && report {
                let elapsed = Date().timeIntervalSince(start)
                progress.update(label: "eval", step: step, total: total, imagesPerSecond: t.samples * Double(communicator.size) / max(elapsed, 1e-9),
                                loss: t.meanLoss, top1: t.top1Fraction, elapsed: elapsed)
            }
        }
        guard communicator.rank == 0 else { return totals }
        let dir = URL(fileURLWithPath: output)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ValidationError("--output \(MessageText.path(dir.path)): cannot create directory (\(MessageText.reason(error)))")
        }
        let names = trained.isEmpty ? source.classNames : trained
        var perClass = "class,samples,accuracy\n"
        for (c, acc) in confusion.perClassAccuracy.enumerated() {
            let samples = (0..<confusion.classes).reduce(0) { $0 + confusion.count(truth: c, predicted: $1) }
            perClass += "\(csvField(c < names.count ? names[c] : "class\(c)")),\(samples),\(acc.isNaN ? "" : String(format: "%.6f", acc))\n"
        }
        var matrix = "truth\\predicted," + (0..<confusion.classes).map { csvField($0 < names.count ? names[$0] : "class\($0)") }.joined(separator: ",") + "\n"
        for t in 0..<confusion.classes {
            matrix += csvField(t < names.count ? names[t] : "class\(t)") + "," + (0..<confusion.classes).map { String(confusion.count(truth: t, predicted: $0)) }.joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(perClass.utf8), to: dir.appendingPathComponent("per_class_accuracy.csv"))
        try AtomicFile.write(Data(matrix.utf8), to: dir.appendingPathComponent("confusion_matrix.csv"))
        if !report { return totals }
        if json {
            print("{\"samples\":\(Int(totals.samples)),\"unreadable\":\(evaluator.unreadableSamples),\"loss\":\(totals.meanLoss),\"top1\":\(totals.top1Fraction),\"top5\":\(totals.top5Fraction)}")
        } else {
            let unreadable = evaluator.unreadableSamples
            print(String(format: "%@: %d samples  loss %.4f  top1 %.2f%%  top5 %.2f%%  (CSV in %@)", model, Int(totals.samples),
                         totals.meanLoss, totals.top1Fraction * 100, totals.top5Fraction * 100, MessageText.path(dir.path)))
            if unreadable > 0 {
                print("\(unreadable) unreadable image\(unreadable == 1 ? "" : "s") not evaluated (not counted in the samples above)")
            }
        }
        return totals
    }
}

func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

extension EvalCommand {
    /// The split to evaluate, checked against the classes the checkpoint was trained on.
    func openEvalData(_ loaded: LoadedCheckpoint) throws -> DataSource {
        let source = try DataSourceFactory.open(path: dataOptions.data, dataset: try DatasetKind.parse(dataOptions.dataset), split: .val,
                                                valSplit: dataOptions.valSplit,
                                                resolution: loaded.model.builtResolution, seed: loaded.info.seed)
        let trained = loaded.info.classNames
        if !trained.isEmpty && Array(trained.prefix(source.classNames.count)) != source.classNames {
            let missing = Set(source.classNames).subtracting(trained).sorted()
            throw ValidationError("--data \(dataOptions.data ?? "digits"): classes differ from the checkpoint's\(missing.isEmpty ? " (order)" : ": not trained on \(missing.joined(separator: ", "))")")
        }
        return source
    }
}

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
    @Option(help: "Checkpoint to evaluate (safetensors written by dtrain).")
    var checkpoint: String
    @Option(help: "Dataset path (its val split is evaluated). Default: the embedded digits.")
    var data: String?
    @Option(help: "Dataset kind: folder, list, cifar10, cifar100, digits or synthetic. Default: detected from --data.")
    var dataset: String?
    @Option(name: .customLong("val-split"), help: "For a single-root ImageFolder: the held-out fraction it was trained with.")
    var valSplit: Double?
    @Option(name: .customLong("batch-size"), help: "Images per batch. Default: 64.")
    var batchSize: Int = 64
    @Option(help: "Directory for per_class_accuracy.csv and confusion_matrix.csv. Default: the checkpoint's directory.")
    var output: String?
    @Option(help: "Compute threads per rank. Default: cores ÷ ranks on this node.")
    var threads: Int?
    @Option(help: "Data loader threads. Default: what the cores leave free, at least 1.")
    var workers: Int?
    @Option(name: .customLong("limit-val-batches"), help: "At most N batches per rank.")
    var limitValBatches: Int?
    @Flag(help: "Print one JSON object with samples, loss, top1, top5 (fractions).")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let communicator = try makeCommunicator()
        let threads = self.threads ?? Compute.defaultThreads
        Compute.setThreads(threads)
        let loaded = try LoadedCheckpoint(path: checkpoint, expectedModel: model, batchSize: batchSize)
        let kind = try dataset.map { name -> DatasetKind in
            guard let k = DatasetKind(rawValue: name) else { throw ValidationError("--dataset \(name): expected one of \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))") }
            return k
        }
        let source = try DataSourceFactory.open(path: data, dataset: kind, split: .val, valSplit: valSplit,
                                                resolution: loaded.model.builtResolution, seed: loaded.info.seed)
        let trained = loaded.info.classNames
        if !trained.isEmpty && Array(trained.prefix(source.classNames.count)) != source.classNames {
            let missing = Set(source.classNames).subtracting(trained).sorted()
            throw ValidationError("--data \(data ?? "digits"): classes differ from the checkpoint's\(missing.isEmpty ? " (order)" : ": not trained on \(missing.joined(separator: ", "))")")
        }
        let workers = self.workers ?? BatchLoader.defaultWorkers(computeThreads: threads)
        let evaluator = Evaluator(model: loaded.model, source: source, transform: loaded.evalTransform, batchSize: batchSize,
                                  workers: workers, communicator: communicator, seed: loaded.info.seed)
        let confusion = ConfusionMatrix(classes: loaded.model.numClasses)
        let progress = ProgressReporter(printEvery: 50)
        let start = Date()
        let totals = try evaluator.run(limitBatches: limitValBatches, confusion: confusion) { step, total, t in
            if communicator.rank == 0 && !json {
                let elapsed = Date().timeIntervalSince(start)
                progress.update(label: "eval", step: step, total: total, imagesPerSecond: t.samples * Double(communicator.size) / max(elapsed, 1e-9),
                                loss: t.meanLoss, top1: t.top1Fraction, elapsed: elapsed)
            }
        }
        guard communicator.rank == 0 else { return }
        let dir = URL(fileURLWithPath: output ?? (checkpoint as NSString).deletingLastPathComponent)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
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
        if json {
            print("{\"samples\":\(Int(totals.samples)),\"loss\":\(totals.meanLoss),\"top1\":\(totals.top1Fraction),\"top5\":\(totals.top5Fraction)}")
        } else {
            print(String(format: "%@: %d samples  loss %.4f  top1 %.2f%%  top5 %.2f%%  (CSV in %@)", model, Int(totals.samples),
                         totals.meanLoss, totals.top1Fraction * 100, totals.top5Fraction * 100, dir.path))
        }
    }
}

func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

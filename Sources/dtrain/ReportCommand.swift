import ArgumentParser
import Foundation
import DTrainCore
import DTrainTraining

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a run's report: one self-contained HTML page with its curves, throughput, per-rank time and evaluation.",
        discussion: """
        Reads RUN_DIR/metrics.jsonl (required), RUN_DIR/run.json, and the per_class_accuracy.csv and \
        confusion_matrix.csv that `dtrain eval` writes into the checkpoint's directory. The page uses \
        inline SVG and CSS only: it opens offline and can be mailed as one file.
        """)

    @Argument(help: "The training run's --output directory.")
    var runDirectory: String

    @Option(help: "The HTML file to write. Default: RUN_DIR/report.html. An existing file is replaced only with --overwrite.")
    var output: String?

    @Flag(help: "Replace an existing output file.")
    var overwrite = false

    func run() throws {
        let dir = URL(fileURLWithPath: runDirectory)
        let report: RunReport
        do { report = try RunReport(directory: dir) } catch { throw ValidationError(MessageText.describe(error)) }
        let out = output.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("report.html")
        if FileManager.default.fileExists(atPath: out.path) && !overwrite && output != nil {
            throw ValidationError("--output \(out.path) already exists; pass --overwrite to replace it")
        }
        try AtomicFile.write(Data(ReportPage.html(report).utf8), to: out)
        print("report: \(out.path) (\(report.epochs.count) epochs\(report.confusion == nil ? "" : ", confusion matrix"))")
    }
}

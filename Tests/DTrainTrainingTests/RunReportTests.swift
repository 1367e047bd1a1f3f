import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import DTrainTraining

/// Collects the elements of an XML document: name, attributes and the text directly inside.
private final class ElementCollector: NSObject, XMLParserDelegate {
    struct Element { var name: String; var attributes: [String: String]; var text = "" }
    var elements: [Element] = []
    private var open: [Int] = []
    var error: Error?
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(Element(name: name, attributes: attributes))
        open.append(elements.count - 1)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { open.removeLast() }
    func parser(_ parser: XMLParser, foundCharacters string: String) { if let i = open.last { elements[i].text += string } }
    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
    func named(_ name: String) -> [Element] { elements.filter { $0.name == name } }
}

final class RunReportTests: XCTestCase {
    private func runDirectory(epochs: Int, ranks: Int, classes: [String]?) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var lines = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for e in 1...epochs {
            var m = EpochMetrics(epoch: e, lr: 0.1 / Double(e), train_loss: 2 / Double(e), train_top1: 0.2 * Double(e) / Double(epochs),
                                 val_loss: 2.2 / Double(e), val_top1: 0.9 * Double(e) / Double(epochs), val_top5: 1,
                                 images_per_s: 300 + Double(e), seconds: 10)
            m.compute_seconds = (0..<ranks).map { 8 + Double($0) }
            m.data_wait_seconds = (0..<ranks).map { _ in 1 }
            m.allreduce_wait_seconds = (0..<ranks).map { 1 - 0.25 * Double($0) }
            lines += String(decoding: try encoder.encode(m), as: UTF8.self) + "\n"
        }
        lines += "{\"epoch\": broken\n"
        try lines.write(to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        let record = RunRecord(dtrain_version: "9.9", model: "resnet20", ranks: ranks, threads_per_rank: 1, cpu: "Test CPU <AVX2>",
                               kernels: "avx2", started: "2026-12-01T00:00:00Z", settings: ["lr": "0.1", "batch-size": "16"])
        try encoder.encode(record).write(to: dir.appendingPathComponent(RunRecord.fileName))
        if let classes {
            var per = "class,samples,accuracy\n", matrix = "truth\\predicted," + classes.map { "\"\($0.replacingOccurrences(of: "\"", with: "\"\""))\"" }.joined(separator: ",") + "\n"
            for (t, name) in classes.enumerated() {
                let quoted = "\"\(name.replacingOccurrences(of: "\"", with: "\"\""))\""
                per += "\(quoted),10,\(t == 1 ? "" : "0.800000")\n"
                matrix += quoted + "," + classes.indices.map { $0 == t ? "8" : "1" }.joined(separator: ",") + "\n"
            }
            try per.write(to: dir.appendingPathComponent("per_class_accuracy.csv"), atomically: true, encoding: .utf8)
            try matrix.write(to: dir.appendingPathComponent("confusion_matrix.csv"), atomically: true, encoding: .utf8)
        }
        return dir
    }

    private func parse(_ html: String) throws -> ElementCollector {
        let collector = ElementCollector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "the page is well-formed XML: \(String(describing: parser.parserError ?? collector.error))")
        return collector
    }

    func testPageDrawsEveryPartOfTheRun() throws {
        let classes = ["cat", "dog, \"big\"", "<script>alert(1)</script>", "a&b"]
        let dir = try runDirectory(epochs: 5, ranks: 3, classes: classes)
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try RunReport(directory: dir)
        XCTAssertEqual(report.epochs.count, 5)
        XCTAssertEqual(report.unreadableLines, 1)
        XCTAssertEqual(report.confusion?.labels, classes)
        XCTAssertEqual(report.perClass.map(\.name), classes)
        XCTAssertNil(report.perClass[1].accuracy)
        let html = ReportPage.html(report)
        let doc = try parse(html)

        XCTAssertTrue(doc.named("script").isEmpty, "no scripts")
        for e in doc.elements { for (k, v) in e.attributes where k != "xmlns" { XCTAssertFalse(v.contains("http"), "\(e.name) \(k)=\(v) refers outside the page") } }
        let figures = Set(doc.named("figure").compactMap { $0.attributes["id"] })
        XCTAssertEqual(figures, ["loss", "top1", "lr", "throughput", "ranks", "confusion", "per-class"])

        let lines = doc.named("polyline")
        XCTAssertEqual(lines.map { $0.attributes["data-series"] ?? "" }, ["train", "val", "train", "val", "val top-5", "lr", "images/s"])
        for l in lines { XCTAssertEqual(l.attributes["points"]?.split(separator: " ").count, 5, "one point per epoch") }
        // Loss falls over the epochs: the train curve's y grows downwards in SVG.
        let ys = lines[0].attributes["points"]!.split(separator: " ").map { Double($0.split(separator: ",")[1])! }
        XCTAssertEqual(ys, ys.sorted(), "a falling loss is drawn going down")

        let segments = doc.named("rect").filter { $0.attributes["class"] == "segment" }
        XCTAssertEqual(segments.count, 9, "3 ranks × compute, data wait, allreduce wait")
        let rank0 = segments.prefix(3).map { Double($0.attributes["width"]!)! }
        XCTAssertEqual(rank0[0] / rank0[1], 8, accuracy: 0.05, "rank 0: 8 s compute against 1 s data wait per epoch")

        let cells = doc.named("rect").filter { $0.attributes["class"] == "cell" }
        XCTAssertEqual(cells.count, classes.count * classes.count)
        XCTAssertTrue(html.contains("&lt;script&gt;"), "class names are escaped")
        let config = doc.named("td").map(\.text)
        XCTAssertTrue(config.contains("Test CPU <AVX2>") && config.contains("9.9") && config.contains("avx2"))
        XCTAssertTrue(doc.named("th").map(\.text).contains("--batch-size"))
    }

    func testRunWithoutEvalOrRecordStillRenders() throws {
        let dir = try runDirectory(epochs: 1, ranks: 1, classes: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent(RunRecord.fileName))
        let doc = try parse(ReportPage.html(try RunReport(directory: dir)))
        let figures = Set(doc.named("figure").compactMap { $0.attributes["id"] })
        XCTAssertEqual(figures, ["loss", "top1", "lr", "throughput", "ranks"])
        XCTAssertEqual(doc.named("polyline").count, 7)
    }

    func testDirectoryWithoutMetricsIsAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try RunReport(directory: dir)) { XCTAssertTrue("\($0)".contains("no readable metrics.jsonl")) }
        try "garbage\n".write(to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunReport(directory: dir)) { XCTAssertTrue("\($0)".contains("no readable epoch line")) }
    }

    /// run.json names each setting by its command-line flag, acronyms as one word.
    func testRunRecordNamesSettingsByTheirFlags() {
        var config = TrainConfig(model: "resnet20", epochs: 1, batchSize: 16, lr: 0.1, schedule: .step, output: URL(fileURLWithPath: "/x"))
        config.syncBN = true
        config.allreduceDtype = .bf16
        let record = RunRecord(config: config, version: "9.9", ranks: 2, threads: 1, kernels: .avx2)
        XCTAssertEqual(record.settings["batch-size"], "16")
        XCTAssertEqual(record.settings["sync-bn"], "true")
        XCTAssertEqual(record.settings["allreduce-dtype"], "bf16")
        XCTAssertEqual(record.settings["no-bn-weight-decay"], "false")
        XCTAssertEqual(record.settings["model-ema-steps"], "32")
        XCTAssertFalse(record.settings.keys.contains { $0.contains("-b-n") || $0.contains("-d-type") }, "\(record.settings.keys.sorted())")
    }

    func testCSVReaderHandlesQuotes() {
        XCTAssertEqual(CSV.rows("a,\"b,c\",\"d\"\"e\"\n1,,3\n"), [["a", "b,c", "d\"e"], ["1", "", "3"]])
    }
}

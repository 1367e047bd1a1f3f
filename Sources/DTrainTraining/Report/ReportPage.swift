import Foundation

/// Renders a `RunReport` as one self-contained HTML page: inline CSS and SVG, no scripts and
/// nothing fetched from anywhere. The page is also well-formed XML, so tests (and tools) can
/// parse it with an XML parser.
public enum ReportPage {
    static let trainColor = "#1f77b4", valColor = "#d62728", lrColor = "#2ca02c", speedColor = "#9467bd"
    static let parts: [(name: String, color: String)] = [("compute", "#4c9f70"), ("data wait", "#e8a33d"), ("allreduce wait", "#c8553d")]

    public static func html(_ report: RunReport, generated: Date = Date()) -> String {
        let e = report.epochs
        let x = e.map { Double($0.epoch) }
        func series(_ name: String, _ color: String, _ ys: [Double?], dashed: Bool = false) -> SVGChart.Series {
            SVGChart.Series(name: name, color: color, points: zip(x, ys).compactMap { p in p.1.map { (p.0, $0) } }, dashed: dashed)
        }
        let title = report.record.map { "\($0.model): \(report.directory.lastPathComponent)" } ?? report.directory.lastPathComponent
        var body = "<h1>\(SVGChart.escape(title))</h1>"
        body += "<p class=\"sub\">\(e.count) epoch\(e.count == 1 ? "" : "s")"
        if let best = e.compactMap(\.val_top1).max() { body += String(format: " · best val top-1 %.2f %%", best * 100) }
        if let last = e.last { body += String(format: " · last train top-1 %.2f %%", last.train_top1 * 100) }
        body += " · generated \(SVGChart.escape(ISO8601DateFormatter().string(from: generated)))</p>"
        if report.unreadableLines > 0 {
            body += "<p class=\"warn\">\(report.unreadableLines) line(s) of metrics.jsonl could not be read and are left out.</p>"
        }
        body += "<section class=\"grid\">"
        body += "<figure id=\"loss\">" + SVGChart.lines(title: "Loss", xLabel: "epoch", yLabel: "loss", series: [
            series("train", trainColor, e.map(\.train_loss)), series("val", valColor, e.map(\.val_loss))]) + "</figure>"
        body += "<figure id=\"top1\">" + SVGChart.lines(title: "Top-1 accuracy (%)", xLabel: "epoch", yLabel: "top-1 %", series: [
            series("train", trainColor, e.map { $0.train_top1 * 100 }), series("val", valColor, e.map { $0.val_top1.map { $0 * 100 } }),
            series("val top-5", valColor, e.map { $0.val_top5.map { $0 * 100 } }, dashed: true)]) + "</figure>"
        body += "<figure id=\"lr\">" + SVGChart.lines(title: "Learning rate (end of epoch)", xLabel: "epoch", yLabel: "lr", series: [
            series("lr", lrColor, e.map(\.lr))], yFromZero: true) + "</figure>"
        body += "<figure id=\"throughput\">" + SVGChart.lines(title: "Throughput (images/s, all ranks)", xLabel: "epoch", yLabel: "images/s", series: [
            series("images/s", speedColor, e.map(\.images_per_s))], yFromZero: true) + "</figure>"
        if let rows = rankRows(e) {
            body += "<figure id=\"ranks\">" + SVGChart.stackedBars(title: "Step time per rank (all epochs)", rows: rows, parts: parts) + "</figure>"
        }
        body += "</section>"
        if let confusion = report.confusion {
            body += "<section class=\"grid\"><figure id=\"confusion\">"
            body += SVGChart.heatmap(title: "Confusion matrix (row-normalised)", labels: confusion.labels, counts: confusion.counts)
            body += "</figure>"
            if !report.perClass.isEmpty {
                body += "<figure id=\"per-class\"><table><caption>Per-class accuracy</caption><tr><th>class</th><th>samples</th><th>accuracy</th></tr>"
                for c in report.perClass {
                    let acc = c.accuracy.map { String(format: "%.2f %%", $0 * 100) } ?? "–"
                    let w = Int(((c.accuracy ?? 0) * 100).rounded())
                    body += "<tr><td>\(SVGChart.escape(c.name))</td><td class=\"num\">\(c.samples)</td><td class=\"num\"><span class=\"bar\" style=\"width:\(w)px\"></span> \(acc)</td></tr>"
                }
                body += "</table></figure>"
            }
            body += "</section>"
        }
        body += "<section><h2>Epochs</h2><table id=\"epochs\"><tr><th>epoch</th><th>lr</th><th>train loss</th><th>train top-1</th><th>val loss</th><th>val top-1</th><th>val top-5</th><th>images/s</th><th>seconds</th></tr>"
        for m in e {
            func pct(_ v: Double?) -> String { v.map { String(format: "%.2f", $0 * 100) } ?? "–" }
            func num(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "–" }
            body += "<tr><td class=\"num\">\(m.epoch)</td><td class=\"num\">\(String(format: "%.4g", m.lr))</td><td class=\"num\">\(num(m.train_loss))</td><td class=\"num\">\(pct(m.train_top1))</td><td class=\"num\">\(num(m.val_loss))</td><td class=\"num\">\(pct(m.val_top1))</td><td class=\"num\">\(pct(m.val_top5))</td><td class=\"num\">\(String(format: "%.1f", m.images_per_s))</td><td class=\"num\">\(String(format: "%.1f", m.seconds))</td></tr>"
        }
        body += "</table></section>"
        body += "<section><h2>Run</h2><table id=\"config\">"
        if let r = report.record {
            for (k, v) in [("dtrain version", r.dtrain_version), ("model", r.model), ("ranks", String(r.ranks)),
                           ("threads per rank", String(r.threads_per_rank)), ("CPU", r.cpu), ("kernels", r.kernels), ("started", r.started)] {
                body += "<tr><th>\(SVGChart.escape(k))</th><td>\(SVGChart.escape(v))</td></tr>"
            }
            for k in r.settings.keys.sorted() {
                body += "<tr><th>--\(SVGChart.escape(k))</th><td>\(SVGChart.escape(r.settings[k] ?? ""))</td></tr>"
            }
        } else {
            body += "<tr><td>no run.json in this directory (written by dtrain train when a run starts)</td></tr>"
        }
        body += "</table></section>"
        return """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/><title>\(SVGChart.escape(title)) · dtrain report</title>
        <style>\(style)</style></head><body>\(body)</body></html>

        """
    }

    /// Per-rank (compute, data wait, allreduce wait) seconds summed over the epochs that record them.
    static func rankRows(_ epochs: [EpochMetrics]) -> [(label: String, values: [Double])]? {
        let recorded = epochs.filter { $0.compute_seconds != nil }
        guard let ranks = recorded.map({ $0.compute_seconds?.count ?? 0 }).max(), ranks > 0 else { return nil }
        return (0..<ranks).map { r in
            func total(_ key: KeyPath<EpochMetrics, [Double]?>) -> Double {
                recorded.reduce(0) { sum, m in sum + ((m[keyPath: key].flatMap { r < $0.count ? $0[r] : nil }) ?? 0) }
            }
            return ("rank \(r)", [total(\.compute_seconds), total(\.data_wait_seconds), total(\.allreduce_wait_seconds)])
        }
    }

    static let style = """
    body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#223;background:#fafbfc}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}.sub{color:#667;margin:0 0 16px}.warn{color:#a40}
    .grid{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:8px}
    .chart-title{font-weight:600;font-size:13px;fill:#223}.tick{font-size:10px;fill:#556}.axis{font-size:11px;fill:#445}
    .legend{font-size:11px;fill:#334}.plot{fill:#fff;stroke:#ccd}.grid line,line.grid{stroke:#eef}.empty{fill:#999}
    .cell{stroke:#fff;stroke-width:0.5}.cell-text{font-size:9px}
    table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde;padding:3px 8px;text-align:left}
    td.num{text-align:right;font-variant-numeric:tabular-nums}caption{font-weight:600;text-align:left;padding:4px 0}
    .bar{display:inline-block;height:8px;background:#4c78a8;vertical-align:middle}
    """
}

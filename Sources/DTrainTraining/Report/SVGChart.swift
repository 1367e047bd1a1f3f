import Foundation

/// Inline SVG charts for the run report: line charts, stacked horizontal bars and a heatmap. Each
/// returns a self-contained `<svg>` element (no scripts, no external references) that is also
/// well-formed XML.
enum SVGChart {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
        var dashed = false
    }

    /// Escapes text for XML content and attribute values.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters are not allowed in XML 1.0.
                if let a = c.asciiValue, a < 0x20, a != 0x09, a != 0x0A, a != 0x0D { out += "?" } else { out.append(c) }
            }
        }
        return out
    }

    static func number(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1, a < 1e5, v == v.rounded() { return String(format: "%.0f", v) }
        if a >= 1e5 || a < 1e-3 { return String(format: "%.2g", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 10 { return String(format: "%.1f", v) }
        return String(format: "%.3g", v)
    }

    /// About `count` round tick values covering [low, high].
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low, low.isFinite, high.isFinite else { return [low] }
        let raw = (high - low) / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(low / step) * step
        var out: [Double] = []
        while t <= high + step * 1e-9 && out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    /// A line chart of `series` over a shared x axis, with markers, axis ticks and a legend.
    static func lines(title: String, xLabel: String, yLabel: String, series: [Series],
                      width: Int = 460, height: Int = 260, yFromZero: Bool = false) -> String {
        let drawn = series.map { s in Series(name: s.name, color: s.color, points: s.points.filter { $0.x.isFinite && $0.y.isFinite }, dashed: s.dashed) }
            .filter { !$0.points.isEmpty }
        let left = 56.0, right = 12.0, top = 42.0, bottom = 40.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title>"
        svg += "<text x=\"\(left)\" y=\"16\" class=\"chart-title\">\(escape(title))</text>"
        let xs = drawn.flatMap { $0.points.map(\.x) }, ys = drawn.flatMap { $0.points.map(\.y) }
        guard let x0 = xs.min(), let x1 = xs.max(), var y0 = ys.min(), var y1 = ys.max() else {
            svg += "<text x=\"\(left)\" y=\"\(top + plotH / 2)\" class=\"empty\">no data</text></svg>"
            return svg
        }
        if yFromZero { y0 = min(0, y0) }
        if y1 == y0 { y1 = y0 + max(abs(y0) * 0.1, 1e-6); y0 -= max(abs(y0) * 0.1, 1e-6) }
        let pad = (y1 - y0) * 0.05
        y1 += pad
        if !(yFromZero && y0 == 0) { y0 -= pad }
        let xSpan = x1 > x0 ? x1 - x0 : 1
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / xSpan * plotW : plotW / 2) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" class=\"plot\"/>"
        for t in ticks(y0, y1) {
            let y = String(format: "%.1f", py(t))
            svg += "<line x1=\"\(left)\" x2=\"\(left + plotW)\" y1=\"\(y)\" y2=\"\(y)\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y)\" class=\"tick\" text-anchor=\"end\" dominant-baseline=\"middle\">\(number(t))</text>"
        }
        for t in ticks(x0, x1, count: min(8, max(1, Int(xSpan)))) {
            let x = String(format: "%.1f", px(t))
            svg += "<text x=\"\(x)\" y=\"\(top + plotH + 16)\" class=\"tick\" text-anchor=\"middle\">\(number(t))</text>"
        }
        svg += "<text x=\"\(left + plotW / 2)\" y=\"\(Double(height) - 6)\" class=\"axis\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg += "<text x=\"12\" y=\"\(top + plotH / 2)\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(top + plotH / 2))\">\(escape(yLabel))</text>"
        for s in drawn {
            let path = s.points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-series=\"\(escape(s.name))\" points=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
            if s.points.count <= 60 {
                for p in s.points {
                    svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"><title>%@ %@: %@</title></circle>",
                                  px(p.x), py(p.y), s.color, escape(s.name), number(p.x), number(p.y))
                }
            }
        }
        var lx = left
        for s in drawn {
            svg += "<rect x=\"\(lx)\" y=\"24\" width=\"10\" height=\"10\" fill=\"\(s.color)\"/>"
            svg += "<text x=\"\(lx + 14)\" y=\"33\" class=\"legend\">\(escape(s.name))</text>"
            lx += 22 + Double(s.name.count) * 6.5
        }
        return svg + "</svg>"
    }

    /// Horizontal stacked bars: one row per label, one segment per part (values are shares or
    /// seconds; each row is drawn to its own total as 100 %).
    static func stackedBars(title: String, rows: [(label: String, values: [Double])], parts: [(name: String, color: String)],
                            width: Int = 460) -> String {
        let rowH = 22.0, top = 48.0, left = 70.0, right = 12.0
        let height = Int(top + Double(max(rows.count, 1)) * (rowH + 6) + 10)
        let plotW = Double(width) - left - right
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title><text x=\"\(left)\" y=\"16\" class=\"chart-title\">\(escape(title))</text>"
        var lx = left
        for p in parts {
            svg += "<rect x=\"\(lx)\" y=\"26\" width=\"10\" height=\"10\" fill=\"\(p.color)\"/><text x=\"\(lx + 14)\" y=\"35\" class=\"legend\">\(escape(p.name))</text>"
            lx += 24 + Double(p.name.count) * 6.5
        }
        for (i, row) in rows.enumerated() {
            let y = top + Double(i) * (rowH + 6)
            svg += "<text x=\"\(left - 6)\" y=\"\(y + rowH / 2)\" class=\"tick\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(row.label))</text>"
            let total = row.values.filter { $0.isFinite && $0 > 0 }.reduce(0, +)
            var x = left
            for (j, v) in row.values.enumerated() where j < parts.count && v.isFinite && v > 0 && total > 0 {
                let w = v / total * plotW
                svg += String(format: "<rect class=\"segment\" data-part=\"%@\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"><title>%@ %@: %.1f %%</title></rect>",
                              escape(parts[j].name), x, y, w, rowH, parts[j].color, escape(row.label), escape(parts[j].name), 100 * v / total)
                x += w
            }
        }
        return svg + "</svg>"
    }

    /// A heatmap of a square matrix (row = truth, column = prediction), each row normalised to
    /// its own total, with the counts in the cells when they fit.
    static func heatmap(title: String, labels: [String], counts: [[Double]], size: Int = 460) -> String {
        let n = labels.count
        let left = 90.0, top = 90.0
        let cell = max(4.0, min(40.0, (Double(size) - left - 10) / Double(max(n, 1))))
        let width = Int(left + cell * Double(n) + 10), height = Int(top + cell * Double(n) + 10)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title><text x=\"10\" y=\"16\" class=\"chart-title\">\(escape(title))</text>"
        svg += "<text x=\"\(left)\" y=\"34\" class=\"axis\">predicted →</text><text x=\"10\" y=\"\(top - 6)\" class=\"axis\">truth ↓</text>"
        let showLabels = cell >= 9
        for (i, label) in labels.enumerated() where showLabels {
            let short = escape(String(label.prefix(12)))
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\" dominant-baseline=\"middle\">%@</text>", left - 4, top + (Double(i) + 0.5) * cell, short)
            let cx = left + (Double(i) + 0.5) * cell
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" transform=\"rotate(-60 %.1f %.1f)\">%@</text>", cx, top - 4, cx, top - 4, short)
        }
        for t in 0..<n {
            let row = t < counts.count ? counts[t] : []
            let total = row.reduce(0, +)
            for p in 0..<n {
                let v = p < row.count ? row[p] : 0
                let share = total > 0 ? v / total : 0
                // White to a deep blue, darker for larger shares of the row.
                let r = Int(255 - share * 215), g = Int(255 - share * 160), b = Int(255 - share * 45)
                let x = left + Double(p) * cell, y = top + Double(t) * cell
                svg += String(format: "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\"><title>%@ → %@: %d</title></rect>",
                              x, y, cell, cell, r, g, b, escape(labels[t]), escape(labels[p]), Int(v))
                if cell >= 22 && v > 0 {
                    svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"cell-text\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"%@\">%d</text>",
                                  x + cell / 2, y + cell / 2, share > 0.5 ? "#fff" : "#223", Int(v))
                }
            }
        }
        return svg + "</svg>"
    }
}

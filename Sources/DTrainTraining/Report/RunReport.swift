import DTrainCore
import Foundation

/// The data of one run directory that `dtrain report` draws: metrics.jsonl's epochs, run.json,
/// and the CSVs `dtrain eval` writes (per_class_accuracy.csv, confusion_matrix.csv) when present.
public struct RunReport {
    public var directory: URL
    public var epochs: [EpochMetrics] = []
    /// metrics.jsonl lines that could not be read (reported on the page, not fatal).
    public var unreadableLines = 0
    public var record: RunRecord?
    /// Per-class accuracy rows (class, samples, accuracy or nil).
    public var perClass: [(name: String, samples: Int, accuracy: Double?)] = []
    /// Confusion counts: class names, then one row per true class.
    public var confusion: (labels: [String], counts: [[Double]])?

    /// Reads `directory`. It must hold a metrics.jsonl with at least one readable epoch.
    public init(directory: URL) throws {
        self.directory = directory
        let metrics = directory.appendingPathComponent("metrics.jsonl")
        guard let text = try? String(contentsOf: metrics, encoding: .utf8) else {
            throw RunDirectoryError("\(MessageText.path(directory.path)): no readable metrics.jsonl; expected the --output directory of a training run")
        }
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let m = try? decoder.decode(EpochMetrics.self, from: Data(line.utf8)) { epochs.append(m) } else { unreadableLines += 1 }
        }
        guard !epochs.isEmpty else {
            throw RunDirectoryError("\(metrics.path): no readable epoch line; expected lines that dtrain train writes")
        }
        // A resumed run may repeat epochs: the last line for an epoch wins.
        var byEpoch: [Int: EpochMetrics] = [:]
        for m in epochs { byEpoch[m.epoch] = m }
        epochs = byEpoch.keys.sorted().map { byEpoch[$0]! }
        if let data = try? Data(contentsOf: directory.appendingPathComponent(RunRecord.fileName)) {
            record = try? decoder.decode(RunRecord.self, from: data)
        }
        if let csv = try? String(contentsOf: directory.appendingPathComponent("per_class_accuracy.csv"), encoding: .utf8) {
            for row in CSV.rows(csv).dropFirst() where row.count >= 3 {
                perClass.append((row[0], Int(row[1]) ?? 0, Double(row[2])))
            }
        }
        if let csv = try? String(contentsOf: directory.appendingPathComponent("confusion_matrix.csv"), encoding: .utf8) {
            let rows = CSV.rows(csv)
            if let header = rows.first, header.count > 1 {
                let labels = Array(header.dropFirst())
                let counts = rows.dropFirst().map { row in labels.indices.map { i in i + 1 < row.count ? Double(row[i + 1]) ?? 0 : 0 } }
                if counts.count == labels.count { confusion = (labels, counts) }
            }
        }
    }
}

/// A minimal CSV reader for the files dtrain writes: comma-separated fields, double-quoted when
/// they hold commas, quotes or line breaks (a quote doubled inside).
enum CSV {
    static func rows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(text).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? chars.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let n = chars.next() {
                        if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                    } else { quoted = false }
                } else { field.append(c) }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",": row.append(field); field = ""
            case "\n", "\r\n":
                row.append(field); field = ""
                rows.append(row); row = []
            case "\r": break
            default: field.append(c)
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

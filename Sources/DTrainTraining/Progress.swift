import Foundation

/// Progress of long work: a live bar with images/s, loss and ETA on an interactive terminal;
/// plain periodic lines when the output is a file or a pipe (logs).
public final class ProgressReporter {
    public let isTerminal: Bool
    public let printEvery: Int
    private let output: FileHandle
    private var lastWidth = 0

    public init(output: FileHandle = .standardError, printEvery: Int = 50, forceTerminal: Bool? = nil) {
        self.output = output
        self.printEvery = max(1, printEvery)
        isTerminal = forceTerminal ?? (isatty(output.fileDescriptor) != 0)
    }

    /// Reports step `step` (1-based) of `total` in an epoch.
    public func update(label: String, step: Int, total: Int, imagesPerSecond: Double, loss: Double, top1: Double, elapsed: Double) {
        let eta = step > 0 ? elapsed / Double(step) * Double(max(total - step, 0)) : 0
        let stats = String(format: "loss %.4f  top1 %5.1f%%  %.1f img/s  ETA %@", loss, top1 * 100, imagesPerSecond, ProgressReporter.duration(eta))
        if isTerminal {
            let width = 24
            let filled = total > 0 ? min(width, width * step / total) : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            var line = "\r\(label) [\(bar)] \(step)/\(total)  \(stats)"
            let visible = line.count
            if visible < lastWidth { line += String(repeating: " ", count: lastWidth - visible) }
            lastWidth = visible
            output.write(line.data(using: .utf8)!)
            if step >= total { finishLine() }
        } else if step % printEvery == 0 || step == total {
            output.write("\(label) step \(step)/\(total)  \(stats)\n".data(using: .utf8)!)
        }
    }

    /// Ends a live bar's line (no-op for plain output).
    public func finishLine() {
        if isTerminal && lastWidth > 0 { output.write("\n".data(using: .utf8)!); lastWidth = 0 }
    }

    /// A message on its own line.
    public func message(_ text: String) {
        finishLine()
        output.write((text + "\n").data(using: .utf8)!)
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

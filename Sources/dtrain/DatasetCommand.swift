import ArgumentParser
import DTrainCore
import DTrainData
import Foundation

/// `dtrain dataset …`: dataset utilities.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Dataset utilities.",
        subcommands: [DatasetWriteCommand.self])
}

/// `dtrain dataset write`: any source as an ImageFolder tree.
struct DatasetWriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write",
        abstract: "Write a dataset as an ImageFolder tree: OUTPUT/train/<class>/<index>.jpg and OUTPUT/val/….",
        discussion: """
            SOURCE is a directory (an ImageFolder tree or CIFAR binary files, detected), an \
            annotation list file (cls_train.txt, with its sibling val list and class names), "digits" \
            (the embedded 8x8 digits), "synthetic", or KIND:PATH with KIND one of folder, list, \
            cifar10, cifar100. The output directory must be absent or empty; nothing is overwritten.

            An ImageNet-like folder of 500x375 JPEGs (quality 90) for loader benchmarks:
              dtrain dataset write --from synthetic --size 500x375 --count 2000 --split train --output DIR
            """)

    @Option(help: "The source: a path, digits, synthetic, or KIND:PATH.")
    var from: String

    @Option(help: "The directory to create (must be absent or empty).")
    var output: String

    @Option(help: "Image format: jpeg or png.")
    var format: String = "jpeg"

    @Option(help: "Which split to write: train, val or both.")
    var split: String = "both"

    @Option(help: "Write at most this many images per split, taken round-robin across classes.")
    var limit: Int?

    @Option(help: "JPEG quality, 1–100.")
    var quality: Int = 90

    @Option(name: .customLong("val-split"), help: "For an ImageFolder tree without a val folder: the fraction of each class to write as val.")
    var valSplit: Double?

    @Option(help: "Synthetic only: image side in pixels.")
    var resolution: Int = 32

    @Option(help: ArgumentHelp("Synthetic only: image width and height, e.g. 500x375 (replaces --resolution).", valueName: "WxH"))
    var size: String?

    @Option(help: "Synthetic only: training images (val gets a fifth as many).")
    var count: Int = 1000

    @Option(help: "Synthetic only: number of classes.")
    var classes: Int = 10

    @Option(help: "Synthetic only: seed selecting the images.")
    var seed: UInt64 = 0

    func validate() throws {
        guard ImageFormat(rawValue: format) != nil else { throw ValidationError("--format must be jpeg or png, got \(format)") }
        guard ["train", "val", "both"].contains(split) else { throw ValidationError("--split must be train, val or both, got \(split)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be 1–100, got \(quality)") }
        guard (1...Self.maxSide).contains(resolution) else { throw ValidationError("--resolution must be between 1 and \(Self.maxSide), got \(resolution)") }
        if let size, Self.parseSize(size) == nil { throw ValidationError("--size must be WIDTHxHEIGHT with sides from 1 to \(Self.maxSide), e.g. 500x375, got \(size)") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard classes >= 1 else { throw ValidationError("--classes must be at least 1, got \(classes)") }
    }

    func run() throws {
        try DatasetWriter.requireEmptyOrAbsent(output)
        let (path, kind) = Self.parseSource(from)
        let splits = try DataSourceFactory.openSplits(path: path, dataset: kind, valSplit: valSplit, resolution: resolution,
                                                      syntheticSize: size.flatMap(Self.parseSize),
                                                      syntheticCount: count, classes: classes, seed: seed)
        var wanted: [(String, DataSource)] = []
        if split != "val" { wanted.append(("train", splits.train)) }
        if split != "train" {
            if let val = splits.val {
                wanted.append(("val", val))
            } else if split == "val" {
                throw DataError(path: path ?? from, reason: "has no val split (add a val folder or pass --val-split)")
            } else {
                warn("\(path ?? from) has no val split; writing train only")
            }
        }
        let imageFormat = ImageFormat(rawValue: format)!
        var summary: [String] = []
        for (name, source) in wanted {
            let directory = (output as NSString).appendingPathComponent(name)
            var reported = -1
            let result = try DatasetWriter.write(source, to: directory, format: imageFormat, quality: quality, limit: limit) { done, total in
                let percent = total == 0 ? 100 : done * 100 / total
                if percent / 5 != reported / 5 || done == total {
                    reported = percent
                    warn("\(name): \(done)/\(total) images")
                }
            }
            for line in result.skipped.prefix(10) { warn("skipped \(line)") }
            if result.skipped.count > 10 { warn("… and \(result.skipped.count - 10) more skipped") }
            summary.append("\(result.written) \(name)" + (result.skipped.isEmpty ? "" : " (\(result.skipped.count) skipped)"))
        }
        print("wrote \(summary.joined(separator: " and ")) images to \(MessageText.path(output))")
    }

    /// The largest side a synthetic image may have (a 8192² RGB image is 192 MiB decoded).
    static let maxSide = 8192

    /// "500x375" (or "500X375") as (500, 375); nil unless both sides are integers in 1...maxSide.
    static func parseSize(_ text: String) -> (width: Int, height: Int)? {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...maxSide).contains(w), (1...maxSide).contains(h) else { return nil }
        return (w, h)
    }

    /// Splits SOURCE into a path and an explicit kind.
    static func parseSource(_ text: String) -> (path: String?, kind: DatasetKind?) {
        if text == DatasetKind.digits.rawValue { return (nil, .digits) }
        if text == DatasetKind.synthetic.rawValue { return (nil, .synthetic) }
        if let colon = text.firstIndex(of: ":"), let kind = DatasetKind(rawValue: String(text[..<colon])),
           kind != .digits, kind != .synthetic {
            return (String(text[text.index(after: colon)...]), kind)
        }
        return (text, nil)
    }
}

private func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

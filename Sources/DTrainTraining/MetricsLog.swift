import DTrainCore
import Foundation

/// One line of OUTPUT/metrics.jsonl: an epoch's results (accuracies as fractions in [0, 1]).
public struct EpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var lr: Double
    public var train_loss: Double
    public var train_top1: Double
    public var val_loss: Double?
    public var val_top1: Double?
    public var val_top5: Double?
    public var images_per_s: Double
    public var seconds: Double
    public var skipped_samples: Int = 0
    /// Per rank (index = rank), seconds of the epoch's steps spent computing (forward, backward,
    /// update), waiting for the data loader, and waiting for the gradient allreduce after backward.
    public var compute_seconds: [Double]?
    public var data_wait_seconds: [Double]?
    public var allreduce_wait_seconds: [Double]?
    /// The model EMA's validation results (`--model-ema`), beside the model's.
    public var ema_val_loss: Double?
    public var ema_val_top1: Double?
    public var ema_val_top5: Double?
    /// The epoch's `--precision`: "fp32" or "bf16" (a resumed run may change it).
    public var precision: String?

    public init(epoch: Int, lr: Double, train_loss: Double, train_top1: Double, val_loss: Double?, val_top1: Double?,
                val_top5: Double?, images_per_s: Double, seconds: Double, skipped_samples: Int = 0) {
        self.epoch = epoch
        self.lr = lr
        self.train_loss = train_loss
        self.train_top1 = train_top1
        self.val_loss = val_loss
        self.val_top1 = val_top1
        self.val_top5 = val_top5
        self.images_per_s = images_per_s
        self.seconds = seconds
        self.skipped_samples = skipped_samples
    }
}

/// Appends JSON lines to a file, flushing each line so a crash loses nothing written.
public final class JSONLinesLog {
    public let url: URL
    private let handle: FileHandle

    public init(url: URL) throws {
        self.url = url
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw AtomicFileError(path: url.path, reason: "cannot create")
            }
        }
        do { handle = try FileHandle(forWritingTo: url) } catch {
            throw AtomicFileError(path: url.path, reason: "cannot open for writing: \(MessageText.reason(error))")
        }
        handle.seekToEndOfFile()
    }

    public func append<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = try encoder.encode(value)
        data.append(0x0A)
        handle.write(data)
        try handle.synchronize()
    }

    deinit { try? handle.close() }
}

/// A file that cannot be created or written.
public struct AtomicFileError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(MessageText.path(path)): \(reason)" }
}

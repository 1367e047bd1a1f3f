import DTrainCore
import Foundation

/// The output directory of a training run: checkpoints, metrics.jsonl and evaluation CSVs.
///
/// Files: `checkpoint-last.safetensors` (every epoch and every `--save-every-steps`),
/// `checkpoint-best.safetensors` (best val top-1), `checkpoint-epoch-NNNN.safetensors` (the last
/// `keep` epochs), `metrics.jsonl`.
public struct RunDirectory {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var last: URL { url.appendingPathComponent("checkpoint-last.safetensors") }
    public var best: URL { url.appendingPathComponent("checkpoint-best.safetensors") }
    public var metrics: URL { url.appendingPathComponent("metrics.jsonl") }
    /// TensorBoard's event files (`tensorboard --logdir` on this or a parent directory).
    public var tensorboard: URL { url.appendingPathComponent("tensorboard") }
    public var record: URL { url.appendingPathComponent(RunRecord.fileName) }

    /// Creates the directory if needed and takes its `RunLock` for this process's life.
    public func lock() throws -> RunLock {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && !isDir.boolValue {
            throw RunDirectoryError("--output \(url.path) is a file; expected a directory")
        }
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw RunDirectoryError("--output \(url.path): cannot create directory (\(String(cString: strerror(errno))))")
        }
        return try RunLock(directory: url)
    }

    /// Writes run.json (atomically), replacing the previous start's.
    public func writeRecord(_ record: RunRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(record), to: self.record)
    }
    public func epoch(_ e: Int) -> URL { url.appendingPathComponent(String(format: "checkpoint-epoch-%04d.safetensors", e)) }

    /// Checkpoint files present now.
    public func existingCheckpoints() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { $0.hasPrefix("checkpoint-") && $0.hasSuffix(".safetensors") }.sorted()
    }

    /// Creates the directory. A directory that already holds a run's checkpoints is refused unless
    /// the run resumes it or `overwrite` is given (then its old files are removed).
    public func prepare(resuming: Bool, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) && !isDir.boolValue {
            throw RunDirectoryError("--output \(MessageText.path(url.path)) is a file; expected a directory")
        }
        let existing = existingCheckpoints()
        if !existing.isEmpty && !resuming {
            guard overwrite else {
                throw RunDirectoryError("--output \(MessageText.path(url.path)) already holds another run's checkpoints (\(existing.joined(separator: ", "))); pass --resume to continue it or --overwrite to replace it")
            }
            let others = [metrics, record, tensorboard].filter { fm.fileExists(atPath: $0.path) }
            for file in existing.map({ url.appendingPathComponent($0) }) + others {
                do { try fm.removeItem(at: file) } catch {
                    throw RunDirectoryError("--overwrite: cannot remove \(MessageText.path(file.path)): \(MessageText.reason(error))")
                }
            }
        }
        do { try fm.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw RunDirectoryError("--output \(MessageText.path(url.path)): cannot create directory (\(MessageText.reason(error)))")
        }
    }

    /// Removes the temporary files of saves that were interrupted (a process killed while it
    /// wrote `.NAME.tmp-PID`), returning their names. Call only while holding the directory's
    /// `RunLock`: then no other job can be writing one.
    @discardableResult
    public func removeStaleTemporaryFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        let stale = names.filter { $0.hasPrefix(".") && $0.contains(".tmp-") }
        for name in stale { try? FileManager.default.removeItem(at: url.appendingPathComponent(name)) }
        return stale.sorted()
    }

    /// Removes epoch checkpoints beyond the newest `keep`.
    public func prune(keep: Int) {
        let epochs = existingCheckpoints().filter { $0.hasPrefix("checkpoint-epoch-") }
        guard epochs.count > keep else { return }
        for name in epochs.prefix(epochs.count - keep) {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(name))
        }
    }
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

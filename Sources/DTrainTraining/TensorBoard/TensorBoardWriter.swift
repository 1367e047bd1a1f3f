import DTrainCore
import Foundation

/// Writes scalars to a TensorBoard event file, `DIRECTORY/events.out.tfevents.<seconds>.<host>`
/// (`tensorboard --logdir` on the directory or a parent shows them). Each call appends framed
/// records and flushes them to the file, so a crash loses nothing written and TensorBoard sees
/// values while the run goes on.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    /// Creates the directory if needed and a new event file in it, starting with the file-version
    /// record. A file of that name that already exists (a restart within the same second) gets
    /// the process id appended instead of being overwritten.
    public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970,
                host: String = ProcessInfo.processInfo.hostName) throws {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw AtomicFileError(path: directory.path, reason: "cannot create directory: \(MessageText.reason(error))")
        }
        let safeHost = host.isEmpty ? "localhost" : host.replacingOccurrences(of: "/", with: "_")
        var name = "events.out.tfevents.\(Int64(wallTime)).\(safeHost)"
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            name += ".\(ProcessInfo.processInfo.processIdentifier)"
        }
        url = directory.appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw AtomicFileError(path: url.path, reason: "cannot create the TensorBoard event file")
        }
        do { handle = try FileHandle(forWritingTo: url) } catch {
            throw AtomicFileError(path: url.path, reason: "cannot open for writing: \(MessageText.reason(error))")
        }
        try append(TensorBoardEvent.fileVersionEvent(wallTime: wallTime))
    }

    /// Appends one event with `scalars` at `step`; non-finite values are written as they are
    /// (TensorBoard shows NaN and infinities).
    public func add(_ scalars: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        guard !scalars.isEmpty else { return }
        try append(TensorBoardEvent.scalarsEvent(scalars.map { ($0.tag, Float($0.value)) }, step: Int64(step), wallTime: wallTime))
    }

    private func append(_ record: [UInt8]) throws {
        do { try handle.write(contentsOf: TFRecord.frame(record)) } catch {
            throw AtomicFileError(path: url.path, reason: "cannot write: \(MessageText.reason(error))")
        }
    }

    /// Forces written events to disk.
    public func synchronize() throws { try handle.synchronize() }

    deinit { try? handle.close() }
}

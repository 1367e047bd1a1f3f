import Foundation

/// A directory of this process's own (under $TMPDIR, else /tmp) where a fuzz target writes each
/// input as a file, for the parsers whose door is a path. Files are overwritten input after input;
/// the directory is left behind only if the process dies (it is small: one input's worth).
public final class ScratchDirectory {
    public let path: String

    public init(_ name: String) {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        path = "\(base)/dtrain-\(name)-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `size` bytes at `data` to the file `name` in the directory and returns its path.
    @discardableResult
    public func write(_ name: String, _ data: UnsafePointer<UInt8>, _ size: Int) -> String {
        write(name, Data(bytes: data, count: size))
    }

    /// Writes `bytes` to the file `name` in the directory and returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: Data) -> String {
        // Plain stdio: FileManager's atomic write (a temporary file, then a rename) costs more
        // than most parsers do on one input.
        let file = "\(path)/\(name)"
        guard let stream = fopen(file, "wb") else { fatalError("fuzz target cannot write its scratch file \(file)") }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, stream) }
        guard fclose(stream) == 0, written == bytes.count else { fatalError("fuzz target cannot write its scratch file \(file)") }
        return file
    }

    /// Removes the file `name` from the directory if it is there.
    public func remove(_ name: String) {
        try? FileManager.default.removeItem(atPath: "\(path)/\(name)")
    }
}

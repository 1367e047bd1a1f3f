import DTrainCore
import Foundation

/// Exclusive use of a run directory for the life of a job: an advisory lock (flock) on
/// `OUTPUT/.dtrain.lock`, held by rank 0 from before it writes anything until it exits. The kernel
/// releases it when the process ends in any way (exit, crash, kill -9), so a stale lock never
/// blocks the next run. The file records who holds it (host, pid, start time), which a refused
/// job names.
public final class RunLock {
    public let url: URL
    private var fd: Int32

    public static let fileName = ".dtrain.lock"

    /// Takes the lock of `directory` (which must exist), or throws naming the job that holds it.
    public init(directory: URL, now: Date = Date()) throws {
        url = directory.appendingPathComponent(RunLock.fileName)
        fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunDirectoryError("--output \(MessageText.path(directory.path)): cannot create the lock file \(RunLock.fileName) (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = RunLock.holder(fd: fd)
            close(fd)
            fd = -1
            if code == EWOULDBLOCK {
                throw RunDirectoryError("--output \(MessageText.path(directory.path)) is in use by another dtrain job (\(holder.isEmpty ? "holder unknown" : holder)); wait for it to end or choose another --output")
            }
            throw RunDirectoryError("--output \(MessageText.path(directory.path)): cannot lock \(RunLock.fileName) (\(String(cString: strerror(code))))")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let line = "host \(String(cString: host)), pid \(getpid()), since \(ISO8601DateFormatter().string(from: now))\n"
        _ = ftruncate(fd, 0)
        _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// What the lock file says about its holder (one line, at most 512 bytes), or "".
    private static func holder(fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return "" }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        return String(text.split(separator: "\n").first ?? "").filter { !$0.isNewline && $0.asciiValue.map { $0 >= 0x20 } ?? true }
    }

    /// Releases the lock now (it is also released when the process exits).
    public func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}

import Foundation

/// Writes files so that no half-written file ever appears under the final name: a temporary file in
/// the same directory, fsync, rename over the target, then fsync of the directory.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(MessageText.path(path)): \(reason)" }
    }

    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw WriteError(path: url.path, reason: "cannot create: " + String(cString: strerror(errno))) }
        var ok = true
        var reason = ""
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; ok = false; reason = String(cString: strerror(errno)); return }
                offset += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false; reason = "fsync: " + String(cString: strerror(errno)) }
        close(fd)
        guard ok else {
            unlink(temp.path)
            throw WriteError(path: url.path, reason: "write failed: \(reason)")
        }
        guard rename(temp.path, url.path) == 0 else {
            let r = String(cString: strerror(errno))
            unlink(temp.path)
            throw WriteError(path: url.path, reason: "rename failed: \(r)")
        }
        let dfd = open(dir.path, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

import Foundation

/// One entry of a directory listing, with symbolic links resolved.
struct DirectoryEntry {
    enum Kind { case directory, file, other }
    let name: String
    let kind: Kind
}

/// Small POSIX helpers for indexing image trees: readdir listings that follow symbolic links,
/// and Python's code-point string order.
enum DirectoryListing {
    /// What `path` is after following symbolic links, or nil if it does not exist.
    static func kind(of path: String) -> DirectoryEntry.Kind? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        default: return .other
        }
    }

    static func isDirectory(_ path: String) -> Bool { kind(of: path) == .directory }
    static func isFile(_ path: String) -> Bool { kind(of: path) == .file }

    /// The device and inode of a directory (after following links), to detect link cycles.
    static func identity(of path: String) -> [UInt64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }

    /// The entries of `directory` other than "." and "..", in no particular order. Symbolic
    /// links are followed; a dangling link is reported as `.file` (as `os.walk` lists it among
    /// the files), so it fails later when read rather than vanishing silently.
    static func entries(of directory: String) throws -> [DirectoryEntry] {
        guard let dir = opendir(directory) else {
            let reason = errno == ENOENT ? "no such directory" : errno == ENOTDIR ? "not a directory"
                : "cannot list: \(String(cString: strerror(errno)))"
            throw DataError(path: directory, reason: reason)
        }
        defer { closedir(dir) }
        var result: [DirectoryEntry] = []
        while let entry = readdir(dir) {
            let (name, type) = withUnsafePointer(to: entry.pointee.d_name) { tuple -> (String, UInt8) in
                let name = tuple.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
                return (name, entry.pointee.d_type)
            }
            if name == "." || name == ".." { continue }
            let kind: DirectoryEntry.Kind
            switch Int32(type) {
            case Int32(DT_DIR): kind = .directory
            case Int32(DT_REG): kind = .file
            case Int32(DT_LNK), Int32(DT_UNKNOWN):
                kind = self.kind(of: directory + "/" + name) ?? .file
            default: kind = .other
            }
            result.append(DirectoryEntry(name: name, kind: kind))
        }
        return result
    }

    /// Python's `str` order: by Unicode code point, which for valid UTF-8 is byte order.
    /// ("B" < "a" and "class10" < "class2", unlike a case-insensitive or numeric sort.)
    static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// `base` joined with `name` by one "/".
    static func join(_ base: String, _ name: String) -> String {
        base.hasSuffix("/") ? base + name : base + "/" + name
    }
}

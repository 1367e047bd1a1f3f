import Foundation

/// Checks, before ZIPFoundation opens a zip file, that its end-of-central-directory records place
/// the central directory inside the file. ZIPFoundation converts a ZIP64 record's 64-bit offset to
/// `off_t` without a check, so a hostile offset above Int64.max would stop the process; here it is
/// a one-line error instead. The records are found as ZIPFoundation finds them: the last
/// end-of-central-directory signature, and the ZIP64 record 76 bytes before it.
enum ZipDirectoryBounds {
    static func check(_ url: URL) throws {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let length = try handle.seekToEnd()
        // The end record (22 bytes, comment up to 65535) and the ZIP64 locator (20) and record (56).
        let tailLength = min(length, 22 + 65_535 + 20 + 56)
        try handle.seek(toOffset: length - tailLength)
        let tail = [UInt8](try handle.read(upToCount: Int(tailLength)) ?? Data())
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(tail[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(tail[at + $1]) << (8 * $1) } }
        guard tail.count >= 22,
              let end = stride(from: tail.count - 22, through: 0, by: -1).first(where: { u32($0) == 0x0605_4B50 }) else {
            return  // not a zip file: ZIPFoundation refuses it
        }
        let record = end - 20 - 56
        guard record >= 0, u32(record) == 0x0606_4B50 else { return }
        let size = u64(record + 40), offset = u64(record + 48), entries = u64(record + 32)
        let (last, overflow) = offset.addingReportingOverflow(size)
        guard !overflow, last <= length, entries <= length else {
            throw PthError("zip central directory (ZIP64: \(entries) entries, \(size) bytes at offset \(offset)) lies outside the file (\(length) bytes)")
        }
    }
}

import Foundation

/// Checks, before ZIPFoundation opens a zip file, that its end-of-central-directory records place
/// the central directory inside the file, and that every entry the directory lists starts and
/// ends inside it. ZIPFoundation converts a ZIP64 record's or entry's 64-bit offsets to `off_t`
/// without a check, so a hostile offset above Int64.max would stop the process; here it is a
/// one-line error instead. The records are found as ZIPFoundation finds them: the last
/// end-of-central-directory signature, and the ZIP64 record 76 bytes before it.
enum ZipDirectoryBounds {
    /// The largest central directory read: about half a million entries, far beyond any weights file.
    static let maxDirectoryBytes: UInt64 = 64 << 20

    static func check(_ url: URL) throws {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let length = try handle.seekToEnd()
        // The end record (22 bytes, comment up to 65535) and the ZIP64 locator (20) and record (56).
        let tailLength = min(length, 22 + 65_535 + 20 + 56)
        try handle.seek(toOffset: length - tailLength)
        let tail = [UInt8](try handle.read(upToCount: Int(tailLength)) ?? Data())
        guard tail.count >= 22,
              let end = stride(from: tail.count - 22, through: 0, by: -1).first(where: { u32(tail, $0) == 0x0605_4B50 }) else {
            return  // not a zip file: ZIPFoundation refuses it
        }
        var size = UInt64(u32(tail, end + 12)), offset = UInt64(u32(tail, end + 16)), entries = UInt64(u16(tail, end + 10))
        let record = end - 20 - 56
        if record >= 0, u32(tail, record) == 0x0606_4B50 {
            (size, offset, entries) = (u64(tail, record + 40), u64(tail, record + 48), u64(tail, record + 32))
            let (last, overflow) = offset.addingReportingOverflow(size)
            guard !overflow, last <= length, entries <= length else {
                throw PthError("zip central directory (ZIP64: \(entries) entries, \(size) bytes at offset \(offset)) lies outside the file (\(length) bytes)")
            }
        }
        // ZIPFoundation reads `entries` entries one after the other from `offset`, whatever size
        // the records give the directory, until an entry's signature is wrong or the file ends:
        // every entry it would read is checked, as far as the file goes.
        guard offset < length else { return }  // no entry to read there
        guard size <= maxDirectoryBytes else {
            throw PthError("zip central directory of \(size) bytes exceeds the \(maxDirectoryBytes >> 20) MiB dtrain reads")
        }
        let window = min(length - offset, maxDirectoryBytes)
        try handle.seek(toOffset: offset)
        try checkEntries([UInt8](try handle.read(upToCount: Int(window)) ?? Data()), fileLength: length, entries: entries,
                         fileContinues: window < length - offset)
    }

    /// Each central-directory entry's local header offset and sizes, with their ZIP64 extra field
    /// where the 32-bit fields say so (0xFFFFFFFF), must lie inside the file, for the first
    /// `entries` entries in `directory` (the bytes from the directory's offset, to the end of the
    /// file unless `fileContinues`) up to the first that is not one.
    static func checkEntries(_ directory: [UInt8], fileLength length: UInt64, entries: UInt64 = .max,
                             fileContinues: Bool = false) throws {
        var at = 0, index = 0
        while UInt64(index) < entries, at + 46 <= directory.count, u32(directory, at) == 0x0201_4B50 {
            let nameLength = Int(u16(directory, at + 28)), extraLength = Int(u16(directory, at + 30))
            let commentLength = Int(u16(directory, at + 32))
            var compressed = UInt64(u32(directory, at + 20)), uncompressed = UInt64(u32(directory, at + 24))
            var localHeader = UInt64(u32(directory, at + 42))
            // The ZIP64 extra field (id 1) holds, in this order, those of the three that are 0xFFFFFFFF.
            var extra = at + 46 + nameLength
            let extraEnd = min(extra + extraLength, directory.count)
            while extra + 4 <= extraEnd {
                let id = u16(directory, extra), dataLength = Int(u16(directory, extra + 2))
                var field = extra + 4
                let fieldEnd = min(field + dataLength, extraEnd)
                if id == 1 {
                    var values = [uncompressed, compressed, localHeader]
                    for i in values.indices where values[i] == 0xFFFF_FFFF && field + 8 <= fieldEnd {
                        values[i] = u64(directory, field)
                        field += 8
                    }
                    (uncompressed, compressed, localHeader) = (values[0], values[1], values[2])
                }
                extra += 4 + dataLength
            }
            // A stored entry's data descriptor follows its uncompressed size of data: that position
            // must stay far below Int64.max too.
            let (last, overflow) = localHeader.addingReportingOverflow(compressed)
            guard !overflow, last <= length, uncompressed <= UInt64(Int64.max) / 2 else {
                throw PthError("zip entry \(index) (local header at offset \(localHeader), \(compressed) bytes, \(uncompressed) uncompressed) lies outside the file (\(length) bytes)")
            }
            at += 46 + nameLength + extraLength + commentLength
            index += 1
        }
        if fileContinues, UInt64(index) < entries, at + 46 > directory.count {
            throw PthError("zip central directory of \(entries) entries runs past the \(maxDirectoryBytes >> 20) MiB dtrain reads")
        }
    }

    private static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    private static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
    private static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
}

import Foundation

/// Text meant for people: file names as messages show them, and the reason a file operation
/// failed, strerror-style.
///
/// Every message that names a file goes through `path(_:)`, so a name holding a newline, a tab
/// or an escape sequence prints as one visible line and cannot forge or recolour output.
/// Foundation's errors go through `reason(_:)` (or `describe(_:)`), so no message shows
/// "The operation could not be completed (NSCocoaErrorDomain error 512)".
public enum MessageText {
    /// `path` with control characters escaped: `\n`, `\r`, `\t`, `\e` for those, `\u{XX}` for
    /// the other C0 and C1 controls and DEL; in a name that needs escaping a backslash is doubled,
    /// so the escapes stay unambiguous. A name without control characters is returned unchanged.
    public static func path(_ path: String) -> String {
        guard path.unicodeScalars.contains(where: isControl) else { return path }
        var out = ""
        out.unicodeScalars.reserveCapacity(path.unicodeScalars.count + 8)
        for scalar in path.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{1B}": out += "\\e"
            case "\\": out += "\\\\"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Why a file operation failed, as strerror words ("No such file or directory", "Permission
    /// denied", …): the POSIX error a Foundation error wraps, or the nearest words for its Cocoa
    /// code. Errors that are not Foundation's are described as they describe themselves.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let errno = posixCode(ns) { return String(cString: strerror(errno)) }
        guard ns.domain == NSCocoaErrorDomain else { return String(describing: error) }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
        case .fileReadNoPermission, .fileWriteNoPermission: return String(cString: strerror(EACCES))
        case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
        case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
        case .fileWriteFileExists: return String(cString: strerror(EEXIST))
        case .fileReadTooLarge: return String(cString: strerror(EFBIG))
        case .fileReadCorruptFile: return "corrupt or unreadable contents"
        case .fileReadInapplicableStringEncoding, .fileWriteInapplicableStringEncoding: return "not text in the expected encoding"
        case .fileLocking: return "cannot lock the file"
        case .fileReadUnknown, .fileReadUnknownStringEncoding: return "read failed"
        case .fileWriteUnknown: return "write failed"
        default: return "file operation failed"
        }
    }

    /// A one-line description of any error for a user message: for Foundation's file errors
    /// "FILE: reason" (the file escaped with `path(_:)`, when the error names one), otherwise
    /// the error's own description.
    public static func describe(_ error: Error) -> String {
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return String(describing: error) }
        let file = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        return file.map { path($0) + ": " + reason(error) } ?? reason(error)
    }

    private static func posixCode(_ error: NSError) -> Int32? {
        if error.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: error.code) }
        // swift-corelibs-foundation stores the underlying errno as a POSIXError value, which
        // `as? NSError` does not bridge on Linux.
        guard let underlying = error.userInfo[NSUnderlyingErrorKey] else { return nil }
        if let posix = underlying as? POSIXError { return posix.code.rawValue }
        if let nested = underlying as? Error {
            let ns = nested as NSError
            if ns.domain == NSPOSIXErrorDomain { return Int32(truncatingIfNeeded: ns.code) }
        }
        return nil
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}

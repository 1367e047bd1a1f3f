import Foundation

/// The image file formats dtrain decodes and writes.
public enum ImageFormat: String, CaseIterable, Sendable {
    case jpeg, png

    /// The file extension written for this format ("jpg" or "png").
    public var fileExtension: String { self == .jpeg ? "jpg" : "png" }
}

/// Format sniffing and dispatch to the JPEG and PNG codecs.
///
/// The format is taken from the file's first bytes, never from its name: a PNG named `.jpg`
/// decodes as a PNG (as PIL, and so torchvision's ImageFolder, would do).
public enum ImageCodec {
    /// Images with more pixels than this are rejected before any pixel memory is allocated.
    public static let maxPixels = 100_000_000

    /// The format announced by the magic bytes (JPEG `FF D8 FF`, PNG `89 50 4E 47`), or nil.
    public static func format(of data: Data) -> ImageFormat? {
        data.withUnsafeBytes { format(of: $0) }
    }

    static func format(of bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        if bytes.count >= 4, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47 { return .png }
        return nil
    }

    /// Decodes a JPEG or PNG held in memory to 8-bit RGB.
    ///
    /// - Parameters:
    ///   - path: the file's name, used only in errors.
    ///   - targetSize: the smallest side the caller resizes to; JPEGs may be DCT-scaled by 1/2,
    ///     1/4 or 1/8 while decoding as long as both sides stay at or above it (see
    ///     `JPEGCodec.scaledSize`). PNGs always decode at full size.
    /// - Throws: `DataError` with reason "empty file", "not a JPEG or PNG image", an
    ///   "unsupported image format (…)" for other recognised formats, or the codec's reason.
    public static func decode(_ data: Data, path: String, targetSize: Int? = nil) throws -> DecodedImage {
        if data.isEmpty { throw DataError(path: path, reason: "empty file") }
        switch format(of: data) {
        case .jpeg: return try JPEGCodec.decode(data, path: path, targetSize: targetSize)
        case .png: return try PNGCodec.decode(data, path: path)
        case nil:
            if let other = data.withUnsafeBytes({ otherFormatName($0) }) {
                throw DataError(path: path, reason: "unsupported image format (\(other)); only JPEG and PNG are decoded")
            }
            throw DataError(path: path, reason: "not a JPEG or PNG image")
        }
    }

    /// Reads the file at `path` and decodes it (see `decode(_:path:targetSize:)`).
    ///
    /// - Throws: `DataError` "cannot read: …" when the file cannot be opened or read.
    public static func decodeFile(atPath path: String, targetSize: Int? = nil) throws -> DecodedImage {
        try decode(readFile(atPath: path), path: path, targetSize: targetSize)
    }

    /// Encodes 8-bit RGB as a baseline JPEG (4:2:0) or an 8-bit RGB PNG.
    public static func encode(_ image: DecodedImage, format: ImageFormat, quality: Int = 90) -> Data {
        switch format {
        case .jpeg: return JPEGCodec.encode(image, quality: quality)
        case .png: return PNGCodec.encode(image)
        }
    }

    /// Throws unless `width`×`height` is a non-empty image of at most `maxPixels` pixels.
    static func checkDimensions(width: Int, height: Int, path: String) throws {
        _ = try byteCount(width: width, height: height, channels: 1, path: path)
    }

    /// The bytes of a `width`×`height` image with `channels` bytes per pixel, computed with
    /// overflow-reporting arithmetic from sizes a file (or a caller) claims.
    ///
    /// - Throws: `DataError` "image has no pixels" for a side below 1 and "image too large" when
    ///   the image has more than `maxPixels` pixels (or the product overflows), before anything
    ///   is allocated.
    static func byteCount(width: Int, height: Int, channels: Int, path: String) throws -> Int {
        if width <= 0 || height <= 0 {
            throw DataError(path: path, reason: "image has no pixels (\(width)x\(height))")
        }
        let pixels = width.multipliedReportingOverflow(by: height)
        let bytes = pixels.partialValue.multipliedReportingOverflow(by: channels)
        if pixels.overflow || pixels.partialValue > maxPixels || bytes.overflow {
            throw DataError(path: path, reason: "image too large: \(width)x\(height) is more than \(maxPixels / 1_000_000) megapixels")
        }
        return bytes.partialValue
    }

    /// Names formats torchvision's IMG_EXTENSIONS admit but dtrain does not decode.
    static func otherFormatName(_ b: UnsafeRawBufferPointer) -> String? {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + prefix.count && prefix.indices.allSatisfy { b[offset + $0] == prefix[$0] }
        }
        if starts([0x42, 0x4D]) { return "BMP" }
        if starts([0x47, 0x49, 0x46, 0x38]) { return "GIF" }
        if starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], at: 8) { return "WebP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if b.count >= 2, b[0] == 0x50, (0x31...0x37).contains(b[1]) { return "PNM" }
        return nil
    }

    /// Reads a whole file with POSIX calls, reporting errno's reason on failure.
    static func readFile(atPath path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DataError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw DataError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))") }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw DataError(path: path, reason: "cannot read: is a directory") }
        var data = Data(count: max(0, Int(info.st_size)))
        var filled = 0
        let failure: Int32? = data.withUnsafeMutableBytes { buffer -> Int32? in
            while filled < buffer.count {
                let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
                if n < 0 { if errno == EINTR { continue }; return errno }
                if n == 0 { break }
                filled += n
            }
            return nil
        }
        if let failure { throw DataError(path: path, reason: "cannot read: \(String(cString: strerror(failure)))") }
        if filled < data.count { data.removeSubrange(filled...) }
        return data
    }
}

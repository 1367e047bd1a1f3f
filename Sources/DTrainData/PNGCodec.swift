import CPNG
import Foundation

/// PNG decoding and encoding with libpng 1.6's simplified API.
///
/// Every PNG colour type and bit depth decodes to 8-bit RGB:
/// - grey and grey+alpha are replicated to three channels; palettes are expanded;
/// - alpha (an alpha channel or palette/`tRNS` transparency) is dropped, not composited: a
///   transparent pixel keeps the colour stored under it. This is what PIL's
///   `Image.convert("RGB")`, and so torchvision's ImageFolder, does;
/// - 16-bit samples are scaled to 8 bits (`round(v / 257)`); 16-bit files without gamma
///   information are taken as sRGB-encoded, not linear;
/// - a `gAMA`/`iCCP`/`sRGB` chunk that says the file is not sRGB makes libpng convert to sRGB
///   (PIL ignores these, so such rare files differ slightly from torchvision's pixels).
public enum PNGCodec {
    /// Decodes a PNG to 8-bit RGB (see the type's notes).
    ///
    /// - Throws: `DataError` "corrupt PNG: …" with libpng's message for unreadable headers and
    ///   "truncated or corrupt PNG: …" for failures in the image data, or absurd dimensions.
    public static func decode(_ data: Data, path: String) throws -> DecodedImage {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> DecodedImage in
            guard let base = raw.baseAddress, !raw.isEmpty else { throw DataError(path: path, reason: "empty file") }
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&image) }
            if png_image_begin_read_from_memory(&image, base, raw.count) == 0 {
                throw DataError(path: path, reason: "corrupt PNG: \(message(of: &image))")
            }
            let width = Int(image.width), height = Int(image.height)
            try ImageCodec.checkDimensions(width: width, height: height, path: path)
            let hasAlpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
            image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            image.format = hasAlpha ? UInt32(PNG_FORMAT_RGB) | UInt32(PNG_FORMAT_FLAG_ALPHA) : UInt32(PNG_FORMAT_RGB)
            let channels = hasAlpha ? 4 : 3
            let byteCount = try ImageCodec.byteCount(width: width, height: height, channels: channels, path: path)
            var failure: String?
            let decoded = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
                // Zeroed first so a failed read never leaves undefined bytes behind.
                buffer.initialize(repeating: 0)
                initialized = buffer.count
                if png_image_finish_read(&image, nil, buffer.baseAddress, 0, nil) == 0 {
                    failure = message(of: &image)
                }
            }
            if let failure { throw DataError(path: path, reason: "truncated or corrupt PNG: \(failure)") }
            if !hasAlpha { return DecodedImage(width: width, height: height, pixels: decoded) }
            let rgb = [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, initialized in
                for p in 0..<(width * height) {
                    out[3 * p] = decoded[4 * p]
                    out[3 * p + 1] = decoded[4 * p + 1]
                    out[3 * p + 2] = decoded[4 * p + 2]
                }
                initialized = width * height * 3
            }
            return DecodedImage(width: width, height: height, pixels: rgb)
        }
    }

    /// Encodes 8-bit RGB as an 8-bit RGB PNG (sRGB, default compression).
    public static func encode(_ image: DecodedImage) -> Data {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_RGB)
        return image.pixels.withUnsafeBufferPointer { pixels -> Data in
            var size = 0
            // First call measures, second writes.
            guard png_image_write_to_memory(&png, nil, &size, 0, pixels.baseAddress, 0, nil) != 0 else {
                fatalError("dtrain: PNG encoding of a \(image.width)x\(image.height) image failed: \(message(of: &png))")
            }
            var data = Data(count: size)
            let ok = data.withUnsafeMutableBytes { out in
                png_image_write_to_memory(&png, out.baseAddress, &size, 0, pixels.baseAddress, 0, nil)
            }
            guard ok != 0 else {
                fatalError("dtrain: PNG encoding of a \(image.width)x\(image.height) image failed: \(message(of: &png))")
            }
            data.count = size
            return data
        }
    }

    private static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "libpng error" : text
        }
    }
}

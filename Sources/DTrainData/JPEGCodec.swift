import CTurboJPEG
import Foundation

/// JPEG decoding and encoding with libjpeg-turbo's TurboJPEG API (the 2.x `tj*` functions).
///
/// Decoding follows PIL, which torchvision's ImageFolder uses:
/// - output is always 8-bit RGB; greyscale JPEGs are replicated to three channels;
/// - CMYK and YCCK JPEGs are decompressed to CMYK and converted with Pillow's formula
///   (`R = (255 − K) − C·(255 − K)/255`), reading Adobe-marked files as inverted, as Pillow does;
/// - libjpeg warnings (for example "extraneous bytes before marker") are accepted, except a
///   truncated file, which throws "truncated or corrupt JPEG: …" like PIL's "image file is
///   truncated". A file counts as truncated when libjpeg reports a premature end or when the
///   marker stream has no end-of-image marker (so a file missing only its final FF D9 is
///   rejected, where PIL may accept it);
/// - progressive files with more than 500 scans are rejected (`TJFLAG_LIMITSCANS`).
///
/// Each thread keeps one decompressor handle, so concurrent decodes need no locking.
public enum JPEGCodec {
    /// The scale factors used for decode-time downscaling, largest reduction first.
    static let reductions = [8, 4, 2]

    /// The size a JPEG of `width`×`height` decodes to for `targetSize`: the smallest of the
    /// scalings 1/8, 1/4, 1/2 (TurboJPEG rounds scaled sides up) that keeps both sides at or
    /// above `targetSize`, or full size when none does or `targetSize` is nil.
    ///
    /// Both sides must stay at or above the target because the caller resizes the shorter side
    /// to it (torchvision's `Resize(int)`), which must not upsample a downscaled decode.
    public static func scaledSize(width: Int, height: Int, targetSize: Int?) -> (width: Int, height: Int) {
        guard let targetSize, targetSize > 0 else { return (width, height) }
        for denom in reductions where supportsReduction(denom) {
            let w = (width + denom - 1) / denom, h = (height + denom - 1) / denom
            if w >= targetSize && h >= targetSize { return (w, h) }
        }
        return (width, height)
    }

    /// Decodes a JPEG to 8-bit RGB (see the type's notes), possibly DCT-scaled for `targetSize`.
    ///
    /// - Throws: `DataError` for a corrupt header ("corrupt JPEG header: …"), a truncated or
    ///   corrupt body ("truncated or corrupt JPEG: …"), or absurd dimensions.
    public static func decode(_ data: Data, path: String, targetSize: Int? = nil) throws -> DecodedImage {
        guard let handle = threadDecompressor() else {
            throw DataError(path: path, reason: "cannot create a TurboJPEG decompressor")
        }
        // After an error or warning libjpeg's state may be left mid-stream (TurboJPEG 2.1 does
        // not always abort it), so the handle is replaced rather than reused.
        var reusable = false
        defer { if !reusable { discardThreadDecompressor() } }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> DecodedImage in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let base = bytes.baseAddress, !bytes.isEmpty else { throw DataError(path: path, reason: "empty file") }
            var width: Int32 = 0, height: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(handle, base, UInt(bytes.count), &width, &height, &subsamp, &colorspace) != 0 {
                throw DataError(path: path, reason: "corrupt JPEG header: \(errorMessage(handle))")
            }
            if width <= 0 || height <= 0 {
                // libjpeg treats a file that ends inside the headers as tables-only.
                throw DataError(path: path, reason: "truncated or corrupt JPEG: no image frame")
            }
            try ImageCodec.checkDimensions(width: Int(width), height: Int(height), path: path)
            let size = scaledSize(width: Int(width), height: Int(height), targetSize: targetSize)
            let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let channels = cmyk ? 4 : 3
            let byteCount = try ImageCodec.byteCount(width: size.width, height: size.height, channels: channels, path: path)
            let format = cmyk ? TJPF_CMYK : TJPF_RGB
            var decodeFailure: String?
            reusable = true
            var pixels = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
                let status = tjDecompress2(handle, base, UInt(bytes.count), buffer.baseAddress,
                                           Int32(size.width), 0, Int32(size.height),
                                           Int32(format.rawValue), TJFLAG_LIMITSCANS)
                if status != 0 {
                    reusable = false
                    let message = errorMessage(handle)
                    let warning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
                    if !warning || message.contains("Premature end") || !JPEGMarkers.endsWithEndOfImage(bytes) {
                        decodeFailure = message
                    }
                }
                // On failure the buffer is discarded; zero it so the array is never undefined.
                if decodeFailure != nil { buffer.initialize(repeating: 0) }
                initialized = buffer.count
            }
            if let decodeFailure {
                throw DataError(path: path, reason: "truncated or corrupt JPEG: \(decodeFailure)")
            }
            if cmyk {
                pixels = cmykToRGB(pixels, inverted: JPEGMarkers.hasAdobeMarker(bytes))
            }
            return DecodedImage(width: size.width, height: size.height, pixels: pixels)
        }
    }

    /// Encodes 8-bit RGB as a baseline JPEG with 4:2:0 chroma subsampling.
    ///
    /// - Parameter quality: libjpeg quality, clamped to 1...100.
    public static func encode(_ image: DecodedImage, quality: Int = 90) -> Data {
        guard let handle = tjInitCompress() else { fatalError("dtrain: cannot create a TurboJPEG compressor") }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { src in
            tjCompress2(handle, src.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(TJPF_RGB.rawValue), &output, &outputSize, Int32(TJSAMP_420.rawValue),
                        Int32(min(100, max(1, quality))), 0)
        }
        guard status == 0, let output else {
            fatalError("dtrain: JPEG encoding of a \(image.width)x\(image.height) image failed: \(errorMessage(handle))")
        }
        defer { tjFree(output) }
        return Data(bytes: output, count: Int(outputSize))
    }

    /// Pillow's CMYK → RGB (`cmyk2rgb` in libImaging/Convert.c). Adobe files store inverted
    /// CMYK, which Pillow reads as mode "CMYK;I".
    static func cmykToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        let n = cmyk.count / 4
        return [UInt8](unsafeUninitializedCapacity: n * 3) { out, initialized in
            for i in 0..<n {
                var c = Int(cmyk[4 * i]), m = Int(cmyk[4 * i + 1]), y = Int(cmyk[4 * i + 2]), k = Int(cmyk[4 * i + 3])
                if inverted { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k }
                let nk = 255 - k
                @inline(__always) func channel(_ v: Int) -> UInt8 {
                    let t = v * nk + 128
                    return UInt8(clamping: nk - (((t >> 8) + t) >> 8))
                }
                out[3 * i] = channel(c)
                out[3 * i + 1] = channel(m)
                out[3 * i + 2] = channel(y)
            }
            initialized = n * 3
        }
    }

    private static func errorMessage(_ handle: tjhandle) -> String {
        guard let message = tjGetErrorStr2(handle) else { return "unknown TurboJPEG error" }
        return String(cString: message)
    }

    /// Whether the installed TurboJPEG offers the scaling factor 1/`denom`.
    private static func supportsReduction(_ denom: Int) -> Bool { availableReductions.contains(denom) }

    private static let availableReductions: Set<Int> = {
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count) else { return [] }
        var result = Set<Int>()
        for i in 0..<Int(count) where factors[i].num == 1 {
            result.insert(Int(factors[i].denom))
        }
        return result
    }()
}

/// One TurboJPEG decompressor per thread, destroyed when the thread exits.
private let decompressorKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { handle in
        if let handle { tjDestroy(handle) }
    }
    precondition(status == 0, "dtrain: pthread_key_create failed")
    return key
}()

private func threadDecompressor() -> tjhandle? {
    if let handle = pthread_getspecific(decompressorKey) { return handle }
    guard let handle = tjInitDecompress() else { return nil }
    pthread_setspecific(decompressorKey, handle)
    return handle
}

/// Destroys this thread's decompressor; the next decode creates a fresh one.
private func discardThreadDecompressor() {
    guard let handle = pthread_getspecific(decompressorKey) else { return }
    pthread_setspecific(decompressorKey, nil)
    tjDestroy(handle)
}

/// Walks a JPEG's marker segments (no decoding) to answer structural questions.
enum JPEGMarkers {
    /// Whether an APP14 "Adobe" segment precedes the first scan (Adobe CMYK is stored inverted).
    static func hasAdobeMarker(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var found = false
        walk(b) { marker, segment in
            if marker == 0xEE, segment.count >= 7, segment[2] == 0x41, segment[3] == 0x64, segment[4] == 0x6F,
               segment[5] == 0x62, segment[6] == 0x65 { found = true }
            return !found && marker != 0xDA
        }
        return found
    }

    /// Whether the marker stream reaches an end-of-image marker (FF D9) before the data runs out.
    static func endsWithEndOfImage(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        walk(b) { _, _ in true }
    }

    /// Calls `visit(marker, segment)` for each marker segment after SOI (`segment` starts at the
    /// length field), skipping entropy-coded data after each SOS. Stops when `visit` returns
    /// false. Returns true if an EOI marker was reached.
    @discardableResult
    private static func walk(_ b: UnsafeBufferPointer<UInt8>, _ visit: (UInt8, UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        let n = b.count
        var i = 2
        while i < n {
            while i < n && b[i] != 0xFF { i += 1 }
            while i < n && b[i] == 0xFF { i += 1 }
            if i >= n { return false }
            let marker = b[i]
            i += 1
            if marker == 0xD9 { return true }
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { continue }
            if i + 1 >= n { return false }
            let length = Int(b[i]) << 8 | Int(b[i + 1])
            if length < 2 || i + length > n { return false }
            if !visit(marker, UnsafeBufferPointer(rebasing: b[i..<(i + length)])) { return false }
            i += length
            if marker == 0xDA {
                // Entropy-coded data: FF 00 is a stuffed byte and FF D0–D7 a restart marker.
                while i < n {
                    if b[i] == 0xFF {
                        var j = i + 1
                        while j < n && b[j] == 0xFF { j += 1 }
                        if j >= n { return false }
                        if b[j] == 0x00 || (0xD0...0xD7).contains(b[j]) { i = j + 1; continue }
                        break
                    }
                    i += 1
                }
            }
        }
        return false
    }
}

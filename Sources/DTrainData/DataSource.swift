import DTrainCore

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
public struct DecodedImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB image \(width)x\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// A labelled image collection: an ImageFolder split, CIFAR binary files, the embedded digits, or
/// the synthetic generator.
///
/// `count`, `classNames` and `label(_:)` are cheap and never fail (the index is built up front).
/// `image(at:targetSize:)` reads and decodes one sample; `targetSize` is the smallest side the
/// caller will resize to, so a decoder may scale down while decoding (JPEG DCT scaling) as long
/// as both sides stay at or above it. It is called from several loader threads at once.
public protocol DataSource: AnyObject, Sendable {
    var count: Int { get }
    /// Class names in label order (torchvision's class_to_idx order for folders).
    var classNames: [String] { get }
    func label(_ index: Int) -> Int
    /// A human-readable name of the sample for warnings (its file path, or "cifar10 test #12").
    func sampleName(_ index: Int) -> String
    func image(at index: Int, targetSize: Int?) throws -> DecodedImage
    /// Whether training uses random horizontal flips unless told otherwise: true for photos,
    /// false where a mirrored sample is another class's shape (the digits).
    var flipsByDefault: Bool { get }
}

extension DataSource {
    public var flipsByDefault: Bool { true }
}

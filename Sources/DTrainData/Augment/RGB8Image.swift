/// An 8-bit RGB image in HWC order (R, G, B per pixel, rows top to bottom) over memory its owner
/// keeps: what torchvision's auto-augment operations see as a `uint8` tensor, in dtrain's layout.
///
/// The augmentation ops (`ImageOps`) read and write it in place; the loader's per-thread
/// `AugmentScratch` owns the memory during training, so no op allocates.
public struct RGB8Image {
    public let pixels: UnsafeMutablePointer<UInt8>
    public let width: Int
    public let height: Int

    /// A view of `width × height × 3` bytes at `pixels`.
    public init(pixels: UnsafeMutablePointer<UInt8>, width: Int, height: Int) {
        precondition(width > 0 && height > 0, "empty image")
        self.pixels = pixels
        self.width = width
        self.height = height
    }

    /// Bytes of the image: `width × height × 3`.
    public var count: Int { width * height * 3 }

    /// Copies this image's bytes to `other`, which has the same size.
    public func copy(to other: RGB8Image) {
        precondition(other.width == width && other.height == height, "copy between images of different sizes")
        if other.pixels != pixels { other.pixels.update(from: pixels, count: count) }
    }
}

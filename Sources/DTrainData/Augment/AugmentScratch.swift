/// Per-thread memory for the augmentations: the uint8 image at output size and the buffers the
/// ops and AugMix's chains work in. It grows to the largest output seen and is then reused, so a
/// sample's augmentation allocates nothing once warm. One scratch must not be used by two threads
/// at once; the loader's workers each hold one inside their `ResampleScratch`.
public final class AugmentScratch {
    /// The buffers, by role.
    public enum Role: Int, CaseIterable {
        /// The sample itself, between resampling and normalisation.
        case image
        /// The copy an op that cannot work in place reads from.
        case spare
        /// An AugMix chain.
        case chain
    }

    private let buffers = Role.allCases.map { _ in GrowableBuffer<UInt8>() }

    /// An empty scratch; it grows on first use.
    public init() {}

    /// The buffer for `role` as a `width × height` image (its contents are whatever was last there).
    public func image(_ role: Role, width: Int, height: Int) -> RGB8Image {
        RGB8Image(pixels: buffers[role.rawValue].ensure(width * height * 3), width: width, height: height)
    }

    /// Bytes currently held.
    public var bytes: Int { buffers.reduce(0) { $0 + $1.capacity } }
}

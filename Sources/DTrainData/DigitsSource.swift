import Foundation

/// The 1,797 8×8 handwritten digits of the UCI optical-recognition dataset, embedded in dtrain
/// (see NOTICE), so a training run needs no download.
///
/// Samples are in the order of scikit-learn's `load_digits()`. The split is fixed and stratified:
/// within each class, every fifth sample (the 1st, 6th, 11th, … of that class, in dataset order)
/// is held out, 364 in all (35–37 per class), leaving 1,433 for training. Images are
/// grey levels 0–16 scaled to 0–255 (`v·255/16`), upscaled bilinearly (pixel centres aligned, as
/// PIL and `torch.nn.functional.interpolate(align_corners=False)` do, edges clamped) to
/// `resolution`×`resolution` and replicated to RGB. Classes are "0" … "9".
public final class DigitsSource: DataSource {
    /// Samples in the embedded dataset.
    public static let sampleCount = 1797
    /// Every `heldOutStride`-th sample of each class belongs to the val split.
    public static let heldOutStride = 5

    public let split: DataSplit?
    public let resolution: Int
    public let classNames = (0...9).map(String.init)
    /// Mirrored digits are other shapes (a 2 becomes an S-like glyph), so no flips by default.
    public var flipsByDefault: Bool { false }
    /// Indices into the embedded samples.
    private let members: [Int]
    private let weights: [(lo: Int, hi: Int, t: Float)]

    /// - Parameters:
    ///   - split: `.train`, `.val`, or nil for all 1,797 samples.
    ///   - resolution: the side of the produced images (default 32).
    public init(split: DataSplit?, resolution: Int = 32) {
        precondition(resolution >= 1, "digits resolution must be positive")
        self.split = split
        self.resolution = resolution
        let all = 0..<DigitsSource.sampleCount
        var seen = [Int](repeating: 0, count: 10)
        let heldOut = all.map { i -> Bool in
            let label = Int(DigitsSource.table.labels[i])
            defer { seen[label] += 1 }
            return seen[label] % DigitsSource.heldOutStride == 0
        }
        switch split {
        case nil: members = Array(all)
        case .train?: members = all.filter { !heldOut[$0] }
        case .val?: members = all.filter { heldOut[$0] }
        }
        let scale = 8.0 / Double(resolution)
        weights = (0..<resolution).map { o in
            let s = min(7, max(0, (Double(o) + 0.5) * scale - 0.5))
            let lo = Int(s.rounded(.down))
            return (lo, min(7, lo + 1), Float(s - Double(lo)))
        }
    }

    public var count: Int { members.count }
    public func label(_ index: Int) -> Int { Int(DigitsSource.table.labels[members[index]]) }
    public func sampleName(_ index: Int) -> String { "digits #\(members[index])" }

    /// The 64 grey levels (0–16, row-major) of sample `index` of this split.
    public func rawPixels(_ index: Int) -> [UInt8] {
        let start = members[index] * 64
        return Array(DigitsSource.table.pixels[start..<(start + 64)])
    }

    /// The upscaled RGB image; `targetSize` is ignored.
    public func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        let raw = rawPixels(index).map { Float($0) * 255 / 16 }
        let n = resolution
        let pixels = [UInt8](unsafeUninitializedCapacity: n * n * 3) { out, initialized in
            for y in 0..<n {
                let wy = weights[y]
                for x in 0..<n {
                    let wx = weights[x]
                    let top = raw[wy.lo * 8 + wx.lo] * (1 - wx.t) + raw[wy.lo * 8 + wx.hi] * wx.t
                    let bottom = raw[wy.hi * 8 + wx.lo] * (1 - wx.t) + raw[wy.hi * 8 + wx.hi] * wx.t
                    let v = UInt8(min(255, max(0, (top * (1 - wy.t) + bottom * wy.t).rounded())))
                    let i = 3 * (y * n + x)
                    out[i] = v; out[i + 1] = v; out[i + 2] = v
                }
            }
            initialized = n * n * 3
        }
        return DecodedImage(width: n, height: n, pixels: pixels)
    }

    /// The embedded samples, parsed once.
    static let table: (pixels: [UInt8], labels: [UInt8]) = {
        var pixels: [UInt8] = [], labels: [UInt8] = []
        pixels.reserveCapacity(sampleCount * 64)
        for line in embeddedDigits.utf8.split(separator: UInt8(ascii: "\n")) where line.count == 65 {
            for c in line.prefix(64) { pixels.append(c - UInt8(ascii: "A")) }
            labels.append(line.last! - UInt8(ascii: "0"))
        }
        precondition(labels.count == sampleCount, "embedded digits are damaged")
        return (pixels, labels)
    }()
}

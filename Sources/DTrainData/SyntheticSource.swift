import DTrainCore
import Foundation

/// Procedurally drawn labelled images at any size, for benchmarks and tests without data.
///
/// Sample `i` has label `i % classes` and is drawn from `SeededRandom(keys: seed, i)` alone, so
/// it is the same on every call, thread and machine. The class fixes the shape (`shapes[label %
/// 10]`); everything else is random per sample: the background colour and a linear gradient
/// across it, the shape's colour (kept well apart from the background), centre (middle 40% of
/// each axis), size (18–32% of the shorter side), rotation (±17°) and the strength of uniform
/// pixel noise. Images are square (`resolution`) unless a width and height are given, e.g.
/// 500×375 like a typical ImageNet photo; a square image is the same whichever initializer made it. With more than ten classes, classes sharing a shape differ by the hue of the shape
/// (class / 10 picks a hue band). A small network learns the ten shapes well above chance in a
/// few epochs, but not instantly.
///
/// Class names are "<label>-<shape>" with the label zero-padded, so their code-point order is
/// the label order and an ImageFolder written from this source reads back with the same labels.
public final class SyntheticSource: DataSource {
    /// The shape of each class (label modulo 10).
    public static let shapes = ["circle", "square", "triangle", "plus", "ring", "diamond", "stripes", "checker", "cross", "crescent"]

    public let count: Int
    public let classes: Int
    /// Image width and height in pixels.
    public let width: Int
    public let height: Int
    public let seed: UInt64
    public let classNames: [String]

    /// The shorter side (the side of a square source).
    public var resolution: Int { min(width, height) }

    /// Square images.
    ///
    /// - Parameters:
    ///   - count: samples in the source.
    ///   - classes: number of classes (at least 1).
    ///   - resolution: image side in pixels (at least 1).
    ///   - seed: selects the set of images; use different seeds for train and val.
    public convenience init(count: Int, classes: Int = 10, resolution: Int, seed: UInt64 = 0) {
        self.init(count: count, classes: classes, width: resolution, height: resolution, seed: seed)
    }

    /// Images of `width × height` pixels (both at least 1); see `init(count:classes:resolution:seed:)`.
    public init(count: Int, classes: Int = 10, width: Int, height: Int, seed: UInt64 = 0) {
        precondition(count >= 0 && classes >= 1 && width >= 1 && height >= 1,
                     "synthetic source needs count >= 0, classes >= 1, width and height >= 1")
        self.count = count
        self.classes = classes
        self.width = width
        self.height = height
        self.seed = seed
        let width = String(classes - 1).count
        classNames = (0..<classes).map { c in
            let number = String(c)
            return String(repeating: "0", count: width - number.count) + number + "-" + SyntheticSource.shapes[c % 10]
        }
    }

    public func label(_ index: Int) -> Int { index % classes }
    public func sampleName(_ index: Int) -> String { "synthetic #\(index) (seed \(seed))" }

    /// Draws sample `index` at `width × height`; `targetSize` is ignored.
    ///
    /// - Throws: `DataError` "image too large" when `width × height` is more than
    ///   `ImageCodec.maxPixels` pixels (nothing is allocated), like an oversized image file.
    public func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        precondition(index >= 0 && index < count, "synthetic sample \(index) out of range 0..<\(count)")
        _ = try ImageCodec.byteCount(width: width, height: height, channels: 3, path: sampleName(index))
        var rng = SeededRandom(keys: seed, UInt64(index))
        let label = self.label(index)
        let w = width, h = height
        // Sizes scale with the shorter side, positions with each axis (the same for a square).
        let size = Float(min(w, h))

        var background = (0..<3).map { _ in Float(rng.int(below: 256)) }
        let foreground: [Float]
        if classes > 10 {
            let hue = (Double(label / 10) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1) + rng.uniform(-0.02, 0.02)
            foreground = hsvToRGB(hue: hue, saturation: rng.uniform(0.6, 1), value: rng.uniform(0.6, 1))
        } else {
            foreground = (0..<3).map { _ in Float(rng.int(below: 256)) }
        }
        // Keep the shape visible: a background too close to it is moved away, channel by channel.
        if zip(foreground, background).map({ abs($0 - $1) }).reduce(0, +) < 150 {
            background = foreground.map { $0 < 128 ? min(255, $0 + 140) : max(0, $0 - 140) }
        }
        let angle = rng.uniform(0, 2 * .pi)
        let gradient = Float(rng.uniform(0, 60)) / size
        let gx = Float(cos(angle)) * gradient, gy = Float(sin(angle)) * gradient
        let cx = Float(rng.uniform(0.3, 0.7)) * Float(w), cy = Float(rng.uniform(0.3, 0.7)) * Float(h)
        let radius = max(1, Float(rng.uniform(0.18, 0.32)) * size)
        let theta = rng.uniform(-0.3, 0.3)
        let cosT = Float(cos(theta)) / radius, sinT = Float(sin(theta)) / radius
        let noise = Float(rng.uniform(4, 24))
        let shape = label % 10

        let reach = 1.5 * radius
        let x0 = max(0, Int(cx - reach)), x1 = min(w, Int(cx + reach) + 1)
        let y0 = max(0, Int(cy - reach)), y1 = min(h, Int(cy + reach) + 1)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeMutableBufferPointer { out in
            for y in 0..<h {
                let dy = Float(y) + 0.5 - cy
                let inRows = y >= y0 && y < y1
                for x in 0..<w {
                    let dx = Float(x) + 0.5 - cx
                    var colour0: Float, colour1: Float, colour2: Float
                    if inRows && x >= x0 && x < x1
                        && SyntheticSource.inside(shape, u: dx * cosT + dy * sinT, v: -dx * sinT + dy * cosT) {
                        colour0 = foreground[0]; colour1 = foreground[1]; colour2 = foreground[2]
                    } else {
                        let shade = gx * dx + gy * dy
                        colour0 = background[0] + shade; colour1 = background[1] + shade; colour2 = background[2] + shade
                    }
                    let r = rng.next()
                    let scale = noise / 32768
                    colour0 += (Float(r & 0xFFFF) - 32768) * scale
                    colour1 += (Float((r >> 16) & 0xFFFF) - 32768) * scale
                    colour2 += (Float((r >> 32) & 0xFFFF) - 32768) * scale
                    let i = 3 * (y * w + x)
                    out[i] = UInt8(min(255, max(0, colour0)))
                    out[i + 1] = UInt8(min(255, max(0, colour1)))
                    out[i + 2] = UInt8(min(255, max(0, colour2)))
                }
            }
        }
        return DecodedImage(width: w, height: h, pixels: pixels)
    }

    /// Whether the point (u, v), in the shape's frame scaled so its radius is 1 (v down), is
    /// inside shape `shape`.
    @inline(__always)
    static func inside(_ shape: Int, u: Float, v: Float) -> Bool {
        let d2 = u * u + v * v
        switch shape {
        case 0: return d2 <= 1
        case 1: return max(abs(u), abs(v)) <= 0.8
        case 2: return v <= 0.5 && abs(u) * 1.732_050_8 <= v + 1
        case 3: return (abs(u) <= 0.3 && abs(v) <= 1) || (abs(v) <= 0.3 && abs(u) <= 1)
        case 4: return d2 <= 1 && d2 >= 0.55
        case 5: return abs(u) + abs(v) <= 1
        case 6: return d2 <= 1 && Int(((u + 1) * 2.5).rounded(.down)) % 2 == 0
        case 7: return max(abs(u), abs(v)) <= 0.85
            && (Int(((u + 1) * 2).rounded(.down)) + Int(((v + 1) * 2).rounded(.down))) % 2 == 0
        case 8:
            let p = (u + v) * 0.707_106_8, q = (u - v) * 0.707_106_8
            return (abs(p) <= 0.25 && abs(q) <= 1) || (abs(q) <= 0.25 && abs(p) <= 1)
        default: return d2 <= 1 && (u - 0.5) * (u - 0.5) + v * v >= 0.5625
        }
    }
}

private func hsvToRGB(hue: Double, saturation s: Double, value v: Double) -> [Float] {
    let h = (hue - hue.rounded(.down)) * 6
    let i = Int(h) % 6, f = h - h.rounded(.down)
    let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
    let rgb: (Double, Double, Double)
    switch i {
    case 0: rgb = (v, t, p)
    case 1: rgb = (q, v, p)
    case 2: rgb = (p, v, t)
    case 3: rgb = (p, q, v)
    case 4: rgb = (t, p, v)
    default: rgb = (v, p, q)
    }
    return [Float(rgb.0 * 255), Float(rgb.1 * 255), Float(rgb.2 * 255)]
}

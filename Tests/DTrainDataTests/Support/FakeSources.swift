import DTrainData

/// The test pattern of the PIL reference values: (x·37 + y·91 + c·53 + ((x·y) mod 17)·5) mod 256.
func referencePattern(width: Int, height: Int) -> DecodedImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<3 { pixels[(y * width + x) * 3 + c] = UInt8((x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 5) % 256) }
        }
    }
    return DecodedImage(width: width, height: height, pixels: pixels)
}

func constantImage(width: Int, height: Int, rgb: (UInt8, UInt8, UInt8)) -> DecodedImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for p in 0..<(width * height) { pixels[3 * p] = rgb.0; pixels[3 * p + 1] = rgb.1; pixels[3 * p + 2] = rgb.2 }
    return DecodedImage(width: width, height: height, pixels: pixels)
}

/// Gradient images whose content and size depend on the index; label = index mod classes.
final class PatternSource: DataSource, @unchecked Sendable {
    let count: Int
    let classes: Int
    let size: @Sendable (Int) -> (width: Int, height: Int)

    init(count: Int, classes: Int = 4, size: @escaping @Sendable (Int) -> (width: Int, height: Int) = { i in (40 + (i % 5) * 7, 36 + (i % 3) * 5) }) {
        self.count = count
        self.classes = classes
        self.size = size
    }

    var classNames: [String] { (0..<classes).map { "class\($0)" } }
    func label(_ index: Int) -> Int { index % classes }
    func sampleName(_ index: Int) -> String { "pattern #\(index)" }

    func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        let (w, h) = size(index)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let p = (y * w + x) * 3
                pixels[p] = UInt8((x * 255) / max(1, w - 1))
                pixels[p + 1] = UInt8((y * 255) / max(1, h - 1))
                pixels[p + 2] = UInt8((index * 29 + x * 3 + y * 5) % 256)
            }
        }
        return DecodedImage(width: w, height: h, pixels: pixels)
    }
}

/// A pattern source whose chosen samples cannot be read (a `DataError`), or throw another error.
final class FailingSource: DataSource, @unchecked Sendable {
    let base: PatternSource
    let failing: Set<Int>
    let fatal: Set<Int>

    struct Fatal: Error {}

    init(base: PatternSource, failing: Set<Int>, fatal: Set<Int> = []) {
        self.base = base
        self.failing = failing
        self.fatal = fatal
    }

    var count: Int { base.count }
    var classNames: [String] { base.classNames }
    func label(_ index: Int) -> Int { base.label(index) }
    func sampleName(_ index: Int) -> String { base.sampleName(index) }

    func image(at index: Int, targetSize: Int?) throws -> DecodedImage {
        if failing.contains(index) { throw DataError(path: sampleName(index), reason: "corrupt data") }
        if fatal.contains(index) { throw Fatal() }
        return try base.image(at: index, targetSize: targetSize)
    }
}

import Foundation
import DTrainCore

/// torchvision's `RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)` on the
/// normalised float HWC sample, after `Normalize` as in `ClassificationPresetTrain`.
///
/// Randomness: the draws come from the sample's `SeededRandom` (see
/// `ImageTransform.random(seed:epoch:index:)`) after every other draw of its transform, so erasing
/// is reproducible across ranks, workers and resumes with no state to save.
public struct RandomErasing: Equatable, Sendable {
    /// Probability of erasing a sample, in [0, 1].
    public var probability: Double
    public var scale: ClosedRange<Double> = 0.02...0.33
    public var ratio: ClosedRange<Double> = 0.3...3.3
    /// The value erased pixels get (in normalised units).
    public var value: Float = 0

    public init(probability: Double) {
        precondition((0...1).contains(probability), "RandomErasing probability must be in [0, 1]")
        self.probability = probability
    }

    /// torchvision's `RandomErasing.get_params` for a `width × height` image: up to 10 tries of
    /// area = A·U(scale) and a log-uniform aspect ratio, h = round(√(area·ratio)),
    /// w = round(√(area/ratio)) (half to even), accepted when h < H and w < W, then
    /// top = randint(0, H − h), left = randint(0, W − w) inclusive; nil (nothing erased) when no
    /// try fits.
    public static func box(width: Int, height: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
                           random: inout SeededRandom) -> CropBox? {
        let area = Double(width * height)
        let logLow = Foundation.log(ratio.lowerBound), logHigh = Foundation.log(ratio.upperBound)
        for _ in 0..<10 {
            let eraseArea = area * random.uniform(scale.lowerBound, scale.upperBound)
            let aspect = Foundation.exp(random.uniform(logLow, logHigh))
            let h = Int((eraseArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let w = Int((eraseArea / aspect).squareRoot().rounded(.toNearestOrEven))
            guard h < height && w < width else { continue }
            let top = random.int(below: height - h + 1)
            let left = random.int(below: width - w + 1)
            return CropBox(top: top, left: left, height: h, width: w)
        }
        return nil
    }

    /// `F.erase(img, i, j, h, w, value)` on `width × height × 3` floats (HWC).
    public func erase(_ box: CropBox, in pixels: UnsafeMutablePointer<Float>, width: Int, height: Int) {
        precondition(box.top >= 0 && box.left >= 0 && box.top + box.height <= height && box.left + box.width <= width,
                     "\(box) outside the \(width)x\(height) image")
        for y in box.top..<(box.top + box.height) {
            (pixels + 3 * (y * width + box.left)).update(repeating: value, count: 3 * box.width)
        }
    }

    /// With probability `probability`, erases a random box of the sample (HWC floats).
    public func apply(to pixels: UnsafeMutablePointer<Float>, width: Int, height: Int, random: inout SeededRandom) {
        guard probability > 0, random.uniform() < probability else { return }
        if let box = RandomErasing.box(width: width, height: height, scale: scale, ratio: ratio, random: &random) {
            erase(box, in: pixels, width: width, height: height)
        }
    }
}

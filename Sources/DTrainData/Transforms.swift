import Foundation
import DTrainCore

/// A crop rectangle in pixels, named as torchvision's `(i, j, h, w)`.
public struct CropBox: Equatable, Sendable, CustomStringConvertible {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    /// A box at (`top`, `left`) of `width × height` pixels.
    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }

    public var description: String { "crop(top \(top), left \(left), \(width)x\(height))" }
}

/// One sample's augmentation and normalisation, with torchvision's semantics, from a decoded
/// 8-bit RGB image straight to normalised float32 HWC memory.
///
/// A transform is a geometry (see `Geometry`), then a random horizontal flip, then
/// `ToTensor` + `Normalize(mean, std)`. All of it runs as one fused resampling pass
/// (`ResamplePlan`), so every output float is computed once from the source pixels.
///
/// With an `augmentation` (torchvision's `ClassificationPresetTrain` order): the geometry and flip
/// are resampled to a uint8 image at output size (rounded to nearest, as PIL's uint8 output),
/// the auto-augment policy works on that image, then `Normalize`, then `RandomErasing` on the
/// floats. An erasing alone keeps the fused pass and erases its output. Without augmentation the
/// fused pass is unchanged.
///
/// Randomness: the draws for a sample come from `ImageTransform.random(seed:epoch:index:)`,
/// a `SeededRandom` keyed by (seed, epoch, dataset index) — deliberately not by rank — so a sample
/// is augmented the same way whichever rank or worker thread loads it. Runs with 1 and 2 ranks
/// therefore see identical augmented samples, and results never depend on thread timing.
public struct ImageTransform: Equatable, Sendable {
    /// The geometric part of a transform.
    public enum Geometry: Equatable, Sendable {
        /// torchvision `RandomResizedCrop(size, scale, ratio)` (the transform's interpolation).
        case randomResizedCrop(size: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>)
        /// torchvision `Resize(resize)` (shorter side to `resize`) then `CenterCrop(crop)`.
        /// With `resize == crop` and a `crop × crop` input this is the identity.
        case resizeCenterCrop(resize: Int, crop: Int)
        /// torchvision `RandomCrop(size, padding)` (zero padding). An input that is not
        /// `size × size` is first brought to it with `Resize(size)` + `CenterCrop(size)`.
        case paddedRandomCrop(size: Int, padding: Int)
    }

    public var geometry: Geometry
    /// Probability of a horizontal flip (torchvision `RandomHorizontalFlip(p)`); 0 = no flip and
    /// no random draw.
    public var flipProbability: Double
    /// Per-channel mean and standard deviation (R, G, B) of `Normalize`, for values in [0, 1].
    public var mean: [Float]
    public var std: [Float]
    /// The filter of every resize in the geometry (torchvision's `interpolation`).
    public var interpolation: Interpolation
    /// Auto-augment and random erasing after the flip (none by default).
    public var augmentation = Augmentation()

    /// A transform; `mean` and `std` have three entries (R, G, B).
    public init(geometry: Geometry, flipProbability: Double = 0, mean: [Float], std: [Float],
                interpolation: Interpolation = .bilinear) {
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 channels")
        precondition(std.allSatisfy { $0 > 0 }, "std must be positive")
        switch geometry {
        case let .randomResizedCrop(size, scale, ratio):
            precondition(size > 0 && scale.lowerBound > 0 && ratio.lowerBound > 0, "bad RandomResizedCrop parameters")
        case let .resizeCenterCrop(resize, crop):
            precondition(resize > 0 && crop > 0, "bad Resize/CenterCrop sizes")
        case let .paddedRandomCrop(size, padding):
            precondition(size > 0 && padding >= 0, "bad RandomCrop parameters")
        }
        self.geometry = geometry
        self.flipProbability = flipProbability
        self.mean = mean
        self.std = std
        self.interpolation = interpolation
    }

    /// Side of the square output.
    public var outputSize: Int {
        switch geometry {
        case let .randomResizedCrop(size, _, _): return size
        case let .resizeCenterCrop(_, crop): return crop
        case let .paddedRandomCrop(size, _): return size
        }
    }

    /// Floats one output sample takes: `outputSize² × 3`.
    public var outputFloats: Int { outputSize * outputSize * 3 }

    /// The smallest side this transform resamples to, passed to `DataSource.image(at:targetSize:)`
    /// so a decoder may scale down while decoding: the crop size for a random-resized crop (a
    /// training augmentation, where decode-time scaling is a speed trade), nil (full resolution)
    /// for the evaluation geometry, which must match torchvision's full decode + resize to the
    /// pixel, and for the padded crop.
    public var targetSize: Int? {
        switch geometry {
        case let .randomResizedCrop(size, _, _): return size
        case .resizeCenterCrop, .paddedRandomCrop: return nil
        }
    }

    /// The generator for sample `index` in `epoch`: `SeededRandom(keys: seed, epoch, index)`.
    public static func random(seed: UInt64, epoch: Int, index: Int) -> SeededRandom {
        SeededRandom(keys: seed, UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(index)))
    }

    /// The generator for repeat `repetition` of sample `index` in `epoch` (repeated augmentation,
    /// `RepeatedAugmentationSampler`): repeat 0 is `random(seed:epoch:index:)`, repeat k > 0
    /// `SeededRandom(keys: seed, epoch, index, k)`, so each repeat of a sample is augmented differently.
    public static func random(seed: UInt64, epoch: Int, index: Int, repetition: Int) -> SeededRandom {
        guard repetition != 0 else { return random(seed: seed, epoch: epoch, index: index) }
        return SeededRandom(keys: seed, UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(index)),
                            UInt64(bitPattern: Int64(repetition)))
    }

    /// Draws this transform's random parameters for a `width × height` image, in torchvision's
    /// order (crop parameters, then the flip), and returns the fused plan.
    public func plan(width: Int, height: Int, random: inout SeededRandom) -> ResamplePlan {
        precondition(width > 0 && height > 0, "empty image")
        var plan: ResamplePlan
        switch geometry {
        case let .randomResizedCrop(size, scale, ratio):
            let box = ImageTransform.randomResizedCropBox(width: width, height: height, scale: scale, ratio: ratio, random: &random)
            plan = ResamplePlan(
                x: .init(sourceStart: box.left, sourceLength: box.width, resizedLength: size),
                y: .init(sourceStart: box.top, sourceLength: box.height, resizedLength: size),
                outputWidth: size, outputHeight: size)
        case let .resizeCenterCrop(resize, crop):
            plan = ImageTransform.resizeCenterCropPlan(width: width, height: height, resize: resize, crop: crop)
        case let .paddedRandomCrop(size, padding):
            if width == size && height == size {
                plan = ResamplePlan(x: .identity(size), y: .identity(size), outputWidth: size, outputHeight: size)
            } else {
                plan = ImageTransform.resizeCenterCropPlan(width: width, height: height, resize: size, crop: size)
            }
            // The size × size image above, zero-padded by `padding`, then cropped at (i, j).
            let (i, j) = ImageTransform.paddedCropOffsets(size: size, padding: padding, random: &random)
            plan.x.pad(size: size, shift: j - padding)
            plan.y.pad(size: size, shift: i - padding)
        }
        if flipProbability > 0 { plan.flip = random.uniform() < flipProbability }
        plan.interpolation = interpolation
        return plan
    }

    /// Transforms `image` into `outputSize² × 3` normalised floats (HWC) at `destination`, drawing
    /// from `random`: the crop and flip, then the augmentation's policy and erasing, in that order.
    public func apply(_ image: DecodedImage, random: inout SeededRandom,
                      into destination: UnsafeMutablePointer<Float>, scratch: ResampleScratch) {
        let plan = plan(width: image.width, height: image.height, random: &random)
        let s0 = 1 / (255 * std[0]), s1 = 1 / (255 * std[1]), s2 = 1 / (255 * std[2])
        let bias = (-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2])
        guard !augmentation.isNone else {
            plan.execute(image, scale: (s0, s1, s2), bias: bias, into: destination, scratch: scratch)
            return
        }
        if let policy = augmentation.policy {
            // The uint8 image at output size, augmented, then ToTensor + Normalize.
            let pixels = scratch.augment.image(.image, width: plan.outputWidth, height: plan.outputHeight)
            plan.execute(image, scale: (1, 1, 1), bias: (0, 0, 0), into: destination, scratch: scratch)
            ImageTransform.round(destination, into: pixels)
            policy.apply(to: pixels, random: &random, scratch: scratch.augment, mix: destination)
            ImageTransform.normalize(pixels, scale: (s0, s1, s2), bias: bias, into: destination)
        } else {
            plan.execute(image, scale: (s0, s1, s2), bias: bias, into: destination, scratch: scratch)
        }
        augmentation.erasing?.apply(to: destination, width: plan.outputWidth, height: plan.outputHeight, random: &random)
    }

    /// Resampled values (0...255 floats) to uint8, rounded half up and clipped, as PIL writes its
    /// resized uint8 images.
    static func round(_ values: UnsafePointer<Float>, into image: RGB8Image) {
        for k in 0..<image.count { image.pixels[k] = UInt8(min(max((values[k] + 0.5).rounded(.down), 0), 255)) }
    }

    /// `Normalize(mean, std)(ToTensor(image))` as `value × scale[c] + bias[c]`, the fused pass's
    /// arithmetic, into HWC floats.
    static func normalize(_ image: RGB8Image, scale: (Float, Float, Float), bias: (Float, Float, Float),
                          into destination: UnsafeMutablePointer<Float>) {
        let p = image.pixels
        for i in 0..<(image.width * image.height) {
            destination[3 * i] = Float(p[3 * i]) * scale.0 + bias.0
            destination[3 * i + 1] = Float(p[3 * i + 1]) * scale.1 + bias.1
            destination[3 * i + 2] = Float(p[3 * i + 2]) * scale.2 + bias.2
        }
    }

    /// Transforms sample `index` of `epoch` with the draws of `random(seed:epoch:index:)`.
    public func apply(_ image: DecodedImage, seed: UInt64, epoch: Int, index: Int,
                      into destination: UnsafeMutablePointer<Float>, scratch: ResampleScratch) {
        var random = ImageTransform.random(seed: seed, epoch: epoch, index: index)
        apply(image, random: &random, into: destination, scratch: scratch)
    }
}

extension ResamplePlan.Axis {
    /// Treats the `size` outputs at the current offset as an image, zero-pads it and moves the
    /// window by `shift`: samples that fall outside that image become padding.
    mutating func pad(size: Int, shift: Int) {
        valid = max(offset, valid.lowerBound, 0)..<min(offset + size, valid.upperBound, resizedLength)
        offset += shift
    }
}

// MARK: - torchvision's geometry rules

extension ImageTransform {
    /// torchvision `RandomResizedCrop.get_params`: up to 10 tries of area = A·U(scale) and a
    /// log-uniform aspect ratio, w = round(√(area·ratio)), h = round(√(area/ratio)) (Python's
    /// round half to even), accepted when 0 < w ≤ W and 0 < h ≤ H, then top = randint(0, H−h),
    /// left = randint(0, W−w) inclusive. Otherwise the centre crop with the aspect ratio clamped to
    /// the range (the whole image when it is already inside it).
    public static func randomResizedCropBox(width: Int, height: Int, scale: ClosedRange<Double>,
                                            ratio: ClosedRange<Double>, random: inout SeededRandom) -> CropBox {
        let area = Double(width * height)
        let logLow = Foundation.log(ratio.lowerBound), logHigh = Foundation.log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * random.uniform(scale.lowerBound, scale.upperBound)
            let aspect = Foundation.exp(random.uniform(logLow, logHigh))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let top = random.int(below: height - h + 1)
                let left = random.int(below: width - w + 1)
                return CropBox(top: top, left: left, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return CropBox(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }

    /// torchvision `Resize(size)` with an int size: the shorter side becomes `shorter`, the longer
    /// `int(shorter · long / short)` (truncated). Returns (width, height).
    public static func resizedSize(width: Int, height: Int, shorter: Int) -> (width: Int, height: Int) {
        let short = min(width, height), long = max(width, height)
        let newLong = Int(Double(shorter * long) / Double(short))
        return width <= height ? (shorter, newLong) : (newLong, shorter)
    }

    /// torchvision `CenterCrop` offset along one axis of length `length`: `int(round((length −
    /// crop) / 2.0))` (round half to even). When the crop is larger, torchvision pads by
    /// `(crop − length) // 2` before and the result is that padding, negated.
    public static func centerCropOffset(length: Int, crop: Int) -> Int {
        if crop > length { return -((crop - length) / 2) }
        return Int((Double(length - crop) / 2.0).rounded(.toNearestOrEven))
    }

    /// torchvision `RandomCrop(size, padding).get_params` on the padded `size + 2·padding` square:
    /// (top, left), each in 0...2·padding; no draw when there is no padding.
    public static func paddedCropOffsets(size: Int, padding: Int, random: inout SeededRandom) -> (top: Int, left: Int) {
        if padding == 0 { return (0, 0) }
        let top = random.int(below: 2 * padding + 1)
        let left = random.int(below: 2 * padding + 1)
        return (top, left)
    }

    /// The plan of `Resize(resize)` + `CenterCrop(crop)` for a `width × height` image.
    public static func resizeCenterCropPlan(width: Int, height: Int, resize: Int, crop: Int) -> ResamplePlan {
        let (nw, nh) = resizedSize(width: width, height: height, shorter: resize)
        return ResamplePlan(
            x: .init(sourceStart: 0, sourceLength: width, resizedLength: nw, offset: centerCropOffset(length: nw, crop: crop)),
            y: .init(sourceStart: 0, sourceLength: height, resizedLength: nh, offset: centerCropOffset(length: nh, crop: crop)),
            outputWidth: crop, outputHeight: crop)
    }
}

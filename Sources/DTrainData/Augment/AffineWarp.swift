import Foundation

/// How the geometric augmentation ops sample the source image (torchvision's
/// `InterpolationMode.NEAREST` and `BILINEAR`, the two its tensor ops support).
public enum AffineInterpolation: String, CaseIterable, Equatable, Sendable {
    case nearest, bilinear
}

/// A 2×3 affine map `(x, y) ↦ (m0·x + m1·y + m2, m3·x + m4·y + m5)`, torchvision's flat
/// `matrix` list.
public struct AffineMatrix: Equatable, Sendable {
    public var m0, m1, m2, m3, m4, m5: Double

    public init(_ m0: Double, _ m1: Double, _ m2: Double, _ m3: Double, _ m4: Double, _ m5: Double) {
        (self.m0, self.m1, self.m2, self.m3, self.m4, self.m5) = (m0, m1, m2, m3, m4, m5)
    }
}

extension ImageOps {
    /// torchvision's `_get_inverse_affine_matrix(center, angle, translate, scale, shear)`, in
    /// double precision and in its order of operations: the matrix that maps an output pixel's
    /// coordinates (relative to the image centre) to the source coordinates. Angles in degrees.
    public static func inverseAffineMatrix(center: (Double, Double), angle: Double, translate: (Double, Double),
                                           scale: Double, shear: (Double, Double)) -> AffineMatrix {
        let rot = radians(angle), sx = radians(shear.0), sy = radians(shear.1)
        let (cx, cy) = center, (tx, ty) = translate
        let a = cos(rot - sy) / cos(sy)
        let b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot)
        let c = sin(rot - sy) / cos(sy)
        let d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot)
        var m = AffineMatrix(d / scale, -b / scale, 0.0 / scale, -c / scale, a / scale, 0.0 / scale)
        m.m2 += m.m0 * (-cx - tx) + m.m1 * (-cy - ty)
        m.m5 += m.m3 * (-cx - tx) + m.m4 * (-cy - ty)
        m.m2 += cx
        m.m5 += cy
        return m
    }

    /// Python's `math.radians` and `math.degrees`.
    static func radians(_ degrees: Double) -> Double { degrees * (Double.pi / 180) }
    static func degrees(_ radians: Double) -> Double { radians * (180 / Double.pi) }

    /// torchvision's tensor `affine` with `fill=None`: each output pixel's centre, relative to the
    /// image centre, is mapped by `matrix` (from `inverseAffineMatrix`) into the source, normalised
    /// and sampled as `grid_sample(mode, padding_mode="zeros", align_corners=False)` does, in
    /// float32: nearest rounds half to even and gives 0 outside; bilinear weighs the four
    /// neighbours, those outside counting 0. The float result is rounded half to even to uint8.
    /// `source` and `destination` are distinct images of the same size.
    public static func warp(_ source: RGB8Image, into destination: RGB8Image, matrix m: AffineMatrix, interpolation: AffineInterpolation) {
        precondition(source.width == destination.width && source.height == destination.height && source.pixels != destination.pixels,
                     "warp needs a distinct destination of the same size")
        let w = source.width, h = source.height
        // torchvision's grid: theta (float32) divided by the half-size, applied to the output
        // pixel centres, then grid_sample's unnormalisation (g + 1)·size/2 − 0.5.
        let halfW = Float(0.5 * Double(w)), halfH = Float(0.5 * Double(h))
        let r00 = Float(m.m0) / halfW, r10 = Float(m.m1) / halfW, r20 = Float(m.m2) / halfW
        let r01 = Float(m.m3) / halfH, r11 = Float(m.m4) / halfH, r21 = Float(m.m5) / halfH
        let scaleX = Float(w) / 2, scaleY = Float(h) / 2
        let src = source.pixels, dst = destination.pixels
        for i in 0..<h {
            let y = Float(Double(i) - Double(h) * 0.5 + 0.5)
            for j in 0..<w {
                let x = Float(Double(j) - Double(w) * 0.5 + 0.5)
                let gx = x * r00 + y * r10 + r20
                let gy = x * r01 + y * r11 + r21
                let ix = (gx + 1) * scaleX - 0.5
                let iy = (gy + 1) * scaleY - 0.5
                let out = dst + 3 * (i * w + j)
                switch interpolation {
                case .nearest:
                    let nx = ix.rounded(.toNearestOrEven), ny = iy.rounded(.toNearestOrEven)
                    if nx >= 0 && nx < Float(w) && ny >= 0 && ny < Float(h) {
                        let p = src + 3 * (Int(ny) * w + Int(nx))
                        out[0] = p[0]; out[1] = p[1]; out[2] = p[2]
                    } else {
                        out[0] = 0; out[1] = 0; out[2] = 0
                    }
                case .bilinear:
                    guard ix.isFinite && iy.isFinite && ix > -2 && iy > -2 && ix < Float(w) + 1 && iy < Float(h) + 1 else {
                        out[0] = 0; out[1] = 0; out[2] = 0
                        continue
                    }
                    let fx = ix.rounded(.down), fy = iy.rounded(.down)
                    let tw = ix - fx, te = 1 - tw, tn = iy - fy, ts = 1 - tn
                    let nw = ts * te, ne = ts * tw, sw = tn * te, se = tn * tw
                    let x0 = Int(fx), y0 = Int(fy)
                    let inX0 = x0 >= 0 && x0 < w, inX1 = x0 + 1 >= 0 && x0 + 1 < w
                    let inY0 = y0 >= 0 && y0 < h, inY1 = y0 + 1 >= 0 && y0 + 1 < h
                    for c in 0..<3 {
                        let vnw: Float = inX0 && inY0 ? Float(src[3 * (y0 * w + x0) + c]) : 0
                        let vne: Float = inX1 && inY0 ? Float(src[3 * (y0 * w + x0 + 1) + c]) : 0
                        let vsw: Float = inX0 && inY1 ? Float(src[3 * ((y0 + 1) * w + x0) + c]) : 0
                        let vse: Float = inX1 && inY1 ? Float(src[3 * ((y0 + 1) * w + x0 + 1) + c]) : 0
                        let v = vnw * nw + vne * ne + vsw * sw + vse * se
                        out[c] = UInt8(min(max(v.rounded(.toNearestOrEven), 0), 255))
                    }
                }
            }
        }
    }

    /// torchvision's `ShearX` with magnitude m: `F.affine(shear=[degrees(atan(m)), 0],
    /// center=[0, 0])`, i.e. about the top-left corner.
    public static func shearX(_ image: RGB8Image, magnitude: Double, interpolation: AffineInterpolation, spare: RGB8Image) {
        let center = (-Double(image.width) * 0.5, -Double(image.height) * 0.5)
        let matrix = inverseAffineMatrix(center: center, angle: 0, translate: (0, 0), scale: 1,
                                         shear: (degrees(atan(magnitude)), 0))
        image.copy(to: spare)
        warp(spare, into: image, matrix: matrix, interpolation: interpolation)
    }

    /// torchvision's `ShearY`: as `shearX`, along y.
    public static func shearY(_ image: RGB8Image, magnitude: Double, interpolation: AffineInterpolation, spare: RGB8Image) {
        let center = (-Double(image.width) * 0.5, -Double(image.height) * 0.5)
        let matrix = inverseAffineMatrix(center: center, angle: 0, translate: (0, 0), scale: 1,
                                         shear: (0, degrees(atan(magnitude))))
        image.copy(to: spare)
        warp(spare, into: image, matrix: matrix, interpolation: interpolation)
    }

    /// torchvision's `TranslateX`/`TranslateY`: `F.affine(translate=[dx, dy])` by whole pixels,
    /// the magnitude truncated toward zero (`int(magnitude)`).
    public static func translate(_ image: RGB8Image, dx: Int, dy: Int, interpolation: AffineInterpolation, spare: RGB8Image) {
        let matrix = inverseAffineMatrix(center: (0, 0), angle: 0, translate: (Double(dx), Double(dy)), scale: 1, shear: (0, 0))
        image.copy(to: spare)
        warp(spare, into: image, matrix: matrix, interpolation: interpolation)
    }

    /// `F.rotate(img, degrees)` about the image centre, counter-clockwise, same size (no expand).
    public static func rotate(_ image: RGB8Image, degrees angle: Double, interpolation: AffineInterpolation, spare: RGB8Image) {
        let matrix = inverseAffineMatrix(center: (0, 0), angle: -angle, translate: (0, 0), scale: 1, shear: (0, 0))
        image.copy(to: spare)
        warp(spare, into: image, matrix: matrix, interpolation: interpolation)
    }
}

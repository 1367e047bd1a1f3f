/// The arithmetic of convolutions and linear layers (`--precision`), with PyTorch's CPU autocast
/// semantics for bf16: their inputs, weights and output gradients are rounded to bfloat16 (round
/// to nearest even) before they are multiplied, products accumulate in float32, and everything
/// else (master weights, optimizer state, BatchNorm statistics, loss, softmax, the gradient
/// allreduce unless `--allreduce-dtype bf16`) stays float32. Checkpoints are float32 either way.
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32
    case bf16

    /// The CPU extension bf16 training is made for (bf16 dot products with float32 accumulation).
    public static let bf16Extension = "avx512_bf16"

    /// Checks this CPU may run the precision: bf16 needs AVX512_BF16, unless `emulated` (results
    /// are the same; the bf16 arithmetic runs in float32 kernels, slower than fp32). `source` names
    /// the setting in the error.
    public func check(emulated: Bool, source: String = "--precision") throws {
        guard self == .bf16, !emulated, !KernelSet.cpuHasBF16 else { return }
        throw PrecisionError(message: "\(source) bf16: this CPU lacks \(Precision.bf16Extension) (bf16 dot products); "
                             + "use --precision fp32, or set DTRAIN_BF16_EMULATION=1 for bf16 results in float32 kernels")
    }

    /// The value of `--precision`: fp32 or bf16.
    public static func parse(_ value: String, source: String = "--precision") throws -> Precision {
        guard let precision = Precision(rawValue: value) else {
            throw PrecisionError(message: "\(source) \(value): expected fp32 or bf16")
        }
        return precision
    }
}

/// A `--precision` value that names no precision, or one this CPU cannot run.
public struct PrecisionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Rounds float32 `x` to the nearest bfloat16 (ties to even), as PyTorch's `.bfloat16()`: the
/// result is a float32 whose low 16 bits are zero. A NaN keeps its sign and high payload and
/// becomes quiet, as VCVTNEPS2BF16 and CDTrainKernels' bf16 packing do (PyTorch writes 0xFFFF).
@inlinable @inline(__always)
public func roundedToBFloat16(_ x: Float) -> Float {
    if x.isNaN { return Float(bitPattern: (x.bitPattern | 0x0040_0000) & 0xFFFF_0000) }
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// `roundedToBFloat16` on eight lanes.
@inlinable @inline(__always)
public func roundedToBFloat16(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
    var rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) & 0xFFFF_0000
    rounded.replace(with: (bits | 0x0040_0000) & 0xFFFF_0000, where: v .!= v)
    return unsafeBitCast(rounded, to: SIMD8<Float>.self)
}

/// y[i] = roundedToBFloat16(x[i]) for `count` floats, split across the thread pool.
public func roundToBFloat16(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    parallelFor(count, minChunk: 16384) { range in
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: roundedToBFloat16(v), as: SIMD8<Float>.self)
            i += 8
        }
        while i < end { y[i] = roundedToBFloat16(x[i]); i += 1 }
    }
}

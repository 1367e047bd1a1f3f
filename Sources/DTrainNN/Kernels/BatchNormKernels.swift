import CDTrainKernels
import DTrainCore

/// CDTrainKernels' BatchNorm passes (dtrain_batch_norm.h) in one kernel set's variant (its
/// `table`). Every
/// variant computes the same values bit for bit; the set only decides the vector width.
struct BatchNormKernels {
    let kernels: KernelSet

    /// The activation a pass applies to the normalised values (DTRAIN_BN_*): none, a ReLU, or a
    /// ReLU6 (clamped to [0, 6]).
    enum Activation: Int {
        case none = 0, relu = 1, relu6 = 2

        /// The activation that clamps to [0, upper]: a ReLU (upper +∞) or a ReLU6 (6); nil for
        /// any other bound, which the passes do not apply.
        init?(clampingAt upper: Float) {
            switch upper {
            case .infinity: self = .relu
            case 6: self = .relu6
            default: return nil
            }
        }
    }

    /// How a pass reads a BatchNorm's input.
    enum Input {
        /// float32 values.
        case float32(UnsafePointer<Float>)
        /// float32 values rounded to bf16 as they are read (a bf16 convolution's output, as
        /// autocast returns it).
        case rounded(UnsafePointer<Float>)
        /// bf16 values (a `BF16Copy`), widened exactly.
        case bf16(UnsafePointer<UInt16>)

        /// Element i as the passes read it (their scalar form, operand_scalar).
        func load(_ i: Int) -> Float {
            switch self {
            case .float32(let p): return p[i]
            case .rounded(let p): return roundedToBFloat16(p[i])
            case .bf16(let p): return Float(bitPattern: UInt32(p[i]) << 16)
            }
        }
    }

    /// Rows `rows` of `input`, `channels` per row, with per-channel normalisation
    /// (x − mean)·scale + shift and a fused `activation`; for `normalize`, a residual block's
    /// shortcut added before the ReLU and the ReLU's mask (channels a multiple of 8), when given;
    /// for `inputGradient`, whether dx is written rounded to bf16.
    static func rows(_ input: Input, channels: Int, rows: Range<Int>, mean: UnsafePointer<Float>,
                     scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, activation: Activation,
                     addend: UnsafePointer<Float>? = nil, mask: UnsafeMutablePointer<UInt8>? = nil,
                     roundsInputGradient: Bool = false) -> dtrain_bn_rows {
        let (pointer, kind): (UnsafeRawPointer, Int) = {
            switch input {
            case .float32(let p): return (UnsafeRawPointer(p), DTRAIN_BN_FLOAT32)
            case .rounded(let p): return (UnsafeRawPointer(p), DTRAIN_BN_ROUNDED)
            case .bf16(let p): return (UnsafeRawPointer(p), DTRAIN_BN_BF16)
            }
        }()
        return dtrain_bn_rows(x: pointer, input: kind, channels: channels, first_row: rows.lowerBound,
                              row_count: rows.count, mean: mean, scale: scale, shift: shift, relu: activation.rawValue,
                              addend: addend, mask: mask, rounds_dx: roundsInputGradient ? 1 : 0)
    }

    /// sums[c] = Σ (x − pivot[c]), sums[C + c] = Σ (x − pivot[c])² over the rows.
    func sums(_ r: dtrain_bn_rows, pivot: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Double>) {
        var r = r
        kernels.table.bn_sums(&r, pivot, sums)
    }

    /// y = the normalised rows, and x's bf16 bits into `save` when given.
    func normalize(_ r: dtrain_bn_rows, into y: UnsafeMutablePointer<Float>, save: UnsafeMutablePointer<UInt16>?) {
        var r = r
        kernels.table.bn_normalize(&r, y, save)
    }

    /// sums[c] = Σ d, sums[C + c] = Σ d·(x − mean[c]), d = dy masked by a fused ReLU.
    func gradientSums(_ r: dtrain_bn_rows, dy: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Double>) {
        var r = r
        kernels.table.bn_gradient_sums(&r, dy, sums)
    }

    /// dx = d·a + (x − mean)·slope + offset, d = dy masked by a fused ReLU.
    func inputGradient(_ r: dtrain_bn_rows, dy: UnsafePointer<Float>, a: UnsafePointer<Float>, slope: UnsafePointer<Float>,
                       offset: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        var r = r
        kernels.table.bn_input_gradient(&r, dy, a, slope, offset, dx)
    }
}

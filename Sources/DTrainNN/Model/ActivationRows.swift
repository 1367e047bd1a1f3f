import DTrainCore

/// Where a pass reads an activation from, element i of a flat buffer: float32 values, float32
/// values rounded to bf16 as they are read, or bf16 values (a `BF16Copy`) widened as they are
/// read. Passes are generic over it, so each form compiles to its own loop.
protocol ActivationRows {
    func load8(_ i: Int) -> Float8
    func load(_ i: Int) -> Float
}

struct Float32Rows: ActivationRows {
    let pointer: UnsafePointer<Float>
    @inline(__always) func load8(_ i: Int) -> Float8 { DTrainNN.load8(pointer + i) }
    @inline(__always) func load(_ i: Int) -> Float { pointer[i] }
}

/// bf16 activation storage's view of a BatchNorm's input: the convolution's float32 output as
/// autocast's bf16 convolution would have returned it.
struct RoundedRows: ActivationRows {
    let pointer: UnsafePointer<Float>
    @inline(__always) func load8(_ i: Int) -> Float8 { roundedToBFloat16(DTrainNN.load8(pointer + i)) }
    @inline(__always) func load(_ i: Int) -> Float { roundedToBFloat16(pointer[i]) }
}

struct BF16Rows: ActivationRows {
    let pointer: UnsafePointer<UInt16>
    @inline(__always) func load8(_ i: Int) -> Float8 {
        let h = UnsafeRawPointer(pointer + i).loadUnaligned(as: SIMD8<UInt16>.self)
        // Lane by lane: the standard library's generic conversion is not inlined here.
        let wide = SIMD8<UInt32>(UInt32(h[0]), UInt32(h[1]), UInt32(h[2]), UInt32(h[3]),
                                 UInt32(h[4]), UInt32(h[5]), UInt32(h[6]), UInt32(h[7]))
        return unsafeBitCast(wide &<< 16, to: Float8.self)
    }
    @inline(__always) func load(_ i: Int) -> Float { Float(bitPattern: UInt32(pointer[i]) << 16) }
}

/// The bf16 bits of eight values already rounded to bf16 (their low halves are zero).
@inline(__always)
func bf16Bits(ofRounded v: Float8) -> SIMD8<UInt16> {
    let w = unsafeBitCast(v, to: SIMD8<UInt32>.self) &>> 16
    return SIMD8<UInt16>(UInt16(truncatingIfNeeded: w[0]), UInt16(truncatingIfNeeded: w[1]), UInt16(truncatingIfNeeded: w[2]),
                         UInt16(truncatingIfNeeded: w[3]), UInt16(truncatingIfNeeded: w[4]), UInt16(truncatingIfNeeded: w[5]),
                         UInt16(truncatingIfNeeded: w[6]), UInt16(truncatingIfNeeded: w[7]))
}

import DTrainCore

/// Eight floats: the AVX2 register width the elementwise kernels work in.
typealias Float8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 { UnsafeRawPointer(p).loadUnaligned(as: Float8.self) }

@inline(__always)
func load8(_ p: UnsafeMutablePointer<Float>) -> Float8 { UnsafeRawPointer(p).loadUnaligned(as: Float8.self) }

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self) }

/// max(v, 0) per lane, keeping NaN (as Swift's max(x, 0) and torch.relu).
@inline(__always)
func relu8(_ v: Float8) -> Float8 { v.replacing(with: 0, where: v .<= 0) }

/// Runs `vector` on each whole group of eight elements of `range` and `scalar` on the rest, the
/// elements a thread chunk of an elementwise pass owns. Vector and scalar forms must compute the
/// same per-element function.
@inline(__always)
func forEightAndRest(_ range: Range<Int>, vector: (Int) -> Void, scalar: (Int) -> Void) {
    var i = range.lowerBound
    let end = range.upperBound
    while i + 8 <= end { vector(i); i += 8 }
    while i < end { scalar(i); i += 1 }
}

/// Splits `0..<count` elements across the pool in chunks of at least `minChunk` and runs an
/// eight-wide kernel over them (see `forEightAndRest`).
@inline(__always)
func elementwise(_ count: Int, minChunk: Int = 16384, vector: (Int) -> Void, scalar: (Int) -> Void) {
    parallelFor(count, minChunk: minChunk) { r in forEightAndRest(r, vector: vector, scalar: scalar) }
}

/// Vectors of any width at unaligned addresses.
@inline(__always)
func load<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
func load<V: SIMD>(_ p: UnsafeMutablePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}

import DTrainCore
import CDTrainKernels

/// The element type gradients travel in during the allreduce (`--allreduce-dtype`).
///
/// `bf16` halves the bytes sent, as PyTorch DDP's `bf16_compress_hook`: each rank divides its
/// gradients by the number of ranks and rounds them to bf16; the allreduce adds them in float32,
/// rounding each partial sum to bf16; every rank widens the result back into its float32
/// gradients. The optimizer, master weights and everything after the allreduce stay float32.
public enum AllreduceDType: String, CaseIterable, Codable, Sendable {
    case fp32
    case bf16

    /// The value of `--allreduce-dtype`: fp32 or bf16.
    public static func parse(_ value: String, source: String = "--allreduce-dtype") throws -> AllreduceDType {
        guard let dtype = AllreduceDType(rawValue: value) else {
            throw PrecisionError(message: "\(source) \(value): expected fp32 or bf16")
        }
        return dtype
    }

    /// Bytes one gradient element takes on the wire.
    public var bytesPerElement: Int { self == .bf16 ? 2 : 4 }
}

/// How gradient buckets travel in the allreduce, the one place both synchronizers take it from:
/// in fp32, a bucket's gradients are summed in place and then scaled by 1/ranks; in bf16, they are
/// scaled and rounded into `BF16GradientStaging`, the staging is summed, and widened back.
final class BucketTransfer {
    let dtype: AllreduceDType
    private let grads: UnsafeMutablePointer<Float>
    private let ranges: [Range<Int>]
    private let scale: Float
    private let staging: BF16GradientStaging?

    init(buckets: GradientBuckets, grads: UnsafeMutablePointer<Float>, ranks: Int, dtype: AllreduceDType) {
        self.dtype = dtype
        self.grads = grads
        ranges = buckets.ranges
        scale = 1 / Float(ranks)
        staging = dtype == .bf16 ? BF16GradientStaging(buckets: buckets, grads: grads) : nil
    }

    /// What bucket `i`'s allreduce sums (in place), ready to send: its `count` elements of `type`.
    func prepare(_ i: Int) -> (buffer: UnsafeMutableRawPointer, count: Int, type: CollectiveType) {
        guard let staging else { return (UnsafeMutableRawPointer(grads + ranges[i].lowerBound), ranges[i].count, .float32) }
        staging.pack(i, scale: scale)
        return (staging.bucket(i), ranges[i].count, .bfloat16)
    }

    /// Bucket `i`'s gradients averaged, once its allreduce is done.
    func finish(_ i: Int) {
        if let staging { staging.unpack(i); return }
        let base = grads + ranges[i].lowerBound, scale = scale
        parallelFor(ranges[i].count, minChunk: 65536) { c in for j in c { base[j] *= scale } }
    }
}

/// The bf16 copy of the gradient buckets that a bf16 allreduce sends: one buffer for all buckets,
/// allocated once (2 bytes per covered gradient), bucket `i` at `offsets[i]`.
final class BF16GradientStaging {
    private let buffer: UnsafeMutablePointer<UInt16>
    private let offsets: [Int]
    private let ranges: [Range<Int>]
    private let grads: UnsafeMutablePointer<Float>

    init(buckets: GradientBuckets, grads: UnsafeMutablePointer<Float>) {
        ranges = buckets.ranges
        var offsets: [Int] = [], total = 0
        for r in ranges { offsets.append(total); total += r.count }
        self.offsets = offsets
        self.grads = grads
        buffer = .allocate(capacity: max(1, total))
    }

    deinit { buffer.deallocate() }

    /// Where bucket `i` travels.
    func bucket(_ i: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(buffer + offsets[i]) }

    /// Bucket `i` of the gradients times `scale`, rounded to bf16 into its staging.
    func pack(_ i: Int, scale: Float) {
        let source = grads + ranges[i].lowerBound, target = buffer + offsets[i]
        parallelFor(ranges[i].count, minChunk: 65536) { c in
            dtrain_bf16_pack_scaled(source + c.lowerBound, scale, target + c.lowerBound, c.count)
        }
    }

    /// Bucket `i`'s staging widened back into the gradients.
    func unpack(_ i: Int) {
        let source = buffer + offsets[i], target = grads + ranges[i].lowerBound
        parallelFor(ranges[i].count, minChunk: 65536) { c in
            dtrain_bf16_unpack(source + c.lowerBound, target + c.lowerBound, c.count)
        }
    }
}

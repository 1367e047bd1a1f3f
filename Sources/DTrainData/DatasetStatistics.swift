import Foundation
import DTrainCore

/// Per-channel statistics of a data source, for choosing `Normalize` constants.
public enum DatasetStatistics {
    /// The exact per-channel mean and (population) standard deviation of all pixels of the
    /// decoded images at full resolution, as values in [0, 1] — every pixel weighs the same, unlike
    /// an average of per-image means.
    ///
    /// Sums of the 8-bit values and of their squares are accumulated in 64-bit integers, which is
    /// exact, so the result is the same for any worker count and order; only the final division
    /// is in Double. With `limit`, `limit` samples evenly spaced over the source are used
    /// (index ⌊i·N/limit⌋), so a class-sorted folder still contributes every class. Unreadable
    /// samples are left out (`images` counts the ones used).
    public static func compute(source: any DataSource, limit: Int? = nil, workers: Int)
        -> (mean: [Double], std: [Double], images: Int, pixels: Int) {
        let n = source.count
        let used = min(n, max(0, limit ?? n))
        let sampleIndex: (Int) -> Int = { i in used == n ? i : Int((Int64(i) * Int64(n)) / Int64(used)) }
        let lock = NSLock()
        var next = 0
        var sum = [UInt64](repeating: 0, count: 3), squares = [UInt64](repeating: 0, count: 3)
        var images = 0, pixels = 0
        let threads = max(1, min(workers, used))
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var s0: UInt64 = 0, s1: UInt64 = 0, s2: UInt64 = 0
            var q0: UInt64 = 0, q1: UInt64 = 0, q2: UInt64 = 0
            var localImages = 0, localPixels = 0
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                if i >= used { break }
                guard let image = try? source.image(at: sampleIndex(i), targetSize: nil) else { continue }
                image.pixels.withUnsafeBufferPointer { px in
                    var p = 0
                    for _ in 0..<(image.width * image.height) {
                        let r = UInt64(px[p]), g = UInt64(px[p + 1]), b = UInt64(px[p + 2])
                        s0 &+= r; s1 &+= g; s2 &+= b
                        q0 &+= r * r; q1 &+= g * g; q2 &+= b * b
                        p += 3
                    }
                }
                localImages += 1
                localPixels += image.width * image.height
            }
            lock.lock()
            sum[0] &+= s0; sum[1] &+= s1; sum[2] &+= s2
            squares[0] &+= q0; squares[1] &+= q1; squares[2] &+= q2
            images += localImages
            pixels += localPixels
            lock.unlock()
        }
        guard pixels > 0 else { return ([0, 0, 0], [0, 0, 0], images, 0) }
        let count = Double(pixels)
        var mean = [Double](), std = [Double]()
        for c in 0..<3 {
            let m = Double(sum[c]) / count
            let variance = max(0, Double(squares[c]) / count - m * m)
            mean.append(m / 255)
            std.append(variance.squareRoot() / 255)
        }
        return (mean, std, images, pixels)
    }
}

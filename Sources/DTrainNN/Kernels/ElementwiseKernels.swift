import CDTrainKernels
import DTrainCore

/// CDTrainKernels' elementwise passes of a residual block (dtrain_elementwise.h) in one kernel
/// set's variant (its `table`), split across the thread pool in whole bytes of a ReLU mask (eight elements).
/// Every variant computes the same values bit for bit; the set only decides the vector width.
struct ElementwiseKernels {
    let kernels: KernelSet

    /// Runs `body(start, count, firstByte)` on chunks of 0..<count that start at multiples of 8.
    @inline(__always)
    private func chunks(_ count: Int, _ body: (Int, Int, Int) -> Void) {
        parallelFor((count + 7) / 8, minChunk: 1024) { r in
            let start = r.lowerBound * 8
            body(start, min(r.upperBound * 8, count) - start, r.lowerBound)
        }
    }

    /// y[i] = a[i] + b[i] for i < count (y may be a or b).
    func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        let add = kernels.table.add!
        chunks(count) { start, n, _ in add(a + start, b + start, y + start, n) }
    }

    /// y[i] = max(a[i] + b[i], 0) (NaN kept) for i < count, and where the sum was positive in
    /// `bits` (bit j of byte k: element 8k + j) when given.
    func addReLU(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                 bits: UnsafeMutablePointer<UInt8>?, count: Int) {
        let addReLU = kernels.table.add_relu!
        chunks(count) { start, n, byte in addReLU(a + start, b + start, y + start, bits.map { $0 + byte }, n) }
    }

    /// dx[i] = dy[i] where the ReLU passed element i (its bit in `bits`, or y[i] > 0), else 0.
    func reluBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>?, bits: UnsafePointer<UInt8>?,
                      into dx: UnsafeMutablePointer<Float>, count: Int) {
        precondition(y != nil || bits != nil, "ElementwiseKernels: a ReLU's backward needs its output or its mask")
        let reluBackward = kernels.table.relu_backward!
        chunks(count) { start, n, byte in
            reluBackward(dy + start, y.map { $0 + start }, bits.map { $0 + byte }, dx + start, n)
        }
    }
}

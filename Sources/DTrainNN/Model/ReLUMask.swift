import CDTrainKernels
import DTrainCore

/// Which elements a ReLU passed, one bit each: what its backward needs of its output, in 1/32 of
/// the output's float32 memory (a residual block's add + ReLU with bf16 activation storage, whose
/// output lives in shared memory). Allocated once at build; the passes are CDTrainKernels', in the
/// variant of `kernels`.
final class ReLUMask {
    /// Bit j of byte k is element 8k + j.
    private let bits: ScratchBuffer<UInt8>
    let capacity: Int
    /// Elements of the last forward (nil before it).
    private var count: Int?

    private let passes: ElementwiseKernels

    init(capacity: Int, kernels: KernelSet = .best) {
        precondition(capacity >= 0, "ReLUMask: negative capacity")
        self.capacity = capacity
        passes = ElementwiseKernels(kernels: kernels)
        bits = ScratchBuffer(count: (capacity + 7) / 8, fill: 0)
    }

    /// y[i] = max(a[i] + b[i], 0) for i < count, noting where the sum was positive.
    func addReLU(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count <= capacity, "ReLUMask: \(count) elements for \(capacity)")
        passes.addReLU(a, b, into: y, bits: bits.pointer, count: count)
        self.count = count
    }

    /// Where a pass that computes the block's output writes the bits for `count` elements as it
    /// goes (bit j of byte k: element 8k + j > 0).
    func writing(count: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(count <= capacity, "ReLUMask: \(count) elements for \(capacity)")
        self.count = count
        return bits.pointer
    }

    /// dx[i] = dy[i] where the last forward's sum was positive, else 0, for i < count.
    func mask(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, count: Int) {
        precondition(count == self.count, "ReLUMask: backward over \(count) elements after a forward over \(self.count ?? 0)")
        passes.reluBackward(dy, output: nil, bits: bits.pointer, into: dx, count: count)
    }
}

import DTrainCore

/// The bf16-rounded copies of a matrix-multiplying layer's operands (`Precision.bf16`): its input
/// x, its weight and, in backward, its output gradient dy, each rounded to bfloat16 right before
/// the layer multiplies them, as PyTorch's CPU autocast does. The layer's float32 kernels then
/// compute with bf16 values: products of two bf16 numbers are exact in float32 and sums stay
/// float32, so the result is autocast's up to summation order. The layer's own x, weight and dy
/// are left as they are (other layers read them, and master weights stay float32).
///
/// The copies live in the model's workspace after the layer's own scratch (`offset` floats), for
/// one pass: a forward rounds x and the weight, a backward rounds all three again (or, with bf16
/// activation storage, widens the layer's `BF16Copy` of x into x's region).
struct RoundedOperands {
    enum Operand: Int { case input, weight, outputGradient }

    let offset: Int
    /// Floats of each operand at the batch built for, in `Operand` order.
    let counts: [Int]

    init(offset: Int, input: Int, weight: Int, outputGradient: Int) {
        self.offset = workspaceAligned(offset)
        counts = [input, weight, outputGradient].map(workspaceAligned)
    }

    /// Workspace floats the layer reserves: its scratch and the three copies.
    var workspaceFloats: Int { offset + counts.reduce(0, +) }

    /// `count` floats of `operand` from `source`, rounded to bf16 into the operand's region.
    func rounded(_ operand: Operand, _ source: UnsafePointer<Float>, count: Int, workspace: Workspace) -> UnsafePointer<Float> {
        let target = region(operand, count: count, workspace: workspace)
        roundToBFloat16(source, into: target, count: count)
        return UnsafePointer(target)
    }

    /// The operand's region, for `count` floats.
    func region(_ operand: Operand, count: Int, workspace: Workspace) -> UnsafeMutablePointer<Float> {
        precondition(count <= counts[operand.rawValue], "RoundedOperands: \(count) floats for a region of \(counts[operand.rawValue])")
        return workspace.pointer(count: workspaceFloats) + offset + counts[..<operand.rawValue].reduce(0, +)
    }
}

import DTrainCore

/// A depthwise or narrow grouped convolution through `GroupedConvKernel`, without im2col or GEMM:
/// forward split by output rows, dx by input rows and dW by fixed chunks of output rows into
/// per-thread partials (the workspace) summed in chunk order. Holds the kernel's packed copy of
/// the weights, repacked at every pass (forward's layout, then backward-data's).
struct DirectConvolution: ConvolutionAlgorithm {
    let kernel: GroupedConvKernel
    let packedWeights: Storage
    /// Floats of one thread's partial dW in the workspace.
    let partialSlice: Int

    init(kernel: GroupedConvKernel, weightCount: Int) {
        self.kernel = kernel
        packedWeights = Storage(count: weightCount)
        partialSlice = workspaceAligned(kernel.weightCount)
    }

    func workspaceFloats(threads: Int) -> Int { threads * partialSlice }

    func forward(_ px: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                 into py: UnsafeMutablePointer<Float>, batch: Int, workspace: Workspace, threads: Int) {
        let direct = kernel, packed = packedWeights.pointer
        direct.packWeights(weight, into: packed, forBackwardData: false)
        let outRows = batch * direct.geo.outHeight
        parallelFor(outRows) { range in direct.forward(px, packed: packed, bias: b, py, rows: range) }
    }

    func backward(x px: UnsafePointer<Float>, xBF16: UnsafePointer<UInt16>?, dy pdy: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                  weightGradient dw: UnsafeMutablePointer<Float>?, dx pdx: UnsafeMutablePointer<Float>?,
                  batch: Int, workspace: Workspace, threads: Int) {
        let direct = kernel, packed = packedWeights.pointer
        let geo = direct.geo
        let weightGrad = dw != nil
        direct.packWeights(w, into: packed, forBackwardData: true)
        let outRows = batch * geo.outHeight, inRows = batch * geo.height
        let slice = partialSlice, count = direct.weightCount
        let partials = workspace.pointer(count: threads * slice)
        // dW: fixed chunks of output rows, one partial each, summed in chunk order. dx: any split.
        let chunks = min(threads, outRows)
        let timers = ConvPartTimers(enabled: Profiler.isEnabled, chunks: chunks)
        parallelChunks(outRows, chunks: chunks) { chunk, range in
            var clock = timers.start()
            if weightGrad {
                let partial = partials + chunk * slice
                partial.update(repeating: 0, count: count)
                direct.backwardWeight(px, pdy, partial: partial, rows: range)
                timers.lap(&clock, chunk: chunk, weight: true)
            }
            if let pdx {
                direct.backwardData(pdy, packed: packed, pdx, rows: chunkRange(chunk, of: chunks, count: inRows))
                timers.lap(&clock, chunk: chunk, weight: false)
            }
        }
        timers.attributeWeightShare()
        if let dw {
            Profiler.measure(.convBackwardWeight) {
                parallelFor(count, minChunk: 4096) { range in
                    direct.addPartials(partials, count: chunks, stride: slice, into: dw, range: range)
                }
            }
        }
    }
}

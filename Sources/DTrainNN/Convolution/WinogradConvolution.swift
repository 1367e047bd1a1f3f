import DTrainCore

/// A 3×3, stride-1, padding-1 dense convolution through `WinogradKernel`, split across threads by
/// tiles. Workspace: the transformed weights, then per thread one dU partial and one block scratch.
struct WinogradConvolution: ConvolutionAlgorithm {
    let kernel: WinogradKernel
    let outChannels: Int
    /// Floats of the transformed weights (and of one dU partial), and of one thread's block scratch.
    let weightSlice: Int
    let scratchSlice: Int

    init(kernel: WinogradKernel, outChannels: Int) {
        self.kernel = kernel
        self.outChannels = outChannels
        weightSlice = workspaceAligned(kernel.transformedWeightFloats)
        scratchSlice = workspaceAligned(kernel.scratchFloats)
    }

    var roundsActivationsToBF16: Bool { kernel.roundsToBF16 }

    func workspaceFloats(threads: Int) -> Int { weightSlice + threads * (weightSlice + scratchSlice) }

    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 into y: UnsafeMutablePointer<Float>, batch: Int, workspace: Workspace, threads: Int) {
        convolve(x, weight: weight, bias: bias, into: y, batch: batch, dataGradient: false, workspace: workspace, threads: threads)
    }

    func backward(x: UnsafePointer<Float>, xBF16: UnsafePointer<UInt16>?, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  weightGradient: UnsafeMutablePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                  batch: Int, workspace: Workspace, threads: Int) {
        if let weightGradient {
            Profiler.measure(.convBackwardWeight) {
                addWeightGradient(x: xBF16.map(WinogradKernel.Operand.bf16) ?? .float32(x), dy: dy, into: weightGradient,
                                  batch: batch, workspace: workspace, threads: threads)
            }
        }
        if let dx {
            convolve(dy, weight: weight, bias: nil, into: dx, batch: batch, dataGradient: true, workspace: workspace, threads: threads)
        }
    }

    /// Forward (x → y) or backward-data (dy → dx): the weights are transformed, then each thread
    /// convolves its share of the tiles.
    private func convolve(_ input: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          into output: UnsafeMutablePointer<Float>, batch: Int, dataGradient: Bool,
                          workspace: Workspace, threads: Int) {
        let winograd = kernel
        let ws = workspace.pointer(count: workspaceFloats(threads: threads))
        let u = ws, scratch = ws + weightSlice + threads * weightSlice
        parallelFor(outChannels) { range in winograd.transformWeights(w, into: u, outputs: range, dataGradient: dataGradient) }
        let tiles = batch * winograd.tilesPerImage
        let chunks = min(threads, tiles), slice = scratchSlice
        BLAS.singleThreaded {
            parallelChunks(tiles, chunks: chunks) { chunk, range in
                winograd.convolve(input, u: u, bias: bias, into: output, tiles: range, dataGradient: dataGradient,
                                  scratch: scratch + chunk * slice)
            }
        }
    }

    /// dw += dW: each thread writes the transformed-domain gradient of a fixed share of the tiles
    /// to its own partial; the partials are summed in thread order and transformed back.
    private func addWeightGradient(x: WinogradKernel.Operand, dy: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>,
                                   batch: Int, workspace: Workspace, threads: Int) {
        let winograd = kernel
        let ws = workspace.pointer(count: workspaceFloats(threads: threads))
        let partials = ws + weightSlice, scratch = partials + threads * weightSlice
        let tiles = batch * winograd.tilesPerImage
        let chunks = min(threads, tiles), pslice = weightSlice, slice = scratchSlice
        BLAS.singleThreaded {
            parallelChunks(tiles, chunks: chunks) { chunk, range in
                winograd.weightGradient(x, dy, tiles: range, into: partials + chunk * pslice, scratch: scratch + chunk * slice)
            }
        }
        parallelFor(outChannels) { range in
            winograd.addWeightGradient(partials: partials, count: chunks, stride: pslice, into: dw, outputs: range)
        }
    }
}

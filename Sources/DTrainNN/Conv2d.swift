import DTrainCore

/// A 2-D convolution over NHWC activations (torch's nn.Conv2d with a square kernel).
///
/// Forward is im2col + GEMM per group: the column matrix [rows, K·K·Cg] of group g times that
/// group's weight [Og, K·K·Cg]ᵀ writes output channels g·Og ..< (g+1)·Og of the NHWC output in
/// place (ldc = O). A 1×1, stride-1, unpadded convolution needs no im2col: the NHWC input is its
/// own column matrix. The column buffer lives in the shared workspace and holds a chunk of whole
/// images, so it stays under `maxColumnFloats` whatever the batch.
///
/// Backward recomputes the columns from the kept input (no buffer outlives a pass):
/// dW += dYᵀ · col, db += Σ rows of dY, and dX = col2im(dY · W), gathered so that every dX value
/// is written exactly once.
public final class Conv2d: Layer {
    public let inChannels, outChannels, kernelSize, stride, padding, dilation, groups: Int
    /// torch shape [O, I/groups, K, K]; stored O×K×K×(I/groups).
    public let weight: Parameter
    public let bias: Parameter?

    /// Most floats the column buffer may take; a batch whose columns need more is processed in
    /// chunks of whole images (at least one image per chunk). Read by `build`.
    var maxColumnFloats = 32 << 20

    /// Fixed number of partial sums the bias gradient is reduced over (at most; fewer threads use
    /// fewer), combined in chunk order so the result is deterministic for a thread count.
    private static let reductionChunks = 16

    private var geometry: ConvGeometry!
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var workspace: Workspace!
    private var biasPartials: Storage?
    /// The input of the last forward: a view of memory its producer keeps until backward.
    private var lastInput: Tensor?
    /// Images per column-buffer chunk for the batch built for.
    private(set) var imagesPerChunk = 1
    private var macs = 0

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = false) {
        precondition(inChannels > 0 && outChannels > 0, "Conv2d: channels must be positive")
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: groups (\(groups)) must divide in (\(inChannels)) and out (\(outChannels)) channels")
        precondition(kernelSize > 0 && stride > 0 && dilation > 0 && padding >= 0,
                     "Conv2d: kernel \(kernelSize), stride \(stride), dilation \(dilation), padding \(padding) out of range")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let fanIn = inChannels / groups * kernelSize * kernelSize
        weight = Parameter(torchShape: [outChannels, inChannels / groups, kernelSize, kernelSize], layout: .convOHWI,
                           role: .weight, initializer: .kaimingNormalFanOut(fanOut: outChannels * kernelSize * kernelSize))
        self.bias = bias ? Parameter(torchShape: [outChannels], role: .bias,
                                     initializer: .uniform(bound: 1 / Float(fanIn).squareRoot())) : nil
    }

    /// True when the input is its own column matrix (1×1 kernel, stride 1, no padding).
    private var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == inChannels, "Conv2d: input has \(input.channels) channels, expected \(inChannels)")
        let geo = ConvGeometry(input: input, kernel: kernelSize, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
        precondition(geo.outHeight > 0 && geo.outWidth > 0,
                     "Conv2d: input \(input) is too small for kernel \(kernelSize), dilation \(dilation), padding \(padding)")
        geometry = geo
        let out = FeatureShape(height: geo.outHeight, width: geo.outWidth, channels: outChannels)
        output = ActivationBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? ActivationBuffer(shape: input, maxBatch: maxBatch) : nil
        workspace = context.workspace
        if !isPointwise {
            let perImage = geo.outPixels * geo.columns
            imagesPerChunk = max(1, min(maxBatch, maxColumnFloats / max(perImage, 1)))
            context.workspace.reserve(imagesPerChunk * perImage)
        }
        biasPartials = bias != nil ? Storage(count: Conv2d.reductionChunks * outChannels) : nil
        lastInput = nil
        macs = geo.outPixels * outChannels * geo.groupColumns
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let geo = geometry!
        precondition(x.shape.height == geo.height && x.shape.width == geo.width && x.shape.channels == geo.channels,
                     "Conv2d: input \(x.shape) differs from the \(geo.height)x\(geo.width)x\(geo.channels) built for")
        let y = output.tensor(batch: x.batch)
        lastInput = x
        let o = outChannels, og = outChannels / groups, kc = geo.groupColumns, ld = geo.columns
        let w = UnsafePointer(weight.value!)
        if isPointwise {
            let cg = geo.groupChannels
            for g in 0..<groups {
                BLAS.gemm(transB: true, m: x.rows, n: og, k: cg,
                          a: x.data + g * cg, lda: geo.channels, b: w + g * og * cg, ldb: cg,
                          c: y.data + g * og, ldc: o)
            }
        } else {
            var first = 0
            while first < x.batch {
                let images = min(imagesPerChunk, x.batch - first)
                let rows = images * geo.outPixels
                let col = workspace.pointer(count: rows * ld)
                geo.im2col(x.data, firstImage: first, images: images, into: col)
                let yChunk = y.data + first * geo.outPixels * o
                for g in 0..<groups {
                    BLAS.gemm(transB: true, m: rows, n: og, k: kc,
                              a: col + g * kc, lda: ld, b: w + g * og * kc, ldb: kc,
                              c: yChunk + g * og, ldc: o)
                }
                first += images
            }
        }
        if let bias {
            let b = UnsafePointer(bias.value!), py = y.data
            parallelFor(y.rows, minChunk: max(1, 4096 / o)) { rows in
                for m in rows {
                    let row = py + m * o
                    for i in 0..<o { row[i] += b[i] }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = lastInput else { fatalError("Conv2d: backward without a forward") }
        let geo = geometry!
        precondition(dy.batch == x.batch && dy.shape == output.shape,
                     "Conv2d: dy \(dy.batch)x\(dy.shape) does not match the last output \(x.batch)x\(output.shape)")
        let o = outChannels, og = outChannels / groups, kc = geo.groupColumns, ld = geo.columns
        let w = UnsafePointer(weight.value!)
        let dw = weight.grad!
        let weightGrad = weight.trainable
        let dx = inputGradient?.tensor(batch: dy.batch)
        let pdy = UnsafePointer(dy.data)

        if let bias, bias.trainable, let partials = biasPartials?.pointer {
            let rows = dy.rows
            let chunks = max(1, min(Compute.threads, Conv2d.reductionChunks, rows))
            parallelChunks(rows, chunks: chunks) { chunk, range in
                let acc = partials + chunk * o
                for i in 0..<o { acc[i] = 0 }
                for m in range {
                    let row = pdy + m * o
                    for i in 0..<o { acc[i] += row[i] }
                }
            }
            let db = bias.grad!
            for chunk in 0..<chunks {
                let acc = partials + chunk * o
                for i in 0..<o { db[i] += acc[i] }
            }
        }

        if isPointwise {
            let c = geo.channels, cg = geo.groupChannels
            if weightGrad {
                for g in 0..<groups {
                    BLAS.gemm(transA: true, m: og, n: cg, k: x.rows,
                              a: pdy + g * og, lda: o, b: x.data + g * cg, ldb: c,
                              beta: 1, c: dw + g * og * cg, ldc: cg)
                }
            }
            if let dx {
                for g in 0..<groups {
                    BLAS.gemm(m: x.rows, n: cg, k: og,
                              a: pdy + g * og, lda: o, b: w + g * og * cg, ldb: cg,
                              c: dx.data + g * cg, ldc: c)
                }
            }
        } else if weightGrad || dx != nil {
            var first = 0
            while first < x.batch {
                let images = min(imagesPerChunk, x.batch - first)
                let rows = images * geo.outPixels
                let col = workspace.pointer(count: rows * ld)
                let dyChunk = pdy + first * geo.outPixels * o
                if weightGrad {
                    geo.im2col(x.data, firstImage: first, images: images, into: col)
                    for g in 0..<groups {
                        BLAS.gemm(transA: true, m: og, n: kc, k: rows,
                                  a: dyChunk + g * og, lda: o, b: col + g * kc, ldb: ld,
                                  beta: 1, c: dw + g * og * kc, ldc: kc)
                    }
                }
                if let dx {
                    // The column gradient overwrites the columns (every group's block is written).
                    for g in 0..<groups {
                        BLAS.gemm(m: rows, n: kc, k: og,
                                  a: dyChunk + g * og, lda: o, b: w + g * og * kc, ldb: kc,
                                  c: col + g * kc, ldc: ld)
                    }
                    geo.col2im(col, firstImage: first, images: images, into: dx.data)
                }
                first += images
            }
        }
        return dx ?? noGradient
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        entries.append(StateEntry(name: qualified(prefix, "weight"), kind: .parameter(weight)))
        if let bias { entries.append(StateEntry(name: qualified(prefix, "bias"), kind: .parameter(bias))) }
    }

    public var macsPerSample: Int { macs }
}

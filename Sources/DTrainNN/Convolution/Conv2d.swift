import DTrainCore

/// A 2-D convolution over NHWC activations (torch's nn.Conv2d with a square kernel).
///
/// The layer chooses one `ConvolutionAlgorithm` when it is built and delegates both passes to it:
/// - `DirectConvolution` (`GroupedConvKernel`) for grouped convolutions with narrow groups
///   (depthwise, or groups of 4 or 8 channels as in ResNeXt's first stages);
/// - `WinogradConvolution` (`WinogradKernel`) for dense 3×3, stride-1, padding-1 convolutions;
/// - `GEMMConvolution` (im2col + GEMM per group) for every other one.
/// Which of the first two may be chosen is the build context's `engine` (`EngineOptimisations`).
/// The work is split across `Compute.threads` threads by dtrain itself, and every GEMM runs
/// single-threaded inside one thread's share. The layer keeps the bias gradient, which is the
/// same for every algorithm.
///
/// For a fixed thread count every result is deterministic.
public final class Conv2d: Layer {
    public let inChannels, outChannels, kernelSize, stride, padding, dilation, groups: Int
    /// torch shape [O, I/groups, K, K]; stored O×K×K×(I/groups).
    public let weight: Parameter
    public let bias: Parameter?

    /// Floats one thread's column tile aims at (rows × K·K·C): about half a core's L2. Read by `build`.
    var columnTileFloats = 1 << 17
    /// Fewest rows a tile has (unless the batch has fewer): thinner GEMMs re-pack the weights too
    /// often and update the whole dW per few rows. Read by `build`.
    var minTileRows = 64
    /// Whether narrow grouped convolutions use the direct kernel (nil: as the build context's
    /// `engine` says, `.directGroupedConvolution`), and the widest group (input or output channels)
    /// it takes: measured, GEMM is as fast from 8 channels per group and faster from 16. Tests
    /// override the choice, and widen the group, to exercise each path. Read by `build`.
    var useDirectKernel: Bool?
    var directKernelMaxGroupWidth = 8
    /// Whether 3×3, stride-1, padding-1 dense convolutions use Winograd (F(4×4, 3×3) or F(2×2, 3×3))
    /// (`WinogradKernel`) (nil: as the build context's `engine` says, `.winograd`), and the fewest
    /// input and output channels for which they do. Read by `build`.
    var useWinograd: Bool?
    var winogradMinChannels = 8
    /// Output tile side of the Winograd transform, 4 for F(4×4, 3×3) or 2 for F(2×2, 3×3); nil
    /// chooses by width: F(4×4) up to 128 channels, F(2×2) beyond, where F(4×4)'s 36 transformed
    /// weight matrices stop fitting in cache and measured no faster. Read by `build`.
    var winogradTile: Int?
    /// Whether forward rounds the output to bf16 at bf16 precision (nil: no). With bf16 activation
    /// storage the BatchNorm after a convolution reads its input rounded, as autocast's bf16
    /// convolution returns it; tests set this to get the same values with storage off. Read by `build`.
    var roundsOutputToBF16: Bool?
    /// Whether a bf16 Winograd F(4×4) convolution rounds x and dy as its transforms read them
    /// (`WinogradKernel.roundsToBF16`) rather than in passes of their own first; the values are
    /// the same. Tests switch it off to compare the two. Read by `build`.
    var roundsOnRead = true

    /// Fixed number of partial sums the bias gradient is reduced over (at most; fewer threads use
    /// fewer), combined in chunk order so the result is deterministic for a thread count.
    private static let reductionChunks = 16

    private var geometry: ConvGeometry!
    private var output: ActivationBuffer!
    private var inputGradient: ActivationBuffer?
    private var workspace: Workspace!
    private var biasPartials: Storage?
    /// The input of the last forward: a view of memory its producer keeps until backward (with
    /// bf16 activation storage only its batch and shape are read there: see `savedInput`).
    private var lastInput: Tensor?
    /// The algorithm the last build chose.
    private var algorithm: ConvolutionAlgorithm!
    /// bf16 copies of x, the weight and dy (`Precision.bf16`); nil in fp32.
    private var roundedOperands: RoundedOperands?
    /// Whether forward and backward round x, the weight and dy for the float32 kernels (bf16
    /// without the bf16 GEMM kernels).
    private var roundsOperands = false
    /// Whether, of those, the algorithm rounds x and dy itself as it reads them
    /// (`ConvolutionAlgorithm.roundsActivationsToBF16`), leaving only the weight to round here.
    private var roundsActivationsOnRead = false
    /// Whether dy reaches backward already rounded to bf16, so that backward skips its rounding
    /// pass: the BatchNorm after it writes its input gradient rounded (set by `Sequential`, only
    /// where `roundsOutputGradientInPass`).
    var outputGradientArrivesRounded = false
    /// With bf16 activation storage: x of the last train-mode forward, which backward widens into
    /// the rounded input's region (or hands to an algorithm that rounds on read, which reads it
    /// itself), since x itself may be overwritten once the next layer has run.
    private var savedInput: BF16Copy?
    private var roundsOutput = false
    /// Threads the workspace was reserved for; passes use at most this many.
    private(set) var plannedThreads = 1
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

    /// Whether the last build chose the direct grouped kernel.
    var usesDirectKernel: Bool { algorithm is DirectConvolution }
    /// Whether the last build chose Winograd.
    var usesWinograd: Bool { algorithm is WinogradConvolution }
    /// The output tile side of the Winograd transform the last build chose (nil without Winograd).
    var winogradOutputTile: Int? { (algorithm as? WinogradConvolution)?.kernel.tile }
    /// Whether the last build's algorithm rounds x and dy to bf16 as it reads them.
    var roundsActivationsWhileReading: Bool { algorithm?.roundsActivationsToBF16 ?? false }
    /// Whether the last build multiplies with the bf16 GEMM kernels (`BuildContext.bf16GEMM`).
    var multipliesInBF16: Bool { algorithm?.multipliesInBF16 ?? false }
    /// Rows of one im2col column tile for the batch built for (0 for the pointwise path and for
    /// the other algorithms).
    var tileRows: Int { (algorithm as? GEMMConvolution)?.tileRows ?? 0 }

    public func build(input: FeatureShape, maxBatch: Int, inputNeedsGradient: Bool, context: BuildContext) -> FeatureShape {
        precondition(input.channels == inChannels, "Conv2d: input has \(input.channels) channels, expected \(inChannels)")
        let geo = ConvGeometry(input: input, kernel: kernelSize, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
        precondition(geo.outHeight > 0 && geo.outWidth > 0,
                     "Conv2d: input \(input) is too small for kernel \(kernelSize), dilation \(dilation), padding \(padding)")
        geometry = geo
        let out = FeatureShape(height: geo.outHeight, width: geo.outWidth, channels: outChannels)
        output = context.outputBuffer(shape: out, maxBatch: maxBatch)
        inputGradient = inputNeedsGradient ? context.inputGradientBuffer(shape: input, maxBatch: maxBatch) : nil
        workspace = context.workspace
        plannedThreads = Compute.threads
        let directAllowed = useDirectKernel ?? context.engine.contains(.directGroupedConvolution)
        let winogradAllowed = useWinograd ?? context.engine.contains(.winograd)
        if directAllowed, let direct = GroupedConvKernel(geo: geo, outChannels: outChannels, maxGroupWidth: directKernelMaxGroupWidth,
                                                                    kernels: context.kernels) {
            algorithm = DirectConvolution(kernel: direct, weightCount: weight.count)
        } else if winogradAllowed && min(inChannels, outChannels) >= winogradMinChannels,
                  let winograd = WinogradKernel(geo: geo, outChannels: outChannels,
                                                tile: winogradTile ?? (max(inChannels, outChannels) <= 128 ? 4 : 2), maxBatch: maxBatch, threads: plannedThreads,
                                                blockFloats: columnTileFloats, minBlockTiles: max(1, minTileRows / 2),
                                                kernels: context.kernels,
                                                roundingToBF16: context.precision == .bf16 && roundsOnRead) {
            algorithm = WinogradConvolution(kernel: winograd, outChannels: outChannels)
        } else {
            algorithm = GEMMConvolution(geo: geo, outChannels: outChannels, maxBatch: maxBatch,
                                        columnTileFloats: columnTileFloats, minTileRows: minTileRows,
                                        bf16: context.precision == .bf16 ? context.bf16GEMM : nil)
        }
        let scratch = algorithm.workspaceFloats(threads: plannedThreads)
        roundsOperands = context.precision == .bf16 && !algorithm.multipliesInBF16
        roundsActivationsOnRead = roundsOperands && algorithm.roundsActivationsToBF16
        savedInput = context.storesActivationsInBF16 ? BF16Copy(capacity: input.count * maxBatch) : nil
        roundsOutput = context.precision == .bf16 && (roundsOutputToBF16 ?? false)
        // Rounding on read needs no rounded x or dy, nor a widened copy of x's bf16 copy (the
        // algorithm reads that itself, as the widened kernels' pointwise products do). The bf16
        // GEMM kernels round as they pack: they only need x's bf16 copy widened.
        let readsInputItself = roundsActivationsOnRead || (savedInput != nil && algorithm.readsInputCopyInBackward)
        roundedOperands = roundsOperands || savedInput != nil
            ? RoundedOperands(offset: scratch,
                              input: readsInputItself ? 0 : input.count * maxBatch,
                              weight: roundsOperands ? weight.count : 0,
                              outputGradient: roundsOperands && !roundsActivationsOnRead ? out.count * maxBatch : 0)
            : nil
        context.workspace.reserve(roundedOperands?.workspaceFloats ?? scratch)
        biasPartials = bias != nil ? Storage(count: Conv2d.reductionChunks * outChannels) : nil
        lastInput = nil
        macs = geo.outPixels * outChannels * geo.groupColumns
        return out
    }

    /// Whether the last build rounds dy to bf16 in a pass of its own in backward, which the layer
    /// after it could do as it writes dy instead: bf16 operands for the float32 kernels, not
    /// rounded as the transforms read them, and no bias (its gradient sums the float32 dy).
    var roundsOutputGradientInPass: Bool { roundsOperands && !roundsActivationsOnRead && bias == nil }

    /// Threads a pass uses: those in force, at most those the workspace was reserved for.
    private var passThreads: Int { max(1, min(Compute.threads, plannedThreads)) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let geo = geometry!
        precondition(x.shape.height == geo.height && x.shape.width == geo.width && x.shape.channels == geo.channels,
                     "Conv2d: input \(x.shape) differs from the \(geo.height)x\(geo.width)x\(geo.channels) built for")
        let y = output.tensor(batch: x.batch)
        lastInput = x
        var px = UnsafePointer(x.data), pw = UnsafePointer(weight.value!)
        if roundsOperands, let rounded = roundedOperands {
            if roundsActivationsOnRead {
                // The algorithm rounds x as it reads it: only the bf16 copy is written here.
                if let savedInput, mode == .train { savedInput.save(px, count: x.count) } else { savedInput?.discard() }
            } else if let savedInput, mode == .train {
                // One pass rounds x for the float32 kernels and keeps it for backward.
                let region = rounded.region(.input, count: x.count, workspace: workspace)
                savedInput.save(px, count: x.count, rounding: region)
                px = UnsafePointer(region)
            } else {
                savedInput?.discard()
                px = rounded.rounded(.input, px, count: x.count, workspace: workspace)
            }
            pw = rounded.rounded(.weight, pw, count: weight.count, workspace: workspace)
        } else if let savedInput {
            if mode == .train { savedInput.save(px, count: x.count) } else { savedInput.discard() }
        }
        if y.rows == 0 { return y }
        algorithm.forward(px, weight: pw, bias: bias.map { UnsafePointer($0.value!) },
                          into: y.data, batch: x.batch, workspace: workspace, threads: passThreads)
        if roundsOutput { roundToBFloat16(y.data, into: y.data, count: y.count) }
        return y
    }

    /// With bf16 activation storage the layer keeps its own bf16 copy of x.
    public func readsInputInBackward(_ context: BuildContext) -> Bool { !context.storesActivationsInBF16 }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = lastInput else { fatalError("Conv2d: backward without a forward") }
        precondition(dy.batch == x.batch && dy.shape == output.shape,
                     "Conv2d: dy \(dy.batch)x\(dy.shape) does not match the last output \(x.batch)x\(output.shape)")
        let o = outChannels
        let dx = inputGradient?.tensor(batch: dy.batch)
        var px = UnsafePointer(x.data), pdy = UnsafePointer(dy.data), pw = UnsafePointer(weight.value!)
        var xBF16: UnsafePointer<UInt16>? = nil
        let rows = dy.rows
        if let rounded = roundedOperands, rows > 0 {
            if let savedInput, algorithm.readsInputCopyInBackward {
                xBF16 = savedInput.saved
            } else if let savedInput {
                px = savedInput.restore(into: rounded.region(.input, count: x.count, workspace: workspace))
            } else if !roundsActivationsOnRead {
                px = rounded.rounded(.input, px, count: x.count, workspace: workspace)
            }
            if roundsOperands {
                if !roundsActivationsOnRead && !outputGradientArrivesRounded {
                    pdy = rounded.rounded(.outputGradient, pdy, count: dy.count, workspace: workspace)
                }
                pw = rounded.rounded(.weight, pw, count: weight.count, workspace: workspace)
            }
        }

        // The bias is added, not multiplied: its gradient sums the float32 dy at either precision.
        let bias32 = UnsafePointer(dy.data)
        if let bias, bias.trainable, let partials = biasPartials?.pointer, rows > 0 {
            let chunks = max(1, min(Compute.threads, Conv2d.reductionChunks, rows))
            parallelChunks(rows, chunks: chunks) { chunk, range in
                let acc = partials + chunk * o
                for i in 0..<o { acc[i] = 0 }
                for m in range { addFloats(acc, bias32 + m * o, o) }
            }
            let db = bias.grad!
            for chunk in 0..<chunks {
                let acc = partials + chunk * o
                for i in 0..<o { db[i] += acc[i] }
            }
        }
        guard rows > 0, weight.trainable || dx != nil else { return dx ?? noGradient }
        algorithm.backward(x: px, xBF16: xBF16, dy: pdy, weight: pw,
                           weightGradient: weight.trainable ? weight.grad! : nil, dx: dx?.data,
                           batch: dy.batch, workspace: workspace, threads: passThreads)
        return dx ?? noGradient
    }

    public func collectState(prefix: String, into entries: inout [StateEntry]) {
        entries.append(StateEntry(name: qualified(prefix, "weight"), kind: .parameter(weight)))
        if let bias { entries.append(StateEntry(name: qualified(prefix, "bias"), kind: .parameter(bias))) }
    }

    public var macsPerSample: Int { macs }
}

import DTrainCore

/// How a tensor's memory order differs from the torch shape it is exported with.
public enum TorchLayout: Sendable {
    /// Same order as torch.
    case identity
    /// Convolution weight stored O×KH×KW×I (GEMM-friendly for NHWC); torch's is O×I×KH×KW.
    case convOHWI
}

/// What a parameter is, for rules such as "no weight decay on BatchNorm parameters and biases".
public enum ParameterRole: Sendable {
    case weight, bias, normWeight, normBias
}

/// How a parameter is initialised (as torchvision's models do).
public enum Initializer: Sendable {
    /// kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out).
    case kaimingNormalFanOut(fanOut: Int)
    /// kaiming_normal_(mode="fan_in", nonlinearity="relu"): N(0, 2 / fan_in).
    case kaimingNormalFanIn(fanIn: Int)
    /// U(-bound, bound), as nn.Linear's and nn.Conv2d's defaults (bound = 1 / sqrt(fan_in)).
    case uniform(bound: Float)
    case normal(std: Float)
    case constant(Float)
}

/// A trainable tensor. Its values and gradients live in a model's flat parameter buffers
/// (bound by `ParameterStore`), so optimizers and allreduce work over one contiguous array.
public final class Parameter {
    public let torchShape: [Int]
    public let layout: TorchLayout
    public let role: ParameterRole
    public var initializer: Initializer
    public let count: Int
    /// False for frozen parameters: no gradient is computed for them.
    public var trainable = true

    public private(set) var value: UnsafeMutablePointer<Float>!
    public private(set) var grad: UnsafeMutablePointer<Float>!
    /// Offset of this parameter in its store's flat buffers.
    public private(set) var offset = 0
    /// The flat buffers `value` and `grad` point into, kept alive as long as the parameter is.
    private var owners: [Storage] = []

    public init(torchShape: [Int], layout: TorchLayout = .identity, role: ParameterRole, initializer: Initializer) {
        self.torchShape = torchShape
        self.layout = layout
        self.role = role
        self.initializer = initializer
        count = torchShape.reduce(1, *)
    }

    func bind(values: Storage, grads: Storage, offset: Int) {
        value = values.pointer + offset
        grad = grads.pointer + offset
        owners = [values, grads]
        self.offset = offset
    }

    public var values: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: value, count: count) }
    public var grads: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: grad, count: count) }
}

extension Parameter {
    /// Values laid out as this parameter's memory (`layout`) reordered to torch's order.
    public func torchOrder(_ v: [Float]) -> [Float] {
        switch layout {
        case .identity: return v
        case .convOHWI:
            let s = torchShape
            return Layout.ohwiToOIHW(v, o: s[0], i: s[1], kh: s[2], kw: s[3])
        }
    }

    /// Values in torch's order reordered to this parameter's memory layout.
    public func internalOrder(_ t: [Float]) -> [Float] {
        precondition(t.count == count, "\(t.count) values for a parameter of \(count)")
        switch layout {
        case .identity: return t
        case .convOHWI:
            let s = torchShape
            return Layout.oihwToOHWI(t, o: s[0], i: s[1], kh: s[2], kw: s[3])
        }
    }

    /// The values in torch's memory order for `torchShape`.
    public func torchValues() -> [Float] { torchOrder(Array(values)) }

    /// Sets the values from torch's memory order for `torchShape`.
    public func setTorchValues(_ t: [Float]) { _ = values.update(fromContentsOf: internalOrder(t)) }
}

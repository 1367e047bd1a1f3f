import DTrainCore

/// Holds the values and gradients of a set of parameters in two flat buffers, in state order.
///
/// One contiguous array makes the optimizer a single fused pass and lets gradient allreduce send
/// large buckets. Parameters registered first (the input end of the network) come first, so the
/// gradients backward produces first sit at the end of the buffer.
public final class ParameterStore {
    public let parameters: [Parameter]
    public let count: Int
    public let values: Storage
    public let grads: Storage

    public init(_ parameters: [Parameter]) {
        self.parameters = parameters
        count = parameters.reduce(0) { $0 + $1.count }
        values = Storage(count: count)
        grads = Storage(count: count)
        var offset = 0
        for p in parameters {
            p.bind(values: values, grads: grads, offset: offset)
            offset += p.count
        }
    }

    /// Binds the parameters of `layer`.
    public convenience init(layer: Layer) { self.init(layer.parameters) }

    public func zeroGrads() { grads.zero() }

    /// Initialises every parameter from its `Initializer`, drawing from one seeded stream in order.
    public func initialize(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for p in parameters { p.initialize(p.initializer, random: &rng) }
    }
}

extension Parameter {
    /// Sets the values as `initializer` draws them from `random`.
    public func initialize(_ initializer: Initializer, random rng: inout SeededRandom) {
        let v = values
        switch initializer {
        case .kaimingNormalFanOut(let fan), .kaimingNormalFanIn(let fan):
            let std = (2.0 / Double(max(fan, 1))).squareRoot()
            for i in 0..<v.count { v[i] = Float(rng.normal() * std) }
        case .uniform(let bound):
            for i in 0..<v.count { v[i] = Float(rng.uniform(-Double(bound), Double(bound))) }
        case .normal(let std):
            for i in 0..<v.count { v[i] = Float(rng.normal() * Double(std)) }
        case .constant(let c):
            v.update(repeating: c)
        }
    }
}

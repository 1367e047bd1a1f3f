import DTrainCore

/// A layer whose passes its container measures for the profiler, for layers that do not measure
/// themselves. Measures nest exclusively, so a layer that also measures parts of its passes
/// (a convolution's weight gradient as `.convBackwardWeight`) gets those parts attributed to
/// their own kinds and the rest to the kinds given here.
protocol MeasuredByContainer: AnyObject {
    var forwardProfileKind: ProfileKind { get }
    var backwardProfileKind: ProfileKind { get }
}

extension Conv2d: MeasuredByContainer {
    var forwardProfileKind: ProfileKind { .convForward }
    /// The whole backward; Conv2d moves its weight gradient's share to `.convBackwardWeight`
    /// (`ConvPartTimers`).
    var backwardProfileKind: ProfileKind { .convBackwardData }
}

/// `layer.forward`, measured for the profiler when the layer asks its container to.
@inline(__always)
func measuredForward(_ layer: Layer, _ x: Tensor, mode: Mode) -> Tensor {
    if Profiler.isEnabled, let m = layer as? MeasuredByContainer {
        return Profiler.measure(m.forwardProfileKind) { layer.forward(x, mode: mode) }
    }
    return layer.forward(x, mode: mode)
}

/// `layer.backward`, measured for the profiler when the layer asks its container to.
@inline(__always)
func measuredBackward(_ layer: Layer, _ dy: Tensor) -> Tensor {
    if Profiler.isEnabled, let m = layer as? MeasuredByContainer {
        return Profiler.measure(m.backwardProfileKind) { layer.backward(dy) }
    }
    return layer.backward(dy)
}

import DTrainCore

/// A layer made of other layers (`Sequential`, `Residual`). Containers pass the debug inspector and
/// the gradient-ready hook on to their children, so `Model` installs both through its root
/// whatever kind of container it is.
protocol LayerContainer: Layer {
    /// Installs (or with nil removes) `inspector` here and in nested containers; `prefix` is this
    /// container's torch-style path.
    func attach(_ inspector: LayerInspector?, prefix: String)

    /// Installs (or with nil removes) the hook that backward calls with the flat offset from which
    /// every parameter gradient is final (see `Model.onGradientsReady`). A container calls it only
    /// at points where that holds for all of its parameters.
    func installReadyHook(_ hook: ((Int) -> Void)?)
}

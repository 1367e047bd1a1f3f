import DTrainCore

/// Observes every layer's output and input gradient as they are produced (the debug mode's NaN/Inf
/// checks and norms). Containers call it; layers themselves never know it exists.
public protocol LayerInspector: AnyObject {
    /// `path` is the layer's torch-style name ("layer1.0.conv1").
    func inspectForward(_ path: String, _ output: Tensor)
    func inspectBackward(_ path: String, _ inputGradient: Tensor)
}

extension Model {
    /// Installs (or with nil removes) an inspector on every container of the model.
    public func attachInspector(_ inspector: LayerInspector?) {
        (root as? LayerContainer)?.attach(inspector, prefix: "")
    }
}

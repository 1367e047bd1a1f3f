/// Sums per-channel statistics across the processes that share a BatchNorm (synchronized
/// BatchNorm). A BatchNorm without one uses its own batch alone. The distributed module provides
/// the implementation; layers never see a communicator.
public protocol ChannelReducer: AnyObject {
    /// Replaces `values` by their sum over all participating processes.
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
}

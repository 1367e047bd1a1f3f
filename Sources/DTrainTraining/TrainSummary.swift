import Foundation

/// How a run ended.
public struct TrainSummary: Sendable {
    public var epochsCompleted: Int
    public var bestTop1: Double?
    public var lastMetrics: EpochMetrics?
    public var outputDirectory: URL
    public var finalTrainTop1: Double
    /// Set when a stop signal ended the run early (with a checkpoint to resume from).
    public var stop: TrainingStop? = nil
}

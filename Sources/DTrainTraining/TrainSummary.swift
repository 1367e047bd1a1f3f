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

extension Trainer {
    /// How the run stands now, after `last` (the last epoch finished, if any).
    func summary(_ last: EpochMetrics?, finalTrainTop1: Double) -> TrainSummary {
        TrainSummary(epochsCompleted: info.epoch, bestTop1: info.bestTop1, lastMetrics: last, outputDirectory: run.url,
                     finalTrainTop1: finalTrainTop1)
    }

    /// A run ended by a stop signal in epoch `epoch` (0-based), with checkpoint-last written at
    /// the step the ranks agreed on: rank 0 names it in one line.
    func stopped(_ epoch: Int, _ last: EpochMetrics?, finalTrainTop1: Double) -> TrainSummary {
        let stop = TrainingStop(signal: stopRequest(), epoch: epoch + 1, globalStep: info.globalStep, checkpoint: run.last)
        if isRoot { progress.message(stop.line) }
        var result = summary(last, finalTrainTop1: finalTrainTop1)
        result.stop = stop
        return result
    }
}

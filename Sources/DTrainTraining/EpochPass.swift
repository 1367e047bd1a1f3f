/// One rank's side of an epoch's training steps, as `Trainer` collects it.
struct EpochPass {
    var totals = MetricTotals()
    var lr = 0.0
    var seconds = 0.0
    /// Stopped by the trainer's `interruptAfterSteps` test hook.
    var interrupted = false
    /// The ranks agreed to stop (a stop signal): after the step that ended the pass, or, when
    /// that was the epoch's last step, after the epoch.
    var stopRequested = false
    /// The stop came before the epoch's last step.
    var midEpoch = false
}

import CDTrainSupport
import Foundation

/// Stop requests by signal, for preemption: once `install()` has run, SIGTERM (what Slurm sends at
/// preemption and at the time limit), SIGINT (Ctrl-C) and SIGUSR1 only set a flag, which the
/// training loop reads between steps; a second such signal ends the process at once (status
/// 128 + the signal's number). The flag is the C library's `sig_atomic_t`, the one thing a
/// handler may safely write.
public enum StopSignals {
    /// Installs the handlers (idempotent).
    public static func install() { dtrain_stop_signals_install() }

    /// The first stop signal received since the handlers were installed, or nil.
    public static var received: Int32? {
        let signal = dtrain_stop_signal_received()
        return signal == 0 ? nil : signal
    }

    /// Forgets a received signal.
    public static func reset() { dtrain_stop_signal_reset() }

    /// "SIGTERM", "SIGINT", "SIGUSR1", else "signal N".
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(signal)"
        }
    }
}

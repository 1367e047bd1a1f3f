import Foundation
import DTrainWeights

/// What `--resume` refuses: a checkpoint trained on another class list, training-set size
/// or resolution. Resuming continues one run; a deliberate change of any of these is a new run
/// that starts from the weights with --pretrained.
enum ResumeCompatibility {
    /// The `CheckpointInfo.settings` key holding the number of training samples.
    static let trainSamplesKey = "train_samples"
    /// The `CheckpointInfo.settings` key holding `--ra-reps` of a run with `--ra-sampler`.
    static let raRepsKey = "ra_reps"

    /// Throws when a checkpoint written mid-epoch was taken with another training sampler
    /// (`--ra-sampler`, `--ra-reps`): the rest of that epoch would follow another order. At an
    /// epoch's end the sampler may change.
    static func checkSampler(_ saved: CheckpointInfo, path: String, raReps: Int?) throws {
        guard saved.samplesIntoEpoch > 0 else { return }
        let recorded = saved.settings[raRepsKey].flatMap(Int.init)
        guard recorded != raReps else { return }
        func name(_ reps: Int?) -> String { reps.map { "--ra-sampler --ra-reps \($0)" } ?? "the ordinary sampler" }
        throw TrainingError("--resume \(path): the checkpoint was written in the middle of epoch \(saved.epoch + 1) with \(name(recorded)); "
                            + "resume it with the same sampler (this run has \(name(raReps))), or from an epoch's end")
    }

    /// Throws a `TrainingError` naming the first difference between the checkpoint `saved` (at
    /// `path`, already known to be of this run's model) and this run's plan: its class names
    /// `classNames` (the data's, then those of head classes the data lacks; `dataClasses` of them
    /// from the data), `trainCount` training samples and `resolution`. What an older checkpoint
    /// does not record is not checked.
    static func check(_ saved: CheckpointInfo, path: String, classNames: [String], dataClasses: Int,
                      trainCount: Int, resolution: Int) throws {
        let prefix = "--resume \(path): the checkpoint"
        let advice = "; to start a new run from its weights, use --pretrained \(path)"
        if !saved.classNames.isEmpty && saved.classNames != classNames {
            let data = Array(classNames.prefix(dataClasses))
            throw TrainingError("\(prefix) was trained on \(saved.classNames.count) classes \(list(saved.classNames)), "
                                + "the data has \(data.count) \(list(data))\(advice)")
        }
        if let recorded = saved.settings[trainSamplesKey].flatMap(Int.init), recorded != trainCount {
            throw TrainingError("\(prefix) was trained on \(recorded) training samples, the data has \(trainCount)\(advice)")
        }
        if saved.resolution > 0 && saved.resolution != resolution {
            throw TrainingError("\(prefix) was trained at resolution \(saved.resolution), this run is at \(resolution)\(advice)")
        }
    }

    /// "[a, b, c, d, e, …]": at most five names.
    static func list(_ names: [String]) -> String {
        "[" + names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", …" : "") + "]"
    }
}

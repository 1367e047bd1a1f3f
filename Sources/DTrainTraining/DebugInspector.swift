import Foundation
import DTrainCore
import DTrainNN

/// The single-process debug mode's checks (`--debug`): every layer's output and input gradient,
/// and every parameter gradient, is checked for NaN/Inf, and the first layer where one appears is
/// named; every `printEvery` steps, per-layer activation and gradient L2 norms are printed.
public final class DebugInspector: LayerInspector {
    public let model: Model
    public let printEvery: Int
    private let report: (String) -> Void
    private var firstProblem: String?
    private var printing = false
    private var lines: [String] = []

    public init(model: Model, printEvery: Int, report: @escaping (String) -> Void) {
        self.model = model
        self.printEvery = max(1, printEvery)
        self.report = report
        model.attachInspector(self)
    }

    deinit { model.attachInspector(nil) }

    public func beginStep(_ step: Int) {
        firstProblem = nil
        printing = (step + 1) % printEvery == 0
        lines.removeAll()
    }

    /// Throws naming the first layer or parameter with a non-finite value in this step.
    public func endStep(_ step: Int) throws {
        if firstProblem == nil {
            for entry in model.state {
                guard case .parameter(let p) = entry.kind else { continue }
                if let bad = p.grads.first(where: { !$0.isFinite }) {
                    firstProblem = "gradient of \(entry.name) contains \(bad)"
                    break
                }
            }
        }
        if printing {
            report("debug step \(step + 1): layer norms (forward output | input gradient)")
            for line in lines { report("  " + line) }
        }
        if let problem = firstProblem {
            throw TrainingError("--debug: non-finite value at global step \(step + 1): \(problem)")
        }
    }

    private func scan(_ t: Tensor) -> (norm: Double, bad: Float?) {
        var sum = 0.0
        var bad: Float?
        for v in t.buffer {
            if !v.isFinite { bad = v; break }
            sum += Double(v) * Double(v)
        }
        return (sum.squareRoot(), bad)
    }

    public func inspectForward(_ path: String, _ output: Tensor) {
        let (norm, bad) = scan(output)
        if let bad, firstProblem == nil { firstProblem = "output of layer \(path) contains \(bad)" }
        if printing { lines.append(String(format: "%@  forward %.4g", path, norm)) }
    }

    public func inspectBackward(_ path: String, _ inputGradient: Tensor) {
        let (norm, bad) = scan(inputGradient)
        if let bad, firstProblem == nil { firstProblem = "input gradient of layer \(path) contains \(bad)" }
        if printing { lines.append(String(format: "%@  backward %.4g", path, norm)) }
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Finite-difference gradient checks for layers.
///
/// The scalar checked is L = Σ r ⊙ layer(x) for a fixed random r, so dL/dy = r. Analytic gradients
/// come from one backward(r); numerical ones from central differences (L(v+h) − L(v−h)) / 2h,
/// accumulated in Double. A sample of input elements and of every parameter's elements is checked,
/// and the relative error ‖num − ana‖ / max(‖num‖, ‖ana‖) must stay under `tolerance`.
struct GradientCheck {
    var step: Float = 1e-2
    var tolerance: Double = 1e-2
    var samplesPerTensor = 24
    var mode: Mode = .train
    var seed: UInt64 = 1
    /// Applied to each random input value (e.g. to keep inputs away from an activation's kinks).
    var inputTransform: ((Float) -> Float)? = nil

    /// Builds `layer` for `batch` × `input`, binds and initialises its parameters, and checks the
    /// input gradient and every parameter's gradient. Returns the checked relative errors by name.
    @discardableResult
    func check(_ layer: Layer, input: FeatureShape, batch: Int, initializeParameters: Bool = true,
               inputScale: Double = 1, file: StaticString = #filePath, line: UInt = #line) -> [String: Double] {
        let store = ParameterStore(layer: layer)
        defer { withExtendedLifetime(store) {} }   // parameters point into the store's buffers
        if initializeParameters {
            store.initialize(seed: seed)
            // Non-trivial BatchNorm affine parameters and biases, so their gradients are exercised.
            var rng = SeededRandom(seed: seed &+ 99)
            for p in store.parameters where p.role != .weight {
                for i in 0..<p.count { p.value[i] += Float(rng.uniform(-0.5, 0.5)) }
            }
        }
        let workspace = Workspace()
        let out = layer.build(input: input, maxBatch: batch, inputNeedsGradient: true,
                              context: BuildContext(workspace: workspace, seed: seed))
        workspace.allocate()

        var rng = SeededRandom(seed: seed &+ 7)
        let x = Storage(count: batch * input.count)
        for i in 0..<x.count { x.pointer[i] = Float(rng.normal() * inputScale) }
        if let inputTransform { for i in 0..<x.count { x.pointer[i] = inputTransform(x.pointer[i]) } }
        let r = Storage(count: batch * out.count)
        for i in 0..<r.count { r.pointer[i] = Float(rng.normal()) }
        let xt = Tensor(storage: x, batch: batch, shape: input)

        func loss() -> Double {
            let y = layer.forward(xt, mode: mode)
            XCTAssertEqual(y.shape, out, "output shape", file: file, line: line)
            var s = 0.0
            for i in 0..<y.count { s += Double(y.data[i]) * Double(r.pointer[i]) }
            return s
        }

        _ = loss()
        store.zeroGrads()
        let dx = layer.backward(Tensor(storage: r, batch: batch, shape: out))
        let analyticInput = Array(UnsafeBufferPointer(start: dx.data, count: x.count))
        let analyticParams = Array(store.grads.buffer)

        func numeric(_ p: UnsafeMutablePointer<Float>) -> Double {
            let saved = p.pointee
            p.pointee = saved + step
            let plus = loss()
            p.pointee = saved - step
            let minus = loss()
            p.pointee = saved
            return (plus - minus) / (2 * Double(step))
        }

        func compare(_ name: String, count: Int, pointer: (Int) -> UnsafeMutablePointer<Float>, analytic: (Int) -> Float) -> Double {
            var pick = SeededRandom(seed: seed &+ UInt64(count))
            let indices = count <= samplesPerTensor ? Array(0..<count) : (0..<samplesPerTensor).map { _ in pick.int(below: count) }
            var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
            for i in indices {
                let n = numeric(pointer(i)), a = Double(analytic(i))
                diff += (n - a) * (n - a); numNorm += n * n; anaNorm += a * a
            }
            let error = diff.squareRoot() / max(numNorm.squareRoot(), anaNorm.squareRoot(), 1e-8)
            XCTAssertLessThan(error, tolerance, "\(name): relative gradient error \(error)", file: file, line: line)
            XCTAssertGreaterThan(max(numNorm, anaNorm), 0, "\(name): gradient is identically zero", file: file, line: line)
            return error
        }

        var errors: [String: Double] = [:]
        errors["input"] = compare("input", count: x.count, pointer: { x.pointer + $0 }, analytic: { analyticInput[$0] })
        var entries: [StateEntry] = []
        layer.collectState(prefix: "", into: &entries)
        for entry in entries {
            guard case .parameter(let p) = entry.kind else { continue }
            errors[entry.name] = compare(entry.name, count: p.count, pointer: { p.value + $0 },
                                         analytic: { analyticParams[p.offset + $0] })
        }
        return errors
    }
}

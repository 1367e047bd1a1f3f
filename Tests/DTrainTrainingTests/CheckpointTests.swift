import XCTest
@testable import DTrainCore
@testable import DTrainNN
import DTrainWeights
@testable import DTrainTraining

final class CheckpointTests: XCTestCase {
    /// The reference state_dict listing torchvision wrote for `model` (Tests/DTrainNNTests/Fixtures).
    func torchvisionEntries(_ model: String) throws -> [(name: String, dtype: String, shape: [Int])] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DTrainNNTests/Fixtures/state_dicts/\(model).txt")
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: " ").map(String.init)
            return (f[0], f[1], f.count > 2 ? f[2].split(separator: "x").map { Int($0)! } : [])
        }
    }

    func save(_ model: Model, to url: URL, optimizer: Optimizer? = nil) throws {
        var info = CheckpointInfo(model: model.name, numClasses: model.numClasses)
        info.classNames = (0..<model.numClasses).map { "c\($0)" }
        try Checkpoint.save(model: model, optimizer: optimizer, info: info, to: url)
    }

    /// Exported names, dtypes and shapes are torchvision's, so torch's load_state_dict accepts the
    /// file; reloaded, the model computes exactly the same outputs.
    func testExportMatchesTorchvisionAndReloadsExactly() throws {
        let dir = temporaryDirectory(self)
        for name in ["resnet18", "resnet50"] {
            let model = try ModelZoo.make(name)
            model.initialize(seed: 3)
            let url = dir.appendingPathComponent("\(name).safetensors")
            try save(model, to: url)
            let file = try SafeTensorsFile(contentsOf: url)
            let reference = try torchvisionEntries(name)
            XCTAssertEqual(file.names, reference.map(\.name), "\(name): tensor names and order")
            for entry in reference {
                let e = try file.entry(entry.name)
                XCTAssertEqual(e.shape, entry.shape, "\(name) \(entry.name)")
                XCTAssertEqual(e.dtype, entry.dtype == "int64" ? .i64 : .f32, "\(name) \(entry.name)")
            }
            XCTAssertEqual(file.metadata["format"], "pt")

            let reloaded = try LoadedCheckpoint(path: url.path, expectedModel: name, batchSize: 2, resolution: 64)
            model.build(batch: 2, resolution: 64)
            var rng = SeededRandom(seed: 9)
            let x = Storage(count: 2 * model.inputShape.count)
            for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) }
            let a = model.forward(Tensor(storage: x, batch: 2, shape: model.inputShape), mode: .eval).toArray()
            let b = reloaded.model.forward(Tensor(storage: x, batch: 2, shape: model.inputShape), mode: .eval).toArray()
            XCTAssertEqual(a, b, "\(name): reloaded checkpoint computes different outputs")
        }
    }

    func testTruncatedOrCorruptedCheckpointIsAClearError() throws {
        let dir = temporaryDirectory(self)
        let model = try ModelZoo.make("resnet20")
        model.initialize(seed: 1)
        let url = dir.appendingPathComponent("c.safetensors")
        try save(model, to: url)
        let data = try Data(contentsOf: url)

        let truncated = dir.appendingPathComponent("truncated.safetensors")
        try data.prefix(data.count - 1000).write(to: truncated)
        XCTAssertThrowsError(try Checkpoint.read(truncated)) { error in
            XCTAssertTrue("\(error)".contains(truncated.path) && "\(error)".contains("truncated"), "\(error)")
        }
        var flipped = data
        flipped[data.count - 5000] ^= 0x10
        let corrupt = dir.appendingPathComponent("corrupt.safetensors")
        try flipped.write(to: corrupt)
        XCTAssertThrowsError(try Checkpoint.read(corrupt)) { error in
            XCTAssertTrue("\(error)".contains("checksum mismatch"), "\(error)")
        }
        let notOne = dir.appendingPathComponent("text.safetensors")
        try Data("hello, world".utf8).write(to: notOne)
        XCTAssertThrowsError(try Checkpoint.read(notOne))
    }

    func testOptimizerStateRoundTripsInTorchOrder() throws {
        let model = try ModelZoo.make("resnet20")
        model.initialize(seed: 2)
        let sgd = SGD(store: model.store, momentum: 0.9, weightDecay: 0)
        for i in 0..<sgd.momentumBuffer.count { sgd.momentumBuffer.pointer[i] = Float(i % 97) }
        let data = try Checkpoint.serialize(model: model, optimizer: sgd, info: CheckpointInfo(model: "resnet20", numClasses: 10))
        let file = try SafeTensorsFile(data: data)
        guard case .parameter(let w)? = model.entry(named: "layer1.0.conv1.weight")?.kind else { return XCTFail() }
        let stored = try file.floats("optimizer.momentum_buffer.layer1.0.conv1.weight")
        XCTAssertEqual(stored, w.torchOrder(Array(UnsafeBufferPointer(start: sgd.momentumBuffer.pointer + w.offset, count: w.count))))
        let other = try ModelZoo.make("resnet20")
        let sgd2 = SGD(store: other.store, momentum: 0.9, weightDecay: 0)
        try Checkpoint.restore(file, path: "memory", into: other, optimizer: sgd2)
        XCTAssertEqual(Array(sgd2.momentumBuffer.buffer), Array(sgd.momentumBuffer.buffer))
        XCTAssertEqual(Array(other.store.values.buffer), Array(model.store.values.buffer))
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let dir = temporaryDirectory(self)
        let url = dir.appendingPathComponent("x.bin")
        try AtomicFile.write(Data([1, 2, 3]), to: url)
        try AtomicFile.write(Data([4, 5]), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data([4, 5]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["x.bin"])
    }
}

import XCTest
import DTrainCore
import DTrainNN
@testable import DTrainWeights

/// `WeightsFile.read`, the one door: format by content, checksum and CRC verification, metadata.
final class WeightsFileTests: XCTestCase {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func resnet20() throws -> Model {
        let model = try ModelZoo.make("resnet20")
        model.initialize(seed: 5)
        return model
    }

    /// A checkpoint with optimizer state, whose tensor data starts after the header.
    func checkpoint(_ model: Model, in dir: URL) throws -> (url: URL, data: Data, payloadStart: Int) {
        let momentum = Storage(count: model.store.count)
        for i in 0..<momentum.count { momentum.pointer[i] = Float(i % 13) }
        var info = CheckpointInfo(model: "resnet20", numClasses: 10)
        info.epoch = 2
        let url = dir.appendingPathComponent("c.safetensors")
        try Checkpoint.save(model: model, optimizerState: [("momentum_buffer", momentum)], info: info, to: url)
        let data = try Data(contentsOf: url)
        let header = data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        return (url, data, 8 + header)
    }

    func testCheckpointIsVerifiedAndCarriesItsInfo() throws {
        let dir = try scratch()
        let (url, _, _) = try checkpoint(try resnet20(), in: dir)
        let weights = try WeightsFile.read(url)
        XCTAssertEqual(weights.format, .safetensors)
        XCTAssertEqual(weights.info?.epoch, 2)
        XCTAssertEqual(weights.info?.model, "resnet20")
        guard case .checksum(let hex) = weights.verification else { return XCTFail("\(weights.verification)") }
        XCTAssertEqual(hex.count, 16)
        XCTAssertTrue(weights.tensors.names.contains("optimizer.momentum_buffer.conv1.weight"))
    }

    /// One flipped bit anywhere in the tensor data is refused, naming the file.
    func testFlippedByteInTensorDataIsRefused() throws {
        let dir = try scratch()
        let (_, data, start) = try checkpoint(try resnet20(), in: dir)
        for offset in [start, start + (data.count - start) / 2, data.count - 1] {
            var flipped = data
            flipped[offset] ^= 0x01
            let bad = dir.appendingPathComponent("flipped-\(offset).safetensors")
            try flipped.write(to: bad)
            XCTAssertThrowsError(try WeightsFile.read(bad), "byte \(offset)") { error in
                XCTAssertTrue("\(error)".contains("checksum mismatch"), "\(error)")
                XCTAssertTrue("\(error)".contains(bad.path), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)")
            }
        }
    }

    func testPlainSafetensorsHasNoCheckAndNeedsAModel() throws {
        let dir = try scratch()
        let model = try resnet20()
        var writer = SafeTensorsWriter()
        StateDict.write(model, into: &writer)
        let url = dir.appendingPathComponent("plain.safetensors")
        try writer.serialized().write(to: url)
        let weights = try WeightsFile.read(url)
        XCTAssertEqual(weights.verification, .unchecked)
        XCTAssertNil(weights.info)
        XCTAssertThrowsError(try weights.checkpointInfo(plainModel: nil)) { error in
            XCTAssertTrue("\(error)".contains("plain weights"), "\(error)")
        }
        let info = try weights.checkpointInfo(plainModel: "resnet20")
        XCTAssertEqual(info.numClasses, 10)
        XCTAssertEqual(info.preset, "cifar")
        // Another model's head is not in the file: named.
        XCTAssertThrowsError(try weights.checkpointInfo(plainModel: "mobilenet_v2")) { error in
            XCTAssertTrue("\(error)".contains("classifier."), "\(error)")
            XCTAssertTrue("\(error)".contains("not weights of mobilenet_v2"), "\(error)")
        }
    }

    /// A .pth written with PthWriter is read through the same door; a flipped byte in a tensor
    /// record fails its zip CRC.
    func testPthIsCheckedByItsCRCs() throws {
        let dir = try scratch()
        var writer = PthWriter()
        let values = (0..<4096).map { Float($0) * 0.5 }
        try values.withUnsafeBytes { try writer.add("w", dtype: .f32, shape: [64, 64], data: Data($0)) }
        writer.extras["dtrain.json"] = try JSONEncoder().encode(CheckpointInfo(model: "resnet20", numClasses: 3))
        let data = try writer.serialized(archiveName: "w")
        let url = dir.appendingPathComponent("w.pth")
        try data.write(to: url)
        let weights = try WeightsFile.read(url)
        XCTAssertEqual(weights.format, .pth)
        XCTAssertEqual(weights.verification, .zipCRC)
        XCTAssertEqual(weights.info?.numClasses, 3)
        XCTAssertEqual(try weights.tensors.floats("w"), values)

        // The tensor record's data: find the values' first bytes (0.0, 0.5, 1.0, 1.5) and flip one.
        let needle = values.prefix(4).withUnsafeBytes { Data($0) }
        let at = try XCTUnwrap(data.range(of: needle)).lowerBound + 100
        var flipped = data
        flipped[at] ^= 0x40
        let bad = dir.appendingPathComponent("bad.pth")
        try flipped.write(to: bad)
        XCTAssertThrowsError(try WeightsFile.read(bad)) { error in
            XCTAssertTrue("\(error)".contains("CRC mismatch"), "\(error)")
            XCTAssertTrue("\(error)".contains(bad.path), "\(error)")
        }
    }

    /// Optimizer state goes in by name and comes back to the same buffers; the saved bytes do not
    /// depend on the order of the model's state against its store.
    func testOptimizerStateRoundTrip() throws {
        let dir = try scratch()
        let model = try resnet20()
        let (url, _, _) = try checkpoint(model, in: dir)
        let weights = try WeightsFile.read(url)
        let other = try ModelZoo.make("resnet20")
        let restored = Storage(count: other.store.count)
        try Checkpoint.restore(weights.tensors, path: url.path, into: other, optimizerState: [("momentum_buffer", restored)])
        for i in 0..<restored.count { XCTAssertEqual(restored.pointer[i], Float(i % 13), "element \(i)"); if restored.pointer[i] != Float(i % 13) { break } }
        XCTAssertEqual(Array(other.store.values.buffer), Array(model.store.values.buffer))
        // A buffer that is missing is named.
        XCTAssertThrowsError(try Checkpoint.restore(weights.tensors, path: url.path, into: other, optimizerState: [("exp_avg", restored)])) { error in
            XCTAssertTrue("\(error)".contains("optimizer state optimizer.exp_avg."), "\(error)")
        }
        // A buffer too short for the store is an error, not a write past its end.
        XCTAssertThrowsError(try Checkpoint.serialize(model: model, optimizerState: [("momentum_buffer", Storage(count: 3))], info: CheckpointInfo(model: "resnet20", numClasses: 10)))
    }
}

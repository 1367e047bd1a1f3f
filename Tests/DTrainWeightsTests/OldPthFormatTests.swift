import XCTest
import DTrainCore
@testable import DTrainNN
@testable import DTrainWeights

/// torch.save's formats from before the zip: the legacy pickle stream (PyTorch 0.4–1.5) and the
/// tar archive (≤ 0.3). Fixtures from Tests/FixtureScripts/legacy_pth_fixtures.py: each must give
/// exactly the tensors torch.load returns (beside it as safetensors) and the logits PyTorch
/// computes; hostile variants are clear errors.
final class OldPthFormatTests: XCTestCase {
    func fixture(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/legacy"), "missing fixture \(name)")
    }

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-oldpth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Every tensor of FILE equals EXPECTED.safetensors in name, dtype, shape and bytes, and every
    /// expected tensor is there (except those `absent` allows).
    @discardableResult
    func assertSameTensors(_ file: String, _ expected: String, layout: PthFile.Layout, absent: (String) -> Bool = { _ in false },
                           line: UInt = #line) throws -> PthFile {
        let pth = try PthFile(contentsOf: try fixture(file))
        XCTAssertEqual(pth.layout, layout, line: line)
        let reference = try SafeTensorsFile(contentsOf: try fixture(expected + ".safetensors"))
        XCTAssertEqual(Set(pth.tensors.map(\.name)), Set(reference.names.filter { !absent($0) }), line: line)
        for t in pth.tensors {
            let e = try reference.entry(t.name)
            XCTAssertEqual(t.dtype, e.dtype, t.name, line: line)
            XCTAssertEqual(t.shape, e.shape, t.name, line: line)
            XCTAssertEqual(t.data, try reference.bytes(t.name), "\(file): \(t.name) differs", line: line)
        }
        return pth
    }

    func testLegacyFormat() throws {
        let r = try assertSameTensors("resnet20_legacy.pth", "resnet20", layout: .legacy)
        XCTAssertEqual(r.tensors.first?.name, "conv1.weight", "the state_dict's order")
        XCTAssertEqual(r.tensors.count, try ModelZoo.make("resnet20").state.count)
        try assertSameTensors("mobilenet_v2_legacy.pth", "mobilenet_v2_legacy", layout: .legacy)
        try assertSameTensors("views_legacy.pth", "views", layout: .legacy)
    }

    /// torchvision's resnet18 in the legacy format (float16): every tensor of the architecture is
    /// there, and those kept as references equal what torch.load returns, byte for byte.
    func testResNet18LegacyFormat() throws {
        let weights = try WeightsFile.read(try fixture("resnet18_legacy.pth"))
        XCTAssertEqual(weights.format, .pthLegacy)
        let model = try ModelZoo.make("resnet18", options: ModelOptions(numClasses: 10))
        XCTAssertEqual(Set(weights.tensors.names), Set(model.state.map(\.name)))
        let pth = try PthFile(contentsOf: try fixture("resnet18_legacy.pth"))
        let reference = try SafeTensorsFile(contentsOf: try fixture("resnet18_subset.safetensors"))
        XCTAssertEqual(reference.names.count, 6)
        for name in reference.names {
            let t = try XCTUnwrap(pth.tensors.first { $0.name == name }, name)
            let e = try reference.entry(name)
            XCTAssertEqual(t.dtype, e.dtype, name)
            XCTAssertEqual(t.shape, e.shape, name)
            XCTAssertEqual(t.data, try reference.bytes(name), "\(name) differs from torch.load's")
        }
    }

    func testTarFormat() throws {
        try assertSameTensors("resnet20_tar.pth.tar", "resnet20", layout: .tar)
        try assertSameTensors("views_tar.pth", "views", layout: .tar)
    }

    /// A 2018 training script's checkpoint: "state_dict" with "module." keys and no
    /// num_batches_tracked.
    func testTrainingScriptCheckpoint() throws {
        let pth = try assertSameTensors("resnet20_module.th", "resnet20", layout: .legacy, absent: { $0.hasSuffix("num_batches_tracked") })
        XCTAssertEqual(pth.wrapperKey, "state_dict")
        XCTAssertTrue(pth.strippedModulePrefix)
        XCTAssertFalse(pth.tensors.contains { $0.name.hasSuffix("num_batches_tracked") })
    }

    func testFormatIsRecognisedByContent() throws {
        XCTAssertEqual(try WeightsFile.format(of: try fixture("resnet20_legacy.pth")), .pthLegacy)
        XCTAssertEqual(try WeightsFile.format(of: try fixture("resnet20_module.th")), .pthLegacy)
        XCTAssertEqual(try WeightsFile.format(of: try fixture("resnet20_tar.pth.tar")), .pthTar)
        XCTAssertEqual(try WeightsFile.format(of: try fixture("resnet20_logits.safetensors")), .safetensors)
        // The tar file under a .safetensors name is still read as what it is.
        let dir = try scratch()
        let renamed = dir.appendingPathComponent("weights.safetensors")
        try FileManager.default.copyItem(at: try fixture("resnet20_tar.pth.tar"), to: renamed)
        let weights = try WeightsFile.read(renamed)
        XCTAssertEqual(weights.format, .pthTar)
        XCTAssertEqual(weights.tensors.names.count, try ModelZoo.make("resnet20").state.count)

        // A file in none of the formats: the message names the formats tried.
        let text = dir.appendingPathComponent("notes.pth")
        try Data("these are not weights, just some text".utf8).write(to: text)
        XCTAssertThrowsError(try WeightsFile.read(text)) { error in
            let message = "\(error)"
            for word in [text.path, "safetensors", "zip", "legacy", "tar"] { XCTAssertTrue(message.contains(word), message) }
            XCTAssertFalse(message.contains("header of"), message)
        }
    }

    /// The model built from each file computes PyTorch's logits on the same images.
    func testLogitsMatchPyTorch() throws {
        for (file, model, classes, resolution) in [("resnet20_legacy.pth", "resnet20", 10, 32), ("resnet20_tar.pth.tar", "resnet20", 10, 32),
                                                   ("resnet20_module.th", "resnet20", 10, 32), ("mobilenet_v2_legacy.pth", "mobilenet_v2", 10, 64),
                                                   ("resnet18_legacy.pth", "resnet18", 10, 64)] {
            let reference = try SafeTensorsFile(contentsOf: try fixture("\(model)_logits.safetensors"))
            let input = try reference.floats("input"), expected = try reference.floats("logits")
            let batch = try reference.entry("input").shape[0]
            let net = try ModelZoo.make(model, options: ModelOptions(numClasses: classes))
            net.initialize(seed: 1)
            let weights = try WeightsFile.read(try fixture(file))
            try StateDict.load(weights.tensors, into: net, source: file)
            net.build(batch: batch, resolution: resolution)
            let x = Storage(count: input.count)
            x.pointer.update(from: input, count: input.count)
            let logits = net.forward(Tensor(storage: x, batch: batch, shape: net.inputShape), mode: .eval).toArray()
            XCTAssertEqual(logits.count, expected.count, file)
            let worst = zip(logits, expected).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-3, "\(file): logits differ from PyTorch's by \(worst)")
        }
    }

    /// Old state_dicts without num_batches_tracked load as torchvision loads them: at 0.
    func testMissingBatchCountersStartAtZero() throws {
        let net = try ModelZoo.make("resnet20")
        for entry in net.state { if case .counter(let c) = entry.kind { c.value = 99 } }
        try StateDict.load(try WeightsFile.read(try fixture("resnet20_module.th")).tensors, into: net)
        let counters = net.state.compactMap { if case .counter(let c) = $0.kind { return c.value } else { return nil } }
        XCTAssertFalse(counters.isEmpty)
        XCTAssertTrue(counters.allSatisfy { $0 == 0 }, "\(counters)")
        // With them, the file's values are taken.
        try StateDict.load(try WeightsFile.read(try fixture("resnet20_legacy.pth")).tensors, into: net)
        XCTAssertTrue(net.state.allSatisfy { if case .counter(let c) = $0.kind { return c.value == 1234 } else { return true } })
    }

    // MARK: hostile files

    func refuses(_ data: Data, _ words: [String], _ what: String, line: UInt = #line) throws {
        let url = try scratch().appendingPathComponent("hostile.pth")
        try data.write(to: url)
        XCTAssertThrowsError(try WeightsFile.read(url), what, line: line) { error in
            let message = "\(error)"
            for w in words { XCTAssertTrue(message.contains(w), "\(what): \(message)", line: line) }
            XCTAssertTrue(message.contains(url.path), "\(what): \(message)", line: line)
        }
    }

    func replacing(_ data: Data, _ old: String, _ new: String) throws -> Data {
        let range = try XCTUnwrap(data.range(of: Data(old.utf8)), "no \(old)")
        var out = data
        out.replaceSubrange(range, with: Data(new.utf8))
        return out
    }

    func testHostileLegacyFiles() throws {
        let data = try Data(contentsOf: try fixture("resnet20_legacy.pth"))
        // fc.bias's storage: an 8-byte element count of 10, then its 40 bytes.
        let fcBias = try SafeTensorsFile(contentsOf: try fixture("resnet20.safetensors")).bytes("fc.bias")
        let at = try XCTUnwrap(data.range(of: Data([10, 0, 0, 0, 0, 0, 0, 0]) + fcBias)).lowerBound
        var badCount = data
        badCount[at] = 11
        try refuses(badCount, ["holds 11 elements", "names 10"], "bad count")
        var hugeCount = data
        hugeCount.replaceSubrange(at..<(at + 8), with: Data(repeating: 0xFF, count: 7) + Data([0x7F]))
        try refuses(hugeCount, ["elements"], "huge count")
        try refuses(data.prefix(data.count - 20), ["past the end", "truncated"], "data cut short")
        try refuses(data.prefix(data.count / 2), ["truncated"], "cut in half")
        try refuses(data.prefix(300), ["truncated"], "cut in the pickle")
        try refuses(try replacing(data, "OrderedDict", "OrderedDicX"), ["refused global collections.OrderedDicX"], "unknown global")
        try refuses(try replacing(data, "_rebuild_tensor_v2", "_rebuild_tensor_v9"), ["refused global torch._utils._rebuild_tensor_v9"], "unknown rebuild")
        var badMagic = data
        badMagic[5] ^= 0x01
        try refuses(badMagic, ["safetensors", "legacy"], "bad magic: none of the formats")
    }

    /// A tar member as ustar writes it (header with checksum, data padded to 512 bytes).
    func tarMember(_ name: String, _ data: Data, size: Int? = nil) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        for (i, b) in name.utf8.enumerated() { header[i] = b }
        func octal(_ v: Int, at: Int, width: Int) {
            let s = String(v, radix: 8)
            let padded = String(repeating: "0", count: width - 1 - s.count) + s
            for (i, b) in padded.utf8.enumerated() { header[at + i] = b }
        }
        octal(0o644, at: 100, width: 8)
        octal(size ?? data.count, at: 124, width: 12)
        header[156] = 0x30
        for (i, b) in "ustar\u{0}00".utf8.enumerated() { header[257 + i] = b }
        for i in 148..<156 { header[i] = 0x20 }
        octal(header.reduce(0) { $0 + Int($1) }, at: 148, width: 7)
        return Data(header) + data + Data(count: (512 - data.count % 512) % 512)
    }

    func pickle(_ build: (inout PickleEmitter) -> Void) -> Data {
        var p = PickleEmitter()
        p.proto()
        build(&p)
        p.stop()
        return p.data
    }

    /// storages: one FloatStorage of `numel` elements under key 1000 (holding `bytes` bytes).
    func storagesMember(count: Int = 1, numel: Int64 = 4, bytes: Int = 16) -> Data {
        var d = pickle { $0.int(count) }
        d += pickle { p in p.mark(); p.int(1000); p.unicode("cpu"); p.global("torch", "FloatStorage"); p.tuple() }
        withUnsafeBytes(of: numel.littleEndian) { d.append(contentsOf: $0) }
        d += Data(count: bytes)
        d += Data([0x80, 2, 0x5D, 0x2E])  // an empty list of views
        return d
    }

    /// tensors: one FloatTensor over storage 1000.
    func tensorsMember(ndim: Int32 = 1, sizes: [Int64] = [4], strides: [Int64] = [1], offset: Int64 = 0) -> Data {
        var d = pickle { $0.int(1) }
        d += pickle { p in p.mark(); p.int(5000); p.int(1000); p.global("torch", "FloatTensor"); p.tuple() }
        withUnsafeBytes(of: ndim.littleEndian) { d.append(contentsOf: $0) }
        d += Data(count: 4)
        for v in sizes + strides + [offset] { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    var stateDictPickle: Data {
        pickle { p in
            p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
            p.mark(); p.unicode("w"); p.unicode("5000"); p.persistentID(); p.setItems()
        }
    }

    func tar(storages: Data? = nil, tensors: Data? = nil, pickle: Data? = nil) -> Data {
        tarMember("pickle", pickle ?? stateDictPickle) + tarMember("tensors", tensors ?? tensorsMember())
            + tarMember("storages", storages ?? storagesMember()) + Data(count: 1024)
    }

    func testHandMadeTarIsRead() throws {
        let url = try scratch().appendingPathComponent("w.pth")
        try tar().write(to: url)
        let weights = try WeightsFile.read(url)
        XCTAssertEqual(weights.format, .pthTar)
        XCTAssertEqual(try weights.tensors.floats("w"), [0, 0, 0, 0])
    }

    func testHostileTarFiles() throws {
        let good = try Data(contentsOf: try fixture("resnet20_tar.pth.tar"))
        try refuses(good.prefix(good.count / 2), ["truncated tar"], "truncated")
        try refuses(good.prefix(700), ["truncated tar"], "cut in the first member")
        var badHeader = good
        badHeader[3] ^= 0x20
        try refuses(badHeader, ["header checksum"], "header checksum")
        try refuses(try replacing(good, "OrderedDict", "OrderedDicX"), ["refused global collections.OrderedDicX"], "unknown global")

        try refuses(tar(storages: storagesMember(count: 1 << 40)), ["storages", "not (key, location, type)"], "storage count past the records")
        try refuses(tar(storages: storagesMember(numel: 1 << 40)), ["storages", "bad count"], "element count past the data")
        try refuses(tar(storages: storagesMember(numel: Int64.max)), ["storages", "too large"], "element count overflowing")
        try refuses(tar(tensors: tensorsMember(sizes: [5])), ["reaches element 4 of a storage of 4"], "tensor past its storage")
        try refuses(tar(tensors: tensorsMember(sizes: [Int64.max / 2], strides: [4])), ["64 bits"], "overflowing extent")
        try refuses(tar(tensors: tensorsMember(ndim: 100_000)), ["dimensions"], "absurd ndim")
        try refuses(tar(tensors: tensorsMember(sizes: [1 << 40], strides: [0])), ["would expand to 4194304 MiB"], "stride-0 bomb")
        // Within the file's 16 bytes of storage + 1 GiB in all, but one strided tensor over 1 GiB.
        try refuses(tar(tensors: tensorsMember(sizes: [(1 << 28) + 1], strides: [0])), ["would expand to more than 1024 MiB"], "strided tensor over 1 GiB")
        try refuses(tar(tensors: tensorsMember(ndim: 3, sizes: [1])), ["tensors"], "sizes past the member")
        try refuses(tar(pickle: pickle { p in
            p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
            p.mark(); p.unicode("w"); p.unicode("77"); p.persistentID(); p.setItems()
        }), ["tensor 77"], "unknown tensor key")
        try refuses(tar(pickle: pickle { p in p.global("os", "system"); p.unicode("echo no"); p.tuple(); p.reduce() }),
                    ["refused global os.system"], "os.system")
        // A member whose size reaches past the file.
        var oversized = tarMember("pickle", stateDictPickle, size: 1 << 30)
        oversized = oversized.prefix(512) + stateDictPickle
        try refuses(oversized, ["truncated tar", "pickle"], "member size past the file")
        let noStorages = tarMember("pickle", stateDictPickle) + Data(count: 1024)
        try refuses(noStorages, ["storages"], "missing member")
    }

    /// Containers nest at most 64 deep, however the pickle builds them; nothing crashes.
    func testNestingIsBounded() {
        func refuses(_ bytes: [UInt8], _ words: String, line: UInt = #line) {
            XCTAssertThrowsError(try TorchUnpickler.load(Data(bytes)), line: line) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)", line: line)
            }
        }
        refuses([0x80, 2, 0x29] + [UInt8](repeating: 0x85, count: 100) + [0x2E], "nested more than 64 deep")
        refuses([0x80, 2, 0x29] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E], "nested more than 64 deep")
        // Lists appended into each other after they were placed: refused.
        refuses([0x80, 2, 0x5D, 0x71, 0, 0x5D, 0x71, 1, 0x61, 0x68, 1, 0x68, 0, 0x61, 0x2E], "already placed")
        // MARKs without end.
        refuses([0x80, 2] + [UInt8](repeating: 0x28, count: 100_000) + [0x2E], "MARKs nested")
        // A persistent id in a pickle that may have none (the legacy headers).
        XCTAssertThrowsError(try TorchUnpickler.load(Data([0x80, 2, 0x4B, 1, 0x51, 0x2E]), persistentIDs: .notAllowed))
        // A whole model saved instead of a state_dict.
        var p = PickleEmitter()
        p.proto(); p.mark(); p.unicode("module"); p.unicode("Net"); p.unicode("net.py"); p.unicode("source"); p.tuple(); p.persistentID(); p.stop()
        XCTAssertThrowsError(try TorchUnpickler.load(p.data, persistentIDs: .legacyStorages)) { error in
            XCTAssertTrue("\(error)".contains("whole model"), "\(error)")
        }
    }
}

import XCTest
@testable import DTrainWeights

/// Reading torch.save's zip format: fixtures written by PyTorch (Tests/FixtureScripts/pth_fixtures.py)
/// must give exactly the tensors PyTorch wrote beside them as safetensors (made contiguous there),
/// and pickles that reach for any other global are refused.
final class PthFileTests: XCTestCase {
    func fixture(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/pth"), "missing fixture \(name)")
    }

    /// Every tensor of NAME.pth equals NAME.safetensors in name, order, dtype, shape and bytes.
    func assertSameTensors(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let pth = try PthFile(contentsOf: try fixture(name + ".pth"))
        let expected = try SafeTensorsFile(contentsOf: try fixture(name + ".safetensors"))
        XCTAssertEqual(pth.tensors.map(\.name).sorted(), expected.names.sorted(), file: file, line: line)
        for t in pth.tensors {
            let e = try expected.entry(t.name)
            XCTAssertEqual(t.dtype, e.dtype, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, e.shape, t.name, file: file, line: line)
            XCTAssertEqual(t.data, try expected.bytes(t.name), "\(name): \(t.name) differs", file: file, line: line)
        }
    }

    /// Zips whose ZIP64 fields point beyond any off_t, each a one-line error naming the file, not
    /// a trap in the zip library: the end record's central-directory offset (a fuzzer's find), and
    /// an entry's local header offset in its extra field, 2^63 + 5
    /// (Tests/FixtureScripts/zip_entry_fixtures.py), also where the end record says the directory
    /// runs past the end of the file, which the zip library reads all the same (a fuzzer's find).
    func testZIP64OffsetsOutsideTheFileAreRefused() throws {
        for (name, expected) in [("zip64_directory_offset_overflow.pth", "central directory (ZIP64: "),
                                 ("zip64_entry_offset_overflow.pth", "zip entry 0 (local header at offset 9223372036854775813"),
                                 ("zip_directory_past_end.pth", "zip entry 0 (local header at offset 9223372036854775813")] {
            XCTAssertThrowsError(try PthFile(contentsOf: try fixture(name))) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(name), text)
                XCTAssertTrue(text.contains(expected) && text.contains("lies outside the file"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }

    func testTwoLayerStateDict() throws {
        try assertSameTensors("two_layer")
        let pth = try PthFile(contentsOf: try fixture("two_layer.pth"))
        XCTAssertEqual(pth.archiveName, "two_layer")
        // The OrderedDict's order is the module's.
        XCTAssertEqual(pth.tensors.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias"])
    }

    /// A training script's checkpoint ({"epoch", "state_dict" with DDP's "module." keys,
    /// "optimizer", "best_acc"}) gives the model's tensors, under the model's own names.
    func testWrappedCheckpointGivesTheStateDict() throws {
        let pth = try PthFile(contentsOf: try fixture("wrapped_checkpoint.pth"))
        let expected = try SafeTensorsFile(contentsOf: try fixture("two_layer.safetensors"))
        XCTAssertEqual(pth.wrapperKey, "state_dict")
        XCTAssertTrue(pth.strippedModulePrefix)
        XCTAssertEqual(pth.tensors.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias"])
        for t in pth.tensors {
            XCTAssertEqual(t.data, try expected.bytes(t.name), t.name)
        }
        let plain = try PthFile(contentsOf: try fixture("two_layer.pth"))
        XCTAssertNil(plain.wrapperKey)
        XCTAssertFalse(plain.strippedModulePrefix)
    }

    func testHalfBFloat16AndInt64() throws {
        try assertSameTensors("dtypes")
        let f = try WeightsFile.open(try fixture("dtypes.pth")).file
        XCTAssertEqual(try f.int64s("bn.num_batches_tracked"), [12345])
        XCTAssertEqual(try f.entry("bn.num_batches_tracked").shape, [])
        XCTAssertEqual(try f.int64s("ints"), [-1, 0, 7, -(1 << 40), 1 << 62])
        XCTAssertEqual(try f.entry("half").dtype, .f16)
        XCTAssertEqual(try f.entry("bfloat").dtype, .bf16)
    }

    func testStridedViewsAndSharedStorageOffsets() throws {
        try assertSameTensors("views")
    }

    func testProtocol4() throws {
        try assertSameTensors("protocol4")
    }

    func testOtherDTypesAreRefusedByName() throws {
        XCTAssertThrowsError(try PthFile(contentsOf: try fixture("float64.pth"))) { error in
            XCTAssertTrue("\(error)".contains("torch.DoubleStorage"), "\(error)")
            XCTAssertTrue("\(error)".contains("float64.pth"), "\(error)")
        }
    }

    func testMaliciousPicklesAreRefused() throws {
        for (name, global) in [("malicious_global", "posix.system"), ("malicious_stack_global", "posix.system"),
                               ("malicious_builtins", "builtins.eval")] {
            XCTAssertThrowsError(try PthFile(contentsOf: try fixture(name + ".pth")), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("refused global \(global)"), text)
                XCTAssertTrue(text.contains("\(name).pth"), text)
            }
        }
    }

    /// Three stride-0 views of one float, each within the 1 GiB bound of one strided tensor, would
    /// need 3 GiB together from a file of under 2 KB: refused before any tensor is copied out.
    func testExpansionOfAllTensorsTogetherIsBounded() throws {
        let url = try fixture("expand_bomb.pth")
        XCTAssertThrowsError(try WeightsFile.read(url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("would expand to 3072 MiB from 0 MiB of storage"), text)
            XCTAssertTrue(text.contains("expand_bomb.pth"), text)
        }
    }

    /// Hand-made pickles for opcodes and shapes no fixture has.
    func testUnpicklerRejectsWhatTorchNeverWrites() {
        func refuses(_ bytes: [UInt8], _ words: String, line: UInt = #line) {
            XCTAssertThrowsError(try TorchUnpickler.load(Data(bytes)), line: line) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)", line: line)
            }
        }
        // An opcode outside the subset (INST, protocol 0).
        refuses([0x80, 2, 0x69] + Array("os\nsystem\n".utf8) + [0x2E], "unsupported pickle opcode 0x69")
        // A REDUCE whose callable is not a global.
        refuses([0x80, 2, 0x4B, 1, 0x29, 0x52, 0x2E], "REDUCE calls an int")
        // Truncated: no STOP.
        refuses([0x80, 2, 0x7D], "truncated")
        // A memo index never stored.
        refuses([0x80, 2, 0x68, 9, 0x2E], "memo entry 9")
        // A storage type called directly.
        refuses([0x80, 2, 0x63] + Array("torch\nFloatStorage\n".utf8) + [0x29, 0x52, 0x2E], "persistent ids")
    }

    func testTensorReachingPastItsStorageIsRefused() {
        // _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 4), 2, (3,), (1,), False, OrderedDict())
        var p = PickleEmitter()
        p.proto()
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.mark(); p.mark()
        p.unicode("storage"); p.global("torch", "FloatStorage"); p.unicode("0"); p.unicode("cpu"); p.int(4)
        p.tuple(); p.persistentID()
        p.int(2); p.intTuple([3]); p.intTuple([1]); p.newFalse()
        p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
        p.tuple(); p.reduce(); p.stop()
        XCTAssertThrowsError(try TorchUnpickler.load(p.data)) { error in
            XCTAssertTrue("\(error)".contains("reaches element 4 of a storage of 4"), "\(error)")
        }
    }

    func testNotAZipIsAClearError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-notzip-\(UUID().uuidString).pth")
        try Data("PK\u{3}\u{4} this is not really a zip".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try WeightsFile.open(url)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            XCTAssertTrue("\(error)".contains("torch.save"), "\(error)")
        }
    }

    /// PthWriter's output read back by PthFile gives the same bytes, for every dtype; the records
    /// are stored, aligned to 64 bytes, and the file is the same for the same tensors.
    func testWriterRoundTripsBitForBit() throws {
        let source = try PthFile(contentsOf: try fixture("dtypes.pth")).tensors + PthFile(contentsOf: try fixture("views.pth")).tensors
        var writer = PthWriter()
        for t in source { try writer.add(t.name, dtype: t.dtype, shape: t.shape, data: t.data) }
        writer.extras["dtrain.json"] = Data("{\"model\":\"x\"}".utf8)
        let data = try writer.serialized(archiveName: "roundtrip")
        XCTAssertEqual(try writer.serialized(archiveName: "roundtrip"), data, "not deterministic")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-roundtrip-\(UUID().uuidString).pth")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        let back = try PthFile(contentsOf: url)
        XCTAssertEqual(back.archiveName, "roundtrip")
        XCTAssertEqual(back.tensors.map(\.name), source.map(\.name))
        for (a, b) in zip(back.tensors, source) {
            XCTAssertEqual(a.dtype, b.dtype, a.name)
            XCTAssertEqual(a.shape, b.shape, a.name)
            XCTAssertEqual(a.data, b.data, a.name)
        }
        XCTAssertEqual(back.extras["dtrain.json"], Data("{\"model\":\"x\"}".utf8))
        XCTAssertEqual(try WeightsFile.open(url).file.metadata["dtrain"], "{\"model\":\"x\"}")

        // Every local header: stored (method 0), data on a 64-byte boundary.
        try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var offset = 0, records = 0
            while b.loadUnaligned(fromByteOffset: offset, as: UInt32.self) == 0x0403_4B50 {
                XCTAssertEqual(b.loadUnaligned(fromByteOffset: offset + 8, as: UInt16.self), 0, "compressed record")
                let size = Int(b.loadUnaligned(fromByteOffset: offset + 18, as: UInt32.self))
                let nameLength = Int(b.loadUnaligned(fromByteOffset: offset + 26, as: UInt16.self))
                let extraLength = Int(b.loadUnaligned(fromByteOffset: offset + 28, as: UInt16.self))
                let start = offset + 30 + nameLength + extraLength
                XCTAssertEqual(start % 64, 0, "record \(records) starts at \(start)")
                offset = start + size
                records += 1
            }
            XCTAssertEqual(records, 7 + source.count)
            _ = try XCTUnwrap(Optional(records))
        }
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// The zoo against reference state_dicts written by torchvision (Fixtures/state_dicts, made by
/// Tests/FixtureScripts/zoo_state_dicts.py): names, order, dtypes and shapes of every entry,
/// parameter counts, and multiply-accumulates at the default resolution.
final class ModelZooTests: XCTestCase {
    struct Reference {
        var params = 0
        var macs = 0
        var resolution = 0
        var entries: [(name: String, dtype: String, shape: [Int])] = []
    }

    func reference(_ model: String) throws -> Reference {
        let url = try XCTUnwrap(Bundle.module.url(forResource: model, withExtension: "txt", subdirectory: "Fixtures/state_dicts"),
                                "no reference state_dict for \(model)")
        var ref = Reference()
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            if f[0] == "#" {
                ref.params = Int(f[2])!; ref.macs = Int(f[4])!; ref.resolution = Int(f[6])!
            } else {
                let shape = f.count > 2 ? f[2].split(separator: "x").map { Int($0)! } : []
                ref.entries.append((f[0], f[1], shape))
            }
        }
        return ref
    }

    /// Parameter counts stated for dtrain's zoo (torchvision's and the papers').
    static let statedCounts: [String: Int] = [
        "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
        "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336,
        "wide_resnet50_2": 68_883_240, "resnet20": 269_722, "resnet56": 853_018, "resnet110": 1_727_962,
        "resnet20_b": 272_474, "vgg16": 138_357_544, "mobilenet_v2": 3_504_872,
    ]

    func testStatedParameterCounts() throws {
        for (name, count) in Self.statedCounts {
            XCTAssertEqual(try ModelZoo.make(name).parameterCount, count, name)
        }
    }

    func testEveryModelMatchesTorchStateDict() throws {
        for spec in ModelZoo.specs {
            let ref = try reference(spec.name)
            let model = Model(spec: spec, options: ModelOptions())
            XCTAssertEqual(model.parameterCount, ref.params, "\(spec.name) parameter count")
            XCTAssertEqual(model.state.count, ref.entries.count, "\(spec.name) state_dict length")
            for (ours, theirs) in zip(model.state, ref.entries) {
                XCTAssertEqual(ours.name, theirs.name, spec.name)
                XCTAssertEqual(ours.torchShape, theirs.shape, "\(spec.name) \(ours.name) shape")
                let dtype: String
                if case .counter = ours.kind { dtype = "int64" } else { dtype = "float32" }
                XCTAssertEqual(dtype, theirs.dtype, "\(spec.name) \(ours.name) dtype")
                if ours.name != theirs.name { break }
            }
            XCTAssertEqual(spec.defaultResolution, ref.resolution, spec.name)
        }
    }

    func testMultiplyAccumulatesAtDefaultResolution() throws {
        // Building allocates activations: check a representative set of every family.
        for name in ["resnet18", "resnet50", "resnext50_32x4d", "resnet20", "resnet20_b", "resnext29_8x64d", "vgg16_bn", "mobilenet_v2"] {
            let model = try ModelZoo.make(name)
            model.build(batch: 1)
            XCTAssertEqual(model.macsPerImage, try reference(name).macs, name)
            XCTAssertEqual(model.outputShape, FeatureShape(features: 1000 == model.numClasses ? 1000 : model.numClasses))
        }
    }

    func testOptionsChangeHeadShortcutAndZeroInit() throws {
        let m = try ModelZoo.make("resnet18", options: ModelOptions(numClasses: 4, zeroInitResidual: true))
        m.initialize(seed: 1)
        XCTAssertEqual(m.entry(named: "fc.weight")?.torchShape, [4, 512])
        guard case .parameter(let bn2)? = m.entry(named: "layer1.0.bn2.weight")?.kind,
              case .parameter(let bn1)? = m.entry(named: "layer1.0.bn1.weight")?.kind else { return XCTFail("missing BN") }
        XCTAssertTrue(bn2.values.allSatisfy { $0 == 0 })
        XCTAssertTrue(bn1.values.allSatisfy { $0 == 1 })
        let b = try ModelZoo.make("resnet20", options: ModelOptions(cifarShortcut: .b))
        XCTAssertEqual(b.parameterCount, 272_474)
    }

    func testUnknownModelListsTheZoo() {
        XCTAssertThrowsError(try ModelZoo.make("resnet19")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("resnet19") && text.contains("resnet50") && text.contains("mobilenet_v2"), text)
        }
    }

    func testInitializationIsSeededAndTorchvisionLike() throws {
        let a = try ModelZoo.make("resnet20"), b = try ModelZoo.make("resnet20")
        a.initialize(seed: 5); b.initialize(seed: 5)
        XCTAssertEqual(Array(a.store.values.buffer), Array(b.store.values.buffer))
        guard case .parameter(let w)? = a.entry(named: "layer2.0.conv1.weight")?.kind else { return XCTFail() }
        // kaiming normal, fan_out = 32 · 3 · 3
        let v = w.values.map { Double($0) }
        let variance = v.map { $0 * $0 }.reduce(0, +) / Double(v.count)
        XCTAssertEqual(variance, 2.0 / 288, accuracy: 0.15 * 2.0 / 288)
    }
}

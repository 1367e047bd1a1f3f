import DTrainData
import DTrainWeights
import Foundation
import FuzzSupport

// The small metadata readers: the first byte picks one, the rest is its input.
// - 0: a checkpoint's "dtrain" JSON (CheckpointInfo), and what is derived from it (model
//      options, preset, recorded normalisation);
// - 1: a CIFAR-10 test_batch.bin, every record's image read;
// - 2: a CIFAR-100 test.bin with the rest also as its fine_label_names.txt.
let scratch = ScratchDirectory("fuzz-metadata")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = Data(bytes: data + 1, count: size - 1)
    switch data[0] % 3 {
    case 0:
        guard let info = try? JSONDecoder().decode(CheckpointInfo.self, from: body) else { return 0 }
        _ = info.modelOptions
        _ = info.resolvedPreset
        _ = info.recordedMean
        _ = info.recordedStd
    case 1:
        scratch.remove("fine_label_names.txt")
        scratch.remove("test.bin")
        scratch.write("test_batch.bin", body)
        readAll(try? CIFARSource(directory: scratch.path, split: .val, variant: .cifar10))
    default:
        scratch.remove("test_batch.bin")
        scratch.write("test.bin", body)
        scratch.write("fine_label_names.txt", body)
        readAll(try? CIFARSource(directory: scratch.path, split: .val, variant: .cifar100))
    }
    return 0
}

func readAll(_ source: CIFARSource?) {
    guard let source else { return }
    for i in 0..<source.count {
        guard source.label(i) < source.classNames.count else { fatalError("record \(i): label outside the classes") }
        _ = try? source.image(at: i, targetSize: nil)
    }
}

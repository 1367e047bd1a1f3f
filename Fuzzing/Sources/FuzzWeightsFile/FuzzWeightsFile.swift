import DTrainWeights
import Foundation
import FuzzSupport

// Weights files through the door every command uses (`WeightsFile.read`): the format is found
// by content, so one target reaches the .pth zip, legacy and tar readers and safetensors, with
// the checksum and the "dtrain" metadata checks after them.
let scratch = ScratchDirectory("fuzz-weights")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = scratch.write("weights.pth", data, size)
    guard let weights = try? WeightsFile.read(URL(fileURLWithPath: path)) else { return 0 }
    // Every tensor the reader accepted must be readable as what it claims to be.
    for name in weights.tensors.names {
        switch weights.tensors.entries[name]?.dtype {
        case .i64?: _ = try? weights.tensors.int64s(name)
        default: _ = try? weights.tensors.floats(name)
        }
    }
    _ = try? weights.checkpointInfo(plainModel: nil)
    return 0
}

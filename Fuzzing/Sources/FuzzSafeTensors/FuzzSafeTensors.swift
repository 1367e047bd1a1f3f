import DTrainWeights
import Foundation

// The safetensors reader from bytes, and every tensor it accepts read back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafeTensorsFile(data: Data(bytes: data, count: size)) else { return 0 }
    for name in file.names {
        _ = try? file.bytes(name)
        switch file.entries[name]?.dtype {
        case .i64?: _ = try? file.int64s(name)
        default: _ = try? file.floats(name)
        }
    }
    return 0
}

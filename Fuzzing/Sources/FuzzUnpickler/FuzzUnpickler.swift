import DTrainWeights
import Foundation

// The pickle machine alone: any bytes, with each way a file lets it resolve persistent ids.
// The first byte picks the mode; the rest is the pickle.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let ids: TorchUnpickler.PersistentIDs
    switch data[0] % 3 {
    case 0: ids = .zipStorages
    case 1: ids = .legacyStorages
    default: ids = .notAllowed
    }
    let pickle = Data(bytes: data + 1, count: size - 1)
    if let value = try? TorchUnpickler.load(pickle, persistentIDs: ids) {
        _ = value.kindDescription
    }
    return 0
}

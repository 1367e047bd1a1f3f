import DTrainData
import Foundation

// JPEG and PNG headers and decoding, as the loader calls them (`ImageCodec.decode`, which picks
// the codec by magic bytes). Inputs of odd length also ask for DCT scaling to a smallest side of
// 8 pixels, so the JPEG scaling path is reached too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // DecodedImage's initializer traps unless it holds exactly width × height RGB pixels.
    _ = try? ImageCodec.decode(bytes, path: "fuzz-input", targetSize: size % 2 == 1 ? 8 : nil)
    return 0
}

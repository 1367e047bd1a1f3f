import DTrainData
import Foundation
import FuzzSupport

// The annotation list parser (`--data cls_train.txt`): the input is the list file, read alone,
// and read again with itself as the class-name file.
let scratch = ScratchDirectory("fuzz-list")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let list = scratch.write("cls_train.txt", data, size)
    if let source = try? AnnotationListSource(listFile: list) {
        guard source.files.allSatisfy({ $0.label >= 0 && $0.label < source.classNames.count }) else {
            fatalError("a listed label lies outside the \(source.classNames.count) classes")
        }
    }
    _ = try? AnnotationListSource(listFile: list, classNamesFile: list)
    return 0
}

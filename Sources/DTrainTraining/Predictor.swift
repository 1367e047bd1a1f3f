import Foundation
import DTrainCore
import DTrainNN
import DTrainData

/// One image's top-k classes with their softmax probabilities.
public struct Prediction: Codable, Equatable, Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public var label: Int
        public var name: String
        public var probability: Double
    }
    public var image: String
    public var top: [Entry]
}

/// Classifies image files in batches with a checkpoint's model and preprocessing.
public final class Predictor {
    public let checkpoint: LoadedCheckpoint
    private let transform: ImageTransform
    private let images: Storage
    private let batchSize: Int

    /// A predictor with `transform` as preprocessing (the checkpoint's `evalTransform` when nil);
    /// it must produce the model's built resolution.
    public init(checkpoint: LoadedCheckpoint, transform: ImageTransform? = nil) {
        self.checkpoint = checkpoint
        self.transform = transform ?? checkpoint.evalTransform
        precondition(self.transform.outputSize == checkpoint.model.builtResolution,
                     "transform produces \(self.transform.outputSize), the model takes \(checkpoint.model.builtResolution)")
        batchSize = checkpoint.model.builtBatch
        images = Storage(count: batchSize * checkpoint.model.inputShape.count)
    }

    /// Lists image files: files as given, directories' image files (not recursive) in sorted order.
    public static func imageFiles(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw DataError(path: p, reason: "no such file or directory")
            }
            if isDir.boolValue {
                let listing: [String]
                do { listing = try FileManager.default.contentsOfDirectory(atPath: p) } catch {
                    throw DataError(path: p, reason: "cannot list: \(MessageText.reason(error))")
                }
                let names = listing.filter {
                    !$0.hasPrefix(".") && ImageFolderSource.hasImageExtension($0)
                }.sorted()
                if names.isEmpty { throw DataError(path: p, reason: "no images (expected .jpg, .jpeg or .png files)") }
                out += names.map { (p as NSString).appendingPathComponent($0) }
            } else {
                out.append(p)
            }
        }
        return out
    }

    /// Predicts every file; unreadable ones are reported through `failed` and left out.
    public func predict(files: [String], topK: Int, failed: (DataError) -> Void) -> [Prediction] {
        let names = checkpoint.info.classNames
        let k = min(topK, checkpoint.model.numClasses)
        return logits(files: files, failed: failed).map { file, logits in
            let row = logits.map(Double.init)
            let m = row.max()!
            let exps = row.map { Foundation.exp($0 - m) }
            let sum = exps.reduce(0, +)
            let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
            let top = order.prefix(k).map {
                Prediction.Entry(label: $0, name: $0 < names.count ? names[$0] : "class\($0)", probability: exps[$0] / sum)
            }
            return Prediction(image: file, top: top)
        }
    }

    /// Decodes `file` at full resolution (as PIL does) and writes its preprocessed input
    /// (`transform`'s HWC floats) to `destination`.
    public func preprocess(_ file: String, into destination: UnsafeMutablePointer<Float>, scratch: ResampleScratch) throws {
        let image = try ImageCodec.decodeFile(atPath: file, targetSize: transform.targetSize)
        var random = SeededRandom(seed: 0)
        transform.apply(image, random: &random, into: destination, scratch: scratch)
    }

    /// The model's logits for every file, in order; unreadable files are reported through
    /// `failed` and left out.
    public func logits(files: [String], failed: (DataError) -> Void) -> [(file: String, logits: [Float])] {
        let model = checkpoint.model
        let perImage = model.inputShape.count
        let scratch = ResampleScratch()
        var results: [(file: String, logits: [Float])] = []
        var pending: [String] = []

        func flush() {
            guard !pending.isEmpty else { return }
            let x = Tensor(data: images.pointer, batch: pending.count, shape: model.inputShape)
            let logits = model.forward(x, mode: .eval)
            let classes = model.numClasses
            for (n, file) in pending.enumerated() {
                results.append((file, Array(UnsafeBufferPointer(start: logits.data + n * classes, count: classes))))
            }
            pending.removeAll()
        }

        for file in files {
            do {
                try preprocess(file, into: images.pointer + pending.count * perImage, scratch: scratch)
                pending.append(file)
                if pending.count == batchSize { flush() }
            } catch let e as DataError {
                failed(e)
            } catch {
                failed(DataError(path: file, reason: MessageText.reason(error)))
            }
        }
        flush()
        return results
    }
}

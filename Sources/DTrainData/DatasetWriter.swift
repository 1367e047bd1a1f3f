import DTrainCore
import Foundation

/// What `DatasetWriter.write` did.
public struct DatasetWriteResult: Sendable {
    /// Images written.
    public let written: Int
    /// Samples that could not be read or decoded, as "name: reason", in index order.
    public let skipped: [String]
}

/// Writes any `DataSource` as an ImageFolder tree that `ImageFolderSource` (and torchvision's
/// ImageFolder) reads back: `DIRECTORY/<class>/<index>.<jpg|png>`.
///
/// `<index>` is the sample's index in the source, zero-padded to the width of the largest
/// index so that file order is index order. Only classes with at least one written sample get a folder. Class
/// names become folder names with "/" replaced by "_" and a leading "." (or an empty name)
/// prefixed with "_". Read back, labels equal the source's when its class names are in
/// code-point order (true of CIFAR, digits and synthetic sources) and every class is written.
public enum DatasetWriter {
    /// Writes every sample, or with `limit` at most that many taken round-robin across classes
    /// (the first sample of each class, then the second of each, …), so a limited copy of a
    /// class-sorted folder still has every class. Samples are decoded and encoded in parallel
    /// over `Compute.threads` threads.
    ///
    /// Nothing is overwritten: the directory must be absent or empty, and every file is created
    /// exclusively. Samples the source cannot produce (`DataError`) are skipped and reported.
    ///
    /// - Parameters:
    ///   - quality: JPEG quality (1–100).
    ///   - progress: called with (done, total) after each block of samples, one call at a time.
    /// - Throws: `DataError` when the directory is not empty or a file cannot be written.
    public static func write(_ source: DataSource, to directory: String, format: ImageFormat = .jpeg, quality: Int = 90,
                             limit: Int? = nil, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> DatasetWriteResult {
        try requireEmptyOrAbsent(directory)
        try createDirectory(directory)
        let selected = selection(source, limit: limit)
        let total = selected.count
        let width = String(max(0, source.count - 1)).count
        var classFolders = [String?](repeating: nil, count: source.classNames.count)
        for i in selected where classFolders[source.label(i)] == nil {
            let folder = DirectoryListing.join(directory, folderName(forClass: source.classNames[source.label(i)]))
            try createDirectory(folder)
            classFolders[source.label(i)] = folder
        }

        let block = 64
        let blocks = (total + block - 1) / block
        let lock = NSLock()
        var done = 0, failure: Error?
        var skipped = [[String]](repeating: [], count: blocks)
        let folders = classFolders
        // Blocks are handed out in order so progress advances steadily.
        var nextBlock = 0
        DispatchQueue.concurrentPerform(iterations: min(blocks, max(1, Compute.threads))) { _ in
            while true {
                lock.lock()
                let b = nextBlock
                nextBlock += 1
                let stop = failure != nil || b >= blocks
                lock.unlock()
                if stop { return }
                var blockSkipped: [String] = []
                do {
                    for i in selected[(b * block)..<min(total, (b + 1) * block)] {
                        let image: DecodedImage
                        do {
                            image = try source.image(at: i, targetSize: nil)
                        } catch let error as DataError {
                            blockSkipped.append("\(MessageText.path(source.sampleName(i))): \(error.reason)")
                            continue
                        }
                        let number = String(i)
                        let name = String(repeating: "0", count: max(0, width - number.count)) + number + "." + format.fileExtension
                        try writeNew(ImageCodec.encode(image, format: format, quality: quality),
                                     to: DirectoryListing.join(folders[source.label(i)]!, name))
                    }
                } catch {
                    lock.lock(); if failure == nil { failure = error }; lock.unlock()
                    return
                }
                lock.lock()
                skipped[b] = blockSkipped
                done += min(total, (b + 1) * block) - b * block
                progress?(done, total)
                lock.unlock()
            }
        }
        if let failure { throw failure }
        let allSkipped = skipped.flatMap { $0 }
        return DatasetWriteResult(written: total - allSkipped.count, skipped: allSkipped)
    }

    /// The indices written for `limit`, ascending (see `write`).
    static func selection(_ source: DataSource, limit: Int?) -> [Int] {
        guard let limit, limit < source.count else { return Array(0..<source.count) }
        var byClass = [[Int]](repeating: [], count: source.classNames.count)
        for i in 0..<source.count { byClass[source.label(i)].append(i) }
        var chosen: [Int] = []
        var round = 0
        while chosen.count < limit {
            for members in byClass where round < members.count && chosen.count < limit {
                chosen.append(members[round])
            }
            round += 1
        }
        return chosen.sorted()
    }

    /// Throws unless `directory` is absent or an empty directory.
    public static func requireEmptyOrAbsent(_ directory: String) throws {
        guard let kind = DirectoryListing.kind(of: directory) else { return }
        guard kind == .directory else { throw DataError(path: directory, reason: "exists and is not a directory") }
        if try !DirectoryListing.entries(of: directory).isEmpty {
            throw DataError(path: directory, reason: "output directory is not empty; refusing to overwrite")
        }
    }

    /// The folder name used for a class.
    public static func folderName(forClass name: String) -> String {
        let safe = name.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\0", with: "_")
        return safe.isEmpty || safe.hasPrefix(".") ? "_" + safe : safe
    }

    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw DataError(path: path, reason: "cannot create directory: \(MessageText.reason(error))")
        }
    }

    /// Writes `data` to a file that must not exist yet.
    static func writeNew(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw DataError(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let failure: Int32? = data.withUnsafeBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return errno }
                offset += n
            }
            return nil
        }
        if let failure { throw DataError(path: path, reason: "cannot write: \(String(cString: strerror(failure)))") }
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#else
private let posixWrite = Darwin.write
#endif

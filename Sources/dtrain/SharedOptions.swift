import Foundation
import ArgumentParser
import DTrainCore
import DTrainDistributed
import DTrainData
import DTrainTraining

/// Where the data comes from (train, eval).
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset path: an ImageFolder root (train/ and val/, or one tree with --val-split), a CIFAR binary directory, or an annotation list file (cls_train.txt; val from cls_val.txt or cls_test.txt beside it). Default: the embedded digits.")
    var data: String?
    @Option(help: "Dataset kind: folder, list, cifar10, cifar100, digits or synthetic. Default: detected from --data.")
    var dataset: String?
    @Option(name: .customLong("val-split"), help: "Hold out this fraction of a single-root ImageFolder as validation.")
    var valSplit: Double?

    func validate() throws {
        _ = try DatasetKind.parse(dataset)
        if let v = valSplit, !(v > 0 && v < 1) { throw ValidationError("--val-split must be a fraction in (0, 1), got \(v)") }
    }
}

/// Threads a rank uses (train, eval).
struct ResourceOptions: ParsableArguments {
    @Option(help: "Compute threads per rank. Default: cores ÷ ranks on this node.")
    var threads: Int?
    @Option(help: "Data loader threads per rank. Default: what the cores leave free, at least 1.")
    var workers: Int?

    /// Threads beyond this many per core only add memory and switching: a typo, not a setting.
    static let threadsPerCoreLimit = 4

    func validate() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let limit = ResourceOptions.threadsPerCoreLimit * cores
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        if let t = threads, t > limit { throw ValidationError("--threads \(t): this node has \(cores) cores; at most \(limit) (\(ResourceOptions.threadsPerCoreLimit) per core)") }
        if let w = workers, w < 0 { throw ValidationError("--workers must be 0 or more, got \(w)") }
        if let w = workers, w > limit { throw ValidationError("--workers \(w): this node has \(cores) cores; at most \(limit) (\(ResourceOptions.threadsPerCoreLimit) per core)") }
    }
}

/// The kernel variants (train, bench, eval, predict).
struct KernelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Kernel variants: the widest this CPU runs, or a lower set to compare. Default: auto, or the DTRAIN_KERNELS environment variable.",
                               valueName: "auto|avx2|avx512"))
    var kernels: String?

    /// The request from --kernels, else DTRAIN_KERNELS, else auto.
    func request() throws -> KernelSet.Request {
        if let value = kernels { return try KernelSet.Request(parsing: value, source: "--kernels") }
        if let value = ProcessInfo.processInfo.environment["DTRAIN_KERNELS"] {
            return try KernelSet.Request(parsing: value, source: "DTRAIN_KERNELS")
        }
        return .auto
    }

    func validate() throws {
        do { _ = try request() } catch let error as KernelSetError { throw ValidationError(error.message) }
    }
}

/// The arithmetic of convolutions and linear layers (train, bench, eval, predict).
struct PrecisionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Convolution and linear-layer arithmetic: float32, or bf16 operands with float32 accumulation (PyTorch's CPU autocast; needs a CPU with AVX512_BF16). Default: fp32.",
                               valueName: "fp32|bf16"))
    var precision: String?

    /// The precision asked for (checked against the CPU by `Precision.check`).
    func parsed() throws -> Precision { try Precision.parse(precision ?? "fp32") }

    /// DTRAIN_BF16_EMULATION=1: bf16 on a CPU without AVX512_BF16, in float32 kernels (same
    /// results, slower than fp32; for checking bf16 numerics anywhere).
    var emulated: Bool { ProcessInfo.processInfo.environment["DTRAIN_BF16_EMULATION"] == "1" }

    /// The precision, checked against this CPU.
    func resolved() throws -> Precision {
        let precision = try parsed()
        try precision.check(emulated: emulated)
        return precision
    }

    func validate() throws {
        do { _ = try parsed() } catch let error as PrecisionError { throw ValidationError(error.message) }
    }
}

/// `--allreduce-dtype` (train, bench): the element type gradients travel in across ranks.
struct AllreduceOptions: ParsableArguments {
    @Option(name: .customLong("allreduce-dtype"),
            help: ArgumentHelp("Element type of the gradient allreduce under mpirun: float32, or bf16 (half the bytes; each rank rounds its gradients ÷ ranks to bf16, partial sums are rounded to bf16, the result is widened back to float32). Any CPU. Default: fp32.",
                               valueName: "fp32|bf16"))
    var allreduceDType: String?

    func parsed() throws -> AllreduceDType { try AllreduceDType.parse(allreduceDType ?? "fp32") }

    func validate() throws {
        do { _ = try parsed() } catch let error as PrecisionError { throw ValidationError(error.message) }
    }
}

/// The evaluation geometry and resize filter, under torchvision's reference-script names
/// (train, eval, predict).
struct EvalGeometryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Resize filter: PIL's antialiased bilinear or bicubic (a = -0.5), as torchvision's Resize on PIL images. Default: bilinear in training; eval and predict use the checkpoint's.", valueName: "bilinear|bicubic"))
    var interpolation: String?
    @Option(name: .customLong("val-resize-size"), help: "Evaluation Resize: the shorter side before the centre crop. Default: round(crop·256/224) for the imagenet preset, the crop for cifar; eval and predict use the checkpoint's.")
    var valResizeSize: Int?
    @Option(name: .customLong("val-crop-size"), help: "Evaluation CenterCrop: the model's input side. In training it must equal the training crop (the model is built for one input size). Default: the training crop (the checkpoint's resolution).")
    var valCropSize: Int?

    /// The parsed `--interpolation`.
    var filter: Interpolation? { interpolation.flatMap(Interpolation.init(rawValue:)) }

    func validate() throws {
        if let i = interpolation, Interpolation(rawValue: i) == nil {
            throw ValidationError("--interpolation \(i): expected bilinear or bicubic")
        }
        if let r = valResizeSize, !(1...65536).contains(r) { throw ValidationError("--val-resize-size must be between 1 and 65536, got \(r)") }
        if let c = valCropSize, !(8...4096).contains(c) { throw ValidationError("--val-crop-size must be between 8 and 4096, got \(c)") }
        if let r = valResizeSize, let c = valCropSize, c > r {
            throw ValidationError("--val-crop-size \(c) is larger than --val-resize-size \(r)")
        }
    }

    /// The checkpoint's evaluation transform with these options applied; throws when the
    /// resize ends up smaller than the crop.
    func transform(_ loaded: LoadedCheckpoint) throws -> ImageTransform {
        let t = loaded.evalTransform(resize: valResizeSize, interpolation: filter)
        if case let .resizeCenterCrop(resize, crop) = t.geometry, crop > resize {
            throw ValidationError("--val-resize-size \(resize) is smaller than the crop size \(crop)")
        }
        return t
    }
}

import CDTrainKernels
import CDTrainSupport

/// The instruction sets dtrain has kernel variants for (CDTrainKernels), chosen when a model is
/// built: by default the widest this CPU runs (`best`), or a lower one forced with `--kernels` or
/// DTRAIN_KERNELS, to compare them or to test. Every variant computes the same function; results
/// differ only in float rounding (other blockings and summation orders).
///
/// One binary serves every node kind: the Swift code is compiled for x86-64-v3 (AVX2 + FMA), and
/// each CDTrainKernels kernel exists once per set, compiled with that set's target attribute and
/// listed in the set's `table`.
public enum KernelSet: String, CaseIterable, Sendable {
    /// Eight-lane AVX2 with fused multiply-adds (x86-64-v3: Intel Haswell, AMD Zen and newer).
    case avx2
    /// Sixteen-lane AVX-512 F/DQ/BW/VL (Intel Skylake-SP, AMD Zen 4 and newer).
    case avx512

    /// The CPU extensions the set's kernels use, as /proc/cpuinfo names them.
    public var extensions: [String] {
        switch self {
        case .avx2: return ["avx", "avx2", "fma"]
        case .avx512: return ["avx512f", "avx512dq", "avx512bw", "avx512vl"]
        }
    }

    /// Floats per vector register.
    public var lanes: Int { self == .avx2 ? 8 : 16 }

    /// The set's variant of every CDTrainKernels kernel (dtrain_kernel_table.h): the one place
    /// where a set becomes code. Callers read the kernel they need from it and call that.
    public var table: dtrain_kernel_table {
        switch self {
        case .avx2: return dtrain_kernels_avx2
        case .avx512: return dtrain_kernels_avx512
        }
    }

    /// The first extension of `extensions` this CPU (or its operating system) lacks; nil when it
    /// runs the set.
    public var missingExtension: String? { extensions.first { dtrain_cpu_has($0) != 1 } }

    public var isSupported: Bool { missingExtension == nil }

    /// The widest set this CPU runs.
    public static let best: KernelSet = allCases.last(where: \.isSupported) ?? .avx2

    /// Whether this CPU has AVX512_BF16 (bf16 dot products with float accumulation).
    public static let cpuHasBF16: Bool = dtrain_cpu_has("avx512_bf16") == 1

    /// VDPBF16PS's float operations per second over float32 fused multiply-adds' on this CPU
    /// (`dtrain_bf16_dot_speed_ratio`, about a millisecond, measured when first read); 0 without
    /// AVX512_BF16. AMD Zen 4 runs VDPBF16PS at twice the FMAs' rate; an Intel Xeon of family 6
    /// model 207 at half of it, where sgemm on bf16-rounded operands outruns the bf16 kernels.
    public static let bf16DotSpeedRatio: Double = cpuHasBF16 ? dtrain_bf16_dot_speed_ratio() : 0

    /// Whether bf16 convolutions and linear layers on the GEMM path multiply with VDPBF16PS (it
    /// outruns the FMAs here) rather than with sgemm on operands rounded to bf16. Both compute
    /// autocast's arithmetic: bf16 operands, exact products, float sums (in another order).
    public static var bf16DotProductsPayOff: Bool { bf16DotSpeedRatio > 1 }

    /// Whether a model built with this set multiplies bf16 GEMM operands with VDPBF16PS.
    public var multipliesBF16WithDotProducts: Bool { self == .avx512 && KernelSet.bf16DotProductsPayOff }

    /// What start-up lines and `dtrain bench` say of bf16 products with this set on this CPU.
    public var bf16ProductsSummary: String {
        if !KernelSet.cpuHasBF16 { return "bf16 products emulated in float32 kernels" }
        let rate = String(format: "%.2f× the FMAs' rate", KernelSet.bf16DotSpeedRatio)
        return multipliesBF16WithDotProducts ? "VDPBF16PS products, \(rate)"
            : "float32 products of bf16 operands; VDPBF16PS: \(rate)"
    }

    /// What start-up lines and `dtrain bench` print: "avx512 (16 lanes)".
    public var summary: String { "\(rawValue) (\(lanes) lanes)" }

    /// What a command was asked for (`--kernels`, DTRAIN_KERNELS): a set, or auto (the best).
    /// Parsed where the value is read; `resolve()` on the node that runs, which must run the set.
    public struct Request: Sendable, Equatable, CustomStringConvertible {
        /// nil: auto.
        public let set: KernelSet?
        /// Where the value came from, for errors: `--kernels` or DTRAIN_KERNELS.
        public let source: String

        public static let auto = Request(set: nil, source: "--kernels")

        /// The set's name, or auto.
        public var description: String { self.set?.rawValue ?? "auto" }

        public init(set: KernelSet?, source: String) {
            self.set = set
            self.source = source
        }

        /// `value`: auto or a set's name.
        public init(parsing value: String, source: String = "--kernels") throws {
            if value == "auto" {
                self.init(set: nil, source: source)
                return
            }
            guard let set = KernelSet(rawValue: value) else {
                throw KernelSetError(message: "\(source) \(value): expected auto, " + KernelSet.allCases.map(\.rawValue).joined(separator: " or "))
            }
            self.init(set: set, source: source)
        }

        /// The set to use on this CPU: the requested one, which it must run, or the best.
        public func resolve() throws -> KernelSet {
            guard let set else { return KernelSet.best }
            if let missing = set.missingExtension {
                throw KernelSetError(message: "\(source) \(set.rawValue): this CPU lacks \(missing); it runs " +
                                     KernelSet.allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", "))
            }
            return set
        }
    }
}

/// A `--kernels` or DTRAIN_KERNELS value that names no set, or one this CPU cannot run.
public struct KernelSetError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

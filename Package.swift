// swift-tools-version:5.9
import Foundation
import PackageDescription

// dtrain: data-parallel ResNet/ResNeXt training on CPU clusters over Open MPI.
//
// Layering (each library has a mirrored test target):
//   COpenBLAS, CTurboJPEG, CPNG,
//   COpenMPI                         system libraries found with pkg-config (Debian -dev packages)
//   CMPI                             C shim: Open MPI's handles are macros Swift cannot import
//   CDTrainSupport                   C helpers: thread pool hand-off, CPU features, OpenBLAS kernel choice, stop signals
//   CDTrainKernels                   kernels with one variant per instruction set (AVX2, AVX-512)
//   DTrainCore                       tensors, memory, thread pool, GEMM, RNG, atomic file writes
//   DTrainNN                         layers (forward + backward side by side) and the model zoo
//   DTrainData                       image sources, JPEG/PNG decoding, augmentation, sharded loader
//   DTrainWeights                    weight files (safetensors, every torch.save format), checkpoints,
//                                    the one verified read and checkpoint metadata → model options/preset
//   DTrainDistributed                Communicator (MPI and single-process), gradient allreduce, SyncBN
//   DTrainTraining                   optimizers, schedules, the training step, benchmarks
//   dtrain                           the command line (one file per subcommand)

// One portable build: on x86-64, release builds target Haswell (x86-64-v3's AVX2, FMA, BMI1/2,
// F16C and MOVBE, which Intel Haswell, AMD Zen and every newer x86-64 server CPU have; Swift's
// -target-cpu takes CPU names, not x86-64-v3), so a binary built on a login node runs on every compute
// node, and the Swift kernels' eight-lane vectors are AVX2 registers with fused multiply-adds
// (DTRAIN_FMA). Wider kernels (AVX-512) live in CDTrainKernels, compiled per instruction set in
// the same binary and chosen at run time (`KernelSet`, `--kernels`). CDTrainSupport's start-up
// check stops a binary on a CPU without the baseline with a one-line error naming what is missing.
//
// DTRAIN_CPU=native compiles the Swift code for the build machine's own CPU instead (like C's
// -march=native; BENCHMARKS.md, "Portable and native builds", says what it gives), and
// DTRAIN_CPU=<cpu> for a named one (with DTRAIN_FMA=1 if that CPU has FMA). Other architectures
// build for their host CPU.
let environment = ProcessInfo.processInfo.environment
#if arch(x86_64)
let portableCPU = "haswell"
let portableExtensions = ["avx", "avx2", "fma", "f16c", "movbe", "bmi1", "bmi2"]
#else
let portableCPU = "native"
let portableExtensions: [String] = []
#endif
let targetCPU = environment["DTRAIN_CPU"] ?? portableCPU
let hostFlags: Set<String> = {
    #if arch(x86_64)
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    guard let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    return Set(flags.split(separator: " ").map(String.init))
    #else
    return []
    #endif
}()
let fusedMultiplyAdd: Bool = {
    if let choice = environment["DTRAIN_FMA"] { return choice == "1" }
    if targetCPU == portableCPU { return !portableExtensions.isEmpty }
    return targetCPU == "native" && hostFlags.contains("fma")
}()
// The extensions the Swift code may use, as /proc/cpuinfo names them and as CDTrainSupport's
// start-up check (DTRAIN_NEEDS_*) does.
let requiredExtensions: [String] = {
    if targetCPU == portableCPU { return portableExtensions }
    guard targetCPU == "native" else { return [] }
    return ["avx", "avx2", "fma", "f16c", "movbe", "bmi1", "bmi2", "avx512f", "avx512dq", "avx512bw", "avx512vl"]
        .filter(hostFlags.contains)
}()
let cpuCheck: [CSetting] = requiredExtensions.map { name in
    .define("DTRAIN_NEEDS_" + (name == "bmi1" ? "BMI" : name.uppercased()))
} + (targetCPU == "native" && targetCPU != portableCPU ? [.define("DTRAIN_NATIVE_BUILD")] : [])
// Release builds are checked (`-O`): integer overflow and out-of-range indexing trap instead of
// reading past a buffer when a downloaded file lies about its sizes. DTRAIN_UNCHECKED=1 builds
// everything `-Ounchecked` instead, only to measure what the checks cost (BENCHMARKS.md,
// "Checked build", which also says why no target keeps `-Ounchecked`).
let optimizationFlag = environment["DTRAIN_UNCHECKED"] == "1" ? "-Ounchecked" : "-O"
let optimize: [SwiftSetting] = [
    .unsafeFlags([optimizationFlag, "-target-cpu", targetCPU], .when(configuration: .release)),
] + (fusedMultiplyAdd ? [.define("DTRAIN_FMA", .when(configuration: .release))] : [])

let package = Package(
    name: "dtrain",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dtrain", targets: ["dtrain"]),
        // The parsers of untrusted input, for the fuzz targets in Fuzzing/ (their own package).
        .library(name: "DTrainData", targets: ["DTrainData"]),
        .library(name: "DTrainWeights", targets: ["DTrainWeights"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "COpenMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CMPI", dependencies: ["COpenMPI", "CDTrainKernels"]),

        .target(name: "CDTrainSupport", cSettings: cpuCheck),
        // The hot kernels that have per-instruction-set variants: each source is compiled once per
        // kernel set with a function-level target attribute, so one binary holds them all.
        .target(name: "CDTrainKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),
        .target(name: "DTrainCore", dependencies: ["COpenBLAS", "CDTrainSupport", "CDTrainKernels"], swiftSettings: optimize),
        .target(name: "DTrainNN", dependencies: ["DTrainCore", "CDTrainKernels"], swiftSettings: optimize),
        .target(name: "DTrainData", dependencies: ["DTrainCore", "CTurboJPEG", "CPNG"], swiftSettings: optimize),
        .target(name: "DTrainWeights", dependencies: [
            "DTrainCore", "DTrainNN", "DTrainData", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: optimize),
        .target(name: "DTrainDistributed", dependencies: ["DTrainCore", "DTrainNN", "CMPI", "CDTrainKernels"], swiftSettings: optimize),
        .target(name: "DTrainTraining", dependencies: [
            "DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "CDTrainKernels",
        ], swiftSettings: optimize),
        .executableTarget(name: "dtrain", dependencies: [
            "DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimize),

        // Runs the built executable from tests (single process and under mpirun), and an in-process
        // loopback Communicator (ranks as threads) for unit tests of the distributed code.
        .target(name: "DTrainTestSupport", dependencies: ["DTrainDistributed", "CDTrainKernels"], path: "Tests/Support"),
        // Test support: counts heap allocations so tests can check that hot paths make none.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),

        .testTarget(name: "DTrainCoreTests", dependencies: ["DTrainCore", "CAllocationCounter"]),
        .testTarget(name: "DTrainNNTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainWeights"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainDataTests", dependencies: ["DTrainCore", "DTrainData"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainWeightsTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainDistributedTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining", "DTrainTestSupport", "CDTrainKernels"]),
        .testTarget(name: "DTrainTrainingTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining", "DTrainTestSupport", "CAllocationCounter"], resources: [.copy("Fixtures")]),
    ]
)

// swift-tools-version:5.9
import Foundation
import PackageDescription

// dtrain: data-parallel ResNet/ResNeXt training on CPU clusters over Open MPI.
//
// Layering (each library has a mirrored test target):
//   COpenBLAS, CTurboJPEG, CPNG,
//   COpenMPI                         system libraries found with pkg-config (Debian -dev packages)
//   CMPI                             C shim: Open MPI's handles are macros Swift cannot import
//   CDTrainSupport                   C helpers for the thread pool (closure hand-off, spin hint)
//   DTrainCore                       tensors, memory, thread pool, GEMM, RNG, atomic file writes
//   DTrainNN                         layers (forward + backward side by side) and the model zoo
//   DTrainData                       image sources, JPEG/PNG decoding, augmentation, sharded loader
//   DTrainWeights                    weight files (safetensors, every torch.save format), checkpoints,
//                                    the one verified read and checkpoint metadata → model options/preset
//   DTrainDistributed                Communicator (MPI and single-process), gradient allreduce, SyncBN
//   DTrainTraining                   optimizers, schedules, the training step, benchmarks
//   dtrain                           the command line (one file per subcommand)

// Release builds are compiled for the CPU they are built on (`-target-cpu native`, like C's
// `-march=native`): the kernels' eight-lane vectors become AVX2 registers on x86-64 CPUs that have
// them, and their multiply-adds fused (DTRAIN_FMA) where the CPU has FMA. To build a binary for
// other machines, name the oldest CPU it must run on: DTRAIN_CPU=x86-64 (any x86-64), or e.g.
// DTRAIN_CPU=haswell, znver2, neoverse-n1 (with DTRAIN_FMA=1 if that CPU has FMA).
let environment = ProcessInfo.processInfo.environment
let targetCPU = environment["DTRAIN_CPU"] ?? "native"
let fusedMultiplyAdd: Bool = {
    if let choice = environment["DTRAIN_FMA"] { return choice == "1" }
    guard targetCPU == "native" else { return false }
    #if arch(x86_64)
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    return info.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("fma") }
    #else
    return false
    #endif
}()
// The instruction-set extensions a native build may use, as /proc/cpuinfo names them and as
// CDTrainSupport's start-up check (DTRAIN_NEEDS_*) does: a binary copied to an older CPU stops
// with a one-line error naming the missing extension instead of an illegal instruction.
let hostExtensions: [String] = {
    guard targetCPU == "native" else { return [] }
    #if arch(x86_64)
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    guard let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let present = Set(flags.split(separator: " ").map(String.init))
    return ["avx", "avx2", "fma", "bmi1", "bmi2", "avx512f", "avx512dq", "avx512bw", "avx512vl"].filter(present.contains)
    #else
    return []
    #endif
}()
let cpuCheck: [CSetting] = hostExtensions.map { name in
    .define("DTRAIN_NEEDS_" + (name == "bmi1" ? "BMI" : name.uppercased()))
}
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
        .target(name: "CMPI", dependencies: ["COpenMPI"]),

        .target(name: "CDTrainSupport", cSettings: cpuCheck),
        .target(name: "DTrainCore", dependencies: ["COpenBLAS", "CDTrainSupport"], swiftSettings: optimize),
        .target(name: "DTrainNN", dependencies: ["DTrainCore"], swiftSettings: optimize),
        .target(name: "DTrainData", dependencies: ["DTrainCore", "CTurboJPEG", "CPNG"], swiftSettings: optimize),
        .target(name: "DTrainWeights", dependencies: [
            "DTrainCore", "DTrainNN", "DTrainData", .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: optimize),
        .target(name: "DTrainDistributed", dependencies: ["DTrainCore", "DTrainNN", "CMPI"], swiftSettings: optimize),
        .target(name: "DTrainTraining", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed"], swiftSettings: optimize),
        .executableTarget(name: "dtrain", dependencies: [
            "DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: optimize),

        // Runs the built executable from tests (single process and under mpirun), and an in-process
        // loopback Communicator (ranks as threads) for unit tests of the distributed code.
        .target(name: "DTrainTestSupport", dependencies: ["DTrainDistributed"], path: "Tests/Support"),
        // Test support: counts heap allocations so tests can check that hot paths make none.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),

        .testTarget(name: "DTrainCoreTests", dependencies: ["DTrainCore", "CAllocationCounter"]),
        .testTarget(name: "DTrainNNTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainWeights"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainDataTests", dependencies: ["DTrainCore", "DTrainData"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainWeightsTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DTrainDistributedTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining", "DTrainTestSupport"]),
        .testTarget(name: "DTrainTrainingTests", dependencies: ["DTrainCore", "DTrainNN", "DTrainData", "DTrainWeights", "DTrainDistributed", "DTrainTraining", "DTrainTestSupport", "CAllocationCounter"], resources: [.copy("Fixtures")]),
    ]
)

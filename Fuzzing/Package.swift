// swift-tools-version:5.4
import PackageDescription

// dtrain's libFuzzer targets: one executable per parser of untrusted input, built only by
// `launch/fuzz` (never by a plain `swift build` or `swift test` of dtrain, which do not see this
// package). It depends on dtrain by path, through dtrain's library products.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM links an executable's `main` as an alias of
// `<Module>_main`, which `-parse-as-library` never emits, and libFuzzer's own `main` (the one that
// calls LLVMFuzzerTestOneInput) must be the program's entry point instead.
//
//   swift build -c release --package-path Fuzzing --scratch-path .build-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
let package = Package(
    name: "dtrain-fuzz",
    dependencies: [
        .package(name: "dtrain", path: ".."),
    ],
    targets: [
        // Temporary files for the parsers that only read from a path (the commands' door).
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzUnpickler", dependencies: [.product(name: "DTrainWeights", package: "dtrain")]),
        .executableTarget(name: "FuzzWeightsFile", dependencies: ["FuzzSupport", .product(name: "DTrainWeights", package: "dtrain")]),
        .executableTarget(name: "FuzzSafeTensors", dependencies: [.product(name: "DTrainWeights", package: "dtrain")]),
        .executableTarget(name: "FuzzImage", dependencies: [.product(name: "DTrainData", package: "dtrain")]),
        .executableTarget(name: "FuzzAnnotationList", dependencies: ["FuzzSupport", .product(name: "DTrainData", package: "dtrain")]),
        .executableTarget(name: "FuzzMetadata", dependencies: [
            "FuzzSupport", .product(name: "DTrainData", package: "dtrain"), .product(name: "DTrainWeights", package: "dtrain"),
        ]),
    ]
)

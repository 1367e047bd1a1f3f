import XCTest
@testable import DTrainCore

/// Choosing the kernel set: the best one is the widest this CPU runs, `--kernels` values parse
/// or fail naming the flag and the choices, and a set this CPU lacks is refused naming the
/// missing extension.
final class KernelSetTests: XCTestCase {
    func testBestIsTheWidestSupportedSet() throws {
        #if arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: " ").map(String.init))
        let wide = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        XCTAssertEqual(KernelSet.best, wide ? .avx512 : .avx2)
        XCTAssertEqual(KernelSet.avx512.isSupported, wide)
        XCTAssertEqual(KernelSet.cpuHasBF16, flags.contains("avx512_bf16"))
        #endif
        XCTAssertTrue(KernelSet.best.isSupported)
        XCTAssertTrue(KernelSet.avx2.isSupported, "the portable build needs AVX2 and FMA")
        XCTAssertEqual(try KernelSet.Request.auto.resolve(), KernelSet.best)
        XCTAssertEqual(KernelSet.avx512.summary, "avx512 (16 lanes)")
    }

    func testRequestsParseAndResolve() throws {
        XCTAssertNil(try KernelSet.Request(parsing: "auto").set)
        XCTAssertEqual(try KernelSet.Request(parsing: "avx2").resolve(), .avx2)
        XCTAssertThrowsError(try KernelSet.Request(parsing: "sse4", source: "DTRAIN_KERNELS")) { error in
            XCTAssertEqual("\(error)", "DTRAIN_KERNELS sse4: expected auto, avx2 or avx512")
        }
        guard let missing = KernelSet.avx512.missingExtension else {
            XCTAssertEqual(try KernelSet.Request(parsing: "avx512").resolve(), .avx512)
            return
        }
        XCTAssertThrowsError(try KernelSet.Request(parsing: "avx512").resolve()) { error in
            XCTAssertEqual("\(error)", "--kernels avx512: this CPU lacks \(missing); it runs avx2")
        }
    }
}

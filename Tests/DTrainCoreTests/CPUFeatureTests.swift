import XCTest
import CDTrainSupport
@testable import DTrainCore

/// The CPU feature test (CPUID and the operating system's register state) agrees with the
/// kernel's /proc/cpuinfo, and the build's own requirements (the portable x86-64 baseline, or the
/// host's extensions for a native build) hold on the machine the tests run on.
final class CPUFeatureTests: XCTestCase {
    func testFeaturesAgreeWithProcCpuinfo() throws {
        #if arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("flags") }, "no flags line in /proc/cpuinfo")
        let flags = Set(line.split(separator: " ").map(String.init))
        let names = [("avx", "avx"), ("fma", "fma"), ("f16c", "f16c"), ("movbe", "movbe"), ("avx2", "avx2"),
                     ("bmi", "bmi1"), ("bmi2", "bmi2"), ("avx512f", "avx512f"), ("avx512dq", "avx512dq"),
                     ("avx512bw", "avx512bw"), ("avx512vl", "avx512vl"), ("avx512cd", "avx512cd"),
                     ("avx512_bf16", "avx512_bf16")]
        for (name, cpuinfoName) in names {
            XCTAssertEqual(dtrain_cpu_has(name), flags.contains(cpuinfoName) ? 1 : 0, name)
        }
        XCTAssertEqual(dtrain_cpu_has("sse9"), -1)
        #endif
        XCTAssertNil(dtrain_missing_cpu_feature().map { String(cString: $0) })
    }

    /// OpenBLAS runs vector kernels that match the CPU: on a CPU with AVX2 and FMA never its SSE3
    /// or AVX-only ones (which OpenBLAS 0.3.21 picks for CPU models newer than itself; dtrain then
    /// has it choose again, `dtrain_blas_core`), unless OPENBLAS_CORETYPE asks for them.
    func testOpenBLASRunsKernelsForThisCPU() throws {
        #if arch(x86_64)
        if let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            throw XCTSkip("OPENBLAS_CORETYPE=\(forced) chooses OpenBLAS's kernels")
        }
        guard dtrain_cpu_has("avx2") == 1, dtrain_cpu_has("fma") == 1 else {
            throw XCTSkip("this CPU lacks AVX2 or FMA")
        }
        let withoutAVX2 = ["Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn",
                           "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge",
                           "Bobcat", "Bulldozer", "Piledriver", "Steamroller", "Excavator"]
        let core = BLAS.core
        XCTAssertFalse(core.isEmpty, "OpenBLAS does not name its kernels")
        XCTAssertFalse(withoutAVX2.contains { $0.caseInsensitiveCompare(core) == .orderedSame },
                       "OpenBLAS runs its \(core) kernels on a CPU with AVX2 and FMA")
        XCTAssertTrue(BLAS.coreSummary.hasPrefix("OpenBLAS \(core)"), BLAS.coreSummary)
        if let replaced = dtrain_blas_core_replaced() {
            XCTAssertTrue(withoutAVX2.contains(String(cString: replaced)), String(cString: replaced))
            XCTAssertTrue(BLAS.coreSummary.hasSuffix("(it took this CPU for \(String(cString: replaced)))"), BLAS.coreSummary)
        }
        #endif
    }
}

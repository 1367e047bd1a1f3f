import XCTest
import CDTrainSupport

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
                     ("avx512bw", "avx512bw"), ("avx512vl", "avx512vl"), ("avx512_bf16", "avx512_bf16")]
        for (name, cpuinfoName) in names {
            XCTAssertEqual(dtrain_cpu_has(name), flags.contains(cpuinfoName) ? 1 : 0, name)
        }
        XCTAssertEqual(dtrain_cpu_has("sse9"), -1)
        #endif
        XCTAssertNil(dtrain_missing_cpu_feature().map { String(cString: $0) })
    }
}

import XCTest
@testable import DTrainCore
@testable import DTrainNN

/// Which products a bf16 model's GEMM-path layers use: VDPBF16PS only with the avx512 set on a CPU
/// with AVX512_BF16 whose VDPBF16PS outruns its float32 FMAs (`KernelSet.bf16DotProductsPayOff`),
/// otherwise with the avx512 set the widened kernels (float32 FMAs on operands rounded while
/// packed), and sgemm on bf16-rounded operands with the avx2 set or with the widened kernels
/// switched off; fp32 models never use the bf16 kernels.
final class BF16ProductChoiceTests: XCTestCase {
    func testBuildContextChoosesByTheMeasuredRate() throws {
        for kernels in KernelSet.allCases where kernels.isSupported {
            let fp32 = BuildContext(workspace: Workspace(), kernels: kernels, precision: .fp32)
            XCTAssertNil(fp32.bf16GEMM, "\(kernels.rawValue): fp32")
            let bf16 = BuildContext(workspace: Workspace(), kernels: kernels, precision: .bf16)
            let dot = kernels == .avx512 && KernelSet.cpuHasBF16 && KernelSet.bf16DotSpeedRatio > 1
            XCTAssertEqual(bf16.bf16GEMM, dot ? .avx512bf16 : (kernels == .avx512 ? .widenedAVX512 : nil), "\(kernels.rawValue): bf16")
            // Without the widened kernels: VDPBF16PS where it pays, else rounding copies for sgemm.
            let rounding = BuildContext(workspace: Workspace(), engine: EngineOptimisations.all.subtracting(.bf16WidenedGEMM),
                                        kernels: kernels, precision: .bf16)
            XCTAssertEqual(rounding.bf16GEMM, dot ? .avx512bf16 : nil, "\(kernels.rawValue): bf16 without the widened kernels")
            XCTAssertEqual(kernels.multipliesBF16WithDotProducts, dot, kernels.rawValue)
            XCTAssertTrue(kernels.bf16ProductsSummary.contains(dot ? "VDPBF16PS products" : (KernelSet.cpuHasBF16 ? "float32 products" : "emulated")),
                          kernels.bf16ProductsSummary)
        }
    }

    /// The rate is measured, not assumed: on a CPU with AVX512_BF16 it is a plausible ratio (the
    /// CPUs measured run VDPBF16PS at 0.5× to 2× the FMAs' float operations), and 0 elsewhere.
    func testDotProductRateIsMeasured() throws {
        guard KernelSet.cpuHasBF16 else {
            XCTAssertEqual(KernelSet.bf16DotSpeedRatio, 0)
            throw XCTSkip("VDPBF16PS's rate not measured: this CPU lacks avx512_bf16")
        }
        let ratio = KernelSet.bf16DotSpeedRatio
        print("VDPBF16PS runs at \(ratio)× the float32 FMAs' rate on this CPU")
        XCTAssertTrue(ratio.isFinite && ratio > 0.1 && ratio < 10, "VDPBF16PS at \(ratio)× the FMAs' rate")
    }
}

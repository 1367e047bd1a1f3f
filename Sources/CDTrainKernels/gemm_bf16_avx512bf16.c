// dtrain_gemm_bf16_avx512bf16: templates/gemm_bf16.h for AVX-512 F/DQ/BW/VL + AVX512_BF16,
// sixteen lanes, bf16 pairs multiplied and summed by VDPBF16PS. Everything but that instruction is
// the text of dtrain_gemm_bf16_avx512 and dtrain_gemm_bf16_lanes16_avx2.
#include "dtrain_bf16.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
#define LANES 16
#define SUFFIX avx512bf16
#define ROWS DTRAIN_GEMM_BF16_ROWS_LANES16
#define DTRAIN_BF16_NATIVE 1
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2,avx512f,avx512dq,avx512bw,avx512vl,avx512bf16"))), apply_to = function)
#include "templates/vector.h"
#include "templates/gemm_bf16.h"
#pragma clang attribute pop
#else
// No VDPBF16PS off x86-64: the symbol exists so the Swift wrapper links; never called there
// (`KernelSet.cpuHasBF16` is false).
void dtrain_gemm_bf16_avx512bf16(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                 intptr_t lda, const float *b, intptr_t ldb, float beta, float *c, intptr_t ldc,
                                 uint16_t *pack) {
    dtrain_gemm_bf16_reference(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, pack);
}
#endif

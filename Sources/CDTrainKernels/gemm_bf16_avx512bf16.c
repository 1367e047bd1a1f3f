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

#include <time.h>

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/// Seconds of `rounds` × 16 dependent-free VDPBF16PS (dot) or VFMADD231PS, sixteen accumulators.
static double time_products(int dot, long rounds) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0.5f);
    double start = seconds_now();
    for (long r = 0; r < rounds; r++) {
        if (dot) {
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)x, (__m512bh)y);
        } else {
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(x, y, acc[i]);
        }
        __asm__ volatile("" : "+v"(x));  // the operands are not loop-invariant to the compiler
    }
    double elapsed = seconds_now() - start;
    __m512 sum = acc[0];
    for (int i = 1; i < 16; i++) sum = _mm512_add_ps(sum, acc[i]);
    __asm__ volatile("" : : "v"(sum));  // the results are used
    return elapsed;
}

double dtrain_bf16_dot_speed_ratio(void) {
    const long rounds = 20000;
    double dot = 1e9, fma = 1e9;
    time_products(0, rounds);  // wakes the 512-bit units
    for (int i = 0; i < 5; i++) {
        double t = time_products(1, rounds);
        if (t < dot) dot = t;
        t = time_products(0, rounds);
        if (t < fma) fma = t;
    }
    // Per instruction VDPBF16PS does two multiply-adds per lane, an FMA one.
    return dot > 0 ? 2 * fma / dot : 0;
}
#pragma clang attribute pop
#else
// No VDPBF16PS off x86-64: the symbol exists so the Swift wrapper links; never called there
// (`KernelSet.cpuHasBF16` is false).
void dtrain_gemm_bf16_avx512bf16(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                 intptr_t lda, const float *b, intptr_t ldb, float beta, float *c, intptr_t ldc,
                                 uint16_t *pack) {
    dtrain_gemm_bf16_reference(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, pack);
}

double dtrain_bf16_dot_speed_ratio(void) { return 0; }
#endif

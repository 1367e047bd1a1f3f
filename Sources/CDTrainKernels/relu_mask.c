// A residual block's add + ReLU with its mask kept as one bit per element (bf16 activation
// storage, where the block's float32 output lives in shared memory): AVX2, the binary's baseline,
// since the pass runs at memory speed; a scalar loop elsewhere. Bit j of bits[k] is element 8k + j.
#include "dtrain_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx,avx2,fma"))), apply_to = function)

void dtrain_add_relu_masked(const float *a, const float *b, float *y, uint8_t *bits, intptr_t n) {
    const __m256 zero = _mm256_setzero_ps();
    intptr_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        // max(v, 0) gives +0 for ±0 and for NaN; a NaN is put back, to reach the output as unmasked.
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(_mm256_max_ps(v, zero), v, nan));
        bits[i / 8] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ));
    }
    if (i < n) {
        uint8_t byte = 0;
        for (intptr_t j = 0; i + j < n; j++) {
            float v = a[i + j] + b[i + j];
            y[i + j] = v > 0 || v != v ? v : 0;
            byte |= (uint8_t)((v > 0) << j);
        }
        bits[i / 8] = byte;
    }
}

void dtrain_relu_mask_apply(const float *dy, const uint8_t *bits, float *dx, intptr_t n) {
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    intptr_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i byte = _mm256_set1_epi32(bits[i / 8]);
        __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(byte, lanes), lanes);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_loadu_ps(dy + i), _mm256_castsi256_ps(set)));
    }
    for (intptr_t j = 0; i + j < n; j++) dx[i + j] = (bits[i / 8] >> j) & 1 ? dy[i + j] : 0;
}

#pragma clang attribute pop
#else

void dtrain_add_relu_masked(const float *a, const float *b, float *y, uint8_t *bits, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0 || v != v ? v : 0;
        if (i % 8 == 0) bits[i / 8] = 0;
        bits[i / 8] |= (uint8_t)((v > 0) << (i % 8));
    }
}

void dtrain_relu_mask_apply(const float *dy, const uint8_t *bits, float *dx, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) dx[i] = (bits[i / 8] >> (i % 8)) & 1 ? dy[i] : 0;
}

#endif

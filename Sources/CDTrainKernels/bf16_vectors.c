// Whole-buffer bf16 conversions and the bf16 sum, for gradients sent as bf16
// (`--allreduce-dtype bf16`) and activations stored as bf16: plain loops over templates/bf16_round.h, which clang vectorizes for
// the binary's baseline (AVX2); they run at memory speed, so no wider variant is needed.
#include "dtrain_bf16.h"
#include "templates/bf16_round.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif

void dtrain_bf16_pack_scaled(const float *x, float scale, uint16_t *out, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) out[i] = bf16_bits(x[i] * scale);
}

void dtrain_bf16_round_pack(const float *x, float *rounded, uint16_t *bits, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) {
        uint16_t h = bf16_bits(x[i]);
        bits[i] = h;
        rounded[i] = bf16_widened(h);
    }
}

void dtrain_bf16_unpack(const uint16_t *h, float *out, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) out[i] = bf16_widened(h[i]);
}

void dtrain_bf16_sum(const uint16_t *in, uint16_t *inout, intptr_t n) {
    for (intptr_t i = 0; i < n; i++) inout[i] = bf16_bits(bf16_widened(in[i]) + bf16_widened(inout[i]));
}

#if defined(__x86_64__)
#pragma clang attribute pop
#endif

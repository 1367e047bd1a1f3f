// The scalar bf16 conversions, the pack size, and dtrain_gemm_bf16_reference: the definition of
// the bf16 GEMM's numerics (dtrain_bf16.h), in portable C that the vector variants are tested
// against.
#include "dtrain_bf16.h"
#include "templates/bf16_round.h"

uint16_t dtrain_bf16_from_float(float x) { return bf16_bits(x); }

float dtrain_float_from_bf16(uint16_t h) { return bf16_widened(h); }

static intptr_t round_up(intptr_t x, intptr_t step) { return (x + step - 1) / step * step; }

intptr_t dtrain_gemm_bf16_pack_elements(intptr_t m, intptr_t n, intptr_t k) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return 4 * ((k + 1) / 2) * (round_up(m, DTRAIN_GEMM_BF16_ROWS_MAX) + round_up(n, DTRAIN_GEMM_BF16_COLUMNS_MAX));
}

intptr_t dtrain_gemm_bf16_widened_packed_b_floats(intptr_t n, intptr_t k) {
    if (n <= 0 || k <= 0) return 0;
    return (k + 1) / 2 * 2 * round_up(n, 32);
}

static float rounded(float x) { return dtrain_float_from_bf16(dtrain_bf16_from_float(x)); }

void dtrain_gemm_bf16_reference(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                float *c, intptr_t ldc, uint16_t *pack) {
    (void)pack;
    // op(A)[i, p] = a[i·a_row + p·a_depth]; op(B)[p, j] = b[p·b_depth + j·b_column].
    intptr_t a_row = trans_a ? 1 : lda, a_depth = trans_a ? lda : 1;
    intptr_t b_depth = trans_b ? 1 : ldb, b_column = trans_b ? ldb : 1;
    for (intptr_t i = 0; i < m; i++) {
        for (intptr_t j = 0; j < n; j++) {
            float acc = 0;
            for (intptr_t p = 0; p < k; p += 2) {
                // The odd element of the pair first (a zero pair past k adds +0 to a sum that
                // started at +0 and so never is −0: no change).
                if (p + 1 < k) {
                    acc = __builtin_fmaf(rounded(a[i * a_row + (p + 1) * a_depth]),
                                         rounded(b[(p + 1) * b_depth + j * b_column]), acc);
                }
                acc = __builtin_fmaf(rounded(a[i * a_row + p * a_depth]), rounded(b[p * b_depth + j * b_column]), acc);
            }
            float *out = c + i * ldc + j;
            *out = beta == 0 ? acc : __builtin_fmaf(beta, *out, acc);
        }
    }
}

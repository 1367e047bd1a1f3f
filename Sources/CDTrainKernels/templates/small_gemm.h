// dtrain_small_gemm for one instruction set (see dtrain_small_gemm.h); included by
// kernels_<set>.c after vector.h.
//
// The result is covered in blocks of 4 rows × 2 vectors (4 × 16 floats for AVX2, 4 × 32 for
// AVX-512) held in eight accumulators while the inner dimension streams through them: per step
// two vector loads of b, four broadcasts of A and eight multiply-adds. Leftover rows go one at a
// time; leftover columns in one-vector blocks (AVX-512) and then in blocks of eight.

static inline __attribute__((always_inline)) void finish(float *p, vec v, int accumulate) { store(p, accumulate ? load(p) + v : v); }
static inline __attribute__((always_inline)) void finish8(float *p, vec8 v, int accumulate) { store8(p, accumulate ? load8(p) + v : v); }

static void KERNEL(dtrain_small_gemm)(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                                      intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                                      int accumulate) {
    intptr_t j = 0;
    for (; j + 2 * LANES <= n; j += 2 * LANES) {
        intptr_t i = 0;
        for (; i + 4 <= m; i += 4) {
            vec c00 = 0, c01 = 0, c10 = 0, c11 = 0, c20 = 0, c21 = 0, c30 = 0, c31 = 0;
            const float *ap = a + i * row_step, *bp = b + j;
            for (intptr_t p = 0; p < k; p++) {
                vec b0 = load(bp), b1 = load(bp + LANES);
                vec x0 = broadcast(ap[0]), x1 = broadcast(ap[row_step]);
                vec x2 = broadcast(ap[2 * row_step]), x3 = broadcast(ap[3 * row_step]);
                c00 = fma_lanes(c00, x0, b0); c01 = fma_lanes(c01, x0, b1);
                c10 = fma_lanes(c10, x1, b0); c11 = fma_lanes(c11, x1, b1);
                c20 = fma_lanes(c20, x2, b0); c21 = fma_lanes(c21, x2, b1);
                c30 = fma_lanes(c30, x3, b0); c31 = fma_lanes(c31, x3, b1);
                ap += depth_step;
                bp += ldb;
            }
            float *out = c + i * ldc + j;
            finish(out, c00, accumulate); finish(out + LANES, c01, accumulate);
            finish(out + ldc, c10, accumulate); finish(out + ldc + LANES, c11, accumulate);
            finish(out + 2 * ldc, c20, accumulate); finish(out + 2 * ldc + LANES, c21, accumulate);
            finish(out + 3 * ldc, c30, accumulate); finish(out + 3 * ldc + LANES, c31, accumulate);
        }
        for (; i < m; i++) {
            vec c0 = 0, c1 = 0;
            const float *ap = a + i * row_step, *bp = b + j;
            for (intptr_t p = 0; p < k; p++) {
                vec x = broadcast(ap[0]);
                c0 = fma_lanes(c0, x, load(bp)); c1 = fma_lanes(c1, x, load(bp + LANES));
                ap += depth_step;
                bp += ldb;
            }
            finish(c + i * ldc + j, c0, accumulate); finish(c + i * ldc + j + LANES, c1, accumulate);
        }
    }
#if LANES > 8
    for (; j + LANES <= n; j += LANES) {
        intptr_t i = 0;
        for (; i + 4 <= m; i += 4) {
            vec c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            const float *ap = a + i * row_step, *bp = b + j;
            for (intptr_t p = 0; p < k; p++) {
                vec b0 = load(bp);
                c0 = fma_lanes(c0, broadcast(ap[0]), b0);
                c1 = fma_lanes(c1, broadcast(ap[row_step]), b0);
                c2 = fma_lanes(c2, broadcast(ap[2 * row_step]), b0);
                c3 = fma_lanes(c3, broadcast(ap[3 * row_step]), b0);
                ap += depth_step;
                bp += ldb;
            }
            float *out = c + i * ldc + j;
            finish(out, c0, accumulate); finish(out + ldc, c1, accumulate);
            finish(out + 2 * ldc, c2, accumulate); finish(out + 3 * ldc, c3, accumulate);
        }
        for (; i < m; i++) {
            vec acc = 0;
            const float *ap = a + i * row_step, *bp = b + j;
            for (intptr_t p = 0; p < k; p++) {
                acc = fma_lanes(acc, broadcast(ap[0]), load(bp));
                ap += depth_step;
                bp += ldb;
            }
            finish(c + i * ldc + j, acc, accumulate);
        }
    }
#endif
    for (; j + 8 <= n; j += 8) {
        for (intptr_t i = 0; i < m; i++) {
            vec8 acc = 0;
            const float *ap = a + i * row_step, *bp = b + j;
            for (intptr_t p = 0; p < k; p++) {
                acc = fma8(acc, (vec8)ap[0], load8(bp));
                ap += depth_step;
                bp += ldb;
            }
            finish8(c + i * ldc + j, acc, accumulate);
        }
    }
}

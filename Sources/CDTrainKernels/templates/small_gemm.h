// dtrain_small_gemm for one instruction set (see dtrain_small_gemm.h); included by
// kernels_<set>.c after vector.h.
//
// The result is covered in blocks of R rows × V vectors held in R·V accumulators while the inner
// dimension streams through them: per step V vector loads of b, R broadcasts of A and R·V
// multiply-adds. The multiply-adds of two units take 4 cycles each, so a block needs at least 8
// independent accumulators to keep both busy:
// - eight lanes (16 registers): 4 × 2 blocks (8 accumulators), then single rows, then columns in
//   blocks of eight;
// - sixteen lanes (32 registers): 8 × 2 blocks (16 accumulators), then 4 × 2, then single rows;
//   one-vector columns (16 channels) in 8 × 1 blocks, then 4 × 1 and single rows.
// Every element is the same fused sum over the inner dimension in order whatever its block, so
// the blocking never changes a result.

static inline __attribute__((always_inline)) void finish(float *p, vec v, int accumulate) { store(p, accumulate ? load(p) + v : v); }
static inline __attribute__((always_inline)) void finish8(float *p, vec8 v, int accumulate) { store8(p, accumulate ? load8(p) + v : v); }

/// One R × V block at `ap` (A's row 0 of the block) and `bp` (b's first column of the block).
/// R and V are constants at every call, so the loops unroll and the accumulators stay in
/// registers.
static inline __attribute__((always_inline)) void gemm_block(const int R, const int V, intptr_t k, const float *ap,
                                                             intptr_t row_step, intptr_t depth_step, const float *bp,
                                                             intptr_t ldb, float *out, intptr_t ldc, int accumulate) {
    vec acc[8][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = 0;
    for (intptr_t p = 0; p < k; p++) {
        vec b[2];
        for (int v = 0; v < V; v++) b[v] = load(bp + v * LANES);
        for (int r = 0; r < R; r++) {
            vec x = broadcast(ap[r * row_step]);
            for (int v = 0; v < V; v++) acc[r][v] = fma_lanes(acc[r][v], x, b[v]);
        }
        ap += depth_step;
        bp += ldb;
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) finish(out + r * ldc + v * LANES, acc[r][v], accumulate);
}

/// Rows of the blocks: ROWS_WIDE in the first blocks, then 4, then 1.
#if LANES > 8
#define ROWS_WIDE 8
#else
#define ROWS_WIDE 4
#endif

/// The columns j ..< j + V·LANES of every row.
static inline __attribute__((always_inline)) void gemm_columns(const int V, intptr_t m, intptr_t k, const float *a,
                                                               intptr_t row_step, intptr_t depth_step, const float *b,
                                                               intptr_t ldb, float *c, intptr_t ldc, int accumulate) {
    intptr_t i = 0;
    for (; i + ROWS_WIDE <= m; i += ROWS_WIDE)
        gemm_block(ROWS_WIDE, V, k, a + i * row_step, row_step, depth_step, b, ldb, c + i * ldc, ldc, accumulate);
#if ROWS_WIDE > 4
    for (; i + 4 <= m; i += 4)
        gemm_block(4, V, k, a + i * row_step, row_step, depth_step, b, ldb, c + i * ldc, ldc, accumulate);
#endif
    for (; i < m; i++)
        gemm_block(1, V, k, a + i * row_step, row_step, depth_step, b, ldb, c + i * ldc, ldc, accumulate);
}

static void KERNEL(dtrain_small_gemm)(intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t row_step,
                                      intptr_t depth_step, const float *b, intptr_t ldb, float *c, intptr_t ldc,
                                      int accumulate) {
    intptr_t j = 0;
    for (; j + 2 * LANES <= n; j += 2 * LANES)
        gemm_columns(2, m, k, a, row_step, depth_step, b + j, ldb, c + j, ldc, accumulate);
#if LANES > 8
    for (; j + LANES <= n; j += LANES)
        gemm_columns(1, m, k, a, row_step, depth_step, b + j, ldb, c + j, ldc, accumulate);
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

#undef ROWS_WIDE

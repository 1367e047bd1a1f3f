// dtrain_gemm_bf16_widened for a sixteen-lane file (see dtrain_bf16.h); included by
// kernels_avx512.c and kernels_lanes16_avx2.c after vector.h.
//
// The products of dtrain_gemm_bf16 at the float32 FMAs' full rate, for CPUs whose VDPBF16PS is
// slower than their FMAs (`dtrain_bf16_dot_speed_ratio` ≤ 1). The operands are rounded to bf16
// and widened back to floats as they are packed, so the inner loop is that of a float32 GEMM:
// per element of k, two vector loads of B, ROWS broadcasts of A and 2·ROWS fused multiply-adds,
// none of the shifts and masks that unpack bf16 pairs in the emulated variants. k is packed in
// pairs with the odd element first, which is the order VDPBF16PS (and the reference) sums a pair
// in: the results are the reference's bit for bit.
//
// Packed layout (floats, in the caller's `pack` scratch): op(A) in panels of ROWS rows, each
// 2·ceil(k / 2) × ROWS floats, element (e, r) at e·ROWS + r holding op(A)[r, e ^ 1] (zero past k
// and past m); then op(B) in panels of COLUMNS columns, each 2·ceil(k / 2) × COLUMNS floats.
// Blocking as templates/gemm_bf16.h: op(B) packed whole, op(A) a panel at a time before its first
// use (all at once when A is transposed), column blocks whose packed B stays within about
// 256 KiB.

#define WIDENED_ROWS 8
#define WIDENED_COLUMNS 32

typedef uint32_t widened_ivec8 __attribute__((ext_vector_type(8)));

/// bf16(x) as a float on eight lanes: round to nearest even, low half cleared; a NaN gets the
/// quiet bit and keeps its sign and high payload (bf16_bits, widened).
static inline __attribute__((always_inline)) vec8 widened_round8(vec8 x) {
    widened_ivec8 bits = (widened_ivec8)x;
    widened_ivec8 nan = (widened_ivec8)((bits & 0x7FFFFFFFu) > 0x7F800000u);
    widened_ivec8 rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
    return (vec8)(((rounded & ~nan) | ((bits | 0x00400000u) & nan)) & 0xFFFF0000u);
}

static inline __attribute__((always_inline)) float widened_round(float x) { return bf16_widened(bf16_bits(x)); }

// `pack` need only be 2-byte aligned (it is a uint16_t buffer): packed floats are read and
// written with memcpy.
static inline __attribute__((always_inline)) float widened_get(const float *p) { float x; memcpy(&x, p, sizeof x); return x; }
static inline __attribute__((always_inline)) void widened_set(float *p, float x) { memcpy(p, &x, sizeof x); }

/// Packs `width` lines whose elements are consecutive (x(r, p) = src[r·line_step + p]), the first
/// `valid` real, into 2·ceil(k / 2) × width floats at dst. Groups of eight whole lines go eight
/// elements at a time through an 8 × 8 transpose.
static void widened_pack_lines(float *dst, intptr_t width, const float *src, intptr_t line_step, intptr_t valid,
                               intptr_t k) {
    intptr_t kk = (k + 1) / 2 * 2, whole = k / 8 * 8, r = 0;
    for (; r + 8 <= valid; r += 8) {
        const float *s = src + r * line_step;
        for (intptr_t p = 0; p < whole; p += 8) {
            vec8 x[8];
            for (int l = 0; l < 8; l++) x[l] = widened_round8(load8(s + l * line_step + p));
            // Pairs of lines interleaved, then quads, then all eight: t[d] holds element p + d of
            // the eight lines.
            vec8 u[8], v[8], t[8];
            for (int l = 0; l < 8; l += 2) {
                u[l] = __builtin_shufflevector(x[l], x[l + 1], 0, 8, 1, 9, 2, 10, 3, 11);
                u[l + 1] = __builtin_shufflevector(x[l], x[l + 1], 4, 12, 5, 13, 6, 14, 7, 15);
            }
            for (int q = 0; q < 8; q += 4) {
                for (int h = 0; h < 2; h++) {
                    v[q + 2 * h] = __builtin_shufflevector(u[q + h], u[q + 2 + h], 0, 1, 8, 9, 2, 3, 10, 11);
                    v[q + 2 * h + 1] = __builtin_shufflevector(u[q + h], u[q + 2 + h], 4, 5, 12, 13, 6, 7, 14, 15);
                }
            }
            for (int d = 0; d < 4; d++) {
                t[2 * d] = __builtin_shufflevector(v[d], v[4 + d], 0, 1, 2, 3, 8, 9, 10, 11);
                t[2 * d + 1] = __builtin_shufflevector(v[d], v[4 + d], 4, 5, 6, 7, 12, 13, 14, 15);
            }
            for (int d = 0; d < 8; d++) store8(dst + (p + (d ^ 1)) * width + r, t[d]);
        }
        for (intptr_t e = whole; e < kk; e++) {
            intptr_t p = e ^ 1;
            for (int l = 0; l < 8; l++) widened_set(dst + e * width + r + l, p < k ? widened_round(s[l * line_step + p]) : 0);
        }
    }
    for (; r < valid; r++) {
        for (intptr_t e = 0; e < kk; e++) {
            intptr_t p = e ^ 1;
            widened_set(dst + e * width + r, p < k ? widened_round(src[r * line_step + p]) : 0);
        }
    }
    for (intptr_t e = 0; e < kk; e++) {
        for (intptr_t l = valid; l < width; l++) widened_set(dst + e * width + l, 0);
    }
}

/// Packs all ceil(lines / width) panels of lines whose elements at one depth are consecutive
/// (x(r, p) = src[r + p·depth_step]) into panels `panel` floats apart, a row of the source at a
/// time, eight lines per step (`width` is a multiple of 8, so a step stays in its panel): floats
/// `src` rounded, or with `src16` bf16 values (a layer's bf16 copy of its input) widened exactly.
static void widened_pack_across(float *dst, intptr_t width, intptr_t panel, const float *src, const uint16_t *src16,
                                intptr_t depth_step, intptr_t lines, intptr_t k) {
    typedef uint16_t half8 __attribute__((ext_vector_type(8)));
    intptr_t kk = (k + 1) / 2 * 2, padded = (lines + width - 1) / width * width;
    for (intptr_t e = 0; e < kk; e++) {
        intptr_t p = e ^ 1, l = 0;
        float *row = dst + e * width;
        if (p < k && src16) {
            const uint16_t *s = src16 + p * depth_step;
            for (; l + 8 <= lines; l += 8) {
                half8 h;
                memcpy(&h, s + l, sizeof h);
                store8(row + l / width * panel + l % width, (vec8)(__builtin_convertvector(h, widened_ivec8) << 16));
            }
            for (; l < lines; l++) widened_set(row + l / width * panel + l % width, bf16_widened(s[l]));
        } else if (p < k) {
            const float *s = src + p * depth_step;
            for (; l + 8 <= lines; l += 8) store8(row + l / width * panel + l % width, widened_round8(load8(s + l)));
            for (; l < lines; l++) widened_set(row + l / width * panel + l % width, widened_round(s[l]));
        }
        for (; l < padded; l++) widened_set(row + l / width * panel + l % width, 0);
    }
}

/// The WIDENED_ROWS × WIDENED_COLUMNS block of C at c from a packed A panel and a packed B panel;
/// only its first `rows` × `columns` are stored. With `resume` the sums start from C's values
/// (a previous slice of k, stored with beta 0), else from zero.
static inline __attribute__((always_inline)) void widened_block(const float *ap, const float *bp, intptr_t kk, float beta,
                                                                float *c, intptr_t ldc, intptr_t rows, intptr_t columns,
                                                                int resume) {
    vec acc[WIDENED_ROWS][2];
    if (!resume) {
#pragma clang loop unroll(full)
        for (int r = 0; r < WIDENED_ROWS; r++) acc[r][0] = acc[r][1] = 0;
    } else if (rows == WIDENED_ROWS && columns == WIDENED_COLUMNS) {
#pragma clang loop unroll(full)
        for (int r = 0; r < WIDENED_ROWS; r++) {
            acc[r][0] = load(c + r * ldc);
            acc[r][1] = load(c + r * ldc + LANES);
        }
    } else {
        float part[WIDENED_ROWS][WIDENED_COLUMNS] = {{0}};
        for (intptr_t r = 0; r < rows; r++) memcpy(part[r], c + r * ldc, (size_t)columns * sizeof(float));
        for (int r = 0; r < WIDENED_ROWS; r++) {
            acc[r][0] = load(part[r]);
            acc[r][1] = load(part[r] + LANES);
        }
    }
    for (intptr_t e = 0; e < kk; e++) {
        vec b0 = load(bp), b1 = load(bp + LANES);
#pragma clang loop unroll(full)
        for (int r = 0; r < WIDENED_ROWS; r++) {
            vec x = broadcast(widened_get(ap + r));
            acc[r][0] = fma_lanes(acc[r][0], x, b0);
            acc[r][1] = fma_lanes(acc[r][1], x, b1);
        }
        ap += WIDENED_ROWS;
        bp += WIDENED_COLUMNS;
    }
    store_block_bf16(acc, WIDENED_ROWS, beta, c, ldc, rows, columns);
}

/// Packs op(B) (k × n) whole into panels of WIDENED_COLUMNS columns at dst: from floats `b`, or
/// from bf16 values `b16` (not transposed) when given.
static void widened_pack_b(int trans_b, intptr_t n, intptr_t k, const float *b, const uint16_t *b16, intptr_t ldb,
                           float *dst) {
    intptr_t b_panel = (k + 1) / 2 * 2 * WIDENED_COLUMNS;
    if (b16) {
        widened_pack_across(dst, WIDENED_COLUMNS, b_panel, NULL, b16, ldb, n, k);
    } else if (trans_b) {
        for (intptr_t j = 0; j < n; j += WIDENED_COLUMNS) {
            widened_pack_lines(dst + j / WIDENED_COLUMNS * b_panel, WIDENED_COLUMNS, b + j * ldb, ldb,
                               n - j < WIDENED_COLUMNS ? n - j : WIDENED_COLUMNS, k);
        }
    } else {
        widened_pack_across(dst, WIDENED_COLUMNS, b_panel, b, NULL, ldb, n, k);
    }
}

/// Elements of k per slice when beta is 0 (even, so no pair straddles two slices).
#define WIDENED_SLICE 256

/// C = op(A)·op(B) (+ beta·C when k fits one slice; beta is 0 otherwise), a slice of k at a
/// time: both operands' slices are packed whole (A's ROWS·SLICE floats a panel, in L2; B's
/// SLICE·COLUMNS floats a panel, which stays in L1 while every A panel goes past it), and each
/// block resumes the sums the previous slice stored in C, so they are added in the same order as
/// in one pass. With `packed_b`, op(B) comes packed by widened_pack_b_sliced (its slices one after
/// the other); otherwise each slice of it is packed into `pack` after A's.
static void widened_sliced(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t lda,
                           const float *b, const uint16_t *b16, intptr_t ldb, const float *packed_b, float beta, float *c,
                           intptr_t ldc, float *pack) {
    intptr_t panels_a = (m + WIDENED_ROWS - 1) / WIDENED_ROWS;
    intptr_t columns_padded = (n + WIDENED_COLUMNS - 1) / WIDENED_COLUMNS * WIDENED_COLUMNS;
    for (intptr_t p0 = 0; p0 < k; p0 += WIDENED_SLICE) {
        intptr_t kc = k - p0 < WIDENED_SLICE ? k - p0 : WIDENED_SLICE, kk = (kc + 1) / 2 * 2;
        intptr_t a_panel = kk * WIDENED_ROWS, b_panel = kk * WIDENED_COLUMNS;
        float *packed_a = pack;
        const float *as = trans_a ? a + p0 * lda : a + p0;  // the slice's first element of op(A) row 0
        if (trans_a) {
            widened_pack_across(packed_a, WIDENED_ROWS, a_panel, as, NULL, lda, m, kc);
        } else {
            for (intptr_t i = 0; i < m; i += WIDENED_ROWS) {
                widened_pack_lines(packed_a + i / WIDENED_ROWS * a_panel, WIDENED_ROWS, as + i * lda, lda,
                                   m - i < WIDENED_ROWS ? m - i : WIDENED_ROWS, kc);
            }
        }
        const float *slice_b;
        if (packed_b) {
            slice_b = packed_b + columns_padded * p0;
        } else {
            float *into = pack + panels_a * a_panel;
            widened_pack_b(trans_b, n, kc, b16 ? NULL : trans_b ? b + p0 : b + p0 * ldb, b16 ? b16 + p0 * ldb : NULL, ldb, into);
            slice_b = into;
        }
        for (intptr_t j = 0; j < n; j += WIDENED_COLUMNS) {
            const float *bp = slice_b + j / WIDENED_COLUMNS * b_panel;
            intptr_t columns = n - j < WIDENED_COLUMNS ? n - j : WIDENED_COLUMNS;
            for (intptr_t i = 0; i < m; i += WIDENED_ROWS) {
                widened_block(packed_a + i / WIDENED_ROWS * a_panel, bp, kk, beta, c + i * ldc + j, ldc,
                              m - i < WIDENED_ROWS ? m - i : WIDENED_ROWS, columns, p0 > 0);
            }
        }
    }
}

void KERNEL(dtrain_gemm_bf16_widened_pack_b)(int trans_b, intptr_t n, intptr_t k, const float *b, intptr_t ldb,
                                             float *packed, intptr_t first, intptr_t end) {
    intptr_t columns_padded = (n + WIDENED_COLUMNS - 1) / WIDENED_COLUMNS * WIDENED_COLUMNS;
    if (end > n) end = n;
    if (first < 0 || first % WIDENED_COLUMNS != 0 || first >= end) return;
    // Within a slice the panels lie one after the other, so columns first ..< end are panels
    // first / COLUMNS onwards of each slice.
    const float *bj = trans_b ? b + first * ldb : b + first;
    for (intptr_t p0 = 0; p0 < k; p0 += WIDENED_SLICE) {
        intptr_t kc = k - p0 < WIDENED_SLICE ? k - p0 : WIDENED_SLICE, kk = (kc + 1) / 2 * 2;
        widened_pack_b(trans_b, end - first, kc, trans_b ? bj + p0 : bj + p0 * ldb, NULL, ldb,
                       packed + columns_padded * p0 + first * kk);
    }
}

void KERNEL(dtrain_gemm_bf16_widened_packed)(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                             intptr_t lda, const float *packed_b, float *c, intptr_t ldc,
                                             uint16_t *pack) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_bf16(m, n, 0, c, ldc);
        return;
    }
    widened_sliced(trans_a, 0, m, n, k, a, lda, NULL, NULL, 0, packed_b, 0, c, ldc, (float *)(void *)pack);
}

_Static_assert(LANES == 16, "the widened bf16 GEMM is a sixteen-lane kernel");
_Static_assert(2 * DTRAIN_GEMM_BF16_ROWS_MAX % WIDENED_ROWS == 0 && 2 * DTRAIN_GEMM_BF16_COLUMNS_MAX % WIDENED_COLUMNS == 0,
               "dtrain_gemm_bf16_pack_elements must cover the widened panels");

/// The product with B from floats `b`, or from bf16 values `b16` (not transposed).
static void widened_gemm(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t lda,
                         const float *b, const uint16_t *b16, intptr_t ldb, float beta, float *c, intptr_t ldc,
                         uint16_t *pack) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_bf16(m, n, beta, c, ldc);
        return;
    }
    if (beta == 0 || k <= WIDENED_SLICE) {
        widened_sliced(trans_a, trans_b, m, n, k, a, lda, b, b16, ldb, NULL, beta, c, ldc, (float *)(void *)pack);
        return;
    }
    // beta ≠ 0 over several slices: one pass over the whole of k, so that beta·C is added once.
    intptr_t kk = (k + 1) / 2 * 2;
    intptr_t a_panel = kk * WIDENED_ROWS, b_panel = kk * WIDENED_COLUMNS;  // floats
    float *packed_a = (float *)(void *)pack, *packed_b = packed_a + (m + WIDENED_ROWS - 1) / WIDENED_ROWS * a_panel;
    widened_pack_b(trans_b, n, k, b, b16, ldb, packed_b);
    if (trans_a) widened_pack_across(packed_a, WIDENED_ROWS, a_panel, a, NULL, lda, m, k);
    intptr_t block_columns = column_block_bf16(n, 4 * kk, WIDENED_COLUMNS);
    for (intptr_t jc = 0; jc < n; jc += block_columns) {
        intptr_t jend = n - jc < block_columns ? n : jc + block_columns;
        for (intptr_t i = 0; i < m; i += WIDENED_ROWS) {
            intptr_t rows = m - i < WIDENED_ROWS ? m - i : WIDENED_ROWS;
            float *ap = packed_a + i / WIDENED_ROWS * a_panel;
            if (jc == 0 && !trans_a) widened_pack_lines(ap, WIDENED_ROWS, a + i * lda, lda, rows, k);
            for (intptr_t j = jc; j < jend; j += WIDENED_COLUMNS) {
                widened_block(ap, packed_b + j / WIDENED_COLUMNS * b_panel, kk, beta, c + i * ldc + j, ldc, rows,
                              jend - j < WIDENED_COLUMNS ? jend - j : WIDENED_COLUMNS, 0);
            }
        }
    }
}

void KERNEL(dtrain_gemm_bf16_widened)(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                      intptr_t lda, const float *b, intptr_t ldb, float beta, float *c, intptr_t ldc,
                                      uint16_t *pack) {
    widened_gemm(trans_a, trans_b, m, n, k, a, lda, b, NULL, ldb, beta, c, ldc, pack);
}

void KERNEL(dtrain_gemm_bf16_widened_bf16_b)(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a, intptr_t lda,
                                             const uint16_t *b, intptr_t ldb, float beta, float *c, intptr_t ldc,
                                             uint16_t *pack) {
    widened_gemm(trans_a, 0, m, n, k, a, lda, NULL, b, ldb, beta, c, ldc, pack);
}

// dtrain_gemm_bf16 for one instruction set (see dtrain_bf16.h); included by kernels_<set>.c and
// gemm_bf16_avx512bf16.c after vector.h (with <string.h>, and <immintrin.h> for the native set,
// included before the target attribute), with ROWS (rows of a block) defined, and DTRAIN_BF16_NATIVE defined to 1
// where the set has VDPBF16PS. The one line that differs between the emulated and the native
// variants is `dot_pairs`; packing, blocking and the edges are this same text in all of them, so
// the emulated sixteen-lane build (tested on every machine) checks what the native one runs.
//
// Blocking: op(B) is packed whole into panels of COLUMNS = 2 vectors of columns; op(A) into
// panels of ROWS rows, one at a time just before its first use (all at once when A is
// transposed). The result is covered in ROWS × 2-vector blocks held in 2·ROWS accumulators while
// the pairs of k stream through them (per pair: two vector loads of B words, ROWS broadcasts of A
// words, 2·ROWS dot_pairs). Columns go in blocks whose packed B stays within about 256 KiB (L2),
// all rows through each; blocks at the edges are computed whole from the zero-padded panels and
// only their real part is stored.

#include "bf16_round.h"

#define COLUMNS (2 * LANES)

typedef uint32_t ivec __attribute__((ext_vector_type(LANES)));
typedef uint32_t ivec8 __attribute__((ext_vector_type(8)));
typedef uint32_t ivec4 __attribute__((ext_vector_type(4)));

#if DTRAIN_BF16_NATIVE
/// acc + a.bf16[2i]·b.bf16[2i] + a.bf16[2i+1]·b.bf16[2i+1] per lane i: VDPBF16PS.
static inline __attribute__((always_inline)) vec dot_pairs(vec acc, ivec a, ivec b) {
    return (vec)_mm512_dpbf16_ps((__m512)acc, (__m512bh)a, (__m512bh)b);
}
#else
/// acc + a.bf16[2i]·b.bf16[2i] + a.bf16[2i+1]·b.bf16[2i+1] per lane i, as VDPBF16PS sums it (the
/// odd element first), each step one fused multiply-add: a bf16 is the high half of a float, so
/// the odd element is the word with its low half cleared and the even one the word shifted up.
static inline __attribute__((always_inline)) vec dot_pairs(vec acc, ivec a, ivec b) {
    acc = __builtin_elementwise_fma((vec)(a & 0xFFFF0000u), (vec)(b & 0xFFFF0000u), acc);
    return __builtin_elementwise_fma((vec)(a << 16), (vec)(b << 16), acc);
}
#endif

// The packed words live in a uint16_t buffer of any alignment: read and written with memcpy.
static inline __attribute__((always_inline)) uint32_t word_at(const uint16_t *p) { uint32_t w; memcpy(&w, p, sizeof w); return w; }
static inline __attribute__((always_inline)) void set_word(uint16_t *p, uint32_t w) { memcpy(p, &w, sizeof w); }
static inline __attribute__((always_inline)) ivec load_words(const uint16_t *p) { ivec v; memcpy(&v, p, sizeof v); return v; }

/// The packed word of x0 (even element) and x1 (odd element).
static inline __attribute__((always_inline)) uint32_t pair_word(float x0, float x1) {
    return (uint32_t)bf16_bits(x0) | (uint32_t)bf16_bits(x1) << 16;
}

/// bf16_high_half on eight lanes.
static inline __attribute__((always_inline)) ivec8 bf16_high_half8(vec8 x) {
    ivec8 bits = (ivec8)x;
    ivec8 nan = (ivec8)((bits & 0x7FFFFFFFu) > 0x7F800000u);
    ivec8 rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
    return (rounded & ~nan) | ((bits | 0x00400000u) & nan);
}

/// Packs `width` lines (rows of op(A) or columns of op(B)) of which the first `valid` are real
/// into ceil(k / 2) × width words at dst: word (q, r) holds x(r, 2q) low and x(r, 2q + 1) high,
/// where x(r, p) = src[r·line_step + p·depth_step], zero past `valid` lines and past k. For lines
/// whose elements are consecutive (depth_step 1); pack_across takes the other orientation.
static void pack_panel(uint16_t *dst, intptr_t width, const float *src, intptr_t line_step, intptr_t depth_step,
                       intptr_t valid, intptr_t k) {
    intptr_t pairs = (k + 1) / 2, r = 0;
    if (depth_step == 1) {
        // A line's elements are consecutive: eight floats of four lines give four pairs of each,
        // transposed so that each pair index gets its four lines' words in one store.
        intptr_t whole = k / 8 * 4;
        for (; r + 4 <= valid; r += 4) {
            const float *s = src + r * line_step;
            for (intptr_t q = 0; q < whole; q += 4) {
                ivec4 w[4];
                for (int l = 0; l < 4; l++) {
                    ivec8 h = bf16_high_half8(load8(s + l * line_step + 2 * q));
                    w[l] = (__builtin_shufflevector(h, h, 0, 2, 4, 6) >> 16) |
                           (__builtin_shufflevector(h, h, 1, 3, 5, 7) & 0xFFFF0000u);
                }
                ivec4 lo01 = __builtin_shufflevector(w[0], w[1], 0, 4, 1, 5), hi01 = __builtin_shufflevector(w[0], w[1], 2, 6, 3, 7);
                ivec4 lo23 = __builtin_shufflevector(w[2], w[3], 0, 4, 1, 5), hi23 = __builtin_shufflevector(w[2], w[3], 2, 6, 3, 7);
                ivec4 t[4] = {
                    __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5), __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7),
                    __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5), __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7),
                };
                for (int u = 0; u < 4; u++) memcpy(dst + 2 * ((q + u) * width + r), &t[u], sizeof t[u]);
            }
            for (intptr_t q = whole; q < pairs; q++) {
                for (int l = 0; l < 4; l++) {
                    const float *x = s + l * line_step + 2 * q;
                    set_word(dst + 2 * (q * width + r + l), pair_word(x[0], 2 * q + 1 < k ? x[1] : 0));
                }
            }
        }
    }
    // Lines not packed above, one pair at a time.
    for (; r < valid; r++) {
        const float *x = src + r * line_step;
        for (intptr_t q = 0; q < pairs; q++) {
            set_word(dst + 2 * (q * width + r),
                     pair_word(x[2 * q * depth_step], 2 * q + 1 < k ? x[(2 * q + 1) * depth_step] : 0));
        }
    }
    // Padding lines.
    for (intptr_t q = 0; q < pairs; q++) {
        for (intptr_t l = valid; l < width; l++) set_word(dst + 2 * (q * width + l), 0);
    }
}

/// Packs all ceil(lines / width) panels of lines whose elements at one depth are consecutive
/// (x(r, p) = src[r + p·depth_step]) into panels `panel` elements apart, in one pass down the
/// depth: the source is read row after row (a panel at a time would stride down every row once
/// per panel, and wait on memory at each). Layout and padding as pack_panel; `width` is a multiple
/// of 4.
static void pack_across(uint16_t *dst, intptr_t width, intptr_t panel, const float *src, intptr_t depth_step,
                        intptr_t lines, intptr_t k) {
    intptr_t pairs = (k + 1) / 2, padded = (lines + width - 1) / width * width;
    for (intptr_t q = 0; q < pairs; q++) {
        const float *s0 = src + 2 * q * depth_step, *s1 = s0 + depth_step;
        int odd = 2 * q + 1 < k;
        intptr_t l = 0;
        if (odd) {
            // Eight lines' words per step, stored four at a time (a multiple of 4 stays in its panel).
            for (; l + 8 <= lines; l += 8) {
                ivec8 w = (bf16_high_half8(load8(s0 + l)) >> 16) | (bf16_high_half8(load8(s1 + l)) & 0xFFFF0000u);
                ivec4 w0 = __builtin_shufflevector(w, w, 0, 1, 2, 3), w1 = __builtin_shufflevector(w, w, 4, 5, 6, 7);
                memcpy(dst + l / width * panel + 2 * (q * width + l % width), &w0, sizeof w0);
                memcpy(dst + (l + 4) / width * panel + 2 * (q * width + (l + 4) % width), &w1, sizeof w1);
            }
        }
        for (; l < lines; l++) set_word(dst + l / width * panel + 2 * (q * width + l % width), pair_word(s0[l], odd ? s1[l] : 0));
        for (; l < padded; l++) set_word(dst + l / width * panel + 2 * (q * width + l % width), 0);
    }
}

/// c = v, or beta·c + v (one rounding).
static inline __attribute__((always_inline)) void finish_bf16(float *p, vec v, float beta) {
    store(p, beta == 0 ? v : __builtin_elementwise_fma((vec)beta, load(p), v));
}

/// Columns per block of n whose packed B (`column_bytes` a column) stays within about 256 KiB
/// (L2), the blocks equal up to a panel of `panel_columns` (a last block of a few columns would
/// stream all of packed A again for little work).
static inline __attribute__((always_inline)) intptr_t column_block_bf16(intptr_t n, intptr_t column_bytes,
                                                                        intptr_t panel_columns) {
    intptr_t most = 256 * 1024 / column_bytes, blocks = (n + most - 1) / most;
    return ((n + blocks - 1) / blocks + panel_columns - 1) / panel_columns * panel_columns;
}

/// C = beta·C + 0 (m × n), the product of an empty k; C is only written when beta is 0.
static void scale_bf16(intptr_t m, intptr_t n, float beta, float *c, intptr_t ldc) {
    for (intptr_t i = 0; i < m; i++) {
        for (intptr_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : __builtin_fmaf(beta, c[i * ldc + j], 0);
    }
}

/// Stores the first `rows` × `columns` of a block of `block_rows` (at most
/// DTRAIN_GEMM_BF16_ROWS_MAX) rows × 2 vectors of sums, held in acc, into C at c: c = v, or
/// beta·c + v.
static inline __attribute__((always_inline)) void store_block_bf16(vec (*acc)[2], int block_rows, float beta, float *c,
                                                                   intptr_t ldc, intptr_t rows, intptr_t columns) {
    if (rows == block_rows && columns == 2 * LANES) {
#pragma clang loop unroll(full)
        for (int r = 0; r < block_rows; r++) {
            finish_bf16(c + r * ldc, acc[r][0], beta);
            finish_bf16(c + r * ldc + LANES, acc[r][1], beta);
        }
        return;
    }
    float part[DTRAIN_GEMM_BF16_ROWS_MAX][2 * LANES];
    for (int r = 0; r < block_rows; r++) {
        store(part[r], acc[r][0]);
        store(part[r] + LANES, acc[r][1]);
    }
    for (intptr_t r = 0; r < rows; r++) {
        float *out = c + r * ldc;
        for (intptr_t j = 0; j < columns; j++) out[j] = beta == 0 ? part[r][j] : __builtin_fmaf(beta, out[j], part[r][j]);
    }
}

/// The ROWS × COLUMNS block of C at c from a packed A panel and a packed B panel; only its first
/// `rows` × `columns` are stored.
static inline __attribute__((always_inline)) void block(const uint16_t *ap, const uint16_t *bp, intptr_t pairs,
                                                        float beta, float *c, intptr_t ldc, intptr_t rows,
                                                        intptr_t columns) {
    vec acc[ROWS][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = 0;
    for (intptr_t q = 0; q < pairs; q++) {
        ivec b0 = load_words(bp), b1 = load_words(bp + 2 * LANES);
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) {
            ivec x = (ivec)word_at(ap + 2 * r);
            acc[r][0] = dot_pairs(acc[r][0], x, b0);
            acc[r][1] = dot_pairs(acc[r][1], x, b1);
        }
        ap += 2 * ROWS;
        bp += 2 * COLUMNS;
    }
    store_block_bf16(acc, ROWS, beta, c, ldc, rows, columns);
}

_Static_assert(DTRAIN_GEMM_BF16_ROWS_MAX % ROWS == 0 && DTRAIN_GEMM_BF16_COLUMNS_MAX % COLUMNS == 0,
               "dtrain_gemm_bf16_pack_elements must cover this variant's panels");

void KERNEL(dtrain_gemm_bf16)(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k, const float *a,
                              intptr_t lda, const float *b, intptr_t ldb, float beta, float *c, intptr_t ldc,
                              uint16_t *pack) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale_bf16(m, n, beta, c, ldc);
        return;
    }
    // op(A)[i, p] = a[i·a_row + p·a_depth]; op(B)[p, j] = b[p·b_depth + j·b_column].
    intptr_t a_row = trans_a ? 1 : lda, a_depth = trans_a ? lda : 1;
    intptr_t b_depth = trans_b ? 1 : ldb, b_column = trans_b ? ldb : 1;
    intptr_t pairs = (k + 1) / 2;
    intptr_t a_panel = 2 * pairs * ROWS, b_panel = 2 * pairs * COLUMNS;  // uint16 elements
    uint16_t *packed_a = pack, *packed_b = pack + (m + ROWS - 1) / ROWS * a_panel;
    if (b_column == 1) {
        pack_across(packed_b, COLUMNS, b_panel, b, b_depth, n, k);
    } else {
        for (intptr_t j = 0; j < n; j += COLUMNS) {
            pack_panel(packed_b + j / COLUMNS * b_panel, COLUMNS, b + j * b_column, b_column, b_depth,
                       n - j < COLUMNS ? n - j : COLUMNS, k);
        }
    }
    // A row-major op(A) is packed a panel at a time just before its first use; a transposed one
    // all at once.
    if (a_row == 1) pack_across(packed_a, ROWS, a_panel, a, a_depth, m, k);
    intptr_t block_columns = column_block_bf16(n, 4 * pairs, COLUMNS);
    for (intptr_t jc = 0; jc < n; jc += block_columns) {
        intptr_t jend = n - jc < block_columns ? n : jc + block_columns;
        for (intptr_t i = 0; i < m; i += ROWS) {
            intptr_t rows = m - i < ROWS ? m - i : ROWS;
            const uint16_t *ap = packed_a + i / ROWS * a_panel;
            if (jc == 0 && a_row != 1) pack_panel(packed_a + i / ROWS * a_panel, ROWS, a + i * a_row, a_row, a_depth, rows, k);
            for (intptr_t j = jc; j < jend; j += COLUMNS) {
                block(ap, packed_b + j / COLUMNS * b_panel, pairs, beta, c + i * ldc + j, ldc, rows,
                      jend - j < COLUMNS ? jend - j : COLUMNS);
            }
        }
    }
}

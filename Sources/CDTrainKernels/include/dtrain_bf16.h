#ifndef DTRAIN_BF16_H
#define DTRAIN_BF16_H

#include <stddef.h>
#include <stdint.h>

// bfloat16 matrix products with float accumulation (PyTorch's CPU autocast numerics for
// convolution and linear layers: operands rounded to bf16, products exact, sums in float).
//
// dtrain_gemm_bf16_<variant>(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc, pack):
// row-major C (m × n, ldc) = beta · C + op(A) · op(B), like cblas_sgemm row-major with alpha = 1:
// op(A) is m × k (A is k × m when trans_a), op(B) is k × n (B is n × k when trans_b). A and B are
// float and are rounded to bf16 (round to nearest even; a NaN stays a NaN) while they are packed
// into `pack`, caller-provided scratch of dtrain_gemm_bf16_pack_elements(m, n, k) elements (the
// kernels allocate nothing; no alignment needed). With beta = 0, C is only written (it may hold
// NaNs). Single-threaded: callers split the rows or columns of C across threads, each with its own
// pack.
//
// Numerics (`reference` is the definition): for each output, with a_p = bf16(op(A)[i, p]) and
// b_p = bf16(op(B)[p, j]) and k padded with a zero pair to an even count,
//     acc = +0; for q in 0 ..< ceil(k / 2): acc = fma(a_2q+1, b_2q+1, acc); acc = fma(a_2q, b_2q, acc)
//     C[i, j] = beta == 0 ? acc : fma(beta, C[i, j], acc)
// which is the order VDPBF16PS accumulates a pair in (odd element first). A product of two bf16
// values is exact in float (8 + 8 significant bits) unless it underflows, so each step rounds
// once. The emulated variants compute exactly this, bit for bit. `avx512bf16` runs VDPBF16PS,
// which in addition treats denormal inputs as zero and flushes denormal results to zero.
//
// Packed layout (what VDPBF16PS consumes): k in pairs, each 32-bit word holding bf16 element 2q
// in its low half and 2q + 1 in its high half. The first words hold op(A) in panels of ROWS rows
// (ceil(m / ROWS) panels, each ceil(k / 2) × ROWS words, rows past m zero), then op(B) in panels
// of COLUMNS columns (each ceil(k / 2) × COLUMNS words, columns past n zero); ROWS and COLUMNS
// are the variant's DTRAIN_GEMM_BF16_ROWS_* and DTRAIN_GEMM_BF16_COLUMNS_*. After a call of a
// vector variant, `pack` holds op(A) and op(B) so packed.
//
// Variants: `reference` (portable scalar C), `avx2` (eight lanes; each pair widened to two floats
// by a shift and a mask, and two fused multiply-adds), `avx512` (the same with sixteen lanes,
// AVX-512F), `avx512bf16` (sixteen lanes, VDPBF16PS on the same packing and blocking), and
// `lanes16_avx2` (the sixteen-lane emulated source compiled for AVX2: only for tests, so CPUs
// without AVX-512 check the blocking that `avx512` and `avx512bf16` run), and `widened_avx512`
// (float panels, full-rate FMAs; its own layout, below) with its AVX2 build
// `widened_lanes16_avx2` for tests. A variant may only be
// called on a CPU that has its extensions (`dtrain_cpu_has`): avx2 + fma; avx512f/dq/bw/vl;
// those and avx512_bf16.

/// Rows of op(A) per packed panel, and columns of op(B) per packed panel, per variant.
#define DTRAIN_GEMM_BF16_ROWS_AVX2 4
#define DTRAIN_GEMM_BF16_COLUMNS_AVX2 16
#define DTRAIN_GEMM_BF16_ROWS_LANES16 8
#define DTRAIN_GEMM_BF16_COLUMNS_LANES16 32
/// The largest of the above, which every variant's panel size divides.
#define DTRAIN_GEMM_BF16_ROWS_MAX 8
#define DTRAIN_GEMM_BF16_COLUMNS_MAX 32

/// float → bf16 bits, rounding to nearest even (FLT_MAX and values from the tie below it round to
/// inf). A NaN keeps its sign and the high half of its payload and gets the quiet bit, so it stays
/// a NaN even when its payload is all in the low half.
uint16_t dtrain_bf16_from_float(float x);
/// bf16 bits → float (exact: the bits become the high half).
float dtrain_float_from_bf16(uint16_t h);

/// out[i] = bf16(x[i] · scale) for i < n: the product rounded to float, then to bf16 as above.
void dtrain_bf16_pack_scaled(const float *x, float scale, uint16_t *out, intptr_t n);
/// bits[i] = bf16(x[i]) and rounded[i] = float(bits[i]) for i < n: a layer's input rounded for
/// its float32 kernels and kept as bf16 for backward, in one pass.
void dtrain_bf16_round_pack(const float *x, float *rounded, uint16_t *bits, intptr_t n);
/// out[i] = float(h[i]) for i < n (exact).
void dtrain_bf16_unpack(const uint16_t *h, float *out, intptr_t n);
/// inout[i] = bf16(float(in[i]) + float(inout[i])) for i < n: the reduction of a bf16 allreduce
/// (each partial sum added in float and rounded once to bf16). Commutative, as MPI's user
/// operations are declared.
void dtrain_bf16_sum(const uint16_t *in, uint16_t *inout, intptr_t n);

/// uint16 elements of `pack` that every variant needs for an m × n × k product:
/// 4 · ceil(k / 2) · (m rounded up to DTRAIN_GEMM_BF16_ROWS_MAX + n rounded up to
/// DTRAIN_GEMM_BF16_COLUMNS_MAX), what the `widened` variants' float panels take (the others use
/// half of it). 0 for an empty product.
intptr_t dtrain_gemm_bf16_pack_elements(intptr_t m, intptr_t n, intptr_t k);

/// The definition of the numerics: plain scalar C, portable; does not use `pack`.
void dtrain_gemm_bf16_reference(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                float *c, intptr_t ldc, uint16_t *pack);
/// Eight lanes (AVX2 + FMA), bf16 pairs widened to floats by a shift and a mask.
void dtrain_gemm_bf16_avx2(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                           const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                           float *c, intptr_t ldc, uint16_t *pack);
/// Sixteen lanes (AVX-512F), the same emulation.
void dtrain_gemm_bf16_avx512(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                             const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                             float *c, intptr_t ldc, uint16_t *pack);
/// Sixteen lanes, VDPBF16PS (AVX512_BF16).
void dtrain_gemm_bf16_avx512bf16(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                 const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                 float *c, intptr_t ldc, uint16_t *pack);
/// Float operations per second of VDPBF16PS (two multiply-adds per lane) over those of float32
/// fused multiply-adds (one per lane), both on 512-bit registers with sixteen independent
/// accumulators, measured on this core for about a millisecond (best of five rounds each). Above
/// 1 the bf16 GEMM kernels outrun sgemm on rounded operands: AMD Zen 4 runs VDPBF16PS at twice
/// the FMAs' rate; some Intel Xeons at half of it. Only on a CPU with AVX512_BF16.
double dtrain_bf16_dot_speed_ratio(void);
/// Sixteen lanes (AVX-512F) at the float32 FMAs' rate: A and B rounded to bf16 and widened back
/// to floats as they are packed (k in pairs, odd element first, into float panels of 8 rows and
/// of 32 columns: templates/gemm_bf16_widened.h), then a float32 GEMM over the panels. The
/// reference's results bit for bit. For CPUs whose VDPBF16PS is not faster than their FMAs.
void dtrain_gemm_bf16_widened_avx512(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                     const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                     float *c, intptr_t ldc, uint16_t *pack);
/// Columns first ..< end of op(B) (k × n, B is n × k when trans_b) packed for
/// dtrain_gemm_bf16_widened_packed_avx512 into `packed`, dtrain_gemm_bf16_widened_packed_b_floats(n, k)
/// floats for all n columns: rounded to bf16 once for every product that multiplies by it (a
/// layer's weight, across its threads' row blocks). `first` is a multiple of 32 (threads pack
/// ranges of columns side by side); nothing is packed otherwise.
void dtrain_gemm_bf16_widened_pack_b_avx512(int trans_b, intptr_t n, intptr_t k, const float *b, intptr_t ldb,
                                            float *packed, intptr_t first, intptr_t end);
/// C = op(A) · op(B) (beta 0) with op(B) packed by dtrain_gemm_bf16_widened_pack_b_avx512: the
/// results of dtrain_gemm_bf16_widened_avx512, bit for bit. `pack` is scratch for op(A), at least
/// dtrain_gemm_bf16_pack_elements(m, 1, k) elements.
void dtrain_gemm_bf16_widened_packed_avx512(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                            intptr_t lda, const float *packed_b, float *c, intptr_t ldc,
                                            uint16_t *pack);
/// dtrain_gemm_bf16_widened_avx512 with B (k × n, not transposed) given as bf16 values (a layer's
/// bf16 copy of its input, `ldb` elements a row), widened as they are packed: the same results
/// as passing those values as floats.
void dtrain_gemm_bf16_widened_bf16_b_avx512(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                            intptr_t lda, const uint16_t *b, intptr_t ldb, float beta, float *c,
                                            intptr_t ldc, uint16_t *pack);
void dtrain_gemm_bf16_widened_bf16_b_lanes16_avx2(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                                  intptr_t lda, const uint16_t *b, intptr_t ldb, float beta, float *c,
                                                  intptr_t ldc, uint16_t *pack);
/// Floats of op(B) packed for the widened variants' `packed` calls: 2·ceil(k / 2) · (n rounded up
/// to 32). 0 for an empty product.
intptr_t dtrain_gemm_bf16_widened_packed_b_floats(intptr_t n, intptr_t k);
/// The same source compiled for AVX2: tests only, as below.
void dtrain_gemm_bf16_widened_pack_b_lanes16_avx2(int trans_b, intptr_t n, intptr_t k, const float *b, intptr_t ldb,
                                                  float *packed, intptr_t first, intptr_t end);
void dtrain_gemm_bf16_widened_packed_lanes16_avx2(int trans_a, intptr_t m, intptr_t n, intptr_t k, const float *a,
                                                  intptr_t lda, const float *packed_b, float *c, intptr_t ldc,
                                                  uint16_t *pack);
/// The same source compiled for AVX2: tests only, as below.
void dtrain_gemm_bf16_widened_lanes16_avx2(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                           const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                           float *c, intptr_t ldc, uint16_t *pack);
/// The sixteen-lane emulated source compiled for AVX2: tests only.
void dtrain_gemm_bf16_lanes16_avx2(int trans_a, int trans_b, intptr_t m, intptr_t n, intptr_t k,
                                   const float *a, intptr_t lda, const float *b, intptr_t ldb, float beta,
                                   float *c, intptr_t ldc, uint16_t *pack);

#endif

// Vector types and operations for a kernel template compiled at LANES floats per register
// (8: AVX2, 16: AVX-512). Included once per translation unit, after LANES and SUFFIX are defined.
// Clang's vector extensions lower to the target's registers: the same text is ymm code in the
// avx2 file and zmm code in the avx512 file.

#define DTRAIN_CONCAT2(a, b) a##_##b
#define DTRAIN_CONCAT(a, b) DTRAIN_CONCAT2(a, b)
/// The exported name of kernel `name` for this file's instruction set: name_avx2, name_avx512.
#define KERNEL(name) DTRAIN_CONCAT(name, SUFFIX)

typedef float vec __attribute__((ext_vector_type(LANES)));
typedef float vec8 __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) vec load(const float *p) { vec v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store(float *p, vec v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) vec broadcast(float x) { return (vec)x; }
/// acc + a·b per lane, fused (one rounding).
static inline __attribute__((always_inline)) vec fma_lanes(vec acc, vec a, vec b) { return __builtin_elementwise_fma(a, b, acc); }

static inline __attribute__((always_inline)) vec8 load8(const float *p) { vec8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store8(float *p, vec8 v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) vec8 fma8(vec8 acc, vec8 a, vec8 b) { return __builtin_elementwise_fma(a, b, acc); }

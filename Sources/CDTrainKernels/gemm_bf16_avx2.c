// dtrain_gemm_bf16_avx2: templates/gemm_bf16.h for AVX2 + FMA, eight lanes, bf16 products
// emulated with fused multiply-adds.
#include "dtrain_bf16.h"

#include <string.h>

#define LANES 8
#define SUFFIX avx2
#define ROWS DTRAIN_GEMM_BF16_ROWS_AVX2
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/gemm_bf16.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

// dtrain_gemm_bf16_avx512: templates/gemm_bf16.h for AVX-512 F/DQ/BW/VL, sixteen lanes, bf16
// products emulated with fused multiply-adds.
#include "dtrain_bf16.h"

#include <string.h>

#define LANES 16
#define SUFFIX avx512
#define ROWS DTRAIN_GEMM_BF16_ROWS_LANES16
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2,avx512f,avx512dq,avx512bw,avx512vl"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/gemm_bf16.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

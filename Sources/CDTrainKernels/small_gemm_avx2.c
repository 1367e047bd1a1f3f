// dtrain_small_gemm_avx2: templates/small_gemm.h for AVX2 + FMA, eight lanes.
#include "dtrain_kernels.h"

#define LANES 8
#define SUFFIX avx2
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/small_gemm.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

// dtrain_winograd4_*_avx2: templates/winograd_f4.h for AVX2 + FMA, eight lanes.
#include "dtrain_kernels.h"

#define LANES 8
#define SUFFIX avx2
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/winograd_f4.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

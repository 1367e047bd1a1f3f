// dtrain_winograd4_*_avx512: templates/winograd_f4.h for AVX-512 F/DQ/BW/VL, sixteen lanes.
#include "dtrain_kernels.h"

#define LANES 16
#define SUFFIX avx512
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2,avx512f,avx512dq,avx512bw,avx512vl"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/winograd_f4.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

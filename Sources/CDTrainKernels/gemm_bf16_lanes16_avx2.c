// dtrain_gemm_bf16_lanes16_avx2: the sixteen-lane source of dtrain_gemm_bf16_avx512 and
// dtrain_gemm_bf16_avx512bf16 (emulated products) compiled for AVX2 (each vector a pair of
// registers). Only the tests call it: on CPUs without AVX-512 it checks the packing, blocking and
// edges of templates/gemm_bf16.h at sixteen lanes.
#include "dtrain_bf16.h"

#include <string.h>

#define LANES 16
#define SUFFIX lanes16_avx2
#define ROWS DTRAIN_GEMM_BF16_ROWS_LANES16
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
// Sixteen-float vectors passed between the (inlined, file-local) helpers without AVX-512 registers
// use a different calling convention, which is harmless here: nothing of the kind crosses the file.
#pragma clang diagnostic ignored "-Wpsabi"
#include "templates/vector.h"
#include "templates/gemm_bf16.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

// CDTrainKernels' templated kernels for AVX-512 F/DQ/BW/VL, sixteen lanes (suffix _avx512), and
// their table, dtrain_kernels_avx512: the same templates as kernels_avx2.c, in the same order.
#include "dtrain_kernels.h"

#include <string.h>

#define LANES 16
#define SUFFIX avx512
#define ROWS DTRAIN_GEMM_BF16_ROWS_LANES16
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2,avx512f,avx512dq,avx512bw,avx512vl"))), apply_to = function)
#endif
#include "templates/vector.h"
#include "templates/small_gemm.h"
#include "templates/gemm_bf16.h"
#include "templates/gemm_bf16_widened.h"
#include "templates/elementwise.h"
#include "templates/operand.h"
#include "templates/batch_norm.h"
#include "templates/winograd_f4.h"
#include "templates/winograd_f2.h"
#include "templates/grouped_conv.h"
#include "templates/optimizer.h"
#include "templates/kernel_table.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

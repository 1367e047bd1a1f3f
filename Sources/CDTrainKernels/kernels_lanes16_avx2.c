// CDTrainKernels' sixteen-lane kernels (kernels_avx512.c's source, and for the bf16 GEMM
// dtrain_gemm_bf16_avx512bf16's with emulated products) compiled for AVX2, each vector a pair of
// registers (suffix _lanes16_avx2), and their table, dtrain_kernels_lanes16_avx2. Only the tests
// call them: on CPUs without AVX-512 they check the sixteen-lane blocking, packing and edges that
// the avx512 variants run.
#include "dtrain_kernels.h"

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

// dtrain_winograd4_*_lanes16_avx2: the AVX-512 variant's sixteen-lane source compiled for AVX2
// (each vector a pair of registers). Only the tests call it: on CPUs without AVX-512 it checks the
// sixteen-lane code of templates/winograd_f4.h that the avx512 variant runs.
#include "dtrain_kernels.h"

#define LANES 16
#define SUFFIX lanes16_avx2
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif
// Sixteen-float vectors passed between the (inlined, file-local) helpers without AVX-512 registers
// use a different calling convention, which is harmless here: nothing of the kind crosses the file.
#pragma clang diagnostic ignored "-Wpsabi"
#include "templates/vector.h"
#include "templates/winograd_f4.h"
#if defined(__x86_64__)
#pragma clang attribute pop
#endif

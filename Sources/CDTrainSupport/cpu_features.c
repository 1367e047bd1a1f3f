#include "dtrain_support.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int dtrain_cpu_has(const char *feature) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports takes only string literals.
    if (strcmp(feature, "avx") == 0) return __builtin_cpu_supports("avx") != 0;
    if (strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2") != 0;
    if (strcmp(feature, "fma") == 0) return __builtin_cpu_supports("fma") != 0;
    if (strcmp(feature, "bmi") == 0) return __builtin_cpu_supports("bmi") != 0;
    if (strcmp(feature, "bmi2") == 0) return __builtin_cpu_supports("bmi2") != 0;
    if (strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f") != 0;
    if (strcmp(feature, "avx512dq") == 0) return __builtin_cpu_supports("avx512dq") != 0;
    if (strcmp(feature, "avx512bw") == 0) return __builtin_cpu_supports("avx512bw") != 0;
    if (strcmp(feature, "avx512vl") == 0) return __builtin_cpu_supports("avx512vl") != 0;
    return -1;
#else
    (void)feature;
    return 1;
#endif
}

const char *dtrain_missing_cpu_feature(void) {
    static const char *const needed[] = {
#ifdef DTRAIN_NEEDS_AVX
        "avx",
#endif
#ifdef DTRAIN_NEEDS_AVX2
        "avx2",
#endif
#ifdef DTRAIN_NEEDS_FMA
        "fma",
#endif
#ifdef DTRAIN_NEEDS_BMI
        "bmi",
#endif
#ifdef DTRAIN_NEEDS_BMI2
        "bmi2",
#endif
#ifdef DTRAIN_NEEDS_AVX512F
        "avx512f",
#endif
#ifdef DTRAIN_NEEDS_AVX512DQ
        "avx512dq",
#endif
#ifdef DTRAIN_NEEDS_AVX512BW
        "avx512bw",
#endif
#ifdef DTRAIN_NEEDS_AVX512VL
        "avx512vl",
#endif
        NULL,
    };
    for (const char *const *f = needed; *f != NULL; f++) {
        if (dtrain_cpu_has(*f) != 1) return *f;
    }
    return NULL;
}

/// Runs before main (this file is compiled for any CPU of the architecture).
__attribute__((constructor)) static void dtrain_check_cpu(void) {
    const char *missing = dtrain_missing_cpu_feature();
    if (missing == NULL) return;
    fprintf(stderr, "dtrain: this build uses %s instructions, which this CPU lacks: it was compiled for the CPU "
                    "of the machine that built it; rebuild here, or for the oldest CPU it must run on "
                    "(DTRAIN_CPU=x86-64, see README)\n", missing);
    _exit(1);
}

#include "dtrain_support.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>

/// One extension: its name (as /proc/cpuinfo spells it, except bmi for bmi1), the CPUID leaf,
/// subleaf, register (0 eax, 1 ebx, 2 ecx, 3 edx) and bit that report it, and the register state
/// (XCR0 bits) the operating system must save for its registers to be usable.
typedef struct {
    const char *name;
    unsigned leaf, subleaf, reg, bit;
    unsigned long long state;
} dtrain_extension;

enum { STATE_AVX = 0x6, STATE_AVX512 = 0xE6 };  // XMM|YMM; and opmask, ZMM0-15 upper halves, ZMM16-31

static const dtrain_extension extensions[] = {
    {"avx", 1, 0, 2, 28, STATE_AVX},
    {"fma", 1, 0, 2, 12, STATE_AVX},
    {"f16c", 1, 0, 2, 29, STATE_AVX},
    {"movbe", 1, 0, 2, 22, 0},
    {"avx2", 7, 0, 1, 5, STATE_AVX},
    {"bmi", 7, 0, 1, 3, 0},
    {"bmi2", 7, 0, 1, 8, 0},
    {"avx512f", 7, 0, 1, 16, STATE_AVX512},
    {"avx512dq", 7, 0, 1, 17, STATE_AVX512},
    {"avx512bw", 7, 0, 1, 30, STATE_AVX512},
    {"avx512vl", 7, 0, 1, 31, STATE_AVX512},
    {"avx512cd", 7, 0, 1, 28, STATE_AVX512},
    {"avx512_bf16", 7, 1, 0, 5, STATE_AVX512},
};

static unsigned long long enabled_state(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // no OSXSAVE: no XGETBV
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int has_extension(const dtrain_extension *e) {
    unsigned r[4] = {0, 0, 0, 0};
    if (__get_cpuid_max(0, NULL) < e->leaf) return 0;
    __cpuid_count(e->leaf, e->subleaf, r[0], r[1], r[2], r[3]);
    if (!(r[e->reg] & (1u << e->bit))) return 0;
    return (enabled_state() & e->state) == e->state;
}
#endif

int dtrain_cpu_has(const char *feature) {
#if defined(__x86_64__)
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        if (strcmp(feature, extensions[i].name) == 0) return has_extension(&extensions[i]);
    }
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
#ifdef DTRAIN_NEEDS_F16C
        "f16c",
#endif
#ifdef DTRAIN_NEEDS_MOVBE
        "movbe",
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
#ifdef DTRAIN_NATIVE_BUILD
    fprintf(stderr, "dtrain: this build uses %s instructions, which this CPU lacks: it was compiled for the CPU "
                    "of the machine that built it (DTRAIN_CPU=native); rebuild without DTRAIN_CPU for a binary "
                    "that runs on any x86-64 with AVX2 and FMA\n", missing);
#else
    fprintf(stderr, "dtrain: this CPU lacks %s: dtrain needs an x86-64 CPU with AVX2 and FMA (x86-64-v3: "
                    "Intel Haswell, AMD Excavator/Zen or newer)\n", missing);
#endif
    _exit(1);
}

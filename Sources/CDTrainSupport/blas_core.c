// OpenBLAS's run-time kernel choice, made again by the CPU's extensions where OpenBLAS does not
// know the CPU's model (dtrain_support.h, dtrain_blas_core).
#include "dtrain_support.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char replaced[32];

typedef char *corename_fn(void);
typedef void dynamic_fn(void);

/// OpenBLAS's core names for CPUs without AVX2 and FMA: where it takes an AVX2 CPU for one of
/// these, it did not recognise the model. Later OpenBLAS releases only add newer cores.
static int lacks_avx2(const char *core) {
    static const char *const old[] = {
        "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn",
        "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge",
        "Bobcat", "Bulldozer", "Piledriver", "Steamroller", "Excavator",
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        if (strcasecmp(core, old[i]) == 0) return 1;
    }
    return 0;
}

static corename_fn *corename(void) { return (corename_fn *)dlsym(RTLD_DEFAULT, "openblas_get_corename"); }

// Runs when the program (or a test bundle) is loaded: after OpenBLAS's own initialisation (a
// shared library the program depends on) and before any BLAS call.
__attribute__((constructor)) static void dtrain_blas_core_choose(void) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE") != NULL) return;
    corename_fn *name = corename();
    dynamic_fn *quit = (dynamic_fn *)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    dynamic_fn *init = (dynamic_fn *)dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (name == NULL || quit == NULL || init == NULL || name() == NULL) return;
    const char *chosen = name();
    if (!lacks_avx2(chosen) || dtrain_cpu_has("avx2") != 1 || dtrain_cpu_has("fma") != 1) return;
    int avx512 = dtrain_cpu_has("avx512f") == 1 && dtrain_cpu_has("avx512cd") == 1 &&
                 dtrain_cpu_has("avx512dq") == 1 && dtrain_cpu_has("avx512bw") == 1 && dtrain_cpu_has("avx512vl") == 1;
    char previous[sizeof replaced];
    strncpy(previous, chosen, sizeof previous - 1);
    previous[sizeof previous - 1] = 0;
    // gotoblas_dynamic_init reads OPENBLAS_CORETYPE; the variable is removed again afterwards, so
    // that the environment stays the user's.
    if (setenv("OPENBLAS_CORETYPE", avx512 ? "SKYLAKEX" : "HASWELL", 1) != 0) return;
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    memcpy(replaced, previous, sizeof replaced);
#endif
}

const char *dtrain_blas_core(void) {
    corename_fn *name = corename();
    const char *core = name != NULL ? name() : NULL;
    return core != NULL ? core : "";
}

const char *dtrain_blas_core_replaced(void) { return replaced[0] ? replaced : NULL; }

#ifndef DTRAIN_SUPPORT_H
#define DTRAIN_SUPPORT_H

#include <stdint.h>

/// A Swift closure of type `(Int) -> Void` taken apart into its function and context pointers,
/// so that the thread pool can hand a non-escaping closure to its workers by address without
/// converting it to an escaping one (`withoutActuallyEscaping` allocates a box per call).
///
/// Swift passes a closure argument as these two pointers, and calls a closure with its context
/// in the swiftself register (clang's swift_context): the Swift calling convention, on both ends.
typedef struct {
    const void *function;
    const void *context;
} dtrain_closure;

/// Returns the parts of the closure passed to it. Swift declares it (with @_silgen_name) as taking
/// an `(Int) -> Void`, which Swift passes as (function, context).
__attribute__((swiftcall)) dtrain_closure dtrain_closure_parts(const void *function, const void *context);

/// Calls the closure with `i`. The closure's captures must still be alive (the pool guarantees it
/// by not returning from the call that took the closure apart until every chunk has run).
static inline void dtrain_closure_invoke(dtrain_closure closure, intptr_t i) {
    typedef __attribute__((swiftcall)) void (*dtrain_closure_function)(intptr_t, void *__attribute__((swift_context)));
    ((dtrain_closure_function)closure.function)(i, (void *)closure.context);
}

/// A pause hint for spin-wait loops.
static inline void dtrain_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Whether this CPU has the named instruction-set extension and the operating system saves its
/// registers (CPUID and XGETBV): one of avx, fma, f16c, movbe, avx2, bmi, bmi2, avx512f,
/// avx512dq, avx512bw, avx512vl, avx512cd, avx512_bf16 (x86-64, named as /proc/cpuinfo does, bmi
/// for bmi1).
/// Returns 1 or 0, and -1 for a name it does not know; on other architectures 1 for every name.
int dtrain_cpu_has(const char *feature);

/// The first extension the build's Swift code was compiled to use (the DTRAIN_NEEDS_* macros
/// Package.swift defines: x86-64-v3's, or the host CPU's for a native build) that this CPU lacks,
/// or NULL. Checked when the
/// program starts, before any such instruction runs: dtrain then exits with a one-line error
/// instead of dying of an illegal instruction.
const char *dtrain_missing_cpu_feature(void);

/// OpenBLAS's kernels for this CPU. OpenBLAS built for every x86-64 (DYNAMIC_ARCH, as Debian's
/// is) picks its kernels when it loads, by CPU model; a model newer than the library (an Intel
/// Xeon of family 6 model 207 with OpenBLAS 0.3.21) falls back to its SSE3 "Prescott" kernels,
/// at a third of the speed or less. Before `main`, and unless OPENBLAS_CORETYPE says otherwise,
/// dtrain then has OpenBLAS choose again by the CPU's extensions: SkylakeX's kernels where the
/// CPU has AVX-512 F/CD/DQ/BW/VL, Haswell's where it has AVX2 and FMA. A library it does not
/// recognise as OpenBLAS with run-time dispatch is left alone.
///
/// The core OpenBLAS now uses ("SkylakeX"; "" when the library does not say), for start-up lines.
const char *dtrain_blas_core(void);
/// The core OpenBLAS had chosen itself, when dtrain chose again ("Prescott"); NULL otherwise.
const char *dtrain_blas_core_replaced(void);

/// Stop requests by signal (preemption): `dtrain_stop_signals_install` makes SIGTERM, SIGINT and
/// SIGUSR1 set a flag that the training loop polls between steps; a second such signal ends the
/// process at once with status 128 + the signal's number. The handler only stores to a
/// `volatile sig_atomic_t` (and, for the second signal, calls write and _exit), all
/// async-signal-safe.
void dtrain_stop_signals_install(void);
/// The number of the first stop signal received, or 0 when none was.
int dtrain_stop_signal_received(void);
/// Forgets a received stop signal (tests, and a process that starts a new run).
void dtrain_stop_signal_reset(void);

#endif

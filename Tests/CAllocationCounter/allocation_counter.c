#include "allocation_counter.h"
#include <stdatomic.h>
#include <stddef.h>
#include <errno.h>

static atomic_int counting;
static atomic_long counted;
static _Thread_local int counting_this_thread;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DTRAIN_ASAN 1
#endif
#endif

// Not under AddressSanitizer (launch/test-asan): its allocator must own malloc, and a malloc
// that calls glibc's directly breaks it; the counting tests skip there.
#if defined(__linux__) && defined(__GLIBC__) && !defined(DTRAIN_ASAN) && !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static inline void note(void) {
    if (counting_this_thread || atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
}

void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { note(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void *memalign(size_t alignment, size_t n) { note(); return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { note(); return __libc_memalign(alignment, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    note();
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
int dtrain_allocations_supported(void) { return 1; }
#else
int dtrain_allocations_supported(void) { return 0; }
#endif

void dtrain_allocations_start(void) {
    atomic_store(&counted, 0);
    atomic_store(&counting, 1);
}

void dtrain_allocations_start_on_this_thread(void) {
    atomic_store(&counted, 0);
    counting_this_thread = 1;
}

long dtrain_allocations_stop(void) {
    atomic_store(&counting, 0);
    counting_this_thread = 0;
    return atomic_load(&counted);
}

#ifndef DTRAIN_ALLOCATION_COUNTER_H
#define DTRAIN_ALLOCATION_COUNTER_H

/// Counts heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made
/// by any thread of the test process while counting is on. The test executable defines these
/// functions and forwards them to glibc's, so a test can check that code allocates nothing.
void dtrain_allocations_start(void);
/// Counts only the allocations made by the calling thread, for single-threaded code under test:
/// threads that earlier tests left running (a loader's workers winding down) cannot add to it.
void dtrain_allocations_start_on_this_thread(void);
/// Stops counting and returns the allocations counted since the last start.
long dtrain_allocations_stop(void);
/// 1 where allocations can be counted (glibc), 0 elsewhere.
int dtrain_allocations_supported(void);

#endif

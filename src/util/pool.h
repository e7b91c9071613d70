/* A fixed set of worker threads for the decode path's parallel regions.
 *
 * A decode step is a few hundred short parallel regions (one per matrix
 * product and per layer's attention), each tens of microseconds to a few
 * milliseconds long. Waking sleeping threads costs about as much as a short
 * region, and spinning idle threads steal cores from a busy machine. So idle
 * workers spin for a short while (pause instructions, yielding the core
 * after the first microseconds) and then sleep on a condition variable, as
 * ggml's thread pool does; the caller waits for the workers the same way.
 *
 * A pool belongs to one object (the cache: one sequence, used by one thread
 * at a time), so kvu_pool_run is called by one thread at a time; a pool
 * holds no global state, and any number of pools may exist. Work is split by
 * the caller's function from its worker index, so which thread computes what
 * never changes the arithmetic (the kernels give every output element to
 * one worker with a fixed order). */
#ifndef KVP_UTIL_POOL_H
#define KVP_UTIL_POOL_H

#include <stdint.h>

#include "kvprune.h"

typedef struct kvu_pool kvu_pool;

/* Runs in worker `ith` of `nth` (0 <= ith < nth; worker 0 is the caller). */
typedef void (*kvu_pool_fn)(void *arg, int ith, int nth);

/* A pool of n_threads workers in all: the calling thread and n_threads - 1
 * started threads (none for 1). Fails with KVP_ERR_NOMEM/KVP_ERR_INTERNAL
 * when threads or memory are not available. */
kvp_status kvu_pool_new(int n_threads, kvu_pool **out, kvp_error *err);

/* Stops and joins the threads. NULL is a no-op. */
void kvu_pool_free(kvu_pool *pool);

/* Workers in the pool, the caller included (1 for NULL). */
int kvu_pool_threads(const kvu_pool *pool);

/* fn(arg, ith, nth) for ith = 0..nth-1, on nth = min(n_workers, the pool's
 * threads) workers (at least 1); returns when all have returned. A NULL
 * pool or nth 1 calls fn(arg, 0, 1) on the caller alone. fn must not call
 * kvu_pool_run on the same pool. */
void kvu_pool_run(kvu_pool *pool, int n_workers, kvu_pool_fn fn, void *arg);

/* Worker ith's contiguous share [*lo, *hi) of n items split over nth
 * workers (OpenMP's schedule(static)): the first n % nth workers take one
 * more. */
static inline void kvu_pool_share(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    const int64_t base = n / nth, extra = n % nth;
    *lo = ith * base + (ith < extra ? ith : extra);
    *hi = *lo + base + (ith < extra ? 1 : 0);
}

#endif

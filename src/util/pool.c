/* kvu_pool: spin briefly, then sleep (see pool.h).
 *
 * One job at a time: the caller publishes fn/arg/nth and bumps `gen`;
 * every started thread runs its share (or nothing, beyond nth) and counts
 * `pending` down; the caller runs share 0 and waits for `pending` to reach
 * zero. Both waits spin on the atomic first and only then take the mutex.
 * A sleeper announces itself (sleepers / caller_sleeps) before it checks
 * the condition again under the mutex, and the waker reads that
 * announcement after it changed the condition (all sequentially
 * consistent), so a wake-up is never lost and the mutex is only touched
 * when someone sleeps. */
#include "util/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#include "util/error.h"

/* How long a waiting thread spins before it sleeps. Long enough to bridge
 * the gaps between the regions of one decode step (norms, RoPE, sampling:
 * microseconds to a few hundred), short enough that a pool idle between
 * requests, or on a machine whose cores are all busy, costs nothing. */
#define SPIN_NS 300000
/* Past this, a spinning thread yields the core on every check, so an
 * oversubscribed machine runs whoever has work. */
#define YIELD_AFTER_NS 20000
/* Pause instructions between two looks at the clock. */
#define PAUSES_PER_CHECK 64

struct kvu_pool {
    int n_threads;
    pthread_t *threads; /* n_threads - 1 started threads */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    /* the current job, written by the caller before gen is bumped */
    kvu_pool_fn fn;
    void *arg;
    int nth;
    bool stop;
    atomic_uint gen;
    atomic_int pending;
    atomic_int sleepers;
    atomic_int caller_sleeps;
};

typedef struct {
    kvu_pool *pool;
    int ith;
} worker_arg;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until *gen differs from seen (true) or the spin time is over
 * (false). */
static bool spin_for_gen(atomic_uint *gen, unsigned seen) {
    const int64_t t0 = now_ns();
    for (;;) {
        for (int i = 0; i < PAUSES_PER_CHECK; i++) {
            if (atomic_load_explicit(gen, memory_order_acquire) != seen) return true;
            cpu_relax();
        }
        const int64_t dt = now_ns() - t0;
        if (dt > SPIN_NS) return false;
        if (dt > YIELD_AFTER_NS) sched_yield();
    }
}

static bool spin_for_done(atomic_int *pending) {
    const int64_t t0 = now_ns();
    for (;;) {
        for (int i = 0; i < PAUSES_PER_CHECK; i++) {
            if (atomic_load_explicit(pending, memory_order_acquire) == 0) return true;
            cpu_relax();
        }
        const int64_t dt = now_ns() - t0;
        if (dt > SPIN_NS) return false;
        if (dt > YIELD_AFTER_NS) sched_yield();
    }
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    kvu_pool *pool = wa->pool;
    const int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        if (!spin_for_gen(&pool->gen, seen)) {
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen) pthread_cond_wait(&pool->cv_work, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        seen = atomic_load(&pool->gen);
        if (pool->stop) return NULL;
        if (ith < pool->nth) pool->fn(pool->arg, ith, pool->nth);
        /* The last one wakes the caller if it went to sleep. */
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_sleeps)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

/* Publishes the job in the pool's fields and wakes the workers. */
static void start_job(kvu_pool *pool) {
    atomic_store(&pool->pending, pool->n_threads - 1);
    atomic_fetch_add(&pool->gen, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void wait_job(kvu_pool *pool) {
    if (spin_for_done(&pool->pending)) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->caller_sleeps, 1);
    while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->cv_done, &pool->mu);
    atomic_store(&pool->caller_sleeps, 0);
    pthread_mutex_unlock(&pool->mu);
}

static void stop_threads(kvu_pool *pool, int started) {
    pool->stop = true;
    /* Threads not started yet count as done. */
    atomic_store(&pool->pending, started);
    atomic_fetch_add(&pool->gen, 1);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->cv_work);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < started; i++) pthread_join(pool->threads[i], NULL);
}

kvp_status kvu_pool_new(int n_threads, kvu_pool **out, kvp_error *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 4096)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "thread pool: %d threads (1 to 4096)", n_threads);
    kvu_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return kvu_fail(err, KVP_ERR_NOMEM, "thread pool: out of memory");
    pool->n_threads = n_threads;
    if (n_threads > 1 && !(pool->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t)))) {
        free(pool);
        return kvu_fail(err, KVP_ERR_NOMEM, "thread pool: out of memory");
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_work, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    atomic_init(&pool->gen, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_sleeps, 0);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) *wa = (worker_arg){pool, i};
        int rc = wa ? pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) : ENOMEM;
        if (rc == 0) continue;
        free(wa);
        stop_threads(pool, i - 1);
        pthread_cond_destroy(&pool->cv_done);
        pthread_cond_destroy(&pool->cv_work);
        pthread_mutex_destroy(&pool->mu);
        free(pool->threads);
        free(pool);
        return kvu_fail(err, rc == ENOMEM ? KVP_ERR_NOMEM : KVP_ERR_INTERNAL,
                        "thread pool: cannot start thread %d of %d (%s)", i + 1, n_threads, strerror(rc));
    }
    *out = pool;
    return KVP_OK;
}

void kvu_pool_free(kvu_pool *pool) {
    if (!pool) return;
    if (pool->n_threads > 1) stop_threads(pool, pool->n_threads - 1);
    pthread_cond_destroy(&pool->cv_done);
    pthread_cond_destroy(&pool->cv_work);
    pthread_mutex_destroy(&pool->mu);
    free(pool->threads);
    free(pool);
}

int kvu_pool_threads(const kvu_pool *pool) { return pool ? pool->n_threads : 1; }

void kvu_pool_run(kvu_pool *pool, int n_workers, kvu_pool_fn fn, void *arg) {
    int nth = n_workers < kvu_pool_threads(pool) ? n_workers : kvu_pool_threads(pool);
    if (nth <= 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->nth = nth;
    start_job(pool);
    fn(arg, 0, nth);
    wait_job(pool);
}

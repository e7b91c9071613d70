/* kvu_pool: every worker index runs exactly once per job with the right
 * count, shares tile the range, back-to-back jobs (the spinning path) and
 * jobs after idle gaps longer than the spin (the sleeping path) all
 * complete, and the caller sees every worker's writes. */
#include <stdatomic.h>
#include <time.h>

#include "test_util.h"
#include "util/pool.h"

#define MAX_WORKERS 8

typedef struct {
    atomic_int calls[MAX_WORKERS];
    atomic_int bad_nth;
    int expect_nth;
    int64_t n;
    int *hits; /* plain writes: visible to the caller after the join */
} job;

static void work(void *arg, int ith, int nth) {
    job *j = arg;
    if (nth != j->expect_nth || ith < 0 || ith >= nth) atomic_fetch_add(&j->bad_nth, 1);
    else atomic_fetch_add(&j->calls[ith], 1);
    int64_t lo, hi;
    kvu_pool_share(j->n, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) j->hits[i]++;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Runs `jobs` jobs on the pool asking for `want` workers; checks each. */
static void run_jobs(kvu_pool *pool, int want, int jobs, long gap_us) {
    const int threads = kvu_pool_threads(pool);
    const int nth = want < threads ? (want < 1 ? 1 : want) : threads;
    job j;
    memset(&j, 0, sizeof j);
    j.expect_nth = nth;
    j.n = 1000 + want;
    j.hits = calloc((size_t)j.n, sizeof(int));
    int bad_hits = 0;
    for (int r = 0; r < jobs; r++) {
        kvu_pool_run(pool, want, work, &j);
        for (int64_t i = 0; i < j.n; i++) bad_hits += j.hits[i] != r + 1;
        if (gap_us) sleep_us(gap_us);
    }
    CHECK_EQ_INT(bad_hits, 0);
    CHECK_EQ_INT(atomic_load(&j.bad_nth), 0);
    for (int i = 0; i < MAX_WORKERS; i++)
        CHECK_MSG(atomic_load(&j.calls[i]) == (i < nth ? jobs : 0), "threads %d want %d: worker %d ran %d of %d",
                  threads, want, i, atomic_load(&j.calls[i]), jobs);
    free(j.hits);
}

int main(void) {
    /* Shares: contiguous, in order, sizes differing by at most one. */
    for (int nth = 1; nth <= 7; nth++)
        for (int64_t n = 0; n <= 30; n++) {
            int64_t next = 0;
            for (int ith = 0; ith < nth; ith++) {
                int64_t lo, hi;
                kvu_pool_share(n, ith, nth, &lo, &hi);
                CHECK(lo == next && hi >= lo && hi - lo <= n / nth + 1 && hi - lo >= n / nth);
                next = hi;
            }
            CHECK(next == n);
        }

    kvu_pool *bad = NULL;
    kvp_error err;
    CHECK(kvu_pool_new(0, &bad, &err) == KVP_ERR_INVALID_ARG && bad == NULL);
    CHECK(strstr(err.message, "0 threads") != NULL);

    /* No pool: the caller alone. */
    run_jobs(NULL, 4, 3, 0);

    for (int threads = 1; threads <= 4; threads++) {
        kvu_pool *pool = NULL;
        CHECK(kvu_pool_new(threads, &pool, &err) == KVP_OK);
        CHECK_EQ_INT(kvu_pool_threads(pool), threads);
        for (int want = 1; want <= threads + 1; want++) run_jobs(pool, want, 500, 0);
        /* Gaps past the spin time: workers and caller go to sleep. */
        run_jobs(pool, threads, 20, 2000);
        kvu_pool_free(pool);
    }
    /* A pool freed while its workers sleep, and one freed at once. */
    kvu_pool *pool = NULL;
    CHECK(kvu_pool_new(3, &pool, &err) == KVP_OK);
    sleep_us(5000);
    kvu_pool_free(pool);
    CHECK(kvu_pool_new(3, &pool, &err) == KVP_OK);
    kvu_pool_free(pool);
    kvu_pool_free(NULL);
    return kvp_test_done("test_pool");
}

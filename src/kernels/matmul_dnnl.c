#include "kernels/matmul_dnnl.h"

#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

#if defined(KVP_HAVE_DNNL)
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Token blocks: one primitive call covers up to MB activation rows (the
 * number of rows is a run-time dimension of the primitives: one primitive
 * per weight shape serves every prompt length). */
#define MB 512
/* Products with fewer rows stay on the project's kernels: measured on an
 * AVX512-BF16 core (bench_matmul), oneDNN wins from 4 rows up in bf16 and in
 * f32 (docs/architecture.md). */
#define MIN_ROWS 4
#define CACHE_SLOTS 48

typedef struct prim_entry {
    int N, K, ldc;
    bool bf16;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src, wei, dst, pad;
    size_t pad_bytes;
    int refs;
    uint64_t used;
} prim_entry;

struct kvdn_ctx {
    pthread_mutex_t lock;
    dnnl_engine_t eng;
    int compute;
    bool bf16_ok; /* oneDNN has bf16 matmul kernels on this CPU */
    prim_entry slot[CACHE_SLOTS];
    int n_slots;
    uint64_t tick;
    char impl[64];
};

static bool create_prim(kvdn_ctx *c, prim_entry *e);

bool kvdn_available(void) { return true; }

int kvdn_min_rows(void) { return MIN_ROWS; }

kvdn_ctx *kvdn_new(int compute) {
    kvdn_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->compute = compute;
    /* bf16 products need AVX-512 (oneDNN has no bf16 matmul below it):
     * probe once; without them auto falls back to f32 and an explicit bf16
     * request fails. */
    prim_entry probe = {.N = 16, .K = 32, .ldc = 16, .bf16 = true};
    c->bf16_ok = create_prim(c, &probe);
    if (probe.prim) dnnl_primitive_destroy(probe.prim);
    c->impl[0] = '\0';
    if (compute == KVDN_COMPUTE_BF16 && !c->bf16_ok) {
        kvdn_free(c);
        return NULL;
    }
    return c;
}

void kvdn_free(kvdn_ctx *c) {
    if (!c) return;
    for (int i = 0; i < c->n_slots; i++) dnnl_primitive_destroy(c->slot[i].prim);
    dnnl_engine_destroy(c->eng);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *kvdn_impl_name(const kvdn_ctx *c) { return c ? c->impl : ""; }

int kvdn_compute_for(const kvdn_ctx *c, uint32_t wtype) {
    if (c->compute != KVDN_COMPUTE_AUTO) return c->compute;
    if (!c->bf16_ok) return KVDN_COMPUTE_F32;
    /* BF16 (and block-quantized) weights multiply in bf16 as llama.cpp
     * does for BF16 (activations rounded to bf16, f32 sums); F32 and F16
     * weights keep f32's precision. */
    return wtype == GGML_TYPE_F32 || wtype == GGML_TYPE_F16 ? KVDN_COMPUTE_F32 : KVDN_COMPUTE_BF16;
}

/* Rows of weight per panel: about 256 KB of bf16 per panel (an L2 share),
 * a multiple of 16, from K alone so the cut never depends on threads. */
static int panel_rows(int K) {
    int np = (1 << 17) / K;
    np -= np % 16;
    if (np < 32) np = 32;
    if (np > 256) np = 256;
    return np;
}

/* Creates the primitive for dst[M][N] (row stride ldc) = src[M][K] x W^T,
 * M given at run time, W given as N rows of K (format "ba" of a K x N
 * matrix). oneDNN 2.6 runs this on its JIT gemm kernels (its brgemm ones
 * need M and a dense dst at creation: measured 4% faster at 512 rows, but
 * a primitive per prompt length costs more in JIT time). Called with the
 * lock held and from a thread whose OpenMP thread limit is 1, so oneDNN
 * plans a single-threaded run. */
static bool create_prim(kvdn_ctx *c, prim_entry *e) {
    dnnl_data_type_t dt = e->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t sd = {DNNL_RUNTIME_DIM_VAL, e->K}, ss = {e->K, 1};
    dnnl_dims_t wd = {e->K, e->N}, ws = {1, e->K};
    dnnl_dims_t dd = {DNNL_RUNTIME_DIM_VAL, e->N}, ds = {e->ldc, 1};
    if (dnnl_memory_desc_init_by_strides(&e->src, 2, sd, dt, ss) ||
        dnnl_memory_desc_init_by_strides(&e->wei, 2, wd, dt, ws) ||
        dnnl_memory_desc_init_by_strides(&e->dst, 2, dd, dnnl_f32, ds))
        return false;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &e->src, &e->wei, NULL, &e->dst)) return false;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    bool ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
              dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
                  dnnl_success;
    if (ok) ok = dnnl_primitive_desc_create(&pd, &md, attr, c->eng, NULL) == dnnl_success;
    if (ok) {
        const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (pad) e->pad = *pad;
        else memset(&e->pad, 0, sizeof e->pad);
        e->pad_bytes = pad ? dnnl_memory_desc_get_size(pad) : 0;
        const char *impl = NULL;
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) {
            strncpy(c->impl, impl, sizeof c->impl - 1);
            c->impl[sizeof c->impl - 1] = '\0';
        }
        ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return ok;
}

/* The cached primitive for a shape (its reference count raised), created
 * when missing. When every slot is in use the new primitive is owned by the
 * caller alone (*owned set), released by put_prim. */
static prim_entry *get_prim(kvdn_ctx *c, const prim_entry *key, prim_entry *owned) {
    prim_entry *hit = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n_slots && !hit; i++) {
        prim_entry *e = &c->slot[i];
        if (e->N == key->N && e->K == key->K && e->ldc == key->ldc && e->bf16 == key->bf16)
            hit = e;
    }
    if (!hit) {
        prim_entry *e = NULL;
        if (c->n_slots < CACHE_SLOTS) {
            e = &c->slot[c->n_slots];
        } else {
            /* Evict the least recently used slot nobody is running. */
            for (int i = 0; i < c->n_slots; i++)
                if (c->slot[i].refs == 0 && (!e || c->slot[i].used < e->used)) e = &c->slot[i];
            if (e) {
                dnnl_primitive_destroy(e->prim);
                *e = c->slot[--c->n_slots];
                e = &c->slot[c->n_slots];
            }
        }
        if (!e) e = owned;
        *e = *key;
        e->prim = NULL;
        e->refs = 0;
        if (!create_prim(c, e)) {
            if (e->prim) dnnl_primitive_destroy(e->prim);
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        if (e != owned) c->n_slots++;
        hit = e;
    }
    hit->refs++;
    hit->used = ++c->tick;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void put_prim(kvdn_ctx *c, prim_entry *e, prim_entry *owned) {
    pthread_mutex_lock(&c->lock);
    e->refs--;
    pthread_mutex_unlock(&c->lock);
    if (e == owned) dnnl_primitive_destroy(e->prim);
}

static void f32_to_bf16_rows(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
    /* vcvtneps2bf16 rounds to nearest even like kvk_f32_to_bf16. */
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
#endif
    for (; i < n; i++) dst[i] = kvk_f32_to_bf16(src[i]);
}

/* Weight rows [n0, n0 + nr) in the compute type; `buf` holds nr * K
 * elements of it. Returns where the panel lies (the weights themselves when
 * they already have the compute type). */
static const void *weight_panel(const void *w, uint32_t wtype, bool bf16, int n0, int nr, int K,
                                void *buf, float *tmp) {
    const size_t off = (size_t)n0 * K;
    if (wtype == GGML_TYPE_F32 && !bf16) return (const float *)w + off;
    if (wtype == GGML_TYPE_BF16 && bf16) return (const uint16_t *)w + off;
    if (wtype != GGML_TYPE_F32 && wtype != GGML_TYPE_F16 && wtype != GGML_TYPE_BF16) {
        /* Block-quantized rows: ggml's dequantization, rows back to back. */
        const void *src = (const char *)w + (size_t)n0 * kvq_row_bytes(wtype, K);
        if (bf16)
            kvq_dequantize_rows_bf16(wtype, src, buf, nr, K);
        else
            kvq_dequantize_rows_f32(wtype, src, buf, nr, K);
        return buf;
    }
    const size_t esz = wtype == GGML_TYPE_F32 ? 4 : 2;
    for (int r = 0; r < nr; r++) {
        const char *src = (const char *)w + (off + (size_t)r * K) * esz;
        if (!bf16) {
            kvk_to_f32((float *)buf + (size_t)r * K, src, wtype, K);
        } else if (wtype == GGML_TYPE_F32) {
            f32_to_bf16_rows((uint16_t *)buf + (size_t)r * K, (const float *)src, K);
        } else {
            kvk_to_f32(tmp, src, wtype, K);
            f32_to_bf16_rows((uint16_t *)buf + (size_t)r * K, tmp, K);
        }
    }
    return buf;
}

static bool run_prim(prim_entry *e, dnnl_engine_t eng, dnnl_stream_t st, int M, const void *src,
                     const void *wei, float *dst, void *pad) {
    dnnl_memory_t ms = NULL, mw = NULL, md = NULL, mp = NULL;
    dnnl_memory_desc_t sm, dm;
    dnnl_dims_t sd = {M, e->K}, ss = {e->K, 1}, dd = {M, e->N}, ds = {e->ldc, 1};
    bool ok = dnnl_memory_desc_init_by_strides(&sm, 2, sd, e->src.data_type, ss) == dnnl_success &&
              dnnl_memory_desc_init_by_strides(&dm, 2, dd, dnnl_f32, ds) == dnnl_success &&
              dnnl_memory_create(&ms, &sm, eng, (void *)src) == dnnl_success &&
              dnnl_memory_create(&mw, &e->wei, eng, (void *)wei) == dnnl_success &&
              dnnl_memory_create(&md, &dm, eng, dst) == dnnl_success &&
              (!e->pad_bytes || dnnl_memory_create(&mp, &e->pad, eng, pad) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md},
                                   {DNNL_ARG_SCRATCHPAD, mp}};
        ok = dnnl_primitive_execute(e->prim, st, e->pad_bytes ? 4 : 3, args) == dnnl_success &&
             dnnl_stream_wait(st) == dnnl_success;
    }
    if (ms) dnnl_memory_destroy(ms);
    if (mw) dnnl_memory_destroy(mw);
    if (md) dnnl_memory_destroy(md);
    if (mp) dnnl_memory_destroy(mp);
    return ok;
}

/* One product's pieces over the pool: the activations' bf16 copy first
 * (static shares of the rows), then (panel, token block) tasks taken from a
 * shared counter. */
typedef struct {
    kvdn_ctx *c;
    float *y;
    const float *x;
    uint16_t *xb;
    const void *w;
    uint32_t wtype;
    int T, N, K, NP, n_mb, n_tasks;
    bool accumulate, bf16;
    atomic_int next, failed;
} dnnl_job;

static void to_bf16_worker(void *arg, int ith, int nth) {
    dnnl_job *j = arg;
    int64_t lo, hi;
    kvu_pool_share(j->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        f32_to_bf16_rows(j->xb + (size_t)t * j->K, j->x + (size_t)t * j->K, j->K);
}

static void pieces_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    dnnl_job *j = arg;
    kvdn_ctx *c = j->c;
    const int T = j->T, N = j->N, K = j->K, NP = j->NP, n_mb = j->n_mb;
    const bool bf16 = j->bf16, accumulate = j->accumulate;
    const uint32_t wtype = j->wtype;
    /* oneDNN (OpenMP runtime) sizes its own parallel loops from this
     * thread's OpenMP limit: 1, so each call runs on the thread that makes
     * it, and starts no OpenMP threads. The caller's limit is restored. */
    const int omp_limit = omp_get_max_threads();
    omp_set_num_threads(1);
    const bool convert = !((wtype == GGML_TYPE_F32 && !bf16) || (wtype == GGML_TYPE_BF16 && bf16));
    void *buf = convert ? malloc((size_t)NP * K * (bf16 ? 2 : 4)) : NULL;
    float *tmp = convert && bf16 ? malloc((size_t)K * sizeof(float)) : NULL;
    float *out = accumulate ? malloc((size_t)MB * NP * sizeof(float)) : NULL;
    void *pad = NULL;
    size_t pad_cap = 0;
    dnnl_stream_t st = NULL;
    int ok = (out || !accumulate) && !(convert && (!buf || (bf16 && !tmp))) &&
             dnnl_stream_create(&st, c->eng, dnnl_stream_default_flags) == dnnl_success;
    if (!ok) atomic_store(&j->failed, 1);
    int have_panel = -1;
    /* Panels outside, token blocks inside: a worker converts a panel once
     * and runs it against consecutive token blocks. */
    for (int task; ok && (task = atomic_fetch_add(&j->next, 1)) < j->n_tasks;) {
        const int p = task / n_mb, b = task % n_mb;
        const int n0 = p * NP, nr = N - n0 < NP ? N - n0 : NP;
        const int t0 = b * MB, mr = T - t0 < MB ? T - t0 : MB;
        const void *panel = buf;
        if (!convert || have_panel != p) {
            panel = weight_panel(j->w, wtype, bf16, n0, nr, K, buf, tmp);
            have_panel = p;
        }
        /* A product is written in place; one added onto y goes through a
         * dense tile first, so y + (x W^T) is one float32 addition. */
        prim_entry key = {.N = nr, .K = K, .ldc = accumulate ? nr : N, .bf16 = bf16};
        prim_entry own;
        prim_entry *e = get_prim(c, &key, &own);
        if (!e) {
            ok = 0;
            atomic_store(&j->failed, 1);
            continue;
        }
        if (e->pad_bytes > pad_cap) {
            free(pad);
            pad_cap = e->pad_bytes;
            if (!(pad = aligned_alloc(64, (pad_cap + 63) / 64 * 64))) pad_cap = 0;
        }
        const void *src = bf16 ? (const void *)(j->xb + (size_t)t0 * K) : (const void *)(j->x + (size_t)t0 * K);
        float *dst = accumulate ? out : j->y + (size_t)t0 * N + n0;
        if ((e->pad_bytes && !pad) || !run_prim(e, c->eng, st, mr, src, panel, dst, pad)) {
            ok = 0;
            atomic_store(&j->failed, 1);
        } else if (accumulate) {
            for (int t = 0; t < mr; t++) {
                float *yr = j->y + (size_t)(t0 + t) * N + n0;
                const float *o = out + (size_t)t * nr;
                for (int n = 0; n < nr; n++) yr[n] += o[n];
            }
        }
        put_prim(c, e, &own);
    }
    if (st) dnnl_stream_destroy(st);
    free(pad);
    free(out);
    free(buf);
    free(tmp);
    omp_set_num_threads(omp_limit);
}

int kvdn_matmul(kvdn_ctx *c, float *y, const float *x, int T, const void *w, uint32_t wtype, int N,
                int K, bool accumulate, kvu_pool *pool) {
    if (!c || T < MIN_ROWS || !kvq_type_supported(wtype) || !kvq_row_bytes(wtype, K)) return 0;
    const bool bf16 = kvdn_compute_for(c, wtype) == KVDN_COMPUTE_BF16;
    const int NP = panel_rows(K), n_panels = (N + NP - 1) / NP, n_mb = (T + MB - 1) / MB;
    dnnl_job j = {c, y, x, NULL, w, wtype, T, N, K, NP, n_mb, n_panels * n_mb, accumulate, bf16, 0, 0};
    if (bf16) {
        if (!(j.xb = malloc((size_t)T * K * sizeof *j.xb))) return -1;
        kvu_pool_run(pool, T, to_bf16_worker, &j);
    }
    kvu_pool_run(pool, j.n_tasks, pieces_worker, &j);
    free(j.xb);
    return atomic_load(&j.failed) ? -1 : 1;
}

#else /* !KVP_HAVE_DNNL */

bool kvdn_available(void) { return false; }
int kvdn_min_rows(void) { return 0; }
kvdn_ctx *kvdn_new(int compute) {
    (void)compute;
    return NULL;
}
void kvdn_free(kvdn_ctx *ctx) { (void)ctx; }
int kvdn_compute_for(const kvdn_ctx *ctx, uint32_t wtype) {
    (void)ctx;
    (void)wtype;
    return KVDN_COMPUTE_F32;
}
int kvdn_matmul(kvdn_ctx *ctx, float *y, const float *x, int T, const void *w, uint32_t wtype, int N,
                int K, bool accumulate, kvu_pool *pool) {
    (void)ctx, (void)y, (void)x, (void)T, (void)w, (void)wtype, (void)N, (void)K, (void)accumulate,
        (void)pool;
    return 0;
}
const char *kvdn_impl_name(const kvdn_ctx *ctx) {
    (void)ctx;
    return "";
}

#endif

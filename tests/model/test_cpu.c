/* CPU dispatch: the detected level against the kernel's /proc/cpuinfo flags
 * (an independent reading of cpuid + the OS-enabled state), KVP_CPU
 * lowering it, and the F32/F16/BF16 matrix product giving the same bits on
 * every level this CPU runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/matmul_variants.h"
#include "kvprune.h"
#include "test_util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { return kvp_test_frand(&rng); }

static bool has_flag(const char *flags, const char *f) {
    size_t n = strlen(f);
    for (const char *p = flags; (p = strstr(p, f)); p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) return true;
    return false;
}

typedef bool (*matmul_fn)(float *, const float *, int, const void *, uint32_t, int, int, bool, kvu_pool *);

int main(void) {
    kvcpu_level best = kvcpu_level_best();
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "flags", 5)) break;
        fclose(f);
        int want = KVCPU_SCALAR;
        if (has_flag(line, "avx2") && has_flag(line, "fma") && has_flag(line, "f16c")) {
            want = KVCPU_AVX2;
            if (has_flag(line, "avx512f") && has_flag(line, "avx512bw") && has_flag(line, "avx512vl") &&
                has_flag(line, "avx512dq"))
                want = has_flag(line, "avx512_vnni") ? KVCPU_AVX512VNNI : KVCPU_AVX512;
        }
        CHECK_MSG((int)best == want, "detected %s, /proc/cpuinfo says %s", kvcpu_level_name(best),
                  kvcpu_level_name((kvcpu_level)want));
        if (want >= KVCPU_AVX512) CHECK(kvcpu_has_avx512bf16() == has_flag(line, "avx512_bf16"));
    }

    /* KVP_CPU lowers the level, never raises it. */
    kvcpu_level expect = best, req;
    if (kvcpu_level_parse(getenv("KVP_CPU"), &req) && req < best) expect = req;
    CHECK_STR(kvcpu_level_name(kvcpu_current()), kvcpu_level_name(expect));
    kvp_system_info si;
    kvp_get_system_info(&si);
    CHECK_STR(si.cpu_path, kvcpu_level_name(expect));
    CHECK_STR(si.cpu_best, kvcpu_level_name(best));
    CHECK(kvcpu_level_parse("avx512vnni", &req) && req == KVCPU_AVX512VNNI);
    CHECK(!kvcpu_level_parse("avx512vnni ", &req) && !kvcpu_level_parse("", &req));
    printf("cpu: best %s, in use %s, avx512_bf16 %d\n", si.cpu_best, si.cpu_path, si.avx512_bf16);

    /* Every variant gives the scalar variant's bits (fused multiply-adds in
     * 16 lanes, the same reduction order). */
    matmul_fn fns[3] = {kvmm_matmul_scalar, kvmm_matmul_avx2, kvmm_matmul_avx512};
    kvu_pool *pool2 = NULL;
    CHECK(kvu_pool_new(2, &pool2, NULL) == KVP_OK);
    int n_fns = best >= KVCPU_AVX512 ? 3 : best >= KVCPU_AVX2 ? 2 : 1;
    int sizes[][3] = {{1, 7, 19}, {1, 50, 896}, {2, 37, 70}, {5, 33, 130}, {9, 100, 64}, {3, 96, 517}};
    uint32_t types[3] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16};
    for (size_t si_ = 0; si_ < sizeof sizes / sizeof sizes[0]; si_++) {
        int T = sizes[si_][0], N = sizes[si_][1], K = sizes[si_][2];
        float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * N * K);
        uint16_t *wh = malloc(2 * (size_t)N * K);
        float *y0 = malloc(sizeof(float) * T * N), *y1 = malloc(sizeof(float) * T * N);
        for (int i = 0; i < T * K; i++) x[i] = frand();
        for (int i = 0; i < N * K; i++) w[i] = frand();
        for (int ti = 0; ti < 3; ti++) {
            const void *wp = w;
            if (types[ti] != GGML_TYPE_F32) {
                for (int i = 0; i < N * K; i++)
                    wh[i] = types[ti] == GGML_TYPE_F16 ? kvk_f32_to_f16(w[i]) : kvk_f32_to_bf16(w[i]);
                wp = wh;
            }
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < T * N; i++) y0[i] = y1[i] = 0.25f * i;
                CHECK(fns[0](y0, x, T, wp, types[ti], N, K, acc, NULL));
                for (int v = 1; v < n_fns; v++) {
                    for (int i = 0; i < T * N; i++) y1[i] = 0.25f * i;
                    CHECK(fns[v](y1, x, T, wp, types[ti], N, K, acc, pool2));
                    CHECK_MSG(memcmp(y0, y1, sizeof(float) * T * N) == 0,
                              "variant %d T=%d N=%d K=%d type %u acc %d", v, T, N, K, types[ti], acc);
                }
            }
        }
        free(x), free(w), free(wh), free(y0), free(y1);
    }
    kvu_pool_free(pool2);
    return kvp_test_done("test_cpu");
}

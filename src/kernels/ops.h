/* Small per-token kernels of the forward pass: RMSNorm, rotary embedding
 * (Hugging Face rotate_half layout), SwiGLU. */
#ifndef KVP_KERNELS_OPS_H
#define KVP_KERNELS_OPS_H

#include <stdint.h>

/* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, rows of n (out may be x). */
void kvk_rmsnorm(float *out, const float *x, const float *w, int T, int n, float eps);

/* cs[t][i] = {cos, sin}(pos0 + t) * inv_freq[i]) for i < half. */
void kvk_rope_table(float *cs, int T, int32_t pos0, const double *inv_freq, int half);

/* Rotates x[t][h][0..2*half) pairs (i, i+half) by the table row t. */
void kvk_rope_apply(float *x, int T, int n_heads, int head_dim, const float *cs, int half);

/* g[i] = silu(g[i]) * u[i]. */
void kvk_swiglu(float *g, const float *u, int64_t n);

#endif

/*
 * Internal contract between the model's forward pass and the pruning cache.
 * The forward pass owns projections, RoPE and the MLP; the cache owns K/V
 * storage, the attention over cached tokens (so scores come from the same
 * softmax weights), score tracking and eviction.
 *
 * One forward block of n_new tokens:
 *   kvc_begin(cache, n_new, n_prompt_total)   once, before layer 0
 *   for each layer: kvc_attend(cache, layer, q, k, v, out)
 *   kvc_end(cache)                             once, after the last layer
 *
 * Storage (store.h), one stream per (layer, stream of the head mode),
 * streams ordered layer-major: per storage row j < len, the key (after
 * RoPE) at k + j*row_bytes and the value at v + j*row_bytes, each head_dim
 * elements of kvp_cache_params.kv_type (float32, or IEEE f16 / bf16 bits
 * as uint16, rounded to nearest even when appended), with float64 tracker
 * scores (sattn, skey, vnorm) and float32 v2 beside them; the tokens are
 * listed in position order (pos[i], absolute position; slot[i], its
 * storage row). Value norms are taken from the rounded values.
 */
#ifndef KVP_CACHE_CACHE_H
#define KVP_CACHE_CACHE_H

#include "kvprune.h"
#include "util/pool.h"

/* Creates a cache from the model's dimensions directly (kvp_cache_new reads
 * them from kvp_model_get_info); n_ctx: the model's trained context (0:
 * unknown), past which the cache warns once (kvp_cache_warning). For tests
 * and other engines. */
kvp_status kvc_new_dims(int n_layer, int n_head, int n_head_kv, int head_dim,
                        int n_ctx, const kvp_cache_params *params,
                        kvp_cache **out, kvp_error *err);

/* KVP_ERR_NOMEM, with the figures, when n_tokens tokens in every stream
 * would need more K/V memory than the machine has (checked before a
 * generation starts, so an impossible one fails at once, not in the OS's
 * out-of-memory killer). */
kvp_status kvc_check_fits(const kvp_cache *c, int64_t n_tokens, kvp_error *err);

/* True for the full cache (no eviction). */
bool kvc_is_full(const kvp_cache *c);

/* Bytes of K/V storage allocated now (capacity, not length): shows that
 * evicted memory is given back. */
size_t kvc_alloc_bytes(const kvp_cache *c);

/* Absolute position of the next token to arrive (tokens seen so far). The
 * forward pass rotates the block's queries/keys starting at this position. */
int32_t kvc_next_pos(const kvp_cache *c);

/* The cache's thread pool with n_threads workers (the caller included),
 * started on first use and restarted when the count changes; NULL for one
 * worker. The forward pass runs its products and the attention on it. A
 * cache is used by one thread at a time, so its pool is too. */
kvp_status kvc_thread_pool(kvp_cache *c, int n_threads, kvu_pool **out, kvp_error *err);

/* Starts a block of n_new tokens. n_prompt_total is the whole prompt's length
 * when this block is part of the prefill (the first block after a reset sets
 * the ratio budgets from it; chunked prefill passes the same total with each
 * chunk), or 0 for decode steps. Errors: a block that would overflow a full
 * cache's capacity, budgets that the prompt length makes invalid. */
kvp_status kvc_begin(kvp_cache *c, int n_new, int n_prompt_total,
                     kvp_error *err);

/* Attention of one layer for the current block.
 *   q   [n_new][n_head][head_dim]     queries after RoPE (and q-norm)
 *   k   [n_new][n_head_kv][head_dim]  keys after RoPE (and k-norm)
 *   v   [n_new][n_head_kv][head_dim]
 *   out [n_new][n_head][head_dim]     softmax(q k^T / sqrt(d) + causal) v
 * over the cached tokens of this layer plus the block itself. Appends k/v,
 * updates the method's scores and evicts to budget. Streams are split over
 * the pool's workers (NULL: the caller alone). */
kvp_status kvc_attend(kvp_cache *c, int layer, const float *q, const float *k,
                      const float *v, float *out, kvu_pool *pool,
                      kvp_error *err);

/* Ends the block: the position counter advances by n_new. */
void kvc_end(kvp_cache *c);

/* The compute type bf16 for the attention of blocks of 8 or more rows
 * (prefill): kvk_attn_forward_bf16 / kvk_attn_colreduce_bf16 when the CPU
 * has AVX512-BF16 (else float32 as before). Decode and blocks of fewer
 * rows stay float32. The forward pass sets it from the model's compute
 * type before each block. */
void kvc_set_attn_bf16(kvp_cache *c, bool on);

/* Milliseconds spent in kvc_attend since the last reset. */
double kvc_attn_ms(const kvp_cache *c);

#endif

/* A conversation kept in one cache, shared by `kvprune chat` and the
 * sessions of `kvprune serve`. Each turn feeds only what is new: the reply's
 * last token (which kvp_generate does not feed), the template's end of the
 * reply and the new messages with the generation prompt
 * (kvp_chat_tokenize_next), appended to the cache (keep_cache), then decodes.
 * Only the messages the next turn's rendering needs are kept (the built-in
 * templates render a turn from the previous user message and reply alone),
 * so a conversation's memory is its cache plus two messages. */
#ifndef KVP_CLI_CONVERSATION_H
#define KVP_CLI_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

typedef struct conv {
    const kvp_model *model;
    const kvp_tokenizer *tok;
    kvp_cache *cache;          /* owned                                     */
    char *template_name;       /* NULL: the model's                         */
    char *system;              /* NULL: none                                */
    bool started;              /* the cache holds the conversation so far   */
    char *last_user, *last_reply;
    int32_t pending;           /* the reply's last id, not yet fed; -1      */
    int64_t n_turns;
    /* the last turn */
    size_t last_prompt_tokens, last_gen_tokens;
    double last_prefill_ms, last_decode_ms;
} conv;

/* Creates the conversation's cache. */
kvp_status conv_init(conv *c, const kvp_model *model, const kvp_cache_params *cp,
                     const char *template_name, const char *system, kvp_error *err);
void conv_free(conv *c);
/* Forgets the conversation (the cache is emptied; the system message stays). */
void conv_reset(conv *c);

/* One turn: `n_new` new messages (user messages, or a whole history when the
 * conversation has not started) are appended and a reply generated with gp
 * (its on_token streams). *reply receives the reply's text (EOS excluded;
 * caller frees with free()); res the generation's result. When stop_len > 0
 * the reply text kept for the template is cut to its first stop_len bytes
 * (a stop string). On failure the conversation is reset. */
kvp_status conv_turn(conv *c, const kvp_chat_message *msgs, size_t n_new, const kvp_gen_params *gp,
                     kvp_gen_result *res, char **reply, kvp_error *err);
/* Replaces the reply kept for the template (a reply cut at a stop string). */
bool conv_set_reply(conv *c, const char *text, size_t len);

/* /save and /load: a cache file (kvp_cache_save) whose history is the
 * reply's pending token and whose application data is the conversation's
 * messages and template as JSON. A file saved by another program (e.g.
 * `generate --save-cache` after a document) continues as a conversation
 * whose last reply was empty. On a failed load the conversation is
 * unchanged. */
kvp_status conv_save(const conv *c, const char *path, kvp_error *err);
kvp_status conv_load(conv *c, const char *path, kvp_error *err);

/* --max-kv-mib: turns a KV memory cap into token budgets. A new turn's
 * chunks are evicted for before they arrive, so a pruned cache holds at
 * most its budget while reading and budget + `block` while decoding (1
 * with decode eviction, the reply's length without); the first chunk of
 * the first prompt lands in an empty cache and must fit. So the budget is
 * cap / kvp_cache_token_bytes - block tokens: num_recent of them (cp's,
 * else 16; sink: num_heavy, else 4, sinks) and the rest by score. The
 * cache's capacity is set to the cap, so it can never hold more. The full
 * cache gets the cap as its capacity (a turn that would exceed it fails).
 * Ratio budgets and --max-kv-mib exclude each other. */
kvp_status conv_budget_from_mib(const kvp_model *model, kvp_cache_params *cp, double mib, int block,
                                int first_chunk, kvp_error *err);

#endif

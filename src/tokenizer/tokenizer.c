/* Tokenizer loading (tokenizer.json, folder, GGUF), GGUF export and the
 * small public accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

void kvp_tokenizer_free(kvp_tokenizer *t) {
    if (!t) return;
    if (t->text)
        for (int32_t i = 0; i < t->n_vocab; i++) free(t->text[i]);
    free(t->text);
    free(t->len);
    free(t->scores);
    free(t->type);
    free(t->strip);
    free(t->vocab.slots);
    free(t->merges.e);
    free(t->merges.filter);
    free(t->byte_pairs);
    free(t->merge_left);
    free(t->merge_right);
    free(t->added);
    free(t->trie);
    free(t->trie_edges);
    free(t->pre_name);
    free(t->regex_src);
    if (t->regex) pcre2_code_free(t->regex);
    free(t->chat_template);
    free(t->source);
    free(t);
}

int kvp_tokenizer_n_vocab(const kvp_tokenizer *tok) { return tok ? tok->n_vocab : 0; }
int32_t kvp_tokenizer_bos(const kvp_tokenizer *tok) { return tok ? tok->bos : -1; }
int32_t kvp_tokenizer_eos(const kvp_tokenizer *tok) { return tok ? tok->eos : -1; }

const char *kvp_token_text(const kvp_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_vocab) return NULL;
    return tok->text[id];
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

kvp_status kvt_tokenizer_from_hf_dir(const char *dir, kvp_tokenizer **out, kvp_error *err) {
    if (!dir || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvt_tokenizer_from_hf_dir: NULL argument");
    *out = NULL;
    char *json = join_path(dir, "tokenizer.json"), *cfg = join_path(dir, "tokenizer_config.json");
    kvp_status st = KVP_OK;
    if (!json || !cfg) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    else if (is_file(json)) st = kvt_load_hf_json(json, is_file(cfg) ? cfg : NULL, out, err);
    free(json);
    free(cfg);
    return st;
}

/* ------------------------------------------------------------------ GGUF */

static char *gguf_strdup(const gguf_file *g, const char *key) {
    size_t n = 0;
    const char *s = kvgguf_get_str(g, key, &n);
    if (!s) return NULL;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int32_t gguf_id(const gguf_file *g, const char *key, int32_t n_vocab) {
    uint32_t v;
    if (!kvgguf_get_u32(g, key, &v)) return -1;
    return v < (uint32_t)n_vocab ? (int32_t)v : -1;
}

kvp_status kvt_tokenizer_from_gguf(const gguf_file *g, kvp_tokenizer **out, kvp_error *err) {
    if (!g || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvt_tokenizer_from_gguf: NULL argument");
    *out = NULL;
    const char *path = kvgguf_path(g);
    char *model = gguf_strdup(g, "tokenizer.ggml.model");
    if (!model) return KVP_OK; /* no tokenizer in this file */
    kvp_status st = KVP_OK;
    kvp_tokenizer *t = kvt_alloc(path);
    char *pre = NULL;
    if (!t) {
        free(model);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    bool spm;
    if (!strcmp(model, "llama")) spm = true;
    else if (!strcmp(model, "gpt2")) spm = false;
    else {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported (only \"llama\" and \"gpt2\")", path, model);
        goto done;
    }
    gguf_type et;
    uint64_t n;
    if (!kvgguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) || et != GGUF_TYPE_STRING) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or not a string array", path);
        goto done;
    }
    if ((st = kvt_set_vocab_size(t, (int32_t)(n > (1u << 26) ? 0 : n), err)) != KVP_OK) goto done;
    const unsigned char *types = NULL; /* int32 LE, maybe unaligned */
    uint64_t nt = 0;
    if (kvgguf_get_arr_info(g, "tokenizer.ggml.token_type", &et, &nt)) {
        if ((et != GGUF_TYPE_INT32 && et != GGUF_TYPE_UINT32) || nt != n) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: tokenizer.ggml.token_type must be an int32 array of %llu entries", path, (unsigned long long)n);
            goto done;
        }
        types = kvgguf_get_arr_data(g, "tokenizer.ggml.token_type");
    }
    uint64_t ns = 0;
    if (kvgguf_get_arr_info(g, "tokenizer.ggml.scores", &et, &ns)) {
        if (et != GGUF_TYPE_FLOAT32 || ns != n) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: tokenizer.ggml.scores must be a float32 array of %llu entries", path, (unsigned long long)n);
            goto done;
        }
        t->scores = malloc(n * sizeof(float));
        if (!t->scores) { st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(t->scores, kvgguf_get_arr_data(g, "tokenizer.ggml.scores"), n * sizeof(float));
    } else if (spm) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: a \"llama\" (SentencePiece) tokenizer needs tokenizer.ggml.scores", path);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        size_t l = 0;
        const char *s = kvgguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &l);
        int32_t ty = TOK_TYPE_NORMAL;
        if (types) memcpy(&ty, types + 4 * i, 4);
        if (ty < TOK_TYPE_NORMAL || ty > TOK_TYPE_BYTE) ty = TOK_TYPE_NORMAL;
        if (t->text[i]) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: duplicate token id %llu", path, (unsigned long long)i);
            goto done;
        }
        if ((st = kvt_set_token(t, (int32_t)i, s ? s : "", s ? l : 0, (uint8_t)ty, err)) != KVP_OK) goto done;
    }
    t->kind = spm ? TOK_KIND_SPM : TOK_KIND_BYTE_BPE;
    if (spm) {
        bool asp = true;
        (void)kvgguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &asp);
        t->merge_mode = TOK_MERGE_SCORES;
        t->prepend_space = asp;
        t->replace_space = true;
        t->byte_fallback = true;
        t->decode_strip_space = asp;
        t->add_bos = true;
    } else {
        pre = gguf_strdup(g, "tokenizer.ggml.pre");
        const char *p = pre ? pre : "default";
        bool nfc = false, ign = false;
        const char *re = kvt_regex_for_pre(p, &nfc, &ign);
        if (!re) {
            st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%s' is not supported (supported: llama-bpe, qwen2, default)", path, p);
            goto done;
        }
        if ((st = kvt_set_regex(t, re, err)) != KVP_OK) goto done;
        t->nfc = nfc;
        t->ignore_merges = ign;
        t->merge_mode = TOK_MERGE_RANKS;
        if (!(t->pre_name = strdup(p))) { st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory"); goto done; }
    }
    if ((st = kvt_finalize(t, err)) != KVP_OK) goto done;
    if (!spm) {
        uint64_t nm = 0;
        if (!kvgguf_get_arr_info(g, "tokenizer.ggml.merges", &et, &nm) || et != GGUF_TYPE_STRING) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: a \"gpt2\" tokenizer needs the string array tokenizer.ggml.merges", path);
            goto done;
        }
        if ((st = kvt_merges_reserve(t, (int32_t)nm, err)) != KVP_OK) goto done;
        for (uint64_t i = 0; i < nm; i++) {
            size_t l = 0;
            const char *s = kvgguf_get_arr_str(g, "tokenizer.ggml.merges", i, &l);
            const char *sp = s ? memchr(s, ' ', l) : NULL;
            if (!sp || sp == s || (size_t)(sp - s) + 1 >= l) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "%s: tokenizer.ggml.merges[%llu] is not two tokens separated by a space", path, (unsigned long long)i);
                goto done;
            }
            if ((st = kvt_add_merge(t, s, (size_t)(sp - s), sp + 1, l - (size_t)(sp - s) - 1, err)) != KVP_OK) goto done;
        }
        if ((st = kvt_merges_done(t, err)) != KVP_OK) goto done;
    }
    t->bos = gguf_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab);
    t->eos = gguf_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab);
    t->unk = gguf_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab);
    t->pad = gguf_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab);
    (void)kvgguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    (void)kvgguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
    t->chat_template = gguf_strdup(g, "tokenizer.chat_template");
    for (int bit = 1; bit <= 2; bit++) {
        const char *key = bit == 1 ? "kvprune.tokenizer.lstrip_ids" : "kvprune.tokenizer.rstrip_ids";
        uint64_t k = 0;
        if (!kvgguf_get_arr_info(g, key, &et, &k) || k == 0) continue;
        const unsigned char *v = kvgguf_get_arr_data(g, key);
        if (et != GGUF_TYPE_INT32 || !v) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: %s must be an int32 array", path, key);
            goto done;
        }
        if (!t->strip && !(t->strip = calloc((size_t)t->n_vocab, 1))) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (uint64_t j = 0; j < k; j++) {
            int32_t id;
            memcpy(&id, v + 4 * j, 4);
            if (id < 0 || id >= t->n_vocab) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "%s: %s names token %d, out of range", path, key, id);
                goto done;
            }
            t->strip[id] |= (uint8_t)bit;
        }
    }
    kvt_recognise_template(t);
done:
    free(model);
    free(pre);
    if (st != KVP_OK) {
        kvp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KVP_OK;
}

/* SentencePiece scores for a tokenizer that only has merges: a piece made by
 * merge r scores -(r+1), so that llama.cpp's highest-score-first merge
 * replays the rank order; single characters and added tokens score 0 and
 * other pieces (never produced by a merge) -1e9. */
static float *scores_from_merges(const kvp_tokenizer *t) {
    float *s = malloc((size_t)t->n_vocab * sizeof(float));
    if (!s) return NULL;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int cl = kvt_utf8_len((const unsigned char *)t->text[i], t->len[i]);
        bool single = cl > 0 && (uint32_t)cl == t->len[i];
        s[i] = (t->type[i] != TOK_TYPE_NORMAL || single) ? 0.0f : -1e9f;
    }
    for (int32_t r = t->n_merges - 1; r >= 0; r--) {
        const kvt_merge_entry *m = kvt_merge_find(t, t->merge_left[r], t->merge_right[r]);
        if (m && m->rank == r) s[m->result] = -(float)r - 1.0f;
    }
    return s;
}

kvp_status kvt_tokenizer_to_gguf(const kvp_tokenizer *t, gguf_writer *w, kvp_error *err) {
    if (!t || !w) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvt_tokenizer_to_gguf: NULL argument");
    bool spm = t->kind == TOK_KIND_SPM;
    if (spm && !t->replace_space)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: a SentencePiece tokenizer without \"\\u2581\" spaces cannot be written to GGUF", t->source);
    if (!spm && !t->pre_name)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: the pre-tokenizer regex has no GGUF tokenizer.ggml.pre name", t->source);
    if (!spm && t->byte_prefix_space)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space cannot be written to GGUF", t->source);
    kvp_status st = KVP_OK;
    size_t n = (size_t)t->n_vocab;
    const char **strs = malloc(n * sizeof *strs);
    size_t *lens = malloc(n * sizeof *lens);
    int32_t *types = malloc(n * sizeof *types);
    float *scores = NULL;
    char **mstr = NULL;
    if (!strs || !lens || !types) goto nomem;
    for (size_t i = 0; i < n; i++) {
        strs[i] = t->text[i];
        lens[i] = t->len[i];
        types[i] = t->type[i] == TOK_TYPE_UNDEFINED ? TOK_TYPE_NORMAL : t->type[i];
    }
#define W(call)                                                                                    \
    do {                                                                                           \
        if ((st = (call)) != KVP_OK) goto fail;                                                     \
    } while (0)
    W(kvgguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2"));
    if (!spm) W(kvgguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre_name));
    W(kvgguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n));
    W(kvgguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n));
    if (spm) {
        scores = t->scores ? NULL : scores_from_merges(t);
        if (!t->scores && !scores) goto nomem;
        W(kvgguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, t->scores ? t->scores : scores, n));
        W(kvgguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->prepend_space));
    } else {
        mstr = calloc((size_t)t->n_merges + 1, sizeof *mstr);
        if (!mstr) goto nomem;
        for (int32_t r = 0; r < t->n_merges; r++) {
            const char *a = t->text[t->merge_left[r]], *b = t->text[t->merge_right[r]];
            size_t la = strlen(a), lb = strlen(b);
            if (!(mstr[r] = malloc(la + lb + 2))) goto nomem;
            memcpy(mstr[r], a, la);
            mstr[r][la] = ' ';
            memcpy(mstr[r] + la + 1, b, lb + 1);
        }
        W(kvgguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mstr, NULL, (uint64_t)t->n_merges));
    }
    if (t->bos >= 0) W(kvgguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos));
    if (t->eos >= 0) W(kvgguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos));
    if (t->unk >= 0) W(kvgguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk));
    if (t->pad >= 0) W(kvgguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad));
    W(kvgguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos));
    W(kvgguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos));
    if (t->chat_template) W(kvgguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template));
    if (t->strip) {
        /* llama.cpp has no key for lstrip/rstrip of added tokens: ours */
        for (int bit = 1; bit <= 2; bit++) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (t->strip[i] & bit) types[k++] = (int32_t)i;
            if (k) W(kvgguf_writer_set_arr(w, bit == 1 ? "kvprune.tokenizer.lstrip_ids" : "kvprune.tokenizer.rstrip_ids",
                                         GGUF_TYPE_INT32, types, k));
        }
    }
#undef W
    goto done;
nomem:
    st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory while writing the tokenizer");
    goto done;
fail:
    st = kvu_fail(err, st, "%s: writing tokenizer metadata failed (%s)", t->source, kvp_status_str(st));
done:
    if (mstr)
        for (int32_t r = 0; r < t->n_merges; r++) free(mstr[r]);
    free(mstr);
    free(scores);
    free(strs);
    free(lens);
    free(types);
    return st;
}

/* ------------------------------------------------------------- loading */

kvp_status kvp_tokenizer_load(const char *path, kvp_tokenizer **out, kvp_error *err) {
    if (!path || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_tokenizer_load: NULL argument");
    *out = NULL;
    if (is_dir(path)) {
        kvp_status st = kvt_tokenizer_from_hf_dir(path, out, err);
        if (st == KVP_OK && !*out)
            return kvu_fail(err, KVP_ERR_IO, "%s: folder has no tokenizer.json", path);
        return st;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return kvu_fail(err, KVP_ERR_IO, "%s: cannot open", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        gguf_file *g = NULL;
        kvp_status st = kvgguf_open(path, true, &g, err);
        if (st != KVP_OK) return st;
        st = kvt_tokenizer_from_gguf(g, out, err);
        kvgguf_close(g);
        if (st == KVP_OK && !*out)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: GGUF file has no tokenizer metadata (tokenizer.ggml.model)", path);
        return st;
    }
    /* a tokenizer.json: read tokenizer_config.json from the same folder */
    const char *slash = strrchr(path, '/');
    char *cfg = NULL;
    if (slash) {
        size_t dl = (size_t)(slash - path);
        char *dir = malloc(dl + 1);
        if (!dir) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        memcpy(dir, path, dl);
        dir[dl] = '\0';
        cfg = join_path(dir, "tokenizer_config.json");
        free(dir);
    } else {
        cfg = strdup("tokenizer_config.json");
    }
    if (!cfg) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    kvp_status st = kvt_load_hf_json(path, is_file(cfg) ? cfg : NULL, out, err);
    free(cfg);
    return st;
}

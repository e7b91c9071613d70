/* Hugging Face tokenizer.json (+ tokenizer_config.json) loader. Only the
 * pieces used by Llama-2/Mistral, Llama-3 and Qwen2/2.5/3 style BPE
 * tokenizers are accepted; anything else fails with an error that names the
 * unsupported type and the file. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"
#include "util/json.h"

#define SPIECE "\xE2\x96\x81"

typedef struct hf_ctx {
    kvp_tokenizer *t;
    const char *path;
    bool saw_bytelevel;
    bool saw_spm;           /* "▁" normalizer or Metaspace */
    bool regex_from_split;
    bool template_bos, template_eos;
    int32_t tp_bos, tp_eos;
    bool have_template;
} hf_ctx;

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jbool(json_t *o, const char *key, bool def) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static kvp_status parse_normalizer(hf_ctx *c, json_t *n, kvp_error *err) {
    if (!n || json_is_null(n)) return KVP_OK;
    const char *type = jstr(n, "type");
    if (!type) return kvu_fail(err, KVP_ERR_FORMAT, "%s: normalizer without a \"type\"", c->path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: Sequence normalizer without a \"normalizers\" array", c->path);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            kvp_status st = parse_normalizer(c, v, err);
            if (st != KVP_OK) return st;
        }
        return KVP_OK;
    }
    if (!strcmp(type, "NFC")) {
        c->t->nfc = true;
        return KVP_OK;
    }
    if (!strcmp(type, "Prepend")) {
        const char *p = jstr(n, "prepend");
        if (!p || strcmp(p, SPIECE) != 0)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Prepend normalizer with prepend '%s' is not supported (only \"\\u2581\")",
                            c->path, p ? p : "(missing)");
        c->t->prepend_space = true;
        c->saw_spm = true;
        return KVP_OK;
    }
    if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(n, "pattern");
        const char *s = pat ? jstr(pat, "String") : NULL;
        const char *content = jstr(n, "content");
        if (!s || !content || strcmp(s, " ") != 0 || strcmp(content, SPIECE) != 0)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Replace normalizer other than \" \" -> \"\\u2581\" is not supported", c->path);
        c->t->replace_space = true;
        c->saw_spm = true;
        return KVP_OK;
    }
    return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported (supported: NFC, Prepend, Replace, Sequence)",
                    c->path, type);
}

static kvp_status parse_pre(hf_ctx *c, json_t *p, kvp_error *err) {
    if (!p || json_is_null(p)) return KVP_OK;
    const char *type = jstr(p, "type");
    if (!type) return kvu_fail(err, KVP_ERR_FORMAT, "%s: pre_tokenizer without a \"type\"", c->path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers");
        if (!json_is_array(arr))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: Sequence pre_tokenizer without a \"pretokenizers\" array", c->path);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            kvp_status st = parse_pre(c, v, err);
            if (st != KVP_OK) return st;
        }
        return KVP_OK;
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        const char *re = pat ? jstr(pat, "Regex") : NULL;
        const char *behavior = jstr(p, "behavior");
        if (!re)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Split pre_tokenizer without a \"Regex\" pattern is not supported", c->path);
        if (!behavior || strcmp(behavior, "Isolated") != 0 || jbool(p, "invert", false))
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Split pre_tokenizer with behavior '%s'%s is not supported (only Isolated)",
                            c->path, behavior ? behavior : "(missing)", jbool(p, "invert", false) ? " and invert" : "");
        if (c->t->regex)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: more than one splitting pre_tokenizer is not supported", c->path);
        c->regex_from_split = true;
        return kvt_set_regex(c->t, re, err);
    }
    if (!strcmp(type, "ByteLevel")) {
        c->saw_bytelevel = true;
        c->t->byte_prefix_space = jbool(p, "add_prefix_space", false);
        if (jbool(p, "use_regex", true)) {
            if (c->t->regex)
                return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: ByteLevel use_regex after a Split pre_tokenizer is not supported", c->path);
            return kvt_set_regex(c->t, KVT_RE_GPT2, err);
        }
        return KVP_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *rep = jstr(p, "replacement");
        const char *scheme = jstr(p, "prepend_scheme");
        if (rep && strcmp(rep, SPIECE) != 0)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Metaspace replacement '%s' is not supported", c->path, rep);
        if (jbool(p, "split", true))
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Metaspace pre_tokenizer with split=true is not supported", c->path);
        if (scheme && strcmp(scheme, "always") != 0)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Metaspace prepend_scheme '%s' is not supported (only \"always\")", c->path, scheme);
        c->t->replace_space = true;
        c->t->prepend_space = jbool(p, "add_prefix_space", true);
        c->saw_spm = true;
        return KVP_OK;
    }
    return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel, Metaspace, Sequence)",
                    c->path, type);
}

static kvp_status parse_decoder(hf_ctx *c, json_t *d, kvp_error *err) {
    if (!d || json_is_null(d)) return KVP_OK;
    const char *type = jstr(d, "type");
    if (!type) return kvu_fail(err, KVP_ERR_FORMAT, "%s: decoder without a \"type\"", c->path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(d, "decoders");
        if (!json_is_array(arr))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: Sequence decoder without a \"decoders\" array", c->path);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            kvp_status st = parse_decoder(c, v, err);
            if (st != KVP_OK) return st;
        }
        return KVP_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        c->saw_bytelevel = true;
        return KVP_OK;
    }
    if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse")) return KVP_OK;
    if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(d, "pattern");
        const char *s = pat ? jstr(pat, "String") : NULL;
        const char *content = jstr(d, "content");
        if (!s || !content || strcmp(s, SPIECE) != 0 || strcmp(content, " ") != 0)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Replace decoder other than \"\\u2581\" -> \" \" is not supported", c->path);
        return KVP_OK;
    }
    if (!strcmp(type, "Strip")) {
        const char *content = jstr(d, "content");
        json_t *start = json_object_get(d, "start"), *stop = json_object_get(d, "stop");
        if (!content || strcmp(content, " ") != 0 || !json_is_integer(start) || json_integer_value(start) > 1 ||
            (stop && json_integer_value(stop) != 0))
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: Strip decoder other than one leading space is not supported", c->path);
        c->t->decode_strip_space = json_integer_value(start) == 1;
        return KVP_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *scheme = jstr(d, "prepend_scheme");
        c->t->decode_strip_space = !(scheme && !strcmp(scheme, "never")) && jbool(d, "add_prefix_space", true);
        return KVP_OK;
    }
    return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence)",
                    c->path, type);
}

/* The id a TemplateProcessing SpecialToken entry stands for. */
static int32_t template_token_id(hf_ctx *c, json_t *post, const char *name) {
    json_t *sp = json_object_get(post, "special_tokens");
    json_t *e = sp ? json_object_get(sp, name) : NULL;
    json_t *ids = e ? json_object_get(e, "ids") : NULL;
    if (json_is_array(ids) && json_array_size(ids) == 1 && json_is_integer(json_array_get(ids, 0)))
        return (int32_t)json_integer_value(json_array_get(ids, 0));
    return kvt_find(c->t, name, strlen(name));
}

static kvp_status parse_post(hf_ctx *c, json_t *p, kvp_error *err) {
    if (!p || json_is_null(p)) return KVP_OK;
    const char *type = jstr(p, "type");
    if (!type) return kvu_fail(err, KVP_ERR_FORMAT, "%s: post_processor without a \"type\"", c->path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "processors");
        if (!json_is_array(arr))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: Sequence post_processor without a \"processors\" array", c->path);
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            kvp_status st = parse_post(c, v, err);
            if (st != KVP_OK) return st;
        }
        return KVP_OK;
    }
    if (!strcmp(type, "ByteLevel")) return KVP_OK;
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single");
        if (!json_is_array(single))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: TemplateProcessing without a \"single\" array", c->path);
        c->have_template = true;
        bool seen_a = false;
        int n_before = 0, n_after = 0;
        size_t i;
        json_t *v;
        json_array_foreach(single, i, v) {
            json_t *stok = json_object_get(v, "SpecialToken");
            if (json_object_get(v, "Sequence")) {
                seen_a = true;
                continue;
            }
            const char *id = stok ? jstr(stok, "id") : NULL;
            if (!id) return kvu_fail(err, KVP_ERR_FORMAT, "%s: TemplateProcessing entry %zu is neither Sequence nor SpecialToken", c->path, i);
            int32_t tid = template_token_id(c, p, id);
            if (tid < 0 || tid >= c->t->n_vocab)
                return kvu_fail(err, KVP_ERR_FORMAT, "%s: TemplateProcessing names unknown token '%s'", c->path, id);
            if (!seen_a) { c->tp_bos = tid; n_before++; }
            else { c->tp_eos = tid; n_after++; }
        }
        if (n_before > 1 || n_after > 1)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: TemplateProcessing with more than one token before or after the text is not supported", c->path);
        c->template_bos = n_before == 1;
        c->template_eos = n_after == 1;
        return KVP_OK;
    }
    return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: post_processor type '%s' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)",
                    c->path, type);
}

/* A token named in tokenizer_config.json: a string or {"content": ...}. */
static int32_t config_token(kvp_tokenizer *t, json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    const char *s = json_is_string(v) ? json_string_value(v) : json_is_object(v) ? jstr(v, "content") : NULL;
    return s ? kvt_find(t, s, strlen(s)) : -1;
}

static kvp_status load_config(hf_ctx *c, const char *config_path, kvp_error *err) {
    kvp_tokenizer *t = c->t;
    json_error_t je;
    /* JSON_DECODE_INT_AS_REAL: model_max_length is often 1e30, too big for an integer */
    json_t *cfg = kvu_json_load_file(config_path, JSON_DECODE_INT_AS_REAL, &je);
    if (!cfg && kvu_json_oom(&je))
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", config_path);
    if (!cfg)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s:%d: invalid JSON: %s", config_path, je.line, je.text);
    kvp_status st = KVP_OK;
    if (!json_is_object(cfg)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: not a JSON object", config_path);
        goto done;
    }
    int32_t id;
    if ((id = config_token(t, cfg, "bos_token")) >= 0) t->bos = id;
    if ((id = config_token(t, cfg, "eos_token")) >= 0) t->eos = id;
    if ((id = config_token(t, cfg, "pad_token")) >= 0) t->pad = id;
    if (!c->have_template) {
        t->add_bos = jbool(cfg, "add_bos_token", t->add_bos);
        t->add_eos = jbool(cfg, "add_eos_token", t->add_eos);
    }
    json_t *extra = json_object_get(cfg, "additional_special_tokens");
    if (json_is_array(extra)) {
        size_t i;
        json_t *v;
        json_array_foreach(extra, i, v) {
            const char *s = json_is_string(v) ? json_string_value(v) : json_is_object(v) ? jstr(v, "content") : NULL;
            int32_t x = s ? kvt_find(t, s, strlen(s)) : -1;
            if (x >= 0 && t->type[x] == TOK_TYPE_USER_DEFINED) t->type[x] = TOK_TYPE_CONTROL;
        }
    }
    json_t *tmpl = json_object_get(cfg, "chat_template");
    const char *ts = NULL;
    if (json_is_string(tmpl)) ts = json_string_value(tmpl);
    else if (json_is_array(tmpl)) {
        size_t i;
        json_t *v;
        json_array_foreach(tmpl, i, v) {
            const char *name = jstr(v, "name");
            if (name && !strcmp(name, "default")) ts = jstr(v, "template");
        }
    }
    if (ts && !(t->chat_template = strdup(ts))) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
done:
    json_decref(cfg);
    return st;
}

kvp_status kvt_load_hf_json(const char *json_path, const char *config_path, kvp_tokenizer **out,
                            kvp_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = kvu_json_load_file(json_path, 0, &je);
    if (!root && kvu_json_oom(&je))
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", json_path);
    if (!root) {
        FILE *f = fopen(json_path, "rb");
        if (!f) return kvu_fail(err, KVP_ERR_IO, "%s: cannot open", json_path);
        fclose(f);
        return kvu_fail(err, KVP_ERR_FORMAT, "%s:%d: invalid JSON: %s", json_path, je.line, je.text);
    }
    kvp_tokenizer *t = kvt_alloc(json_path);
    hf_ctx c = {.t = t, .path = json_path, .tp_bos = -1, .tp_eos = -1};
    kvp_status st = KVP_OK;
    if (!t) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: missing \"model\" object", json_path);
        goto done;
    }
    const char *mtype = jstr(model, "type");
    if (mtype && strcmp(mtype, "BPE") != 0) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", json_path, mtype);
        goto done;
    }
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: missing \"model.vocab\" object", json_path);
        goto done;
    }
    if (!json_is_array(merges)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: missing \"model.merges\" array", json_path);
        goto done;
    }
    json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0.0) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", json_path);
        goto done;
    }
    const char *cont = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if ((cont && *cont) || (eow && *eow)) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: BPE continuing_subword_prefix/end_of_word_suffix are not supported", json_path);
        goto done;
    }
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added) && !json_is_null(added)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: \"added_tokens\" is not an array", json_path);
        goto done;
    }
    /* vocabulary size: the largest id + 1 */
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: vocab entry '%s' has no valid id", json_path, key);
            goto done;
        }
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || !jstr(v, "content")) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: added_tokens[%zu] needs an integer \"id\" and a \"content\" string", json_path, i);
            goto done;
        }
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id > (1 << 26)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: token id %lld is too large", json_path, (long long)max_id);
        goto done;
    }
    /* Ids are dense in real vocabularies; a few tokens claiming huge ids
     * would make a small file allocate tables for millions of tokens. */
    size_t n_defined = json_object_size(vocab) + (added ? json_array_size(added) : 0);
    if ((uint64_t)max_id + 1 > 2 * (uint64_t)n_defined + 1024) {
        st = kvu_fail(err, KVP_ERR_FORMAT,
                      "%s: token ids reach %lld for only %zu tokens (ids must be dense)", json_path,
                      (long long)max_id, n_defined);
        goto done;
    }
    if ((st = kvt_set_vocab_size(t, (int32_t)(max_id + 1), err)) != KVP_OK) goto done;
    json_object_foreach(vocab, key, v) {
        size_t kl = strlen(key);
        if ((st = kvt_set_token(t, (int32_t)json_integer_value(v), key, kl, TOK_TYPE_NORMAL, err)) != KVP_OK) goto done;
    }
    json_array_foreach(added, i, v) {
        const char *content = jstr(v, "content");
        uint8_t ty = jbool(v, "special", false) ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED;
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        if ((st = kvt_set_token(t, id, content, strlen(content), ty, err)) != KVP_OK) goto done;
        t->type[id] = ty;
        if (jbool(v, "single_word", false)) {
            st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: added token '%s' has single_word=true, which is not supported", json_path, content);
            goto done;
        }
        uint8_t strip = (uint8_t)((jbool(v, "lstrip", false) ? 1 : 0) | (jbool(v, "rstrip", false) ? 2 : 0));
        if (strip) {
            if (!t->strip && !(t->strip = calloc((size_t)t->n_vocab, 1))) {
                st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
                goto done;
            }
            t->strip[id] = strip;
        }
    }
    /* pipeline */
    if ((st = parse_normalizer(&c, json_object_get(root, "normalizer"), err)) != KVP_OK) goto done;
    if ((st = parse_pre(&c, json_object_get(root, "pre_tokenizer"), err)) != KVP_OK) goto done;
    if ((st = parse_decoder(&c, json_object_get(root, "decoder"), err)) != KVP_OK) goto done;
    t->kind = c.saw_bytelevel ? TOK_KIND_BYTE_BPE : TOK_KIND_SPM;
    if (c.saw_bytelevel && c.saw_spm) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: mixing ByteLevel with \"\\u2581\" space handling is not supported", json_path);
        goto done;
    }
    if (!c.saw_bytelevel && t->regex) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: a Split pre_tokenizer without ByteLevel is not supported", json_path);
        goto done;
    }
    t->merge_mode = TOK_MERGE_RANKS;
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    const char *unk = jstr(model, "unk_token");
    if ((st = kvt_finalize(t, err)) != KVP_OK) goto done;
    if (unk) {
        t->unk = kvt_find(t, unk, strlen(unk));
        if (t->unk < 0) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: unk_token '%s' is not in the vocabulary", json_path, unk);
            goto done;
        }
        if (t->type[t->unk] == TOK_TYPE_CONTROL) t->type[t->unk] = TOK_TYPE_UNKNOWN;
    }
    if ((st = parse_post(&c, json_object_get(root, "post_processor"), err)) != KVP_OK) goto done;
    if (c.template_bos) { t->add_bos = true; t->bos = c.tp_bos; }
    if (c.template_eos) { t->add_eos = true; t->eos = c.tp_eos; }
    /* merges */
    if ((st = kvt_merges_reserve(t, (int32_t)json_array_size(merges), err)) != KVP_OK) goto done;
    json_array_foreach(merges, i, v) {
        const char *l = NULL, *r = NULL;
        size_t ll = 0, rl = 0;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "%s: merge %zu ('%s') is not two tokens separated by one space", json_path, i, s);
                goto done;
            }
            l = s;
            ll = (size_t)(sp - s);
            r = sp + 1;
            rl = strlen(r);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            l = json_string_value(json_array_get(v, 0));
            r = json_string_value(json_array_get(v, 1));
            ll = strlen(l);
            rl = strlen(r);
        } else {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", json_path, i);
            goto done;
        }
        if ((st = kvt_add_merge(t, l, ll, r, rl, err)) != KVP_OK) goto done;
    }
    if ((st = kvt_merges_done(t, err)) != KVP_OK) goto done;
    if (config_path && (st = load_config(&c, config_path, err)) != KVP_OK) goto done;
    if (!config_path) {
        /* no tokenizer_config.json: the conventional end-of-text tokens */
        static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"};
        for (size_t k = 0; k < sizeof eos_names / sizeof *eos_names && t->eos < 0; k++)
            t->eos = kvt_find(t, eos_names[k], strlen(eos_names[k]));
    }
    if (t->regex_src) {
        const char *pre = kvt_pre_for_regex(t->regex_src);
        if (pre && !(t->pre_name = strdup(pre))) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    kvt_recognise_template(t);
done:
    json_decref(root);
    if (st != KVP_OK) {
        kvp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KVP_OK;
}

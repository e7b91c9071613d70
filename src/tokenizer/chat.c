/* Built-in chat templates. Each renders the same string as the model's own
 * Jinja template (checked against @huggingface/jinja on the real templates),
 * for conversations of system/user/assistant messages. The template is
 * recognised from the model's template string by distinctive substrings. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

static const char QWEN25_DEFAULT_SYSTEM[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

static bool has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

void kvt_recognise_template(kvp_tokenizer *t) {
    const char *s = t->chat_template;
    t->chat_name = NULL;
    if (!s) return;
    if (has(s, "<|im_start|>")) t->chat_name = "chatml";
    /* before "llama3": Meta's Llama-3.1 template also has <|start_header_id|> */
    else if (has(s, "Cutting Knowledge Date")) t->chat_name = "llama3.1";
    else if (has(s, "<|start_header_id|>")) t->chat_name = "llama3";
    else if (has(s, "<|assistant|>") && has(s, "<|end|>")) t->chat_name = "kvp-mini";
    else if (has(s, "[INST]") && has(s, "<<SYS>>")) t->chat_name = "llama2";
    else if (has(s, "[INST]")) t->chat_name = "mistral";
}

const char *kvp_chat_template_name(const kvp_tokenizer *tok) { return tok ? tok->chat_name : NULL; }

/* JavaScript's String.prototype.trim(), which the template engine's |trim uses. */
static void js_trim(const char *s, size_t *off, size_t *len) {
    size_t a = 0, b = strlen(s);
    int k;
    while (a < b && (k = kvt_js_space(s + a, b - a)) > 0) a += (size_t)k;
    /* scan backwards: find the last non-space character start */
    for (;;) {
        size_t e = b;
        bool trimmed = false;
        for (int w = 1; w <= 3 && e >= a + (size_t)w; w++) {
            size_t st = e - (size_t)w;
            if (kvt_js_space(s + st, (size_t)w) == w) {
                b = st;
                trimmed = true;
                break;
            }
        }
        if (!trimmed) break;
    }
    *off = a;
    *len = b - a;
}

static bool put_strip_nl(kvt_buf *b, const char *s, size_t n, bool left, bool right) {
    size_t a = 0;
    if (left)
        while (a < n && s[a] == '\n') a++;
    if (right)
        while (n > a && s[n - 1] == '\n') n--;
    return kvt_buf_put(b, s + a, n - a);
}

static const char *find_last(const char *s, const char *sub) {
    const char *r = NULL, *p = s;
    while ((p = strstr(p, sub))) r = p++;
    return r;
}

/* Qwen3 assistant turn: moves "<think>" reasoning out of the content. */
static bool qwen3_assistant(kvt_buf *b, const char *content, bool after_last_query, bool last) {
    const char *end = strstr(content, "</think>");
    const char *body = content;
    size_t body_len = strlen(content);
    const char *reason = "";
    size_t reason_len = 0;
    if (end) {
        const char *last_end = find_last(content, "</think>");
        body = last_end + 8;
        while (*body == '\n') body++;
        body_len = strlen(body);
        /* before the first </think>, rstrip \n, after the last <think>, lstrip \n */
        size_t pre_len = (size_t)(end - content);
        while (pre_len > 0 && content[pre_len - 1] == '\n') pre_len--;
        const char *start = content;
        for (const char *p = content; p + 7 <= content + pre_len; p++)
            if (memcmp(p, "<think>", 7) == 0) start = p + 7;
        while (start < content + pre_len && *start == '\n') start++;
        reason = start;
        reason_len = (size_t)(content + pre_len - start);
    }
    if (!kvt_buf_puts(b, "<|im_start|>assistant\n")) return false;
    if (after_last_query && (last || reason_len > 0)) {
        return kvt_buf_puts(b, "<think>\n") && put_strip_nl(b, reason, reason_len, true, true) &&
               kvt_buf_puts(b, "\n</think>\n\n") && put_strip_nl(b, body, body_len, true, false);
    }
    return kvt_buf_put(b, body, body_len);
}

static bool render_chatml(const kvp_tokenizer *t, kvt_buf *b, const kvp_chat_message *m, size_t n,
                          bool gen) {
    const char *tmpl = t->chat_template;
    bool qwen_default = has(tmpl, "You are Qwen, created by Alibaba Cloud");
    bool qwen3 = has(tmpl, "reasoning_content");
    size_t first = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        if (!kvt_buf_puts(b, "<|im_start|>system\n") || !kvt_buf_puts(b, m[0].content) ||
            !kvt_buf_puts(b, "<|im_end|>\n"))
            return false;
        first = 1;
    } else if (qwen_default) {
        if (!kvt_buf_puts(b, "<|im_start|>system\n") || !kvt_buf_puts(b, QWEN25_DEFAULT_SYSTEM) ||
            !kvt_buf_puts(b, "<|im_end|>\n"))
            return false;
    }
    size_t last_query = n ? n - 1 : 0;
    if (qwen3) {
        for (size_t k = n; k-- > 0;) {
            const char *c = m[k].content;
            size_t cl = strlen(c);
            bool tool_resp = cl >= 15 && !strncmp(c, "<tool_response>", 15) && cl >= 16 &&
                             !strcmp(c + cl - 16, "</tool_response>");
            if (!strcmp(m[k].role, "user") && !tool_resp) {
                last_query = k;
                break;
            }
        }
    }
    for (size_t k = first; k < n; k++) {
        if (qwen3 && !strcmp(m[k].role, "assistant")) {
            if (!qwen3_assistant(b, m[k].content, k > last_query, k == n - 1) || !kvt_buf_puts(b, "<|im_end|>\n"))
                return false;
            continue;
        }
        if (!kvt_buf_puts(b, "<|im_start|>") || !kvt_buf_puts(b, m[k].role) || !kvt_buf_putc(b, '\n') ||
            !kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, "<|im_end|>\n"))
            return false;
    }
    return !gen || kvt_buf_puts(b, "<|im_start|>assistant\n");
}

static bool render_llama3(const kvp_tokenizer *t, kvt_buf *b, const kvp_chat_message *m, size_t n,
                          bool gen) {
    /* Some Llama-3 templates append the assistant header unconditionally. */
    bool always_gen = t->chat_template && has(t->chat_template, "<|start_header_id|>") &&
                      !has(t->chat_template, "add_generation_prompt");
    const char *bos = t->bos >= 0 ? t->text[t->bos] : "<|begin_of_text|>";
    for (size_t k = 0; k < n; k++) {
        size_t off, len;
        js_trim(m[k].content, &off, &len);
        if ((k == 0 && !kvt_buf_puts(b, bos)) || !kvt_buf_puts(b, "<|start_header_id|>") ||
            !kvt_buf_puts(b, m[k].role) || !kvt_buf_puts(b, "<|end_header_id|>\n\n") ||
            !kvt_buf_put(b, m[k].content + off, len) || !kvt_buf_puts(b, "<|eot_id|>"))
            return false;
    }
    if (gen || always_gen) return kvt_buf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return true;
}

/* Meta's Llama-3.1 template without tools: a system block always comes first,
 * holding the template's fixed date lines (date_string defaults to
 * "26 Jul 2024") and the trimmed system message, if any. */
static bool render_llama31(const kvp_tokenizer *t, kvt_buf *b, const kvp_chat_message *m, size_t n,
                           bool gen) {
    const char *bos = t->bos >= 0 ? t->text[t->bos] : "<|begin_of_text|>";
    size_t k = 0, off = 0, len = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        js_trim(m[0].content, &off, &len);
        k = 1;
    }
    if (!kvt_buf_puts(b, bos) ||
        !kvt_buf_puts(b, "<|start_header_id|>system<|end_header_id|>\n\n"
                         "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n") ||
        (k && !kvt_buf_put(b, m[0].content + off, len)) || !kvt_buf_puts(b, "<|eot_id|>"))
        return false;
    for (; k < n; k++) {
        js_trim(m[k].content, &off, &len);
        if (!kvt_buf_puts(b, "<|start_header_id|>") || !kvt_buf_puts(b, m[k].role) ||
            !kvt_buf_puts(b, "<|end_header_id|>\n\n") || !kvt_buf_put(b, m[k].content + off, len) ||
            !kvt_buf_puts(b, "<|eot_id|>"))
            return false;
    }
    return !gen || kvt_buf_puts(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* The seed's Llama-2 wrapper: "[INST]\n{prompt}\n[/INST]" (the system prompt,
 * when given, in a <<SYS>> block at the top of the first turn). */
static bool render_llama2(kvt_buf *b, const kvp_chat_message *m, size_t n) {
    size_t k = 0;
    const char *sys = NULL;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        sys = m[0].content;
        k = 1;
    }
    bool first_turn = true;
    for (; k < n; k++) {
        if (!strcmp(m[k].role, "user")) {
            if (!first_turn && !kvt_buf_puts(b, "<s>")) return false;
            if (!kvt_buf_puts(b, "[INST]\n")) return false;
            if (sys && *sys && first_turn &&
                (!kvt_buf_puts(b, "<<SYS>>\n") || !kvt_buf_puts(b, sys) || !kvt_buf_puts(b, "\n<</SYS>>\n\n")))
                return false;
            if (!kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, "\n[/INST]")) return false;
            first_turn = false;
        } else {
            if (!kvt_buf_putc(b, ' ') || !kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, " </s>")) return false;
        }
    }
    return true;
}

/* Mistral-7B-Instruct: "<s>[INST] {user} [/INST]{assistant}</s>..."; a
 * system prompt is put before the first user message, separated by a blank
 * line (the Mistral templates themselves reject system messages). */
static bool render_mistral(const kvp_tokenizer *t, kvt_buf *b, const kvp_chat_message *m, size_t n) {
    const char *bos = t->bos >= 0 ? t->text[t->bos] : "<s>";
    const char *eos = t->eos >= 0 ? t->text[t->eos] : "</s>";
    size_t k = 0;
    const char *sys = NULL;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        sys = m[0].content;
        k = 1;
    }
    if (!kvt_buf_puts(b, bos)) return false;
    for (; k < n; k++) {
        if (!strcmp(m[k].role, "user")) {
            if (!kvt_buf_puts(b, "[INST] ")) return false;
            if (sys && (!kvt_buf_puts(b, sys) || !kvt_buf_puts(b, "\n\n"))) return false;
            sys = NULL;
            if (!kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, " [/INST]")) return false;
        } else {
            if (!kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, eos)) return false;
        }
    }
    return true;
}

static bool render_kvp_mini(kvt_buf *b, const kvp_chat_message *m, size_t n, bool gen) {
    for (size_t k = 0; k < n; k++) {
        if (!kvt_buf_puts(b, "<|") || !kvt_buf_puts(b, m[k].role) || !kvt_buf_puts(b, "|>\n") ||
            !kvt_buf_puts(b, m[k].content) || !kvt_buf_puts(b, "<|end|>\n"))
            return false;
    }
    return !gen || kvt_buf_puts(b, "<|assistant|>\n");
}

kvp_status kvp_chat_apply(const kvp_tokenizer *tok, const char *template_name,
                          const kvp_chat_message *msgs, size_t n_msgs, bool add_generation_prompt,
                          char **out, kvp_error *err) {
    if (!tok || !out || (!msgs && n_msgs))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_chat_apply: NULL argument");
    *out = NULL;
    const char *name = template_name;
    if (!name || !strcmp(name, "auto")) {
        name = tok->chat_name;
        if (!name)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: %s; pick one by name (llama2, llama3, llama3.1, chatml, mistral, kvp-mini)",
                            tok->source, tok->chat_template ? "the model's chat template is not recognised" : "the model has no chat template");
    }
    for (size_t k = 0; k < n_msgs; k++) {
        const char *r = msgs[k].role;
        if (!r || !msgs[k].content)
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "chat message %zu has no role or content", k);
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "chat message %zu: role '%s' is not supported (system, user, assistant)", k, r);
        if (!strcmp(r, "system") && k != 0)
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "chat message %zu: a system message must come first", k);
    }
    kvt_buf b = {0};
    bool ok = kvt_buf_put(&b, "", 0);
    if (!strcmp(name, "chatml")) ok = ok && render_chatml(tok, &b, msgs, n_msgs, add_generation_prompt);
    else if (!strcmp(name, "llama3")) ok = ok && render_llama3(tok, &b, msgs, n_msgs, add_generation_prompt);
    else if (!strcmp(name, "llama3.1")) ok = ok && render_llama31(tok, &b, msgs, n_msgs, add_generation_prompt);
    else if (!strcmp(name, "llama2")) ok = ok && render_llama2(&b, msgs, n_msgs);
    else if (!strcmp(name, "mistral")) ok = ok && render_mistral(tok, &b, msgs, n_msgs);
    else if (!strcmp(name, "kvp-mini")) ok = ok && render_kvp_mini(&b, msgs, n_msgs, add_generation_prompt);
    else {
        free(b.p);
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "chat template '%s' is unknown (llama2, llama3, llama3.1, chatml, mistral, kvp-mini, auto)", name);
    }
    if (!ok) {
        free(b.p);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    return KVP_OK;
}

kvp_status kvp_chat_tokenize(const kvp_tokenizer *tok, const char *template_name,
                             const kvp_chat_message *msgs, size_t n_msgs, bool add_generation_prompt,
                             int32_t **ids, size_t *n_ids, kvp_error *err) {
    if (!tok) return kvu_fail(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer, so a text prompt cannot be tokenized");
    if (!ids || !n_ids) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_chat_tokenize: NULL output");
    char *rendered = NULL;
    kvp_status s = kvp_chat_apply(tok, template_name, msgs, n_msgs, add_generation_prompt, &rendered, err);
    if (s) return s;
    /* Templates that write the BOS text themselves (llama3, llama3.1, mistral) must not
     * get a second BOS from the tokenizer's own rule. */
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    tp.parse_special = true;
    const char *bos = tok->bos >= 0 ? kvp_token_text(tok, tok->bos) : NULL;
    tp.add_special = !(bos && *bos && strncmp(rendered, bos, strlen(bos)) == 0);
    s = kvp_tokenize(tok, rendered, strlen(rendered), &tp, ids, n_ids, err);
    free(rendered);
    return s;
}

/* A conversation kept in a cache is rendered one turn at a time. The text
 * that follows a generated reply msgs[n_old-1] is what the whole
 * conversation's rendering B has after that reply's content: the template's
 * end of the assistant turn, then msgs[n_old..n_msgs) (and the generation
 * prompt). It is only defined when rendering never rewrites earlier text:
 * P = msgs[0..n_old-1) with the generation prompt must start A = msgs[0..n_old),
 * A must start B, and the reply's (trimmed) content must follow P in A. */
kvp_status kvp_chat_apply_next(const kvp_tokenizer *tok, const char *template_name,
                               const kvp_chat_message *msgs, size_t n_old, size_t n_msgs,
                               bool add_generation_prompt, char **out, kvp_error *err) {
    if (!tok || !out || !msgs)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_chat_apply_next: NULL argument");
    *out = NULL;
    if (n_old == 0) return kvp_chat_apply(tok, template_name, msgs, n_msgs, add_generation_prompt, out, err);
    if (n_old > n_msgs || !msgs[n_old - 1].role || strcmp(msgs[n_old - 1].role, "assistant") ||
        !msgs[n_old - 1].content)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "kvp_chat_apply_next: message %zu (the last one already rendered) must be "
                        "an assistant reply, and %zu <= %zu messages",
                        n_old - 1, n_old, n_msgs);
    char *p = NULL, *a = NULL, *b = NULL;
    kvp_status s;
    if ((s = kvp_chat_apply(tok, template_name, msgs, n_old - 1, true, &p, err)) ||
        (s = kvp_chat_apply(tok, template_name, msgs, n_old, false, &a, err)) ||
        (s = kvp_chat_apply(tok, template_name, msgs, n_msgs, add_generation_prompt, &b, err)))
        goto done;
    size_t lp = strlen(p), la = strlen(a);
    size_t off, clen;
    js_trim(msgs[n_old - 1].content, &off, &clen);
    const char *content = msgs[n_old - 1].content + off;
    const char *at = NULL;
    if (strncmp(a, p, lp) == 0 && strncmp(b, a, la) == 0)
        for (const char *q = a + lp; q + clen <= a + la && !at; q++)
            if (memcmp(q, content, clen) == 0) at = q;
    if (!at) {
        const char *name = template_name && strcmp(template_name, "auto") ? template_name : tok->chat_name;
        s = kvu_fail(err, KVP_ERR_UNSUPPORTED,
                     "chat template '%s' does not render this conversation one turn at a time "
                     "(a later message changes how message %zu is rendered)",
                     name ? name : "?", n_old - 1);
        goto done;
    }
    size_t from = (size_t)(at - a) + clen, lb = strlen(b);
    memmove(b, b + from, lb - from + 1);
    *out = b;
    b = NULL;
done:
    free(p);
    free(a);
    free(b);
    return s;
}

kvp_status kvp_chat_tokenize_next(const kvp_tokenizer *tok, const char *template_name,
                                  const kvp_chat_message *msgs, size_t n_old, size_t n_msgs,
                                  bool add_generation_prompt, int32_t **ids, size_t *n_ids,
                                  kvp_error *err) {
    if (n_old == 0)
        return kvp_chat_tokenize(tok, template_name, msgs, n_msgs, add_generation_prompt, ids, n_ids, err);
    if (!tok) return kvu_fail(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer, so a text prompt cannot be tokenized");
    if (!ids || !n_ids) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_chat_tokenize_next: NULL output");
    char *text = NULL;
    kvp_status s = kvp_chat_apply_next(tok, template_name, msgs, n_old, n_msgs, add_generation_prompt, &text, err);
    if (s) return s;
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    tp.add_special = false; /* mid-sequence: a BOS only where the template writes one */
    tp.parse_special = true;
    s = kvt_encode(tok, text, strlen(text), &tp, true, ids, n_ids, err);
    free(text);
    return s;
}

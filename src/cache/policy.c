/* The method table (docs/cache.md, "Methods"), name parsing and
 * budgets. */
#include "cache/policy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

/* Canonical names, in the order of the spec's table; the kvc* families
 * each take +tova, +maxpool, +avgpool or _fullhist. obc* aliases are
 * accepted by the parser but not listed. */
static const char *const method_names[] = {
    "full", "sink", "h2o", "h2o_fullhist", "tova", "snapkv", "snapkv_avgpool",
#define KVC_FAMILY(b) b, b "+tova", b "+maxpool", b "+avgpool", b "_fullhist"
    KVC_FAMILY("kvcV"), KVC_FAMILY("kvcV_p1"), KVC_FAMILY("kvcK"),
    KVC_FAMILY("kvcVK"), KVC_FAMILY("kvcVK_no_cross"),
#undef KVC_FAMILY
    NULL};

const char *const *kvp_cache_method_names(void) { return method_names; }

static void scored(kvc_method *m, bool attn, bool key, bool cross, bool vnorm,
                   int p) {
    m->kind = KVC_KIND_SCORED;
    m->use_attn = attn;
    m->use_key = key;
    m->use_cross = cross;
    m->use_vnorm = vnorm;
    m->p = p;
    m->window = KVC_WINDOW_RECENT;
}

/* The kvc family base ("V", "V_p1", ...) without suffix; false if unknown. */
static bool kvc_base(const char *base, size_t len, kvc_method *m) {
#define IS(s) (len == strlen(s) && strncmp(base, s, len) == 0)
    if (IS("V")) scored(m, true, false, false, true, 2);
    else if (IS("V_p1")) scored(m, true, false, false, true, 1);
    else if (IS("K")) scored(m, false, true, false, false, 2);
    else if (IS("VK")) scored(m, true, true, true, true, 2);
    else if (IS("VK_no_cross")) scored(m, true, true, false, true, 2);
    else return false;
    return true;
#undef IS
}

static bool ends_with(const char *s, size_t len, const char *suf) {
    size_t n = strlen(suf);
    return len >= n && strncmp(s + len - n, suf, n) == 0;
}

static bool parse_known(const char *name, kvc_method *m) {
    memset(m, 0, sizeof *m);
    m->p = 1;
    if (strcmp(name, "full") == 0) {
        m->kind = KVC_KIND_FULL;
    } else if (strcmp(name, "sink") == 0) {
        m->kind = KVC_KIND_SINK;
    } else if (strcmp(name, "h2o") == 0) {
        scored(m, true, false, false, false, 1);
    } else if (strcmp(name, "h2o_fullhist") == 0) {
        scored(m, true, false, false, false, 1);
        m->window = KVC_WINDOW_ALL;
    } else if (strcmp(name, "tova") == 0) {
        scored(m, true, false, false, false, 1);
        m->window = KVC_WINDOW_ONE;
        m->recent_only = true;
        m->moves_recent = true;
    } else if (strcmp(name, "snapkv") == 0) {
        scored(m, true, false, false, false, 1);
        m->pool = KVC_POOL_MAX;
    } else if (strcmp(name, "snapkv_avgpool") == 0) {
        scored(m, true, false, false, false, 1);
        m->pool = KVC_POOL_AVG;
    } else if (strncmp(name, "kvc", 3) == 0) {
        const char *b = name + 3;
        size_t len = strlen(b);
        int suffix = 0; /* 1 tova, 2 maxpool, 3 avgpool, 4 fullhist */
        if (ends_with(b, len, "+tova")) suffix = 1, len -= 5;
        else if (ends_with(b, len, "+maxpool")) suffix = 2, len -= 8;
        else if (ends_with(b, len, "+avgpool")) suffix = 3, len -= 8;
        else if (ends_with(b, len, "_fullhist")) suffix = 4, len -= 9;
        if (!kvc_base(b, len, m)) return false;
        switch (suffix) {
        case 1:
            m->window = KVC_WINDOW_ONE;
            m->recent_only = true;
            m->moves_recent = true;
            break;
        case 2: m->pool = KVC_POOL_MAX; break;
        case 3: m->pool = KVC_POOL_AVG; break;
        case 4: m->window = KVC_WINDOW_ALL; break;
        default: break;
        }
    } else {
        return false;
    }
    return true;
}

kvp_status kvc_method_parse(const char *name, kvc_method *m, kvp_error *err) {
    char canon[64];
    if (!name || !*name) name = "full";
    if (strlen(name) >= sizeof canon) goto unknown;
    /* obcV, obcK, obcVK, ... are the old names of kvcV, kvcK, kvcVK, ... */
    if (strncmp(name, "obc", 3) == 0)
        snprintf(canon, sizeof canon, "kvc%s", name + 3);
    else
        snprintf(canon, sizeof canon, "%s", name);
    if (!parse_known(canon, m)) goto unknown;
    snprintf(m->name, sizeof m->name, "%s", canon);
    return KVP_OK;
unknown: {
    char list[1024];
    size_t off = 0;
    for (const char *const *n = method_names; *n && off < sizeof list; n++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                n == method_names ? "" : ", ", *n);
    return kvu_fail(err, KVP_ERR_INVALID_ARG,
                    "unknown cache method '%s'; valid methods: %s (obc* "
                    "names are aliases of kvc*)",
                    name, list);
}
}

/* Unset budgets are -1 exactly; any other negative value (or NaN) is an
 * error, so a typo never silently means "unset". */
static bool set_i(int v) { return v >= 0; }
static bool set_d(double v) { return v >= 0.0; }
static bool bad_d(double v) { return isnan(v) || (v < 0.0 && v != -1.0); }

kvp_status kvc_budget_check(const kvc_method *m, const kvp_cache_params *p,
                            kvp_error *err) {
    if (m->kind == KVC_KIND_FULL) return KVP_OK;
    if (p->num_recent < -1 || p->num_heavy < -1)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "method %s: num_recent/num_heavy must be >= 0 "
                        "(got %d, %d)",
                        m->name, p->num_recent, p->num_heavy);
    const double ratios[3] = {p->recent_ratio, p->heavy_ratio, p->cache_ratio};
    const char *rnames[3] = {"recent_ratio", "heavy_ratio", "cache_ratio"};
    for (int i = 0; i < 3; i++)
        if (bad_d(ratios[i]) || (set_d(ratios[i]) && ratios[i] > 1.0))
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: %s must be in [0, 1], or -1 for unset "
                            "(got %g)",
                            m->name, rnames[i], ratios[i]);
    if (set_d(p->cache_ratio)) {
        if (p->cache_ratio <= 0.0)
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: cache_ratio must be > 0 (got %g)",
                            m->name, p->cache_ratio);
        if (!set_i(p->num_recent))
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: cache_ratio needs num_recent (the "
                            "fixed recent window); heavy = int(n * "
                            "cache_ratio) - num_recent",
                            m->name);
        if (set_i(p->num_heavy) || set_d(p->recent_ratio) ||
            set_d(p->heavy_ratio))
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: cache_ratio cannot be combined with "
                            "num_heavy, recent_ratio or heavy_ratio",
                            m->name);
        return KVP_OK;
    }
    if (set_d(p->recent_ratio) || set_d(p->heavy_ratio)) {
        if (!set_d(p->recent_ratio) || !set_d(p->heavy_ratio))
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: ratio budgets need both recent_ratio "
                            "and heavy_ratio (got %g, %g)",
                            m->name, p->recent_ratio, p->heavy_ratio);
        if (set_i(p->num_recent) || set_i(p->num_heavy))
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: give either absolute budgets "
                            "(num_recent, num_heavy) or ratios, not both",
                            m->name);
        if (p->recent_ratio + p->heavy_ratio <= 0.0)
            return kvu_fail(err, KVP_ERR_INVALID_ARG,
                            "method %s: recent_ratio + heavy_ratio must be > 0",
                            m->name);
        return KVP_OK;
    }
    if (!set_i(p->num_recent) || !set_i(p->num_heavy))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "method %s needs a budget: num_recent and num_heavy "
                        "(both, 0 allowed), or recent_ratio and heavy_ratio, "
                        "or num_recent and cache_ratio (got num_recent=%d, "
                        "num_heavy=%d)",
                        m->name, p->num_recent, p->num_heavy);
    if (p->num_recent + p->num_heavy <= 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "method %s: num_recent + num_heavy must be > 0",
                        m->name);
    return KVP_OK;
}

kvp_status kvc_budget_resolve(const kvc_method *m, const kvp_cache_params *p,
                              int n, kvc_budget *b, char *warn,
                              size_t warn_len, kvp_error *err) {
    if (warn && warn_len) warn[0] = '\0';
    memset(b, 0, sizeof *b);
    if (m->kind == KVC_KIND_FULL) {
        b->n_recent = b->n_heavy = -1;
        return KVP_OK;
    }
    kvp_status st = kvc_budget_check(m, p, err);
    if (st != KVP_OK) return st;
    int r, h;
    /* One rule for every budget kind (kvprune.h, "Budgets"): the seed's
     * formulas, then two floors for short prompts, each with a warning: a
     * budget never resolves below its recent part (cache_ratio: heavy 0,
     * the num_recent window kept), and never to 0 tokens (1 is kept).
     * Eviction only starts once the cache outgrows the budget, so a prompt
     * that fits is kept whole. */
    char note[200] = "";
    if (set_d(p->cache_ratio)) {
        r = p->num_recent;
        int total = (int)((double)n * p->cache_ratio);
        h = total - r;
        if (h < 0) {
            snprintf(note, sizeof note,
                     "int(%d * cache_ratio %g) = %d tokens is below num_recent "
                     "%d: the cache keeps the %d most recent tokens",
                     n, p->cache_ratio, total, r, r);
            h = 0;
        }
    } else if (set_d(p->recent_ratio)) {
        double rr = p->recent_ratio, hr = p->heavy_ratio;
        if (m->moves_recent && rr > 0.0) {
            if (warn)
                snprintf(warn, warn_len,
                         "method %s keeps no recent window: recent_ratio %g "
                         "moved into heavy_ratio (now %g)",
                         m->name, rr, hr + rr);
            hr += rr;
            rr = 0.0;
        }
        r = (int)((double)n * rr);
        h = (int)((double)n * hr);
        if (r + h == 0) {
            snprintf(note, sizeof note,
                     "recent_ratio %g + heavy_ratio %g of a %d-token prompt "
                     "is 0 tokens: the cache keeps 1",
                     p->recent_ratio, p->heavy_ratio, n);
            if (m->moves_recent) h = 1;
            else r = 1;
        }
    } else {
        r = p->num_recent;
        h = p->num_heavy;
    }
    if (m->moves_recent && r > 0) {
        if (warn)
            snprintf(warn, warn_len,
                     "method %s keeps no recent window: num_recent %d moved "
                     "into num_heavy (now %d)",
                     m->name, r, h + r);
        h += r;
        r = 0;
    }
    if (note[0] && warn) {
        size_t used = strlen(warn);
        snprintf(warn + used, warn_len - used, "%smethod %s: %s",
                 used ? "; " : "", m->name, note);
    }
    b->n_recent = r;
    b->n_heavy = h;
    /* The seed sets the window to n_recent with ratio budgets even for the
     * _fullhist variants; here full history always means every query. */
    switch (m->window) {
    case KVC_WINDOW_RECENT: b->window = r; break; /* 0: all rows */
    case KVC_WINDOW_ALL: b->window = 0; break;
    case KVC_WINDOW_ONE: b->window = 1; break;
    }
    if (m->kind == KVC_KIND_SINK) b->num_sink = h;
    else b->num_sink = p->streaming ? p->num_sink : 0;
    return KVP_OK;
}

void kvc_pyramid_split(int b, int n_layer, double beta, int *out) {
    if (n_layer == 1) {
        out[0] = b;
        return;
    }
    /* lo + hi = 2b, so the exact sequence from hi (bottom) down to lo (top)
     * sums to n_layer x b; each floor loses less than one token, and the
     * remainder (< n_layer) goes to the bottom layers, one each. */
    const int lo = (int)floor((double)b / beta), hi = 2 * b - lo;
    int64_t sum = 0;
    for (int l = 0; l < n_layer; l++) {
        out[l] = lo + (int)((int64_t)(hi - lo) * (n_layer - 1 - l) / (n_layer - 1));
        sum += out[l];
    }
    int64_t rem = (int64_t)n_layer * b - sum;
    for (int l = 0; l < rem; l++) out[l]++;
}

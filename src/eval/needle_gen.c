#include "kvprune_eval/needle_gen.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/json.h"

const char kvev_niah_noise_text[] =
    "The river runs past the old mill. The hills are quiet tonight. "
    "A lamp glows in the window. Here we go again.";

/* Our own lists; tests/eval/test_needle_gen.c checks that they share no word
 * with the lists in tools/train/words.py. */
const char *const kvev_niah_adjectives[] = {
    "amber", "ancient", "arctic", "autumn", "azure", "brisk", "bronze", "candid", "cheerful",
    "chilly", "coastal", "cobalt", "copper", "cozy", "crimson", "crisp", "dainty", "dapper",
    "dazzling", "distant", "dreamy", "elegant", "emerald", "faded", "feisty", "fragile",
    "frosty", "gallant", "gleaming", "glossy", "graceful", "hazy", "hidden", "jagged", "jovial",
    "keen", "lavish", "lofty", "lunar", "marble", "meek", "misty", "mossy", "muddy", "nimble",
    "oaken", "opal", "peaceful", "pearly", "plucky", "prickly", "quaint", "rosy", "rugged",
    "rustic", "sandy", "scarlet", "serene", "silken", "snowy", "sparkling", "spotted", "stormy",
    "sunny", "swift", "tangy", "tidy", "timid", "tranquil", "velvet", "vivid", "wandering",
    "wintry", "witty", "woolen", "zesty", NULL};

const char *const kvev_niah_nouns[] = {
    "acorn", "anchor", "anvil", "arrow", "atlas", "badge", "balloon", "banner", "barrel",
    "beacon", "bicycle", "blanket", "bonnet", "bracelet", "buckle", "cactus", "canoe",
    "carousel", "cavern", "cellar", "chimney", "cinnamon", "compass", "crayon", "cricket",
    "dagger", "dolphin", "falcon", "ferry", "fiddle", "fountain", "galaxy", "garnet", "glacier",
    "goblet", "gondola", "granite", "hammock", "hedgehog", "hourglass", "igloo", "jigsaw",
    "kayak", "kite", "lagoon", "meadow", "mitten", "muffin", "napkin", "oyster", "paddle",
    "pebble", "pepper", "pigeon", "quill", "raccoon", "ribbon", "saddle", "scarf", "seashell",
    "sparrow", "spindle", "teapot", "thimble", "tulip", "umbrella", "violin", "walnut",
    "whistle", "windmill", "yacht", "zeppelin", NULL};

static const char *const variant_names[] = {"single", "multikey", "multivalue", "multiquery"};

bool kvev_niah_variant_parse(const char *name, kvev_niah_variant *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, variant_names[i])) {
            *out = (kvev_niah_variant)i;
            return true;
        }
    return false;
}

const char *kvev_niah_variant_name(kvev_niah_variant v) {
    return (unsigned)v < 4 ? variant_names[v] : "unknown";
}

/* ---- wording ------------------------------------------------------------ */

void kvev_niah_phrasing_free(kvev_niah_phrasing *p) {
    if (!p) return;
    free(p->template_text);
    free(p->template_multi);
    free(p->needle);
    free(p->answer_prefix);
    free(p->answer_prefix_multi);
    memset(p, 0, sizeof *p);
}

kvp_status kvev_format_fields(const char *fmt, const char *const *names, const char *const *values,
                             size_t n, const char *what, char **out, kvp_error *err) {
    size_t cap = strlen(fmt) + 1;
    for (const char *q = fmt; (q = strchr(q, '{')); q++)
        for (size_t i = 0; i < n; i++) cap += strlen(values[i]);
    char *o = malloc(cap), *w = o;
    if (!o) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", what);
    for (const char *s = fmt; *s;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            *w++ = *s;
            s += 2;
            continue;
        }
        if (*s == '}') {
            free(o);
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: single '}' in \"%s\"", what, fmt);
        }
        if (*s != '{') {
            *w++ = *s++;
            continue;
        }
        const char *end = strchr(s, '}');
        if (!end) {
            free(o);
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: unterminated '{' in \"%s\"", what, fmt);
        }
        size_t k = (size_t)(end - s - 1);
        size_t i;
        for (i = 0; i < n; i++)
            if (strlen(names[i]) == k && !strncmp(s + 1, names[i], k)) break;
        if (i == n) {
            free(o);
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: unknown field {%.*s}", what, (int)k, s + 1);
        }
        size_t vl = strlen(values[i]);
        memcpy(w, values[i], vl);
        w += vl;
        s = end + 1;
    }
    *w = '\0';
    *out = o;
    return KVP_OK;
}

static kvp_status check_fields(const kvev_niah_phrasing *p, const char *src, kvp_error *err) {
    struct {
        const char *text, *what, *const *names;
        size_t n;
        const char *must;
    } checks[] = {
        {p->template_text, "template", (const char *const[]){"context", "query"}, 2, "{context}"},
        {p->template_multi, "template_multi", (const char *const[]){"context", "query"}, 2,
         "{context}"},
        {p->needle, "needle", (const char *const[]){"key", "value"}, 2, "{value}"},
        {p->answer_prefix, "answer_prefix", (const char *const[]){"query"}, 1, NULL},
        {p->answer_prefix_multi, "answer_prefix_multi", (const char *const[]){"query"}, 1, NULL},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!checks[i].text) continue;
        char what[400];
        snprintf(what, sizeof what, "%s: %s", src, checks[i].what);
        const char *vals[2] = {"x", "x"};
        char *o;
        kvp_status st = kvev_format_fields(checks[i].text, checks[i].names, vals, checks[i].n, what,
                                          &o, err);
        if (st != KVP_OK) return st;
        free(o);
        if (checks[i].must && !strstr(checks[i].text, checks[i].must))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s has no %s", what, checks[i].must);
    }
    return KVP_OK;
}

kvp_status kvev_niah_phrasing_default(kvev_niah_phrasing *p, kvp_error *err) {
    memset(p, 0, sizeof *p);
    /* The question ends with the key: with a small recent window the key the
     * answer copies stays cached whatever the method evicts further back. */
    p->template_text = strdup(
        "Some text follows with a secret number hidden inside it. Remember the number, you will "
        "be asked for it.\n{context}\nIn the text above, what is the secret number for {query}?");
    p->template_multi = strdup(
        "Some text follows with secret numbers hidden inside it. Remember the numbers, you will "
        "be asked for them.\n{context}\nIn the text above, what are all the secret numbers for "
        "{query}?");
    p->needle = strdup("The secret number for {key} is {value}.");
    p->answer_prefix = strdup(" The secret number for {query} is");
    p->answer_prefix_multi = strdup(" The secret numbers for {query} are");
    if (!p->template_text || !p->template_multi || !p->needle || !p->answer_prefix ||
        !p->answer_prefix_multi) {
        kvev_niah_phrasing_free(p);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    return KVP_OK;
}

kvp_status kvev_niah_phrasing_load(const char *path, kvev_niah_phrasing *p, kvp_error *err) {
    memset(p, 0, sizeof *p);
    json_error_t jerr;
    json_t *root = kvu_json_load_file(path, 0, &jerr);
    if (!root && kvu_json_oom(&jerr))
        return kvu_fail(err, KVP_ERR_NOMEM, "--template %s: out of memory while reading it", path);
    if (!root)
        return kvu_fail(err, KVP_ERR_FORMAT, "template %s:%d: invalid JSON: %s", path, jerr.line,
                        jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return kvu_fail(err, KVP_ERR_FORMAT, "template %s: expected a JSON object", path);
    }
    static const char *const keys[] = {"template", "template_multi", "needle", "answer_prefix",
                                       "answer_prefix_multi"};
    char **dst[] = {&p->template_text, &p->template_multi, &p->needle, &p->answer_prefix,
                    &p->answer_prefix_multi};
    static const bool required[] = {true, false, true, true, false};
    kvp_status st = KVP_OK;
    for (int i = 0; i < 5 && st == KVP_OK; i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (!v) {
            if (required[i])
                st = kvu_fail(err, KVP_ERR_FORMAT, "template %s: missing key \"%s\"", path,
                              keys[i]);
            continue;
        }
        if (!json_is_string(v)) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "template %s: \"%s\" must be a string", path,
                          keys[i]);
            continue;
        }
        *dst[i] = strdup(json_string_value(v));
        if (!*dst[i]) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    json_decref(root);
    if (st == KVP_OK) {
        char src[300];
        snprintf(src, sizeof src, "template %s", path);
        st = check_fields(p, src, err);
    }
    if (st != KVP_OK) kvev_niah_phrasing_free(p);
    return st;
}

/* ---- haystacks ---------------------------------------------------------- */

void kvev_haystack_free(kvev_haystack *h) {
    if (!h) return;
    free(h->text);
    free(h->words);
    free(h->name);
    memset(h, 0, sizeof *h);
}

/* Splits text (modified in place) on whitespace. */
static kvp_status split_words(kvev_haystack *h, kvp_error *err) {
    size_t cap = 1024, n = 0;
    char **w = malloc(cap * sizeof *w);
    if (!w) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    char *s = h->text;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
            *s++ = '\0';
        if (!*s) break;
        if (n == cap) {
            char **nw = realloc(w, cap * 2 * sizeof *nw);
            if (!nw) {
                free(w);
                return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
            }
            w = nw;
            cap *= 2;
        }
        w[n++] = s;
        while (*s && !(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' ||
                       *s == '\v'))
            s++;
    }
    h->words = w;
    h->n_words = n;
    return KVP_OK;
}

kvp_status kvev_haystack_noise(kvev_haystack *h, kvp_error *err) {
    memset(h, 0, sizeof *h);
    h->text = strdup(kvev_niah_noise_text);
    h->name = strdup("noise");
    if (!h->text || !h->name) {
        kvev_haystack_free(h);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    kvp_status st = split_words(h, err);
    if (st != KVP_OK) kvev_haystack_free(h);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static kvp_status append_file(const char *path, char **buf, size_t *len, kvp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kvu_fail(err, KVP_ERR_IO, "haystack: cannot open '%s': %s", path,
                            strerror(errno));
    char chunk[65536];
    size_t got;
    kvp_status st = KVP_OK;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *nb = realloc(*buf, *len + got + 2);
        if (!nb) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
            break;
        }
        *buf = nb;
        memcpy(*buf + *len, chunk, got);
        *len += got;
    }
    if (st == KVP_OK && ferror(f))
        st = kvu_fail(err, KVP_ERR_IO, "haystack: read error in '%s'", path);
    fclose(f);
    if (st == KVP_OK) {
        char *nb = realloc(*buf, *len + 2);
        if (!nb) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        *buf = nb;
        (*buf)[(*len)++] = ' '; /* files are joined with whitespace */
        (*buf)[*len] = '\0';
    }
    return st;
}

kvp_status kvev_haystack_load(const char *path, kvev_haystack *h, kvp_error *err) {
    memset(h, 0, sizeof *h);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return kvu_fail(err, KVP_ERR_IO, "haystack: cannot open '%s': %s", path,
                        strerror(errno));
    char *buf = NULL;
    size_t len = 0;
    kvp_status st = KVP_OK;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return kvu_fail(err, KVP_ERR_IO, "haystack: cannot open folder '%s': %s", path,
                            strerror(errno));
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".txt")) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn) {
                    st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
                    break;
                }
                names = nn;
            }
            names[n] = strdup(e->d_name);
            if (!names[n]) {
                st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
                break;
            }
            n++;
        }
        closedir(d);
        if (st == KVP_OK && n == 0)
            st = kvu_fail(err, KVP_ERR_INVALID_ARG, "haystack: folder '%s' has no .txt files",
                          path);
        if (n) qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && st == KVP_OK; i++) {
            size_t pl = strlen(path) + strlen(names[i]) + 2;
            char *p = malloc(pl);
            if (!p) {
                st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
                break;
            }
            snprintf(p, pl, "%s/%s", path, names[i]);
            st = append_file(p, &buf, &len, err);
            free(p);
        }
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
    } else {
        st = append_file(path, &buf, &len, err);
    }
    if (st != KVP_OK) {
        free(buf);
        return st;
    }
    h->text = buf;
    /* The base name only: data files should not carry local paths. */
    h->name = strdup(path);
    if (h->name) {
        size_t l = strlen(h->name);
        while (l > 1 && h->name[l - 1] == '/') h->name[--l] = '\0';
        char *slash = strrchr(h->name, '/');
        if (slash && slash[1]) memmove(h->name, slash + 1, strlen(slash + 1) + 1);
    }
    if (!h->name) {
        kvev_haystack_free(h);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    st = split_words(h, err);
    if (st == KVP_OK && h->n_words == 0)
        st = kvu_fail(err, KVP_ERR_INVALID_ARG, "haystack: '%s' holds no text", path);
    if (st != KVP_OK) kvev_haystack_free(h);
    return st;
}

/* ---- randomness (splitmix64: portable and order-independent) ------------ */

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias. */
static uint64_t rng_below(rng *r, uint64_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_next(r);
    while (x >= lim);
    return x % n;
}

/* ---- placement ---------------------------------------------------------- */

void kvev_niah_depth_grid(int count, double *out) {
    if (count == 1) {
        out[0] = 0;
        return;
    }
    double step = 100.0 / (count - 1);
    for (int i = 0; i < count; i++) out[i] = rint(i == count - 1 ? 100.0 : i * step);
}

static bool ends_sentence(const char *w) {
    size_t l = strlen(w);
    return l && (w[l - 1] == '.' || w[l - 1] == '!' || w[l - 1] == '?');
}

char *kvev_niah_build_context(const kvev_haystack *hay, size_t n_words, const char *const *needles,
                             const double *depths, size_t n_needles) {
    size_t hw = hay->n_words;
    size_t n_sents = 0, total = 1;
    for (size_t i = 0; i < n_words; i++) {
        const char *w = hay->words[i % hw];
        total += strlen(w) + 1;
        if (i + 1 == n_words || ends_sentence(w)) n_sents++;
    }
    size_t *slot = malloc((n_needles + 1) * sizeof *slot);
    if (!slot) return NULL;
    for (size_t k = 0; k < n_needles; k++) {
        total += strlen(needles[k]) + 1;
        slot[k] = (size_t)floor((double)n_sents * (depths[k] / 100.0));
        if (slot[k] > n_sents) slot[k] = n_sents;
    }
    char *out = malloc(total + 1), *w = out;
    if (!out) {
        free(slot);
        return NULL;
    }
    size_t sent = 0; /* sentences completed so far */
#define EMIT(s)                                                                                    \
    do {                                                                                           \
        if (w != out) *w++ = ' ';                                                                  \
        size_t l_ = strlen(s);                                                                     \
        memcpy(w, s, l_);                                                                          \
        w += l_;                                                                                   \
    } while (0)
    for (size_t i = 0; i <= n_words; i++) {
        /* At a sentence boundary (or the start), emit the needles of slot `sent`. */
        bool boundary = i == 0 || i == n_words || ends_sentence(hay->words[(i - 1) % hw]);
        if (boundary)
            for (size_t k = 0; k < n_needles; k++)
                if (slot[k] == sent) EMIT(needles[k]);
        if (i == n_words) break;
        EMIT(hay->words[i % hw]);
        if (i + 1 == n_words || ends_sentence(hay->words[i % hw])) sent++;
    }
#undef EMIT
    *w = '\0';
    free(slot);
    return out;
}

/* ---- generation --------------------------------------------------------- */

static size_t list_len(const char *const *l) {
    size_t n = 0;
    while (l[n]) n++;
    return n;
}

/* "a", "a and b", "a, b and c" (the wording the bundled model was trained on). */
static char *join_list(char *const *xs, size_t n) {
    size_t cap = 8;
    for (size_t i = 0; i < n; i++) cap += strlen(xs[i]) + 6;
    char *o = malloc(cap);
    if (!o) return NULL;
    o[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(o, i + 1 == n ? " and " : ", ");
        strcat(o, xs[i]);
    }
    return o;
}

typedef struct sample_spec {
    size_t n_needles;
    char **keys;      /* per needle */
    char **values;    /* per needle, decimal text */
    char **needles;   /* rendered */
    double *depths;   /* per needle */
    char *query;
    char *answer_prefix;
    const char *tmpl;
    char **outputs;
    size_t n_outputs;
} sample_spec;

static void spec_free(sample_spec *s) {
    for (size_t i = 0; i < s->n_needles; i++) {
        if (s->keys) free(s->keys[i]);
        if (s->values) free(s->values[i]);
        if (s->needles) free(s->needles[i]);
    }
    free(s->keys);
    free(s->values);
    free(s->needles);
    free(s->depths);
    free(s->query);
    free(s->answer_prefix);
    free(s->outputs); /* points into values */
    memset(s, 0, sizeof *s);
}

static kvp_status spec_make(const kvev_niah_params *p, const kvev_niah_phrasing *ph, rng *r,
                            double depth, sample_spec *s, kvp_error *err) {
    memset(s, 0, sizeof *s);
    size_t n = p->variant == KVP_NIAH_SINGLE ? 1 : (size_t)p->num_needles;
    size_t na = list_len(kvev_niah_adjectives), nn = list_len(kvev_niah_nouns);
    s->n_needles = n;
    s->keys = calloc(n, sizeof *s->keys);
    s->values = calloc(n, sizeof *s->values);
    s->needles = calloc(n, sizeof *s->needles);
    s->depths = calloc(n, sizeof *s->depths);
    s->outputs = calloc(n, sizeof *s->outputs);
    if (!s->keys || !s->values || !s->needles || !s->depths || !s->outputs) goto oom;
    /* Draw distinct keys and values. */
    for (size_t i = 0; i < n; i++) {
        for (;;) {
            char key[64];
            if (i > 0 && p->variant == KVP_NIAH_MULTIVALUE) {
                snprintf(key, sizeof key, "%s", s->keys[0]);
            } else {
                const char *a = kvev_niah_adjectives[rng_below(r, na)];
                const char *b = kvev_niah_nouns[rng_below(r, nn)];
                snprintf(key, sizeof key, "%s-%s", a, b);
                bool dup = false;
                for (size_t j = 0; j < i; j++) dup = dup || !strcmp(s->keys[j], key);
                if (dup) continue;
            }
            s->keys[i] = strdup(key);
            if (!s->keys[i]) goto oom;
            break;
        }
        for (;;) {
            char val[16];
            snprintf(val, sizeof val, "%llu", 1000000ull + (unsigned long long)rng_below(r, 9000000));
            bool dup = false;
            for (size_t j = 0; j < i; j++) dup = dup || !strcmp(s->values[j], val);
            if (dup) continue;
            s->values[i] = strdup(val);
            if (!s->values[i]) goto oom;
            break;
        }
    }
    /* Needle 0 sits at the cell's depth; the others at depths drawn from
     * RULER's grid round(linspace(0, 100, 40)). */
    double grid[40];
    kvev_niah_depth_grid(40, grid);
    s->depths[0] = depth;
    for (size_t i = 1; i < n; i++) s->depths[i] = grid[rng_below(r, 40)];
    for (size_t i = 0; i < n; i++) {
        const char *names[] = {"key", "value"};
        const char *vals[] = {s->keys[i], s->values[i]};
        kvp_status st = kvev_format_fields(ph->needle, names, vals, 2, "needle", &s->needles[i], err);
        if (st != KVP_OK) {
            spec_free(s);
            return st;
        }
    }
    bool multi = p->variant == KVP_NIAH_MULTIVALUE || p->variant == KVP_NIAH_MULTIQUERY;
    s->tmpl = multi && ph->template_multi ? ph->template_multi : ph->template_text;
    const char *ap = multi && ph->answer_prefix_multi ? ph->answer_prefix_multi : ph->answer_prefix;
    switch (p->variant) {
    case KVP_NIAH_SINGLE:
    case KVP_NIAH_MULTIKEY:
        s->query = strdup(s->keys[0]);
        s->outputs[0] = s->values[0];
        s->n_outputs = 1;
        break;
    case KVP_NIAH_MULTIVALUE: {
        s->query = strdup(s->keys[0]);
        /* Values in the order they appear in the text (stable by depth). */
        size_t *ord = malloc(n * sizeof *ord);
        if (!ord) goto oom;
        for (size_t i = 0; i < n; i++) ord[i] = i;
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && s->depths[ord[j]] < s->depths[ord[j - 1]]; j--) {
                size_t t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        for (size_t i = 0; i < n; i++) s->outputs[i] = s->values[ord[i]];
        free(ord);
        s->n_outputs = n;
        break;
    }
    case KVP_NIAH_MULTIQUERY:
        s->query = join_list(s->keys, n);
        for (size_t i = 0; i < n; i++) s->outputs[i] = s->values[i];
        s->n_outputs = n;
        break;
    }
    if (!s->query) goto oom;
    {
        const char *names[] = {"query"};
        const char *vals[] = {s->query};
        kvp_status st = kvev_format_fields(ap, names, vals, 1, "answer_prefix", &s->answer_prefix,
                                          err);
        if (st != KVP_OK) {
            spec_free(s);
            return st;
        }
    }
    return KVP_OK;
oom:
    spec_free(s);
    return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
}

static kvp_status render(const sample_spec *s, const kvev_haystack *hay, size_t n_words,
                         char **input, kvp_error *err) {
    char *ctx = kvev_niah_build_context(hay, n_words, (const char *const *)s->needles, s->depths,
                                       s->n_needles);
    if (!ctx) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    const char *names[] = {"context", "query"};
    const char *vals[] = {ctx, s->query};
    kvp_status st = kvev_format_fields(s->tmpl, names, vals, 2, "template", input, err);
    free(ctx);
    return st;
}

static kvp_status measure_words(const kvev_niah_params *p, const sample_spec *s,
                                const kvev_haystack *hay, size_t n_words,
                                kvev_niah_measure_fn measure, void *user, size_t *len,
                                kvev_niah_stats *stats, kvp_error *err) {
    char *input;
    kvp_status st = render(s, hay, n_words, &input, err);
    if (st != KVP_OK) return st;
    size_t n;
    st = measure(user, input, p->chat, &n, err);
    free(input);
    stats->n_measure_calls++;
    *len = n + (size_t)p->tokens_to_generate;
    return st;
}

/* Largest word count whose prompt fits `target`. f is nearly linear in the
 * word count, so a secant step inside the bracket converges in a few calls;
 * bisection takes over when it stalls. `guess` is a starting point. */
static kvp_status fit_words(const kvev_niah_params *p, const sample_spec *s,
                            const kvev_haystack *hay, size_t target, size_t guess,
                            kvev_niah_measure_fn measure, void *user, size_t *best_words,
                            size_t *best_len, kvev_niah_stats *stats, kvp_error *err) {
    size_t f0;
    kvp_status st = measure_words(p, s, hay, 0, measure, user, &f0, stats, err);
    if (st != KVP_OK) return st;
    if (f0 > target)
        return kvu_fail(err, KVP_ERR_RANGE,
                        "target length %zu is too small: the prompt without haystack already "
                        "takes %zu tokens (with %d to generate)", target, f0, p->tokens_to_generate);
    size_t lo = 0, flo = f0;           /* fits */
    size_t hi = SIZE_MAX, fhi = 0;     /* does not fit (SIZE_MAX: unknown) */
    double tpw = 1.3;                  /* tokens per word, refined below */
    size_t x = guess ? guess : (size_t)((double)(target - f0) / tpw);
    for (int iter = 0; iter < 64; iter++) {
        if (hi != SIZE_MAX && hi <= lo + 1) break;
        if (x <= lo) x = lo + 1;
        if (hi != SIZE_MAX && x >= hi) x = hi - 1;
        size_t fx;
        st = measure_words(p, s, hay, x, measure, user, &fx, stats, err);
        if (st != KVP_OK) return st;
        if (fx > f0 && x > 0) tpw = (double)(fx - f0) / (double)x;
        if (tpw <= 0.05) tpw = 0.05;
        if (fx <= target) {
            lo = x, flo = fx;
            if (flo == target) break;
            size_t step = (size_t)((double)(target - fx) / tpw);
            x = lo + (step ? step : 1);
        } else {
            hi = x, fhi = fx;
            size_t step = (size_t)ceil((double)(fx - target) / tpw);
            x = hi > step ? hi - (step ? step : 1) : 0;
        }
        /* Stalled secant steps: bisect. */
        if (hi != SIZE_MAX && (x <= lo || x >= hi)) x = lo + (hi - lo) / 2;
        if (iter > 8 && hi != SIZE_MAX) x = lo + (hi - lo) / 2;
        if (hi == SIZE_MAX && x > lo * 4 + 100000)
            return kvu_fail(err, KVP_ERR_INTERNAL, "haystack size search does not converge");
    }
    (void)fhi;
    *best_words = lo;
    *best_len = flo;
    return KVP_OK;
}

kvp_status kvev_niah_generate(const kvev_niah_params *p, const kvev_niah_phrasing *ph,
                             const kvev_haystack *hay, kvev_niah_measure_fn measure, void *user,
                             json_t **out, kvev_niah_stats *stats, kvp_error *err) {
    *out = NULL;
    memset(stats, 0, sizeof *stats);
    if (p->variant != KVP_NIAH_SINGLE && p->num_needles < 2)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "num_needles: %s needs at least 2, got %d",
                        kvev_niah_variant_name(p->variant), p->num_needles);
    if (p->samples < 1)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "samples: must be at least 1");
    for (size_t d = 0; d < p->n_depths; d++)
        if (!(p->depths[d] >= 0 && p->depths[d] <= 100))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "depths: %g is outside [0, 100]",
                            p->depths[d]);
    json_t *arr = json_array();
    if (!arr) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    kvp_status st = KVP_OK;
    long long index = 0;
    for (size_t li = 0; li < p->n_lengths && st == KVP_OK; li++) {
        size_t target = (size_t)p->lengths[li];
        size_t guess = 0;
        for (size_t di = 0; di < p->n_depths && st == KVP_OK; di++)
            for (int si = 0; si < p->samples && st == KVP_OK; si++) {
                rng r = {mix64(mix64(mix64(p->seed ^ 0x6e656564ull) ^ (uint64_t)target) ^
                               (uint64_t)llround(p->depths[di] * 1000)) ^ (uint64_t)si};
                sample_spec s;
                st = spec_make(p, ph, &r, p->depths[di], &s, err);
                if (st != KVP_OK) break;
                size_t nw = 0, len = 0;
                st = fit_words(p, &s, hay, target, guess, measure, user, &nw, &len, stats, err);
                char *input = NULL;
                size_t raw = 0;
                if (st == KVP_OK) {
                    guess = nw;
                    st = render(&s, hay, nw, &input, err);
                }
                if (st == KVP_OK && p->chat) st = measure(user, input, false, &raw, err);
                if (st == KVP_OK) {
                    if (!p->chat) raw = len - (size_t)p->tokens_to_generate;
                    double gap = (double)(target - len) / (double)target;
                    if (gap > stats->worst_rel_gap) stats->worst_rel_gap = gap;
                    json_t *outs = json_array(), *deps = json_array(), *o = json_object(),
                           *others = json_object();
                    for (size_t k = 0; k < s.n_outputs; k++)
                        json_array_append_new(outs, json_string(s.outputs[k]));
                    for (size_t k = 0; k < s.n_needles; k++)
                        json_array_append_new(deps, json_real(s.depths[k]));
                    json_object_set_new(o, "index", json_integer(index++));
                    json_object_set_new(o, "input", json_string(input));
                    json_object_set_new(o, "outputs", outs);
                    json_object_set_new(o, "length",
                                        json_integer((json_int_t)(raw + (size_t)p->tokens_to_generate)));
                    json_object_set_new(o, "length_w_model_temp", json_integer((json_int_t)len));
                    json_object_set_new(o, "answer_prefix", json_string(s.answer_prefix));
                    json_object_set_new(others, "depth", json_real(p->depths[di]));
                    json_object_set_new(others, "depths", deps);
                    json_object_set_new(others, "target_length", json_integer((json_int_t)target));
                    json_object_set_new(others, "variant",
                                        json_string(kvev_niah_variant_name(p->variant)));
                    json_object_set_new(others, "haystack", json_string(hay->name));
                    json_object_set_new(others, "query", json_string(s.query));
                    json_object_set_new(others, "haystack_words", json_integer((json_int_t)nw));
                    json_object_set_new(o, "others", others);
                    if (json_array_append_new(arr, o) != 0)
                        st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
                    stats->n_samples++;
                }
                free(input);
                spec_free(&s);
            }
    }
    if (st != KVP_OK) {
        json_decref(arr);
        return st;
    }
    *out = arr;
    return KVP_OK;
}

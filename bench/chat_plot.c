/* Plots `kvprune chat --json` runs turn by turn: KV memory (MiB) and decode
 * speed (tokens/s, the median over repeated runs of one configuration).
 * usage: chat_plot OUT_PREFIX LABEL RUN.jsonl[,RUN2.jsonl...] [LABEL RUNS]...
 * writes OUT_PREFIX_kv.svg and OUT_PREFIX_speed.svg and prints a table. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune_eval/plot_svg.h"

#define MAX_TURNS 4096
#define MAX_RUNS 16

typedef struct series {
    const char *label;
    int n;                      /* turns                                     */
    double kv[MAX_TURNS];       /* MiB held after the turn                   */
    double full[MAX_TURNS];     /* MiB the full cache would hold             */
    double tps[MAX_TURNS];      /* median decode tokens/s                    */
    double peak[MAX_TURNS];     /* MiB high-water mark so far                */
    double x[MAX_TURNS];
} series;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int load(series *s, char *files) {
    static double runs[MAX_RUNS][MAX_TURNS];
    int nr = 0;
    for (char *f = strtok(files, ","); f && nr < MAX_RUNS; f = strtok(NULL, ","), nr++) {
        FILE *in = fopen(f, "r");
        if (!in) {
            fprintf(stderr, "chat_plot: cannot open %s\n", f);
            return -1;
        }
        char line[1 << 16];
        int t = 0;
        while (fgets(line, sizeof line, in) && t < MAX_TURNS) {
            json_t *o = json_loads(line, 0, NULL);
            json_t *st = json_object_get(o, "stats");
            if (!st) {
                json_decref(o);
                continue;
            }
            runs[nr][t] = json_number_value(json_object_get(st, "tokens_per_s"));
            s->kv[t] = json_number_value(json_object_get(st, "kv_bytes")) / 1048576.0;
            s->full[t] = json_number_value(json_object_get(st, "kv_bytes_full")) / 1048576.0;
            s->peak[t] = json_number_value(json_object_get(st, "kv_bytes_peak")) / 1048576.0;
            s->x[t] = t + 1;
            t++;
            json_decref(o);
        }
        fclose(in);
        if (nr == 0 || t < s->n) s->n = t;
    }
    for (int t = 0; t < s->n; t++) {
        double v[MAX_RUNS];
        for (int r = 0; r < nr; r++) v[r] = runs[r][t];
        qsort(v, (size_t)nr, sizeof v[0], cmp_double);
        s->tps[t] = nr % 2 ? v[nr / 2] : 0.5 * (v[nr / 2 - 1] + v[nr / 2]);
    }
    return nr;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc % 2) {
        fprintf(stderr, "usage: chat_plot OUT_PREFIX LABEL RUN.jsonl[,RUN.jsonl...] [LABEL RUNS]...\n");
        return 2;
    }
    int ns = (argc - 2) / 2;
    series *s = calloc((size_t)ns, sizeof *s);
    kvev_plot_series kv[8], sp[8];
    if (!s || ns > 7) return 1;
    for (int i = 0; i < ns; i++) {
        s[i].label = argv[2 + 2 * i];
        if (load(&s[i], argv[3 + 2 * i]) <= 0 || s[i].n == 0) return 1;
        kv[i] = (kvev_plot_series){s[i].label, s[i].x, s[i].kv, (size_t)s[i].n, false};
        sp[i] = (kvev_plot_series){s[i].label, s[i].x, s[i].tps, (size_t)s[i].n, false};
    }
    kv[ns] = (kvev_plot_series){"full cache would hold", s[0].x, s[0].full, (size_t)s[0].n, true};
    double kv_max = 0, tps_max = 0;
    for (int i = 0; i < ns; i++)
        for (int t = 0; t < s[i].n; t++) {
            if (s[i].full[t] > kv_max) kv_max = s[i].full[t];
            if (s[i].kv[t] > kv_max) kv_max = s[i].kv[t];
            if (s[i].tps[t] > tps_max) tps_max = s[i].tps[t];
        }
    char path[1024];
    kvp_error err;
    kvev_line_plot p = {"KV cache memory over a conversation", "turn", "KV MiB held after the turn", 1, s[0].n, 0,
                       kv_max * 1.1, NULL, 0};
    snprintf(path, sizeof path, "%s_kv.svg", argv[1]);
    if (kvev_svg_line_plot(path, &p, kv, (size_t)ns + 1, &err)) {
        fprintf(stderr, "chat_plot: %s\n", err.message);
        return 1;
    }
    printf("plot: %s\n", path);
    p.title = "Decode speed over a conversation (median of runs)";
    p.ylabel = "decode tokens/s";
    p.ymax = tps_max * 1.1;
    snprintf(path, sizeof path, "%s_speed.svg", argv[1]);
    if (kvev_svg_line_plot(path, &p, sp, (size_t)ns, &err)) {
        fprintf(stderr, "chat_plot: %s\n", err.message);
        return 1;
    }
    printf("plot: %s\n\n| turn | full cache would hold (MiB) |", path);
    for (int i = 0; i < ns; i++) printf(" %s: MiB held (peak) | tokens/s |", s[i].label);
    printf("\n|---|---|");
    for (int i = 0; i < ns; i++) printf("---|---|");
    printf("\n");
    int marks[] = {1, 10, 25, 50, 75, 100, 200, 400};
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        int t = marks[m] - 1;
        if (t >= s[0].n) break;
        printf("| %d | %.2f |", t + 1, s[0].full[t]);
        for (int i = 0; i < ns; i++)
            printf(" %.3f (%.3f) | %.0f |", t < s[i].n ? s[i].kv[t] : 0, t < s[i].n ? s[i].peak[t] : 0,
                   t < s[i].n ? s[i].tps[t] : 0);
        printf("\n");
    }
    free(s);
    return 0;
}

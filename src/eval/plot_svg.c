#include "kvprune_eval/plot_svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "util/file.h"

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) KVP_PRINTF(2, 3);

static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* Text content with &, <, > and quotes escaped. */
static void sb_text(sbuf *b, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *t);
        }
    }
}

static kvp_status finish(sbuf *b, const char *path, kvp_error *err) {
    sb_printf(b, "</svg>\n");
    if (b->oom) {
        free(b->s);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory building the plot", path);
    }
    kvp_status st = kvu_write_file_atomic(path, b->s, b->n, err);
    free(b->s);
    return st;
}

/* Tick step of 1, 2 or 5 x 10^k giving about `target` intervals. */
static double nice_step(double span, int target) {
    double raw = span / target;
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    double step = m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10;
    return step * p;
}

static void fmt_tick(char *buf, size_t size, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    snprintf(buf, size, "%.*f", dec, fabs(v) < step * 1e-9 ? 0.0 : v);
}

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                      "#393b79", "#637939"};
#define N_PALETTE (sizeof palette / sizeof palette[0])

static void svg_head(sbuf *b, int w, int h) {
    sb_printf(b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
              "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n"
              "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
              w, h, w, h, w, h);
}

/* The axis ranges of a plot: its own, or the data's when empty. */
static void plot_ranges(const kvev_line_plot *plot, const kvev_plot_series *const *series,
                        const size_t *n_series, size_t n_groups, double r[4]) {
    double xmin = plot->xmin, xmax = plot->xmax, ymin = plot->ymin, ymax = plot->ymax;
    if (!(xmax > xmin)) {
        xmin = INFINITY;
        xmax = -INFINITY;
        for (size_t g = 0; g < n_groups; g++)
            for (size_t s = 0; s < n_series[g]; s++)
                for (size_t i = 0; i < series[g][s].n; i++) {
                    xmin = fmin(xmin, series[g][s].x[i]);
                    xmax = fmax(xmax, series[g][s].x[i]);
                }
        if (!isfinite(xmin)) xmin = 0, xmax = 1;
        if (!(xmax > xmin)) xmin -= 0.5, xmax += 0.5;
    }
    if (!(ymax > ymin)) ymin = 0, ymax = 100;
    r[0] = xmin, r[1] = xmax, r[2] = ymin, r[3] = ymax;
}

/* Marker k (circle, square, triangle) centred on (x, y). */
static void draw_marker(sbuf *b, int k, double x, double y, const char *col) {
    if (k == 0)
        sb_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4.5\" fill=\"%s\"/>\n", x, y, col);
    else if (k == 1)
        sb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"8\" height=\"8\" fill=\"%s\"/>\n",
                  x - 4, y - 4, col);
    else
        sb_printf(b, "<path d=\"M%.2f %.2f L%.2f %.2f L%.2f %.2f Z\" fill=\"%s\"/>\n", x, y - 5.5,
                  x + 5, y + 4, x - 5, y + 4, col);
}

/* Colour and marker of style k: different marker shapes help where colours
 * are hard to tell. */
static const char *style_color(size_t k) { return palette[k % N_PALETTE]; }
static int style_marker(size_t k) { return (int)(k / N_PALETTE + k) % 3; }

/* One plot area at (L, T), pw x ph: grid, ticks, frame, axis labels (the
 * y label when ylabel_x >= 0), and the series in styles style[s], clipped
 * to the area (clip path `clip_id`). */
static void draw_area(sbuf *b, int L, int T, int pw, int ph, const double r[4],
                      const kvev_line_plot *plot, const char *xlabel, const char *ylabel,
                      int ylabel_x, const kvev_plot_series *series, const size_t *style,
                      size_t n_series, int clip_id) {
    double xmin = r[0], xmax = r[1], ymin = r[2], ymax = r[3];
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (T + ph - ((v) - ymin) / (ymax - ymin) * ph)
    /* Grid and y ticks. */
    double ystep = nice_step(ymax - ymin, 5);
    for (double v = ceil(ymin / ystep) * ystep; v <= ymax + ystep * 1e-9; v += ystep) {
        char t[32];
        fmt_tick(t, sizeof t, v, ystep);
        sb_printf(b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                  L, PY(v), L + pw, PY(v));
        sb_printf(b, "<text x=\"%d\" y=\"%.2f\" font-size=\"13\" text-anchor=\"end\" "
                     "dy=\"0.35em\">%s</text>\n", L - 8, PY(v), t);
    }
    /* X ticks: given positions or nice ones. */
    double xstep = nice_step(xmax - xmin, 6);
    if (plot->xticks && plot->n_xticks) {
        for (size_t i = 0; i < plot->n_xticks; i++) {
            char t[32];
            snprintf(t, sizeof t, "%g", plot->xticks[i]);
            double x = PX(plot->xticks[i]);
            sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#eeeeee\"/>\n",
                      x, T, x, T + ph);
            sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"black\"/>\n",
                      x, T + ph, x, T + ph + 5);
            sb_printf(b, "<text x=\"%.2f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">%s"
                         "</text>\n", x, T + ph + 22, t);
        }
    } else {
        for (double v = ceil(xmin / xstep) * xstep; v <= xmax + xstep * 1e-9; v += xstep) {
            char t[32];
            fmt_tick(t, sizeof t, v, xstep);
            double x = PX(v);
            sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"black\"/>\n",
                      x, T + ph, x, T + ph + 5);
            sb_printf(b, "<text x=\"%.2f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">%s"
                         "</text>\n", x, T + ph + 22, t);
        }
    }
    /* Axes. */
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                 "stroke=\"black\"/>\n", L, T, pw, ph);
    if (xlabel) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\">",
                  L + pw / 2, T + ph + 50);
        sb_text(b, xlabel);
        sb_printf(b, "</text>\n");
    }
    if (ylabel && ylabel_x >= 0) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 %d %d)\">", ylabel_x, T + ph / 2, ylabel_x,
                  T + ph / 2);
        sb_text(b, ylabel);
        sb_printf(b, "</text>\n");
    }
    /* Series, clipped to the plot area. */
    char id[32] = "area";
    if (clip_id) snprintf(id, sizeof id, "area%d", clip_id);
    sb_printf(b, "<clipPath id=\"%s\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
                 "</clipPath>\n<g clip-path=\"url(#%s)\">\n", id, L - 6, T - 6, pw + 12, ph + 12,
              id);
    for (size_t s = 0; s < n_series; s++) {
        const char *col = style_color(style[s]);
        const kvev_plot_series *se = &series[s];
        if (se->n == 0) continue;
        sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"",
                  col, se->dashed ? " stroke-dasharray=\"8 5\"" : "");
        for (size_t i = 0; i < se->n; i++)
            sb_printf(b, "%s%.2f,%.2f", i ? " " : "", PX(se->x[i]), PY(se->y[i]));
        sb_printf(b, "\"/>\n");
        if (!se->dashed)
            for (size_t i = 0; i < se->n; i++)
                draw_marker(b, style_marker(style[s]), PX(se->x[i]), PY(se->y[i]), col);
    }
    sb_printf(b, "</g>\n");
#undef PX
#undef PY
}

/* A legend box at (lx, ly), `width` wide: one entry per label, drawn in
 * style k for entry k. */
static void draw_legend(sbuf *b, int lx, int ly, int width, const char *const *labels,
                        const bool *dashed, size_t n) {
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%zu\" fill=\"white\" "
                 "stroke=\"#999999\"/>\n", lx - 10, ly - 14, width, n * 22 + 12);
    for (size_t s = 0; s < n; s++) {
        const char *col = style_color(s);
        int y = ly + (int)s * 22;
        sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"%s/>\n", lx, y, lx + 28, y, col,
                  dashed[s] ? " stroke-dasharray=\"8 5\"" : "");
        if (!dashed[s]) /* the marker, as drawn on the lines */
            draw_marker(b, style_marker(s), lx + 14, y, col);
        sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" dy=\"0.35em\">", lx + 36, y);
        sb_text(b, labels[s]);
        sb_printf(b, "</text>\n");
    }
}

static size_t longest(const char *const *labels, size_t n, size_t at_least) {
    for (size_t s = 0; s < n; s++)
        if (labels[s] && strlen(labels[s]) > at_least) at_least = strlen(labels[s]);
    return at_least;
}

kvp_status kvev_svg_line_plot(const char *path, const kvev_line_plot *plot,
                             const kvev_plot_series *series, size_t n_series, kvp_error *err) {
    const char **labels = calloc(n_series + 1, sizeof *labels);
    bool *dashed = calloc(n_series + 1, sizeof *dashed);
    size_t *style = calloc(n_series + 1, sizeof *style);
    if (!labels || !dashed || !style) {
        free(labels), free(dashed), free(style);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory building the plot", path);
    }
    for (size_t s = 0; s < n_series; s++) {
        labels[s] = series[s].label ? series[s].label : "";
        dashed[s] = series[s].dashed;
        style[s] = s;
    }
    /* Legend width from the longest label (about 7.5 px per character). */
    const int R = 90 + (int)(longest(labels, n_series, 8) * 7.5);
    const int W = 630 + R, H = 540, L = 80, T = 60, B = 70;
    const int pw = W - L - R, ph = H - T - B;
    double r[4];
    plot_ranges(plot, &series, &n_series, 1, r);
    sbuf b = {0};
    svg_head(&b, W, H);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"18\" font-weight=\"bold\" "
                  "text-anchor=\"middle\">", L + pw / 2, 32);
    sb_text(&b, plot->title);
    sb_printf(&b, "</text>\n");
    draw_area(&b, L, T, pw, ph, r, plot, plot->xlabel, plot->ylabel, 24, series, style, n_series,
              0);
    draw_legend(&b, L + pw + 20, T + 10, R - 30, labels, dashed, n_series);
    free(labels), free(dashed), free(style);
    return finish(&b, path, err);
}

kvp_status kvev_svg_panel_plot(const char *path, const kvev_line_plot *plot,
                              const kvev_plot_panel *panels, size_t n_panels,
                              const char *const *legend, size_t n_legend, kvp_error *err) {
    size_t total = 0;
    for (size_t p = 0; p < n_panels; p++) total += panels[p].n;
    const kvev_plot_series **groups = calloc(n_panels + 1, sizeof *groups);
    size_t *counts = calloc(n_panels + 1, sizeof *counts);
    size_t *style = calloc(total + 1, sizeof *style);
    bool *dashed = calloc(n_legend + 1, sizeof *dashed);
    if (!groups || !counts || !style || !dashed) {
        free(groups), free(counts), free(style), free(dashed);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory building the plot", path);
    }
    /* A series takes the style of its label's legend entry, the same in
     * every panel; a label missing from the legend is an error. */
    kvp_status st = KVP_OK;
    for (size_t p = 0, k = 0; p < n_panels && st == KVP_OK; p++) {
        groups[p] = panels[p].series;
        counts[p] = panels[p].n;
        for (size_t s = 0; s < panels[p].n; s++, k++) {
            size_t e = 0;
            while (e < n_legend && strcmp(legend[e], panels[p].series[s].label ?
                                                         panels[p].series[s].label : ""))
                e++;
            if (e == n_legend) {
                st = kvu_fail(err, KVP_ERR_INVALID_ARG, "%s: series '%s' is not in the legend",
                              path, panels[p].series[s].label ? panels[p].series[s].label : "");
                break;
            }
            style[k] = e;
            dashed[e] = dashed[e] || panels[p].series[s].dashed;
        }
    }
    if (st != KVP_OK) {
        free(groups), free(counts), free(style), free(dashed);
        return st;
    }
    double r[4];
    plot_ranges(plot, groups, counts, n_panels, r);
    /* Up to 3 panels a row, each with its own title and x axis; one y label
     * on the left and one legend on the right. */
    const int cols = n_panels < 3 ? (int)(n_panels ? n_panels : 1) : n_panels == 4 ? 2 : 3;
    const int rows = (int)((n_panels + (size_t)cols - 1) / (size_t)cols);
    const int pw = 330, ph = 250, gapx = 70, gapy = 100, L = 80, T = 80;
    const int R = 90 + (int)(longest(legend, n_legend, 8) * 7.5);
    const int W = L + cols * pw + (cols - 1) * gapx + 20 + R;
    const int H = T + rows * ph + (rows - 1) * gapy + 75;
    sbuf b = {0};
    svg_head(&b, W, H);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"18\" font-weight=\"bold\" "
                  "text-anchor=\"middle\">", (L + W - R) / 2, 32);
    sb_text(&b, plot->title);
    sb_printf(&b, "</text>\n");
    for (size_t p = 0, k = 0; p < n_panels; k += panels[p].n, p++) {
        int c = (int)p % cols, rw = (int)p / cols;
        int x0 = L + c * (pw + gapx), y0 = T + rw * (ph + gapy);
        sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\" "
                      "text-anchor=\"middle\">", x0 + pw / 2, y0 - 10);
        sb_text(&b, panels[p].title);
        sb_printf(&b, "</text>\n");
        draw_area(&b, x0, y0, pw, ph, r, plot, plot->xlabel, plot->ylabel, c == 0 ? 24 : -1,
                  panels[p].series, style + k, panels[p].n, (int)p + 1);
    }
    draw_legend(&b, L + cols * pw + (cols - 1) * gapx + 40, T + 10, R - 30, legend, dashed,
                n_legend);
    free(groups), free(counts), free(style), free(dashed);
    return finish(&b, path, err);
}

/* Red (low) -> yellow -> green (high). */
static void heat_color(double t, char *buf, size_t size) {
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    double r, g, bl;
    if (t < 0.5) {
        double u = t / 0.5;
        r = 215 + (254 - 215) * u, g = 48 + (224 - 48) * u, bl = 39 + (139 - 39) * u;
    } else {
        double u = (t - 0.5) / 0.5;
        r = 254 + (26 - 254) * u, g = 224 + (152 - 224) * u, bl = 139 + (80 - 139) * u;
    }
    snprintf(buf, size, "#%02x%02x%02x", (int)lround(r), (int)lround(g), (int)lround(bl));
}

kvp_status kvev_svg_heatmap(const char *path, const kvev_heatmap *hm, kvp_error *err) {
    int L = 90;
    const int T = 60, R = 130, B = 70;
    int cw = hm->nx <= 4 ? 110 : hm->nx <= 8 ? 80 : 56;
    int ch = hm->ny <= 6 ? 50 : hm->ny <= 12 ? 36 : 22;
    int pw = cw * (int)hm->nx, ph = ch * (int)hm->ny;
    int W = L + pw + R, H = T + (ph < 150 ? 150 : ph) + B;
    int title_w = (int)(strlen(hm->title ? hm->title : "") * 10.5) + 40;
    if (W < title_w) W = title_w;
    if (W < 520) W = 520;
    L += (W - (L + pw + R)) / 2; /* centre the grid when the title is wider */
    sbuf b = {0};
    svg_head(&b, W, H);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"17\" font-weight=\"bold\" "
                  "text-anchor=\"middle\">", W / 2, 32);
    sb_text(&b, hm->title);
    sb_printf(&b, "</text>\n");
    double span = hm->vmax > hm->vmin ? hm->vmax - hm->vmin : 1;
    for (size_t r = 0; r < hm->ny; r++)
        for (size_t c = 0; c < hm->nx; c++) {
            double v = hm->values[r * hm->nx + c];
            int x = L + (int)c * cw, y = T + (int)r * ch;
            char col[16];
            if (isnan(v))
                snprintf(col, sizeof col, "#eeeeee");
            else
                heat_color((v - hm->vmin) / span, col, sizeof col);
            sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                          "stroke=\"white\"/>\n", x, y, cw, ch, col);
            if (ch >= 20) {
                if (isnan(v))
                    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#888888\" "
                                  "text-anchor=\"middle\" dy=\"0.35em\">n/a</text>\n",
                              x + cw / 2, y + ch / 2);
                else
                    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" "
                                  "text-anchor=\"middle\" dy=\"0.35em\">%.0f</text>\n",
                              x + cw / 2, y + ch / 2, v);
            }
        }
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                  "stroke=\"black\"/>\n", L, T, pw, ph);
    for (size_t c = 0; c < hm->nx; c++) {
        sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">",
                  L + (int)c * cw + cw / 2, T + ph + 20);
        sb_text(&b, hm->xlabels[c]);
        sb_printf(&b, "</text>\n");
    }
    for (size_t r = 0; r < hm->ny; r++) {
        sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"end\" "
                      "dy=\"0.35em\">", L - 8, T + (int)r * ch + ch / 2);
        sb_text(&b, hm->ylabels[r]);
        sb_printf(&b, "</text>\n");
    }
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\">", L + pw / 2,
              H - 18);
    sb_text(&b, hm->xlabel);
    sb_printf(&b, "</text>\n<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\" "
                  "transform=\"rotate(-90 %d %d)\">", L - 68, T + ph / 2, L - 68, T + ph / 2);
    sb_text(&b, hm->ylabel);
    sb_printf(&b, "</text>\n");
    /* Colour bar. */
    int bx = L + pw + 30, bh = ph < 150 ? 150 : ph, bw = 18;
    const int steps = 50;
    for (int i = 0; i < steps; i++) {
        char col[16];
        heat_color(1.0 - (i + 0.5) / steps, col, sizeof col);
        sb_printf(&b, "<rect x=\"%d\" y=\"%.2f\" width=\"%d\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                  T + (double)bh * i / steps, bw, (double)bh / steps + 0.5, col);
    }
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                  "stroke=\"black\"/>\n", bx, T, bw, bh);
    for (int i = 0; i <= 4; i++) {
        double v = hm->vmin + span * i / 4;
        double y = T + bh - (double)bh * i / 4;
        sb_printf(&b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"black\"/>\n",
                  bx + bw, y, bx + bw + 4, y);
        sb_printf(&b, "<text x=\"%d\" y=\"%.2f\" font-size=\"12\" dy=\"0.35em\">"
                      "%g</text>\n", bx + bw + 7, y, v);
    }
    if (hm->value_label) {
        int cx = bx + bw + 50, cy = T + bh / 2;
        sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" "
                      "transform=\"rotate(90 %d %d)\">", cx, cy, cx, cy);
        sb_text(&b, hm->value_label);
        sb_printf(&b, "</text>\n");
    }
    return finish(&b, path, err);
}

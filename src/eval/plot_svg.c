#include "eval/plot_svg.h"

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

kvp_status kvev_svg_line_plot(const char *path, const kvev_line_plot *plot,
                             const kvev_plot_series *series, size_t n_series, kvp_error *err) {
    size_t maxlab = 8;
    for (size_t s = 0; s < n_series; s++)
        if (series[s].label && strlen(series[s].label) > maxlab) maxlab = strlen(series[s].label);
    /* Legend width from the longest label (about 7.5 px per character). */
    const int R = 90 + (int)(maxlab * 7.5);
    const int W = 630 + R, H = 540, L = 80, T = 60, B = 70;
    const int pw = W - L - R, ph = H - T - B;
    double xmin = plot->xmin, xmax = plot->xmax, ymin = plot->ymin, ymax = plot->ymax;
    if (!(xmax > xmin)) {
        xmin = INFINITY;
        xmax = -INFINITY;
        for (size_t s = 0; s < n_series; s++)
            for (size_t i = 0; i < series[s].n; i++) {
                xmin = fmin(xmin, series[s].x[i]);
                xmax = fmax(xmax, series[s].x[i]);
            }
        if (!isfinite(xmin)) xmin = 0, xmax = 1;
        if (!(xmax > xmin)) xmin -= 0.5, xmax += 0.5;
    }
    if (!(ymax > ymin)) ymin = 0, ymax = 100;
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * pw)
#define PY(v) (T + ph - ((v) - ymin) / (ymax - ymin) * ph)
    sbuf b = {0};
    svg_head(&b, W, H);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"18\" font-weight=\"bold\" "
                  "text-anchor=\"middle\">", L + pw / 2, 32);
    sb_text(&b, plot->title);
    sb_printf(&b, "</text>\n");
    /* Grid and y ticks. */
    double ystep = nice_step(ymax - ymin, 5);
    for (double v = ceil(ymin / ystep) * ystep; v <= ymax + ystep * 1e-9; v += ystep) {
        char t[32];
        fmt_tick(t, sizeof t, v, ystep);
        sb_printf(&b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                  L, PY(v), L + pw, PY(v));
        sb_printf(&b, "<text x=\"%d\" y=\"%.2f\" font-size=\"13\" text-anchor=\"end\" "
                      "dy=\"0.35em\">%s</text>\n", L - 8, PY(v), t);
    }
    /* X ticks: given positions or nice ones. */
    double xstep = nice_step(xmax - xmin, 6);
    if (plot->xticks && plot->n_xticks) {
        for (size_t i = 0; i < plot->n_xticks; i++) {
            char t[32];
            snprintf(t, sizeof t, "%g", plot->xticks[i]);
            double x = PX(plot->xticks[i]);
            sb_printf(&b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#eeeeee\"/>\n",
                      x, T, x, T + ph);
            sb_printf(&b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"black\"/>\n",
                      x, T + ph, x, T + ph + 5);
            sb_printf(&b, "<text x=\"%.2f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">%s"
                          "</text>\n", x, T + ph + 22, t);
        }
    } else {
        for (double v = ceil(xmin / xstep) * xstep; v <= xmax + xstep * 1e-9; v += xstep) {
            char t[32];
            fmt_tick(t, sizeof t, v, xstep);
            double x = PX(v);
            sb_printf(&b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"black\"/>\n",
                      x, T + ph, x, T + ph + 5);
            sb_printf(&b, "<text x=\"%.2f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">%s"
                          "</text>\n", x, T + ph + 22, t);
        }
    }
    /* Axes. */
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                  "stroke=\"black\"/>\n", L, T, pw, ph);
    sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\">", L + pw / 2,
              H - 20);
    sb_text(&b, plot->xlabel);
    sb_printf(&b, "</text>\n<text x=\"%d\" y=\"%d\" font-size=\"15\" text-anchor=\"middle\" "
                  "transform=\"rotate(-90 %d %d)\">", 24, T + ph / 2, 24, T + ph / 2);
    sb_text(&b, plot->ylabel);
    sb_printf(&b, "</text>\n");
    /* Series, clipped to the plot area. */
    sb_printf(&b, "<clipPath id=\"area\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>"
                  "</clipPath>\n<g clip-path=\"url(#area)\">\n", L - 6, T - 6, pw + 12, ph + 12);
    for (size_t s = 0; s < n_series; s++) {
        const char *col = palette[s % N_PALETTE];
        const kvev_plot_series *se = &series[s];
        if (se->n == 0) continue;
        sb_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"%s points=\"",
                  col, se->dashed ? " stroke-dasharray=\"8 5\"" : "");
        for (size_t i = 0; i < se->n; i++)
            sb_printf(&b, "%s%.2f,%.2f", i ? " " : "", PX(se->x[i]), PY(se->y[i]));
        sb_printf(&b, "\"/>\n");
        if (!se->dashed)
            for (size_t i = 0; i < se->n; i++) {
                /* Different marker shapes help where colours are hard to tell. */
                double x = PX(se->x[i]), y = PY(se->y[i]);
                int shape = (int)(s / N_PALETTE + s) % 3;
                if (shape == 0)
                    sb_printf(&b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4.5\" fill=\"%s\"/>\n", x,
                              y, col);
                else if (shape == 1)
                    sb_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"8\" height=\"8\" "
                                  "fill=\"%s\"/>\n", x - 4, y - 4, col);
                else
                    sb_printf(&b, "<path d=\"M%.2f %.2f L%.2f %.2f L%.2f %.2f Z\" fill=\"%s\"/>\n",
                              x, y - 5.5, x + 5, y + 4, x - 5, y + 4, col);
            }
    }
    sb_printf(&b, "</g>\n");
    /* Legend. */
    int lx = L + pw + 20, ly = T + 10;
    sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%zu\" fill=\"white\" "
                  "stroke=\"#999999\"/>\n", lx - 10, ly - 14, R - 30, n_series * 22 + 12);
    for (size_t s = 0; s < n_series; s++) {
        const char *col = palette[s % N_PALETTE];
        int y = ly + (int)s * 22;
        sb_printf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                      "stroke-width=\"2.5\"%s/>\n", lx, y, lx + 28, y, col,
                  series[s].dashed ? " stroke-dasharray=\"8 5\"" : "");
        if (!series[s].dashed) /* the marker, as drawn on the lines */
            switch ((int)(s / N_PALETTE + s) % 3) {
            case 0:
                sb_printf(&b, "<circle cx=\"%d\" cy=\"%d\" r=\"4.5\" fill=\"%s\"/>\n", lx + 14,
                          y, col);
                break;
            case 1:
                sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"8\" fill=\"%s\"/>\n",
                          lx + 10, y - 4, col);
                break;
            default:
                sb_printf(&b, "<path d=\"M%d %.1f L%d %d L%d %d Z\" fill=\"%s\"/>\n", lx + 14,
                          y - 5.5, lx + 19, y + 4, lx + 9, y + 4, col);
            }
        sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" dy=\"0.35em\">",
                  lx + 36, y);
        sb_text(&b, series[s].label);
        sb_printf(&b, "</text>\n");
    }
#undef PX
#undef PY
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

/* Small self-contained SVG charts for the evaluation results: a line plot
 * (accuracy vs cache ratio, one line per method) and a heatmap (accuracy by
 * needle depth and context length). Files are written atomically. */
#ifndef KVP_EVAL_PLOT_SVG_H
#define KVP_EVAL_PLOT_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "kvprune.h"

typedef struct kvev_plot_series {
    const char *label;
    const double *x;
    const double *y;
    size_t n;
    bool dashed;    /* drawn dashed without markers (e.g. a reference level) */
} kvev_plot_series;

typedef struct kvev_line_plot {
    const char *title;
    const char *xlabel;
    const char *ylabel;
    double xmin, xmax;   /* axis range; equal values: taken from the data    */
    double ymin, ymax;
    const double *xticks; /* tick positions (NULL: chosen automatically)     */
    size_t n_xticks;
} kvev_line_plot;

kvp_status kvev_svg_line_plot(const char *path, const kvev_line_plot *plot,
                             const kvev_plot_series *series, size_t n_series,
                             kvp_error *err);

/* One panel of a panel plot: its title and its series. */
typedef struct kvev_plot_panel {
    const char *title;
    const kvev_plot_series *series;
    size_t n;
} kvev_plot_panel;

/* Panels side by side (up to 3 a row), sharing the axis ranges of `plot`
 * (or the data's) and one legend: a series is drawn in the colour and marker
 * of the legend entry with its label, the same in every panel (a label not
 * in `legend` is KVP_ERR_INVALID_ARG). */
kvp_status kvev_svg_panel_plot(const char *path, const kvev_line_plot *plot,
                              const kvev_plot_panel *panels, size_t n_panels,
                              const char *const *legend, size_t n_legend, kvp_error *err);

typedef struct kvev_heatmap {
    const char *title;
    const char *xlabel;
    const char *ylabel;
    const char *const *xlabels; /* column labels, left to right             */
    size_t nx;
    const char *const *ylabels; /* row labels, top to bottom                */
    size_t ny;
    const double *values;       /* [ny][nx]; NAN: no samples in the cell    */
    double vmin, vmax;          /* colour scale range                       */
    const char *value_label;    /* colour bar caption                       */
} kvev_heatmap;

kvp_status kvev_svg_heatmap(const char *path, const kvev_heatmap *hm, kvp_error *err);

#endif

/* Progress lines of the long-running evaluation commands (needle pred,
 * longbench pred): a bar redrawn in place on a terminal, else a plain line
 * every ~5% or 30 s; both with elapsed time and ETA. */
#include <stdio.h>

#include "cli.h"

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_report(cli_progress *c, const char *label, const char *what, size_t done,
                         size_t total, double elapsed_s) {
    if (c->quiet) return;
    double eta = done ? elapsed_s / (double)done * (double)(total - done) : 0;
    char el[32], et[32];
    fmt_time(elapsed_s, el, sizeof el);
    if (done)
        fmt_time(eta, et, sizeof et);
    else
        snprintf(et, sizeof et, "-:--");
    double frac = total ? (double)done / (double)total : 1;
    if (c->tty) {
        char bar[31];
        int filled = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %zu/%zu %3.0f%% | %-40.40s | %s elapsed, ETA %s  ", bar, done,
                total, frac * 100, what, el, et);
        if (done == total) fputc('\n', stderr);
    } else {
        size_t step = total / 20 ? total / 20 : 1;
        if (done == total || done - c->last_line_done >= step ||
            elapsed_s - c->last_line_s >= 30) {
            fprintf(stderr, "%s: %zu/%zu (%.0f%%) %s, %s elapsed, ETA %s\n", label, done, total,
                    frac * 100, what, el, et);
            c->last_line_done = done;
            c->last_line_s = elapsed_s;
        }
    }
    fflush(stderr);
}

/* A bar on a terminal is left without its newline until it is full. */
static void end_bar(const cli_progress *c) {
    if (c->tty && !c->quiet) fputc('\n', stderr);
}

int cli_progress_failed(const cli_progress *c, const kvp_error *err) {
    end_bar(c);
    return cli_eval_error(err);
}

int cli_progress_interrupted(const cli_progress *c, size_t written, size_t earlier) {
    end_bar(c);
    cli_error("interrupted: %zu samples written now, %zu earlier, all kept; run the same "
              "command again to resume where it stopped",
              written, earlier);
    return 130;
}

/*
 * report_svg.h - the inline SVG charts of the replay report's HTML page
 * (report_html.c): a frame with round-numbered ticks, lines, bars and a
 * legend. No scripts, no external resources; every chart is one
 * <svg id="chart-NAME"> inside a <figure>.
 *
 * @thread any; a chart writes to its FILE only.
 */
#ifndef INTENTD_REPORT_SVG_H
#define INTENTD_REPORT_SVG_H

#include <stddef.h>
#include <stdio.h>

#define ITD_SVG_W 520 /* chart width, px */
#define ITD_SVG_H 320 /* chart height */

/* Series colours; the page's legend and tests use these exact values. */
#define ITD_SVG_COLOURS 6
extern const char *const itd_svg_palette[ITD_SVG_COLOURS];

typedef struct itd_chart_s {
        FILE *f;
        double x0, x1, y0, y1; /* data range shown */
        int time_x;            /* x values are ms since the epoch (UTC) */
        int no_x_ticks;        /* category axis: the caller labels it */
        int legend_bottom;     /* legend in the lower right (curves rise) */
        int legend_rows;       /* drawn so far */
        int legend_total;      /* entries of a bottom legend (0: 4) */
} itd_chart_t;

/**
 * @brief Widens [*lo, *hi] to multiples of a round step (1, 2, 2.5 or 5
 * times a power of ten) giving about `ticks` intervals; an empty or
 * inverted range becomes [lo, lo + 1].
 */
void itd_svg_nice(double *lo, double *hi, int ticks);

/** @brief Opens <figure><svg> with frame, grid, ticks, title and axis
 * labels. Set c's range (and flags) first. */
void itd_chart_open(itd_chart_t *c, FILE *f, const char *id,
                    const char *title, const char *xlabel,
                    const char *ylabel);

/** @brief One series as a path (NAN breaks the line), dots where there are
 * few points (not on dashed reference lines), and a legend entry when
 * name is not NULL. */
void itd_chart_line(itd_chart_t *c, const double *x, const double *y,
                    size_t n, int colour, const char *name, int dashed);

/** @brief The same as a step line over bins [edge[i], edge[i+1]). */
void itd_chart_steps(itd_chart_t *c, const double *edge, const double *y,
                     size_t bins, int colour, const char *name);

/** @brief A bar from y = y0 of the chart to y, between x0 and x1. */
void itd_chart_bar(itd_chart_t *c, double x0, double x1, double y,
                   int colour);

/** @brief A label under the x axis at x, split into lines at '_' and ' '
 * (lower-cased), for category axes. */
void itd_chart_category(itd_chart_t *c, double x, const char *label);

/** @brief Closes the chart with a caption under it. */
void itd_chart_close(itd_chart_t *c, const char *caption);

/** @brief Writes s with <, >, & and " escaped. */
void itd_html_escape(FILE *f, const char *s);

#endif

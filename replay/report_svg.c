/*
 * report_svg.c - inline SVG charts (report_svg.h).
 *
 * Ticks fall on round values: a step of 1, 2, 2.5 or 5 times a power of
 * ten, labelled with just the decimals the step needs; on a time axis a
 * round duration (seconds to weeks) aligned to UTC, labelled as a date or
 * a date and time as the step needs.
 */
#include "report_svg.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define ML 58 /* margins: left, right, top, bottom */
#define MR 16
#define MT 28
#define MB 44
#define TICKS 5       /* about this many intervals per axis */
#define LEGEND_W 200  /* px from the right edge of the plot */
#define MARKERS_MAX 16 /* a series of at most this many points gets dots */

const char *const itd_svg_palette[ITD_SVG_COLOURS] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

static const char *colour(int i) {
        return itd_svg_palette[(i % ITD_SVG_COLOURS + ITD_SVG_COLOURS) %
                               ITD_SVG_COLOURS];
}

static double px(const itd_chart_t *c, double x) {
        return ML + (x - c->x0) / (c->x1 - c->x0) * (ITD_SVG_W - ML - MR);
}

static double py(const itd_chart_t *c, double y) {
        return ITD_SVG_H - MB -
               (y - c->y0) / (c->y1 - c->y0) * (ITD_SVG_H - MT - MB);
}

void itd_html_escape(FILE *f, const char *s) {
        for (; *s; s++) {
                switch (*s) {
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                default: fputc(*s, f);
                }
        }
}

/* 1, 2, 2.5, 5 x 10^k: the smallest at least span / ticks. */
static double nice_step(double span, int ticks) {
        double raw = span / ticks;
        double p = pow(10.0, floor(log10(raw)));
        double m = raw / p;
        double k = m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 2.5 ? 2.5
                   : m <= 5.0 ? 5.0 : 10.0;
        return k * p;
}

void itd_svg_nice(double *lo, double *hi, int ticks) {
        if (!isfinite(*lo) || !isfinite(*hi))
                *lo = 0, *hi = 1;
        if (!(*hi > *lo))
                *hi = *lo + 1;
        double step = nice_step(*hi - *lo, ticks);
        *lo = floor(*lo / step + 1e-9) * step;
        *hi = ceil(*hi / step - 1e-9) * step;
}

/* Decimals that tell ticks `step` apart. */
static int decimals(double step) {
        int d = (int)-floor(log10(step) + 1e-9);
        double m = step / pow(10.0, floor(log10(step) + 1e-9));
        if (fabs(m - 2.5) < 1e-6)
                d++;
        return d > 0 ? d : 0;
}

static void number_label(double v, double step, char *buf, size_t cap) {
        if (fabs(v) < step * 1e-6)
                snprintf(buf, cap, "0"); /* not "-0", "0k" */
        else if (step >= 1e6)
                snprintf(buf, cap, "%.*fM", decimals(step / 1e6), v / 1e6);
        else if (step >= 1e4)
                snprintf(buf, cap, "%.*fk", decimals(step / 1e3), v / 1e3);
        else
                snprintf(buf, cap, "%.*f", decimals(step), v);
}

/* Round durations for a time axis, ms. */
static const int64_t time_steps[] = {
    1000,      2000,      5000,      10000,     15000,      30000,
    60000,     120000,    300000,    600000,    900000,     1800000,
    3600000,   7200000,   10800000,  21600000,  43200000,   86400000,
    172800000, 604800000, 1209600000};

static int64_t time_step(double span) {
        size_t n = sizeof time_steps / sizeof time_steps[0];
        for (size_t i = 0; i < n; i++)
                if (span / (double)time_steps[i] <= TICKS + 1)
                        return time_steps[i];
        return time_steps[n - 1] * (int64_t)ceil(
                                       span / (double)time_steps[n - 1] /
                                       TICKS);
}

static void time_label(double v, int64_t step, char *buf, size_t cap) {
        time_t t = (time_t)floor(v / 1000.0);
        struct tm tm;
        if (!gmtime_r(&t, &tm)) {
                snprintf(buf, cap, "?");
                return;
        }
        strftime(buf, cap,
                 step >= 86400000  ? "%m-%d"
                 : step >= 60000   ? "%m-%d %H:%M"
                                   : "%H:%M:%S",
                 &tm);
}

static void x_tick(const itd_chart_t *c, double v, const char *label) {
        double x = px(c, v);
        /* a label at the right edge would leave the picture */
        const char *anchor = x > ITD_SVG_W - MR - 30
                                 ? " style=\"text-anchor:end\""
                                 : "";
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                "class=\"g\"/><text x=\"%.1f\" y=\"%d\" class=\"xt\"%s>%s"
                "</text>", x, MT, x, ITD_SVG_H - MB, x, ITD_SVG_H - MB + 16,
                anchor, label);
}

static void y_tick(const itd_chart_t *c, double v, const char *label) {
        double y = py(c, v);
        fprintf(c->f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "class=\"g\"/><text x=\"%d\" y=\"%.1f\" class=\"yt\">%s"
                "</text>", ML, y, ITD_SVG_W - MR, y, ML - 6, y + 4, label);
}

static void ticks(const itd_chart_t *c) {
        char label[40];
        double span = c->x1 - c->x0;
        if (c->time_x) {
                int64_t step = time_step(span);
                double first = ceil(c->x0 / (double)step) * (double)step;
                for (double v = first; v <= c->x1; v += (double)step) {
                        time_label(v, step, label, sizeof label);
                        x_tick(c, v, label);
                }
        } else if (!c->no_x_ticks) {
                double step = nice_step(span, TICKS);
                for (double v = ceil(c->x0 / step - 1e-9) * step;
                     v <= c->x1 + step * 1e-9; v += step) {
                        number_label(v, step, label, sizeof label);
                        x_tick(c, v, label);
                }
        }
        double step = nice_step(c->y1 - c->y0, TICKS);
        for (double v = ceil(c->y0 / step - 1e-9) * step;
             v <= c->y1 + step * 1e-9; v += step) {
                number_label(v, step, label, sizeof label);
                y_tick(c, v, label);
        }
}

void itd_chart_open(itd_chart_t *c, FILE *f, const char *id,
                    const char *title, const char *xlabel,
                    const char *ylabel) {
        c->f = f;
        c->legend_rows = 0;
        if (!isfinite(c->x0) || !isfinite(c->x1))
                c->x0 = 0, c->x1 = 1;
        if (!isfinite(c->y0) || !isfinite(c->y1))
                c->y0 = 0, c->y1 = 1;
        if (!(c->x1 > c->x0))
                c->x1 = c->x0 + (c->time_x ? 3600000.0 : 1.0);
        if (!(c->y1 > c->y0))
                c->y1 = c->y0 + 1;
        fprintf(f, "<figure><svg id=\"chart-%s\" xmlns=\"http://www.w3.org/"
                "2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "role=\"img\"><title>", id, ITD_SVG_W, ITD_SVG_H, ITD_SVG_W,
                ITD_SVG_H);
        itd_html_escape(f, title);
        fprintf(f, "</title><rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
                "fill=\"#fff\"/><text x=\"%d\" y=\"18\" class=\"t\">",
                ITD_SVG_W, ITD_SVG_H, ML);
        itd_html_escape(f, title);
        fputs("</text>", f);
        ticks(c);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                "class=\"frame\"/>", ML, MT, ITD_SVG_W - ML - MR,
                ITD_SVG_H - MT - MB);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"xl\">", (ML + ITD_SVG_W -
                MR) / 2, ITD_SVG_H - 8);
        itd_html_escape(f, xlabel);
        fprintf(f, "</text><text transform=\"translate(14 %d) rotate(-90)\" "
                "class=\"xl\">", (MT + ITD_SVG_H - MB) / 2);
        itd_html_escape(f, ylabel);
        fputs("</text>", f);
}

static void legend(itd_chart_t *c, const char *name, int col, int dashed) {
        double lx = ITD_SVG_W - MR - LEGEND_W;
        double ly = MT + 14 + 16 * c->legend_rows;
        if (c->legend_bottom)
                ly = ITD_SVG_H - MB - 8 -
                     16 * ((c->legend_total ? c->legend_total : 4) - 1 -
                           c->legend_rows);
        /* a veil, so lines under the legend do not cross its text */
        fprintf(c->f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%d\" "
                "height=\"16\" fill=\"#fff\" fill-opacity=\"0.8\"/>",
                lx - 4, ly - 12, LEGEND_W - 4);
        fprintf(c->f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
                "stroke=\"%s\" stroke-width=\"3\"%s/><text x=\"%.0f\" "
                "y=\"%.0f\" class=\"lg\">", lx, ly - 4, lx + 18, ly - 4,
                colour(col), dashed ? " stroke-dasharray=\"5 4\"" : "",
                lx + 24, ly);
        itd_html_escape(c->f, name);
        fputs("</text>", c->f);
        c->legend_rows++;
}

void itd_chart_line(itd_chart_t *c, const double *x, const double *y,
                    size_t n, int col, const char *name, int dashed) {
        fprintf(c->f, "<path class=\"series\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"2\"%s d=\"", colour(col),
                dashed ? " stroke-dasharray=\"5 4\"" : "");
        int pen = 0;
        for (size_t i = 0; i < n; i++) {
                if (!isfinite(y[i]) || !isfinite(x[i])) {
                        pen = 0;
                        continue;
                }
                fprintf(c->f, "%s%.1f %.1f", pen ? " L" : "M", px(c, x[i]),
                        py(c, y[i]));
                pen = 1;
        }
        fputs("\"/>", c->f);
        for (size_t i = 0; !dashed && n <= MARKERS_MAX && i < n; i++)
                if (isfinite(y[i]) && isfinite(x[i]))
                        fprintf(c->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\""
                                " fill=\"%s\"/>", px(c, x[i]), py(c, y[i]),
                                colour(col));
        if (name)
                legend(c, name, col, dashed);
}

void itd_chart_steps(itd_chart_t *c, const double *edge, const double *y,
                     size_t bins, int col, const char *name) {
        fprintf(c->f, "<path class=\"series\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"2\" d=\"", colour(col));
        for (size_t i = 0; i < bins; i++)
                fprintf(c->f, "%s%.1f %.1f L%.1f %.1f", i ? " L" : "M",
                        px(c, edge[i]), py(c, y[i]), px(c, edge[i + 1]),
                        py(c, y[i]));
        fputs("\"/>", c->f);
        if (name)
                legend(c, name, col, 0);
}

void itd_chart_bar(itd_chart_t *c, double x0, double x1, double y, int col) {
        if (!isfinite(y))
                return;
        double top = py(c, y), base = py(c, c->y0);
        fprintf(c->f, "<path class=\"series\" fill=\"%s\" d=\"M%.1f %.1f "
                "L%.1f %.1f L%.1f %.1f L%.1f %.1f Z\"/>", colour(col),
                px(c, x0), base, px(c, x0), top, px(c, x1), top, px(c, x1),
                base);
}

void itd_chart_category(itd_chart_t *c, double x, const char *label) {
        double at = px(c, x);
        fprintf(c->f, "<text x=\"%.1f\" y=\"%d\" class=\"xt\">", at,
                ITD_SVG_H - MB + 4);
        char word[48];
        for (const char *p = label; *p;) {
                size_t wl = strcspn(p, "_ ");
                snprintf(word, sizeof word, "%.*s", (int)wl, p);
                for (char *w = word; *w; w++)
                        if (*w >= 'A' && *w <= 'Z')
                                *w = (char)(*w - 'A' + 'a');
                fprintf(c->f, "<tspan x=\"%.1f\" dy=\"11\">", at);
                itd_html_escape(c->f, word);
                fputs("</tspan>", c->f);
                p += wl + (p[wl] != '\0');
        }
        fputs("</text>", c->f);
}

void itd_chart_close(itd_chart_t *c, const char *caption) {
        fputs("</svg><figcaption>", c->f);
        itd_html_escape(c->f, caption);
        fputs("</figcaption></figure>\n", c->f);
}

/*
 * report_html.c - the replay report as one self-contained HTML page,
 * drawn from the JSON report alone (so the two never disagree): summary
 * and comparison tables, then charts where every scorer of the "compare"
 * section (model, baseline, purchase-rate rule, label-rate rule) is drawn
 * on the same axes, in the same colour on every chart.
 */
#include "intentd/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/duration.h"
#include "intentd/mem.h"
#include "report_svg.h"

#define REF_COLOUR 5 /* chance, perfect calibration, base rate: dashed */
#define MAX_SCORERS 4

static const char *str_or(const json_t *v, const char *dflt) {
        return json_is_string(v) ? json_string_value(v) : dflt;
}

static double jd(const json_t *o, const char *key) {
        const json_t *v = json_object_get(o, key);
        return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Pulls two fields of every element of an array into x and y. */
static size_t series(const json_t *arr, const char *kx, const char *ky,
                     double **x, double **y) {
        size_t n = json_array_size(arr);
        *x = itd_xcalloc(n + 1, sizeof **x);
        *y = itd_xcalloc(n + 1, sizeof **y);
        for (size_t i = 0; i < n; i++) {
                (*x)[i] = jd(json_array_get(arr, i), kx);
                (*y)[i] = jd(json_array_get(arr, i), ky);
        }
        return n;
}

static void range_of(const double *v, size_t n, double *lo, double *hi) {
        *lo = INFINITY, *hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
                if (!isfinite(v[i]))
                        continue;
                if (v[i] < *lo)
                        *lo = v[i];
                if (v[i] > *hi)
                        *hi = v[i];
        }
        if (!isfinite(*lo))
                *lo = 0, *hi = 1;
}

/* ---- the scorers of the compare section ------------------------------ */

typedef struct {
        const char *key, *label;
        int colour;
} scorer_t;

/* The scorers the report judged, model first; 0 without a comparison. */
static size_t scorers(const json_t *cmp, scorer_t *out) {
        static const struct {
                const char *key;
                int colour;
        } colours[] = {{"model", 0},
                       {"baseline", 3},
                       {"purchase_rate", 2},
                       {"label_rate", 4}};
        const json_t *arr = json_object_get(cmp, "scorers");
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(arr) && n < MAX_SCORERS; i++) {
                const json_t *s = json_array_get(arr, i);
                scorer_t sc = {str_or(json_object_get(s, "key"), "?"),
                               str_or(json_object_get(s, "label"), "?"), 1};
                for (size_t k = 0; k < 4; k++)
                        if (strcmp(sc.key, colours[k].key) == 0)
                                sc.colour = colours[k].colour;
                out[n++] = sc;
        }
        return n;
}

/* A period's judgement of one scorer. */
static const json_t *judged(const json_t *cmp, const char *period,
                            const char *key) {
        return json_object_get(
            json_object_get(
                json_object_get(json_object_get(cmp, "periods"), period),
                "scorers"),
            key);
}

/* "label 0.672" for a legend. */
static const char *named(char *buf, size_t cap, const scorer_t *s,
                         double v) {
        snprintf(buf, cap, "%s %.3f", s->label, v);
        return buf;
}

/* ---- curves ---------------------------------------------------------- */

/* Scorer s's curve (roc, pr, gains) in a comparison. */
static const json_t *curve_of(const json_t *cmp, const scorer_t *s,
                              const char *curve) {
        return json_object_get(
            json_object_get(json_object_get(cmp, "curves"), s->key), curve);
}

/* One line per scorer for a curve, named with its metric over all
 * labelled events. */
static void scorer_lines(itd_chart_t *c, const json_t *cmp,
                         const scorer_t *sc, size_t k, const char *curve,
                         const char *xkey, const char *ykey,
                         const char *metric) {
        for (size_t j = 0; j < k; j++) {
                double *x, *y;
                size_t n = series(curve_of(cmp, &sc[j], curve), xkey, ykey,
                                  &x, &y);
                char name[80];
                itd_chart_line(c, x, y, n, sc[j].colour,
                               named(name, sizeof name, &sc[j],
                                     jd(judged(cmp, "all", sc[j].key),
                                        metric)),
                               0);
                free(x), free(y);
        }
}

static void html_roc(FILE *f, const json_t *cmp) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        itd_chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1,
                         .legend_bottom = 1, .legend_total = (int)k + 1};
        itd_chart_open(&c, f, "roc", "ROC", "false positive rate",
                       "true positive rate");
        double dx[2] = {0, 1}, dy[2] = {0, 1};
        itd_chart_line(&c, dx, dy, 2, REF_COLOUR, "chance 0.5", 1);
        scorer_lines(&c, cmp, sc, k, "roc", "fpr", "tpr", "auc");
        itd_chart_close(&c, "all labelled events; legend: AUC");
}

static void html_pr(FILE *f, const json_t *cmp) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        const json_t *all =
            json_object_get(json_object_get(cmp, "periods"), "all");
        double base = jd(all, "base_rate");
        /* the first few points (recall near 0) hold a handful of examples
         * each; the axis serves the rest of the curve */
        double top = base;
        for (size_t j = 0; j < k; j++) {
                const json_t *pr = curve_of(cmp, &sc[j], "pr");
                for (size_t i = 0; i < json_array_size(pr); i++) {
                        const json_t *p = json_array_get(pr, i);
                        if (jd(p, "recall") >= 0.02 &&
                            jd(p, "precision") > top)
                                top = jd(p, "precision");
                }
        }
        itd_chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = fmin(top, 1.0)};
        itd_svg_nice(&c.y0, &c.y1, 5);
        itd_chart_open(&c, f, "pr", "Precision-recall", "recall",
                       "precision");
        double bx[2] = {0, 1}, by[2] = {base, base};
        char name[80];
        snprintf(name, sizeof name, "base rate %.3f", base);
        itd_chart_line(&c, bx, by, 2, REF_COLOUR, name, 1);
        for (size_t j = 0; j < k; j++) {
                double *x, *y;
                size_t n = series(curve_of(cmp, &sc[j], "pr"), "recall",
                                  "precision", &x, &y);
                for (size_t i = 0; i < n; i++)
                        if (y[i] > c.y1)
                                y[i] = c.y1; /* clipped at the frame */
                itd_chart_line(&c, x, y, n, sc[j].colour, sc[j].label, 0);
                free(x), free(y);
        }
        itd_chart_close(&c, "all labelled events; precision clipped at the "
                            "top of the frame");
}

static void html_gains(FILE *f, const json_t *cmp) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        itd_chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1,
                         .legend_bottom = 1, .legend_total = (int)k + 1};
        itd_chart_open(&c, f, "gains", "Cumulative gains",
                       "share of examples, highest scores first",
                       "share of purchases captured");
        double dx[2] = {0, 1}, dy[2] = {0, 1};
        itd_chart_line(&c, dx, dy, 2, REF_COLOUR, "random: lift 1", 1);
        scorer_lines(&c, cmp, sc, k, "gains", "share", "captured",
                     "lift_top10");
        double tx[2] = {0.1, 0.1}, ty[2] = {0, 1};
        itd_chart_line(&c, tx, ty, 2, REF_COLOUR, NULL, 1);
        itd_chart_close(&c, "all labelled events; legend: lift of the top "
                            "10% (dashed line)");
}

static void html_calibration(FILE *f, const json_t *cmp) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        const json_t *cal = json_object_get(cmp, "calibration");
        /* the models' range: a rule's bins far beyond it would squash the
         * models' into a corner */
        double hi = 0;
        for (size_t j = 0; j < k; j++) {
                if (strcmp(sc[j].key, "model") != 0 &&
                    strcmp(sc[j].key, "baseline") != 0)
                        continue;
                const json_t *b = json_object_get(
                    json_object_get(cal, sc[j].key), "bins");
                for (size_t i = 0; i < json_array_size(b); i++) {
                        const json_t *bin = json_array_get(b, i);
                        hi = fmax(hi, fmax(jd(bin, "mean_predicted"),
                                           jd(bin, "observed_rate")));
                }
        }
        itd_chart_t c = {.x0 = 0, .x1 = fmin(hi * 1.1, 1.0), .y0 = 0,
                         .legend_bottom = 1, .legend_total = (int)k + 1};
        itd_svg_nice(&c.x0, &c.x1, 5);
        c.y1 = c.x1;
        itd_chart_open(&c, f, "calibration",
                       "Calibration (10 equal-mass bins)",
                       "mean predicted probability",
                       "observed purchase rate");
        double dx[2] = {0, c.x1}, dy[2] = {0, c.x1};
        itd_chart_line(&c, dx, dy, 2, REF_COLOUR, "perfect", 1);
        size_t beyond = 0;
        for (size_t j = 0; j < k; j++) {
                const json_t *s = json_object_get(cal, sc[j].key);
                double *x, *y;
                size_t n = series(json_object_get(s, "bins"),
                                  "mean_predicted", "observed_rate", &x, &y);
                for (size_t i = 0; i < n; i++)
                        if (x[i] > c.x1 || y[i] > c.y1)
                                x[i] = y[i] = NAN, beyond++;
                char name[80];
                snprintf(name, sizeof name, "%s ECE %.4f", sc[j].label,
                         jd(s, "ece"));
                itd_chart_line(&c, x, y, n, sc[j].colour, name, 0);
                free(x), free(y);
        }
        char cap[160];
        snprintf(cap, sizeof cap, "all labelled events; equal scores share a "
                 "bin (a nearly constant score has few); %zu bins beyond "
                 "the frame left out", beyond);
        itd_chart_close(&c, cap);
}

/* ---- over event time ------------------------------------------------- */

static void html_over_time(FILE *f, const json_t *cmp, const char *what,
                           const char *id, const char *title,
                           const char *ylabel) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        const json_t *ot = json_object_get(cmp, "over_time");
        const json_t *pts = json_object_get(ot, "points");
        size_t n = json_array_size(pts);
        double *x = itd_xcalloc(n + 1, sizeof *x);
        double *y = itd_xcalloc((n + 1) * MAX_SCORERS, sizeof *y);
        for (size_t i = 0; i < n; i++) {
                const json_t *p = json_array_get(pts, i);
                x[i] = jd(p, "ts");
                for (size_t j = 0; j < k; j++)
                        y[j * (n + 1) + i] =
                            jd(json_object_get(p, what), sc[j].key);
        }
        itd_chart_t c = {.time_x = 1};
        range_of(x, n, &c.x0, &c.x1);
        range_of(y, (n + 1) * k, &c.y0, &c.y1);
        if (strcmp(what, "auc") == 0)
                c.y0 = fmin(c.y0, 0.5), c.y1 = fmax(c.y1, 0.5);
        else
                c.y0 = 0;
        itd_svg_nice(&c.y0, &c.y1, 5);
        if (c.y1 > 1 && strcmp(what, "auc") == 0)
                c.y1 = 1;
        itd_chart_open(&c, f, id, title, "event time (UTC)", ylabel);
        if (strcmp(what, "auc") == 0) {
                double hx[2] = {c.x0, c.x1}, hy[2] = {0.5, 0.5};
                itd_chart_line(&c, hx, hy, 2, REF_COLOUR, NULL, 1);
        }
        for (size_t j = 0; j < k; j++)
                itd_chart_line(&c, x, y + j * (n + 1), n, sc[j].colour,
                               sc[j].label, 0);
        char cap[160], step[32];
        itd_duration_format((int64_t)jd(ot, "step_ms"), step, sizeof step);
        snprintf(cap, sizeof cap, "every %s of event time, the last %.0f "
                 "labelled examples before it", step, jd(ot, "window"));
        itd_chart_close(&c, cap);
        free(x), free(y);
}

/* ---- distributions and segments -------------------------------------- */

static void html_histogram(FILE *f, const json_t *cmp) {
        const json_t *h =
            json_object_get(json_object_get(cmp, "histogram"), "model");
        const json_t *pos = json_object_get(h, "pos_share");
        const json_t *neg = json_object_get(h, "neg_share");
        size_t bins = json_array_size(pos);
        double lo = jd(h, "lo"), hi = jd(h, "hi");
        double *edge = itd_xcalloc(bins + 2, sizeof *edge);
        double *yp = itd_xcalloc(bins + 1, sizeof *yp);
        double *yn = itd_xcalloc(bins + 1, sizeof *yn);
        double top = 0;
        for (size_t b = 0; b <= bins; b++)
                edge[b] = lo + (hi - lo) * (double)b / (double)bins;
        for (size_t b = 0; b < bins; b++) {
                yp[b] = json_number_value(json_array_get(pos, b));
                yn[b] = json_number_value(json_array_get(neg, b));
                top = fmax(top, fmax(yp[b], yn[b]));
        }
        itd_chart_t c = {.x0 = lo, .x1 = hi, .y0 = 0, .y1 = top};
        itd_svg_nice(&c.y0, &c.y1, 5);
        itd_chart_open(&c, f, "score_hist", "Model score by outcome",
                       "purchase probability given", "share of the class");
        char name[64];
        snprintf(name, sizeof name, "purchased (%.0f)", jd(h, "positives"));
        itd_chart_steps(&c, edge, yp, bins, 1, name);
        snprintf(name, sizeof name, "did not (%.0f)", jd(h, "negatives"));
        itd_chart_steps(&c, edge, yn, bins, 0, name);
        itd_chart_close(&c, "all labelled events, scores between their 0.1% "
                            "and 99.9% quantiles (the rest in the end bins)");
        free(edge), free(yp), free(yn);
}

static void html_segments(FILE *f, const json_t *cmp) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        const json_t *seg = json_object_get(cmp, "segments");
        size_t n = json_array_size(seg);
        itd_chart_t c = {.x0 = 0, .x1 = (double)(n ? n : 1), .y0 = 0,
                         .y1 = 1, .no_x_ticks = 1};
        itd_chart_open(&c, f, "segments", "AUC by segment", "",
                       "AUC");
        double hx[2] = {0, c.x1}, hy[2] = {0.5, 0.5};
        itd_chart_line(&c, hx, hy, 2, REF_COLOUR, NULL, 1);
        double w = 0.8 / (double)(k ? k : 1);
        for (size_t i = 0; i < n; i++) {
                const json_t *s = json_array_get(seg, i);
                for (size_t j = 0; j < k; j++) {
                        double x0 = (double)i + 0.1 + w * (double)j;
                        itd_chart_bar(&c, x0, x0 + w * 0.9,
                                      jd(json_object_get(s, "auc"),
                                         sc[j].key),
                                      sc[j].colour);
                }
                itd_chart_category(&c, (double)i + 0.5,
                                   str_or(json_object_get(s, "name"), "?"));
        }
        itd_chart_close(&c, "bars in the order of the table below; no bar: "
                            "one class only");
        fputs("<table class=\"conf\"><caption>AUC by segment (all labelled "
              "events)</caption><tr><th>segment</th><th>examples</th>"
              "<th>positive</th>", f);
        for (size_t j = 0; j < k; j++) {
                fputs("<th>", f);
                itd_html_escape(f, sc[j].label);
                fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        for (size_t i = 0; i < n; i++) {
                const json_t *s = json_array_get(seg, i);
                fputs("<tr><th>", f);
                itd_html_escape(f, str_or(json_object_get(s, "name"), "?"));
                fprintf(f, "</th><td>%.0f</td><td>%.0f</td>", jd(s, "n"),
                        jd(s, "positives"));
                for (size_t j = 0; j < k; j++)
                        fprintf(f, "<td>%.3f</td>",
                                jd(json_object_get(s, "auc"), sc[j].key));
                fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
}

/* ---- the run --------------------------------------------------------- */

static void html_event_mix(FILE *f, const json_t *mix) {
        size_t n = json_object_size(mix), i = 0;
        double max = 1;
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)mix, key, v)
                max = fmax(max, json_number_value(v));
        itd_chart_t c = {.x0 = 0, .x1 = (double)(n ? n : 1), .y0 = 0,
                         .y1 = max * 1.1, .no_x_ticks = 1};
        itd_svg_nice(&c.y0, &c.y1, 5);
        itd_chart_open(&c, f, "event_mix", "Event mix", "", "events");
        json_object_foreach((json_t *)mix, key, v) {
                itd_chart_bar(&c, (double)i + 0.15, (double)i + 0.85,
                              json_number_value(v), (int)i);
                itd_chart_category(&c, (double)i + 0.5, key);
                i++;
        }
        itd_chart_close(&c, "events read, by type");
}

static void html_throughput(FILE *f, const json_t *tp) {
        double *x, *y;
        size_t n = series(json_object_get(tp, "samples"), "seconds",
                          "events_per_s", &x, &y);
        itd_chart_t c = {0};
        range_of(x, n, &c.x0, &c.x1);
        range_of(y, n, &c.y0, &c.y1);
        c.x0 = 0, c.y0 = 0;
        itd_svg_nice(&c.x0, &c.x1, 5);
        itd_svg_nice(&c.y0, &c.y1, 5);
        itd_chart_open(&c, f, "throughput", "Throughput", "wall time (s)",
                       "events/s");
        itd_chart_line(&c, x, y, n, 2, NULL, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "%.0f events/s over %.2f s",
                 jd(tp, "events_per_s"), jd(tp, "seconds"));
        itd_chart_close(&c, cap);
        free(x), free(y);
}

/* ---- tables ---------------------------------------------------------- */

static void row(FILE *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void row(FILE *f, const char *name, const char *fmt, ...) {
        char buf[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        fputs("<tr><th>", f);
        itd_html_escape(f, name);
        fputs("</th><td>", f);
        itd_html_escape(f, buf);
        fputs("</td></tr>\n", f);
}

static void html_summary(FILE *f, const json_t *r) {
        const json_t *in = json_object_get(r, "input");
        const json_t *pur = json_object_get(r, "purchase");
        const json_t *ov = json_object_get(pur, "overall");
        const json_t *best = json_object_get(pur, "best_f1");
        const json_t *nx = json_object_get(r, "next_action");
        const json_t *tp = json_object_get(r, "throughput");
        fputs("<table class=\"summary\">\n", f);
        row(f, "input", "%s (%s)", str_or(json_object_get(in, "path"), ""),
            str_or(json_object_get(in, "format"), ""));
        row(f, "event time", "%s .. %s",
            str_or(json_object_get(in, "first_event_time"), "-"),
            str_or(json_object_get(in, "last_event_time"), "-"));
        row(f, "events", "%.0f read, %.0f bad lines, %.0f late (predicted, "
            "not learned from)", jd(in, "events"), jd(in, "bad_lines"),
            jd(in, "late"));
        row(f, "judged examples", "%.0f (%.0f positive, base rate %.4f)",
            jd(ov, "n"), jd(ov, "positives"), jd(ov, "base_rate"));
        row(f, "AUC", "%.4f (histogram error at most %.4f)", jd(ov, "auc"),
            jd(ov, "auc_err_bound"));
        row(f, "log loss", "%.4f", jd(ov, "logloss"));
        row(f, "ECE (10 equal-width bins)", "%.4f", jd(ov, "ece"));
        row(f, "at the threshold",
            "%.2f: precision %.3f, recall %.3f, F1 %.3f, accuracy %.3f",
            jd(ov, "threshold"), jd(ov, "precision"), jd(ov, "recall"),
            jd(ov, "f1"), jd(ov, "accuracy"));
        row(f, "confusion at the threshold", "TP %.0f  FP %.0f  TN %.0f  "
            "FN %.0f", jd(ov, "tp"), jd(ov, "fp"), jd(ov, "tn"),
            jd(ov, "fn"));
        row(f, "best F1 of the sweep",
            "%.3f at %.2f (precision %.3f, recall %.3f)", jd(best, "f1"),
            jd(best, "threshold"), jd(best, "precision"),
            jd(best, "recall"));
        row(f, "next action", "accuracy %.3f, log loss %.4f over %.0f",
            jd(nx, "accuracy"), jd(nx, "logloss"), jd(nx, "n"));
        row(f, "throughput", "%.0f events/s (%.2f s)",
            jd(tp, "events_per_s"), jd(tp, "seconds"));
        fputs("</table>\n", f);
}

static void html_compare_table(FILE *f, const json_t *cmp,
                               const char *period, const char *title) {
        scorer_t sc[MAX_SCORERS];
        size_t k = scorers(cmp, sc);
        const json_t *p =
            json_object_get(json_object_get(cmp, "periods"), period);
        const json_t *m = json_object_get(cmp, "method");
        fprintf(f, "<table class=\"conf\"><caption>");
        itd_html_escape(f, title);
        fprintf(f, ": %.0f examples, %.0f positive, %.0f users; 95%% "
                "intervals from %.0f resamples of users</caption><tr><th>"
                "</th><th>AUC</th><th>95%% (users)</th><th>model minus it"
                "</th><th>lift@10%%</th><th>ECE (equal mass)</th><th>log "
                "loss</th></tr>\n", jd(p, "n"), jd(p, "positives"),
                jd(p, "users"), jd(m, "resamples"));
        for (size_t j = 0; j < k; j++) {
                const json_t *s = judged(cmp, period, sc[j].key);
                const json_t *ci = json_object_get(s, "auc_ci95");
                const json_t *d = json_object_get(s, "model_lead_ci95");
                fprintf(f, "<tr><th style=\"color:%s\">",
                        itd_svg_palette[sc[j].colour]);
                itd_html_escape(f, sc[j].label);
                fprintf(f, "</th><td>%.3f</td><td>[%.3f, %.3f]</td><td>",
                        jd(s, "auc"), json_number_value(json_array_get(ci, 0)),
                        json_number_value(json_array_get(ci, 1)));
                if (d)
                        fprintf(f, "[%+.3f, %+.3f]",
                                json_number_value(json_array_get(d, 0)),
                                json_number_value(json_array_get(d, 1)));
                fprintf(f, "</td><td>%.2f</td><td>%.4f</td><td>%.4f</td>"
                        "</tr>\n", jd(s, "lift_top10"),
                        jd(s, "ece_equal_mass"), jd(s, "logloss"));
        }
        fputs("</table>\n", f);
}

static void html_next_confusion(FILE *f, const json_t *nx) {
        const json_t *cls = json_object_get(nx, "classes");
        const json_t *m = json_object_get(nx, "confusion");
        fputs("<table class=\"conf\"><caption>Next action: true (rows) by "
              "predicted (columns)</caption><tr><th></th>", f);
        for (size_t j = 0; j < json_array_size(cls); j++)
                fprintf(f, "<th>%s</th>",
                        json_string_value(json_array_get(cls, j)));
        fputs("</tr>\n", f);
        for (size_t i = 0; i < json_array_size(m); i++) {
                fprintf(f, "<tr><th>%s</th>",
                        json_string_value(json_array_get(cls, i)));
                const json_t *r = json_array_get(m, i);
                for (size_t j = 0; j < json_array_size(r); j++)
                        fprintf(f, "<td>%" JSON_INTEGER_FORMAT "</td>",
                                json_integer_value(json_array_get(r, j)));
                fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
}

/* Triggers per rule and threshold (trigsweep.h): how many would have
 * fired on this data, the configured rule marked. */
static void html_triggers(FILE *f, const json_t *tr) {
        const json_t *rows = json_object_get(tr, "rows");
        fprintf(f, "<table class=\"summary\"><caption>Marketing triggers "
                "that would have fired over %" JSON_INTEGER_FORMAT " scores, "
                "per rule (configured rule in bold; same cool-down and "
                "staleness guard for all)</caption>\n<tr><th>rule</th>"
                "<th>parameter</th><th>re-arm at</th><th>UP</th><th>DOWN"
                "</th><th>users fired</th><th>UP per 1000 events</th></tr>\n",
                json_integer_value(json_object_get(tr, "scores")));
        for (size_t i = 0; i < json_array_size(rows); i++) {
                const json_t *r = json_array_get(rows, i);
                int cfg = json_is_true(json_object_get(r, "configured"));
                fprintf(f, "<tr%s><td>%s</td><td>%g</td><td>%g</td>"
                        "<td>%" JSON_INTEGER_FORMAT "</td><td>%"
                        JSON_INTEGER_FORMAT "</td><td>%" JSON_INTEGER_FORMAT
                        "</td><td>%.2f</td></tr>\n",
                        cfg ? " style=\"font-weight:bold\"" : "",
                        str_or(json_object_get(r, "rule"), "?"),
                        jd(r, "parameter"), jd(r, "exit_parameter"),
                        json_integer_value(json_object_get(r, "up")),
                        json_integer_value(json_object_get(r, "down")),
                        json_integer_value(json_object_get(r, "users")),
                        jd(r, "up_per_1000_events"));
        }
        fputs("</table>\n", f);
}

static void html_config(FILE *f, const json_t *conf) {
        const char *key;
        const json_t *v;
        fputs("<table class=\"summary\"><caption>Configuration</caption>\n",
              f);
        json_object_foreach((json_t *)conf, key, v) {
                char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                                               JSON_REAL_PRECISION(6));
                row(f, key, "%s", text ? text : "?");
                free(text);
        }
        fputs("</table>\n", f);
}

itd_err_t itd_report_write_html(const json_t *r, const char *path,
                                char *errstr, size_t errstr_size) {
        FILE *f = fopen(path, "w");
        if (!f) {
                snprintf(errstr, errstr_size, "cannot write \"%s\": %s", path,
                         strerror(errno));
                return ITD_ERR_IO;
        }
        const json_t *in = json_object_get(r, "input");
        const json_t *cmp = json_object_get(r, "compare");
        int judged_any = json_object_get(cmp, "periods") != NULL;
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
              "charset=\"utf-8\"><title>intentd replay: ", f);
        itd_html_escape(f, str_or(json_object_get(in, "path"), ""));
        fputs("</title>\n<style>\n"
              "body{font-family:sans-serif;margin:24px;color:#222;"
              "background:#fff}\n"
              "h1{font-size:22px}h2{font-size:17px;margin-top:24px}\n"
              "figure{display:inline-block;margin:8px}\n"
              "figcaption{font-size:12px;color:#555;text-align:center;"
              "max-width:520px}\n"
              "table{border-collapse:collapse;margin:12px 0}\n"
              "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;"
              "text-align:left}\n"
              "svg .g{stroke:#e4e4e4}svg .frame{fill:none;stroke:#888}\n"
              "svg text{font-size:11px;fill:#333}svg .t{font-size:14px;"
              "font-weight:bold}\n"
              "svg .xt{text-anchor:middle}svg .yt{text-anchor:end}\n"
              "svg .xl{text-anchor:middle;font-size:12px}\n"
              "</style></head><body>\n<h1>intentd replay: ", f);
        itd_html_escape(f, str_or(json_object_get(in, "path"), ""));
        fputs("</h1>\n<p>Progressive validation: every prediction was judged "
              "before the model learned from it.</p>\n", f);
        html_summary(f, r);
        if (judged_any) {
                fputs("<h2>On the same examples: the model, the baseline and "
                      "the rules</h2>\n", f);
                html_compare_table(f, cmp, "all", "All labelled events");
                html_compare_table(f, cmp, "last",
                                   "Last 30% of event time");
                fputs("<div class=\"charts\">\n", f);
                html_roc(f, cmp);
                html_pr(f, cmp);
                html_gains(f, cmp);
                html_calibration(f, cmp);
                html_over_time(f, cmp, "auc", "auc_time",
                               "AUC over event time", "AUC");
                html_over_time(f, cmp, "logloss", "logloss_time",
                               "Log loss over event time", "log loss");
                html_histogram(f, cmp);
                html_segments(f, cmp);
                fputs("</div>\n", f);
        }
        fputs("<h2>The run</h2>\n<div class=\"charts\">\n", f);
        html_event_mix(f, json_object_get(r, "event_mix"));
        html_throughput(f, json_object_get(r, "throughput"));
        fputs("</div>\n", f);
        html_next_confusion(f, json_object_get(r, "next_action"));
        if (json_object_get(r, "triggers"))
                html_triggers(f, json_object_get(r, "triggers"));
        if (json_object_get(r, "config"))
                html_config(f, json_object_get(r, "config"));
        fputs("</body></html>\n", f);
        if (ferror(f) | fclose(f)) {
                snprintf(errstr, errstr_size, "cannot write \"%s\": %s", path,
                         strerror(errno));
                return ITD_ERR_IO;
        }
        return ITD_OK;
}

/*
 * compare_json.c - the "compare" section of the replay report: the
 * judgements of compare.c and the data behind the report's charts, every
 * scorer on the same examples (docs/ACCURACY.md, "Report").
 *
 * Curves come from one ranking per scorer, walked from the top score down
 * in groups of equal scores (a group is one step of the curve, so ties are
 * drawn as the straight segment their expected order gives). AUC over
 * event time is a rolling window of the last `window` labelled examples,
 * evaluated at steps of a round duration chosen so the robust span holds
 * at most OVER_TIME_POINTS of them.
 */
#include "compare_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

#define CURVE_STEP 0.004      /* curve points closer than this merge */
#define ECE_BINS 10
#define OVER_TIME_POINTS 48   /* most steps over the robust span */
#define WINDOW_SHARE 10       /* rolling window: n / 10 examples ... */
#define WINDOW_MIN 200        /* ... but at least this many */
#define HIST_BINS 40
#define WINDOW_CLASS_MIN 10   /* a window's AUC needs this many of each */

static json_t *jnum(double v) {
        return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jint(uint64_t v) { return json_integer((json_int_t)v); }

static json_t *jci(itd_eval_interval_t ci) {
        return json_pack("[o,o]", jnum(ci.lo), jnum(ci.hi));
}

static json_t *period_json(const itd_compare_t *cmp,
                           const itd_compare_period_t *p) {
        json_t *sc = json_object();
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                if (!cmp->has[c])
                        continue;
                const itd_compare_score_t *s = &p->sc[c];
                json_t *o = json_pack(
                    "{s:o,s:o,s:o,s:o,s:o}", "auc", jnum(s->auc),
                    "auc_ci95", jci(s->auc_ci), "lift_top10",
                    jnum(s->lift10), "ece_equal_mass", jnum(s->ece),
                    "logloss", jnum(s->logloss));
                if (c != ITD_SC_MODEL)
                        json_object_set_new(o, "model_lead_ci95",
                                            jci(s->model_lead));
                json_object_set_new(sc, itd_scorer_key(c), o);
        }
        return json_pack("{s:o,s:o,s:o,s:o,s:I,s:I,s:o}", "n", jint(p->n),
                         "positives", jint(p->positives), "users",
                         jint(p->users), "base_rate",
                         jnum(p->n ? (double)p->positives / (double)p->n
                                   : NAN),
                         "from_ts", (json_int_t)p->from_ts, "to_ts",
                         (json_int_t)p->to_ts, "scorers", sc);
}

/* ROC, precision-recall and cumulative gains of one scorer. */
static json_t *curves_json(const float *s, const uint8_t *y, size_t n) {
        uint32_t *order = itd_xcalloc(n + 1, sizeof *order);
        itd_eval_order(s, n, order);
        double P = 0;
        for (size_t i = 0; i < n; i++)
                P += y[i];
        double N = (double)n - P;
        json_t *roc = json_array(), *pr = json_array(), *gains = json_array();
        json_array_append_new(roc, json_pack("{s:f,s:f}", "fpr", 0.0, "tpr",
                                             0.0));
        json_array_append_new(gains, json_pack("{s:f,s:f}", "share", 0.0,
                                               "captured", 0.0));
        double tp = 0, fp = 0;
        double last_roc[2] = {0, 0}, last_pr[2] = {-1, -1},
               last_g[2] = {0, 0};
        for (size_t b = n; b > 0;) {
                size_t a = b;
                do {
                        a--;
                        tp += y[order[a]];
                        fp += !y[order[a]];
                } while (a > 0 && s[order[a - 1]] == s[order[b - 1]]);
                b = a;
                int last = b == 0;
                double fpr = N ? fp / N : 0, tpr = P ? tp / P : 0;
                double thr = s[order[a]];
                if (last || fabs(fpr - last_roc[0]) >= CURVE_STEP ||
                    fabs(tpr - last_roc[1]) >= CURVE_STEP) {
                        json_array_append_new(
                            roc, json_pack("{s:f,s:f,s:f}", "fpr", fpr,
                                           "tpr", tpr, "threshold", thr));
                        last_roc[0] = fpr, last_roc[1] = tpr;
                }
                double prec = tp / (tp + fp);
                if (P && (last || fabs(tpr - last_pr[0]) >= CURVE_STEP ||
                          fabs(prec - last_pr[1]) >= CURVE_STEP)) {
                        json_array_append_new(
                            pr, json_pack("{s:f,s:f,s:f}", "recall", tpr,
                                          "precision", prec, "threshold",
                                          thr));
                        last_pr[0] = tpr, last_pr[1] = prec;
                }
                double share = (tp + fp) / (double)n;
                if (last || fabs(share - last_g[0]) >= CURVE_STEP ||
                    fabs(tpr - last_g[1]) >= CURVE_STEP) {
                        json_array_append_new(
                            gains, json_pack("{s:f,s:f}", "share", share,
                                             "captured", tpr));
                        last_g[0] = share, last_g[1] = tpr;
                }
        }
        free(order);
        return json_pack("{s:o,s:o,s:o}", "roc", roc, "pr", pr, "gains",
                         gains);
}

static json_t *calibration_json(const float *s, const uint8_t *y, size_t n) {
        itd_eval_bin_t bins[ECE_BINS];
        double ece;
        size_t nb = itd_eval_calibration(s, y, n, ECE_BINS, bins, &ece);
        json_t *arr = json_array();
        for (size_t b = 0; b < nb; b++)
                json_array_append_new(
                    arr, json_pack("{s:o,s:f,s:f,s:f,s:f}", "count",
                                   jint(bins[b].n), "lo", bins[b].lo, "hi",
                                   bins[b].hi, "mean_predicted",
                                   bins[b].mean_score, "observed_rate",
                                   bins[b].rate));
        return json_pack("{s:o,s:o}", "ece", jnum(ece), "bins", arr);
}

/* Round steps for the time axis, ms. */
static const int64_t nice_steps[] = {
    60000,     120000,    300000,     600000,     900000,     1800000,
    3600000,   7200000,   10800000,   21600000,   43200000,   86400000,
    172800000, 604800000, 1209600000, 2592000000};

static int64_t floor_to(int64_t t, int64_t step) {
        int64_t q = t / step;
        return (t % step != 0 && t < 0 ? q - 1 : q) * step;
}

static json_t *over_time_json(const itd_compare_t *cmp) {
        size_t n = cmp->n;
        int64_t lo = cmp->span_lo, hi = cmp->span_hi;
        size_t ns = sizeof nice_steps / sizeof nice_steps[0];
        int64_t step = nice_steps[ns - 1];
        for (size_t i = 0; i < ns; i++)
                if ((hi - lo) / nice_steps[i] < OVER_TIME_POINTS) {
                        step = nice_steps[i];
                        break;
                }
        size_t window = n / WINDOW_SHARE > WINDOW_MIN ? n / WINDOW_SHARE
                                                      : WINDOW_MIN;
        json_t *points = json_array();
        size_t end = 0, prev_end = 0;
        for (int64_t t = floor_to(lo, step) + step; n && t <= hi + step;
             t += step) {
                /* the window ends at the last example before t */
                while (end < n && cmp->ex[cmp->by_time[end]].ts < t)
                        end++;
                if (end == prev_end)
                        continue; /* nothing new in this step */
                prev_end = end;
                size_t start = end > window ? end - window : 0;
                cmp_subset_t s;
                cmp_subset_init(cmp, &s, cmp->by_time + start, end - start);
                size_t pos = 0;
                for (size_t j = 0; j < s.n; j++)
                        pos += s.label[j];
                json_t *auc = json_object(), *ll = json_object();
                int judged = pos >= WINDOW_CLASS_MIN &&
                             s.n - pos >= WINDOW_CLASS_MIN;
                for (int c = 0; c < ITD_SC__COUNT; c++) {
                        if (!cmp->has[c])
                                continue;
                        json_object_set_new(
                            auc, itd_scorer_key(c),
                            jnum(judged ? itd_eval_auc(s.score[c], s.label,
                                                       s.n)
                                        : NAN));
                        json_object_set_new(
                            ll, itd_scorer_key(c),
                            jnum(cmp_logloss(s.score[c], s.label, s.n)));
                }
                json_array_append_new(
                    points, json_pack("{s:I,s:o,s:o,s:o,s:o}", "ts",
                                      (json_int_t)t, "n", jint(s.n),
                                      "positives", jint(pos), "auc", auc,
                                      "logloss", ll));
                cmp_subset_free(&s);
        }
        return json_pack("{s:I,s:o,s:o}", "step_ms", (json_int_t)step,
                         "window", jint(window), "points", points);
}

static int flt_cmp(const void *a, const void *b) {
        float x = *(const float *)a, y = *(const float *)b;
        return (x > y) - (x < y);
}

/* Score histogram per class over the scores' robust range (0.1% .. 99.9%;
 * scores outside it count in the end bins), as shares of each class. */
static json_t *histogram_json(const float *s, const uint8_t *y, size_t n) {
        float *sorted = itd_xcalloc(n + 1, sizeof *sorted);
        memcpy(sorted, s, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, flt_cmp);
        double lo = n ? sorted[(size_t)floor(0.001 * (double)(n - 1))] : 0;
        double hi = n ? sorted[(size_t)ceil(0.999 * (double)(n - 1))] : 1;
        free(sorted);
        if (!(hi > lo))
                lo -= 0.005, hi += 0.005;
        double pos[HIST_BINS] = {0}, neg[HIST_BINS] = {0}, P = 0, N = 0;
        for (size_t i = 0; i < n; i++) {
                double f = (s[i] - lo) / (hi - lo) * HIST_BINS;
                int b = f < 0 ? 0 : f >= HIST_BINS ? HIST_BINS - 1 : (int)f;
                if (y[i])
                        pos[b]++, P++;
                else
                        neg[b]++, N++;
        }
        json_t *jp = json_array(), *jn = json_array();
        for (int b = 0; b < HIST_BINS; b++) {
                json_array_append_new(jp, jnum(P ? pos[b] / P : 0));
                json_array_append_new(jn, jnum(N ? neg[b] / N : 0));
        }
        return json_pack("{s:f,s:f,s:i,s:o,s:o,s:o,s:o}", "lo", lo, "hi", hi,
                         "bins", HIST_BINS, "positives", jint((uint64_t)P),
                         "negatives", jint((uint64_t)N), "pos_share", jp,
                         "neg_share", jn);
}

static json_t *segment_json(const itd_compare_t *cmp, const char *name,
                            const uint32_t *idx, size_t n) {
        cmp_subset_t s;
        cmp_subset_init(cmp, &s, idx, n);
        size_t pos = 0;
        for (size_t j = 0; j < n; j++)
                pos += s.label[j];
        json_t *auc = json_object();
        for (int c = 0; c < ITD_SC__COUNT; c++)
                if (cmp->has[c])
                        json_object_set_new(
                            auc, itd_scorer_key(c),
                            jnum(itd_eval_auc(s.score[c], s.label, n)));
        cmp_subset_free(&s);
        return json_pack("{s:s,s:o,s:o,s:o}", "name", name, "n", jint(n),
                         "positives", jint(pos), "auc", auc);
}

/* Before the user's first purchase, after it (the event itself counts),
 * then by the type of the event predicted on. */
static json_t *segments_json(const itd_compare_t *cmp) {
        size_t n = cmp->n;
        uint32_t *idx = itd_xcalloc(n + 1, sizeof *idx);
        json_t *arr = json_array();
        for (int bought = 0; bought <= 1; bought++) {
                size_t m = 0;
                for (size_t i = 0; i < n; i++)
                        if (cmp->ex[cmp->by_time[i]].bought == bought)
                                idx[m++] = cmp->by_time[i];
                json_array_append_new(
                    arr, segment_json(cmp,
                                      bought ? "after first purchase"
                                             : "before first purchase",
                                      idx, m));
        }
        for (int t = 0; t < ITD_EV__COUNT; t++) {
                size_t m = 0;
                for (size_t i = 0; i < n; i++)
                        if (cmp->ex[cmp->by_time[i]].type == t)
                                idx[m++] = cmp->by_time[i];
                if (m == 0)
                        continue;
                json_array_append_new(
                    arr, segment_json(cmp,
                                      itd_event_type_name((itd_event_type_t)t),
                                      idx, m));
        }
        free(idx);
        return arr;
}

json_t *itd_compare_json(const itd_compare_t *cmp) {
        json_t *root = json_object();
        json_t *scorers = json_array();
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                char label[48];
                if (cmp->has[c])
                        json_array_append_new(
                            scorers,
                            json_pack("{s:s,s:s}", "key", itd_scorer_key(c),
                                      "label",
                                      itd_compare_label(cmp, c, label,
                                                        sizeof label)));
        }
        json_object_set_new(root, "scorers", scorers);
        json_object_set_new(
            root, "method",
            json_pack("{s:o,s:I,s:f,s:i,s:f,s:f,s:f,s:I}", "resamples",
                      jint(cmp->resamples), "seed",
                      (json_int_t)cmp->conf.seed, "level", 0.95, "ece_bins",
                      ECE_BINS, "test_share", cmp->conf.test_share,
                      "span_quantile", cmp->conf.span_quantile,
                      "label_rate_prior_weight", cmp->conf.prior_weight,
                      "horizon_ms", (json_int_t)cmp->conf.horizon_ms));
        json_object_set_new(root, "non_finite", jint(cmp->non_finite));
        if (!cmp->finished || cmp->n == 0) {
                json_object_set_new(root, "n", jint(cmp->n));
                return root;
        }
        json_object_set_new(root, "split",
                            json_pack("{s:I,s:I,s:I}", "span_lo_ts",
                                      (json_int_t)cmp->span_lo, "span_hi_ts",
                                      (json_int_t)cmp->span_hi, "cut_ts",
                                      (json_int_t)cmp->cut_ts));
        json_object_set_new(
            root, "periods",
            json_pack("{s:o,s:o}", "all", period_json(cmp, &cmp->period[0]),
                      "last", period_json(cmp, &cmp->period[1])));
        cmp_subset_t all;
        cmp_subset_init(cmp, &all, cmp->by_time, cmp->n);
        json_t *curves = json_object(), *cal = json_object(),
               *hist = json_object();
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                if (!cmp->has[c])
                        continue;
                const char *k = itd_scorer_key(c);
                json_object_set_new(curves, k,
                                    curves_json(all.score[c], all.label,
                                                all.n));
                json_object_set_new(cal, k,
                                    calibration_json(all.score[c], all.label,
                                                     all.n));
                if (c == ITD_SC_MODEL || c == ITD_SC_BASELINE)
                        json_object_set_new(
                            hist, k,
                            histogram_json(all.score[c], all.label, all.n));
        }
        cmp_subset_free(&all);
        json_object_set_new(root, "curves", curves);
        json_object_set_new(root, "calibration", cal);
        json_object_set_new(root, "histogram", hist);
        json_object_set_new(root, "over_time", over_time_json(cmp));
        json_object_set_new(root, "segments", segments_json(cmp));
        return root;
}

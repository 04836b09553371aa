/*
 * report.c - the replay evaluation report: accumulators fed by the engine's
 * example hook, the JSON document (jansson), and the HTML page drawn from
 * that document, so the two can never disagree.
 *
 * Everything is computed from counts, never from stored scores: ROC and
 * precision-recall from the ITD_PV_BINS-bin histograms (the AUC they imply
 * is the engine's, same bins), the threshold sweep from exact counts per
 * sweep threshold, calibration from 10 bins.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intentd/mem.h"
#include "intentd/metrics.h"
#include "intentd/reader.h"

#define PROB_MIN 1e-7       /* log loss clamp, as model/metrics.c */
#define CAL_BINS 10         /* calibration (and ECE) bins */
#define TB_BINS 256         /* histogram bins per class per time bucket */
#define HOUR_MS 3600000LL
#define THROUGHPUT_MAX 256  /* throughput samples kept */
#define CURVE_STEP 0.004    /* ROC / PR points closer than this merge */

typedef struct tbucket_s {
        uint32_t pos[TB_BINS], neg[TB_BINS];
        uint64_t n, positives;
        double logloss_sum;
        uint64_t next_n, next_correct;
        double next_logloss_sum;
} tbucket_t;

struct itd_report_s {
        float threshold;
        /* purchase head */
        uint64_t pos[ITD_PV_BINS], neg[ITD_PV_BINS];
        uint64_t n, positives;
        double logloss_sum;
        uint64_t tp, fp, tn, fn;                   /* at threshold */
        uint64_t sweep_pos[ITD_REPORT_SWEEP + 1];  /* by thresholds passed */
        uint64_t sweep_neg[ITD_REPORT_SWEEP + 1];
        float sweep_thr[ITD_REPORT_SWEEP + 1];     /* [k] = k / 100 */
        uint64_t cal_n[CAL_BINS], cal_pos[CAL_BINS];
        double cal_score[CAL_BINS];
        /* next-action head */
        uint64_t next_n, next_correct;
        double next_logloss_sum;
        uint64_t next_conf[ITD_NEXT__COUNT][ITD_NEXT__COUNT]; /* true, pred */
        /* over event time */
        int have_base;
        int64_t base_ms, width_ms;
        size_t n_buckets;
        tbucket_t *tb; /* ITD_REPORT_TIME_BUCKETS */
        /* input */
        uint64_t events;
        uint64_t by_type[ITD_EV__COUNT];
        int64_t first_ts, last_ts;
        /* throughput samples (wall seconds, events) */
        size_t n_tp, tp_stride, tp_skip;
        double tp_s[THROUGHPUT_MAX];
        uint64_t tp_events[THROUGHPUT_MAX];
};

itd_report_t *itd_report_new(double threshold) {
        itd_report_t *rep = itd_xcalloc(1, sizeof *rep);
        rep->threshold = (float)threshold;
        rep->tb = itd_xcalloc(ITD_REPORT_TIME_BUCKETS, sizeof *rep->tb);
        rep->width_ms = HOUR_MS;
        rep->tp_stride = 1;
        for (int k = 0; k <= ITD_REPORT_SWEEP; k++)
                rep->sweep_thr[k] = (float)k / 100.0f;
        return rep;
}

void itd_report_destroy(itd_report_t *rep) {
        if (!rep)
                return;
        free(rep->tb);
        free(rep);
}

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void set_base(itd_report_t *rep, int64_t ts_ms) {
        rep->have_base = 1;
        rep->base_ms = floor_div(ts_ms, HOUR_MS) * HOUR_MS;
}

void itd_report_event(itd_report_t *rep, const itd_event_t *ev) {
        if (rep->events == 0 || ev->ts_ms < rep->first_ts)
                rep->first_ts = ev->ts_ms;
        if (rep->events == 0 || ev->ts_ms > rep->last_ts)
                rep->last_ts = ev->ts_ms;
        rep->events++;
        if ((int)ev->type >= 0 && ev->type < ITD_EV__COUNT)
                rep->by_type[ev->type]++;
        if (!rep->have_base)
                set_base(rep, ev->ts_ms);
}

static size_t bin_of(double s, size_t bins) {
        size_t b = (size_t)(s * (double)bins);
        return b < bins ? b : bins - 1;
}

static double clamp_prob(double p) {
        if (p < PROB_MIN)
                return PROB_MIN;
        return p > 1.0 - PROB_MIN ? 1.0 - PROB_MIN : p;
}

/* Doubles the bucket width, merging neighbours, until index i fits. */
static void widen(itd_report_t *rep, int64_t *idx, int64_t ts_ms) {
        while (*idx >= ITD_REPORT_TIME_BUCKETS) {
                for (size_t j = 0; j < ITD_REPORT_TIME_BUCKETS / 2; j++) {
                        tbucket_t *d = &rep->tb[j];
                        const tbucket_t *a = &rep->tb[2 * j];
                        const tbucket_t *b = &rep->tb[2 * j + 1];
                        tbucket_t m;
                        for (size_t k = 0; k < TB_BINS; k++) {
                                m.pos[k] = a->pos[k] + b->pos[k];
                                m.neg[k] = a->neg[k] + b->neg[k];
                        }
                        m.n = a->n + b->n;
                        m.positives = a->positives + b->positives;
                        m.logloss_sum = a->logloss_sum + b->logloss_sum;
                        m.next_n = a->next_n + b->next_n;
                        m.next_correct = a->next_correct + b->next_correct;
                        m.next_logloss_sum =
                            a->next_logloss_sum + b->next_logloss_sum;
                        *d = m;
                }
                memset(&rep->tb[ITD_REPORT_TIME_BUCKETS / 2], 0,
                       ITD_REPORT_TIME_BUCKETS / 2 * sizeof *rep->tb);
                rep->n_buckets = (rep->n_buckets + 1) / 2;
                rep->width_ms *= 2;
                *idx = floor_div(ts_ms - rep->base_ms, rep->width_ms);
        }
}

void itd_report_example(itd_report_t *rep, int64_t ts_ms, float score,
                        const float *next_probs, int label, itd_next_t next) {
        if (!isfinite(score))
                return;
        double s = score < 0.0f ? 0.0 : score > 1.0f ? 1.0 : score;
        int y = label != 0;
        rep->n++;
        rep->positives += (uint64_t)y;
        if (y)
                rep->pos[bin_of(s, ITD_PV_BINS)]++;
        else
                rep->neg[bin_of(s, ITD_PV_BINS)]++;
        double p = clamp_prob(s);
        double ll = y ? -log(p) : -log(1.0 - p);
        rep->logloss_sum += ll;

        int predicted = score >= rep->threshold;
        if (predicted && y)
                rep->tp++;
        else if (predicted)
                rep->fp++;
        else if (y)
                rep->fn++;
        else
                rep->tn++;

        /* j = how many sweep thresholds the score reaches, exactly as the
         * float comparison score >= k/100 decides */
        int j = (int)(s * 100.0);
        if (j > ITD_REPORT_SWEEP)
                j = ITD_REPORT_SWEEP;
        while (j < ITD_REPORT_SWEEP && score >= rep->sweep_thr[j + 1])
                j++;
        while (j > 0 && score < rep->sweep_thr[j])
                j--;
        if (y)
                rep->sweep_pos[j]++;
        else
                rep->sweep_neg[j]++;

        size_t cb = bin_of(s, CAL_BINS);
        rep->cal_n[cb]++;
        rep->cal_pos[cb] += (uint64_t)y;
        rep->cal_score[cb] += s;

        int next_ok = next_probs && (int)next >= 0 && next < ITD_NEXT__COUNT;
        size_t argmax = 0;
        double next_ll = 0.0;
        if (next_ok) {
                for (size_t k = 1; k < ITD_NEXT__COUNT; k++)
                        if (next_probs[k] > next_probs[argmax])
                                argmax = k;
                next_ll = -log(clamp_prob(next_probs[next]));
                rep->next_n++;
                rep->next_correct += argmax == (size_t)next;
                rep->next_logloss_sum += next_ll;
                rep->next_conf[next][argmax]++;
        }

        if (!rep->have_base)
                set_base(rep, ts_ms);
        int64_t idx = floor_div(ts_ms - rep->base_ms, rep->width_ms);
        if (idx < 0)
                idx = 0; /* before the first event: cannot happen in order */
        widen(rep, &idx, ts_ms);
        tbucket_t *b = &rep->tb[idx];
        if (y)
                b->pos[bin_of(s, TB_BINS)]++;
        else
                b->neg[bin_of(s, TB_BINS)]++;
        b->n++;
        b->positives += (uint64_t)y;
        b->logloss_sum += ll;
        if (next_ok) {
                b->next_n++;
                b->next_correct += argmax == (size_t)next;
                b->next_logloss_sum += next_ll;
        }
        if ((size_t)idx + 1 > rep->n_buckets)
                rep->n_buckets = (size_t)idx + 1;
}

void itd_report_example_hook(void *arg, const float *x, size_t dim,
                             const uint32_t *ids, size_t n_ids,
                             uint64_t user_hash, int64_t ts_ms, float score,
                             const float *next_probs, int label,
                             itd_next_t next) {
        (void)x, (void)dim, (void)ids, (void)n_ids, (void)user_hash;
        itd_report_example(arg, ts_ms, score, next_probs, label, next);
}

void itd_report_progress(itd_report_t *rep, uint64_t events,
                         double seconds) {
        if (rep->tp_skip++ % rep->tp_stride != 0)
                return;
        if (rep->n_tp == THROUGHPUT_MAX) {
                /* keep every other sample and sample half as often */
                for (size_t i = 0; i < THROUGHPUT_MAX / 2; i++) {
                        rep->tp_s[i] = rep->tp_s[2 * i + 1];
                        rep->tp_events[i] = rep->tp_events[2 * i + 1];
                }
                rep->n_tp = THROUGHPUT_MAX / 2;
                rep->tp_stride *= 2;
        }
        rep->tp_s[rep->n_tp] = seconds;
        rep->tp_events[rep->n_tp] = events;
        rep->n_tp++;
}

/* ---- JSON ------------------------------------------------------------ */

/* A number, or null when it is not finite (JSON has no NaN). */
static json_t *jnum(double v) {
        return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jint(uint64_t v) { return json_integer((json_int_t)v); }

/* AUC from two histograms of `bins` bins; NAN without both classes. */
static double hist_auc(const void *pos, const void *neg, size_t bins,
                       int wide, double *err_bound) {
        double wins = 0, ties = 0, neg_below = 0, P = 0, N = 0;
        for (size_t b = 0; b < bins; b++) {
                double p = wide ? (double)((const uint64_t *)pos)[b]
                                : (double)((const uint32_t *)pos)[b];
                double q = wide ? (double)((const uint64_t *)neg)[b]
                                : (double)((const uint32_t *)neg)[b];
                wins += p * neg_below;
                ties += p * q;
                neg_below += q;
                P += p;
                N += q;
        }
        if (err_bound)
                *err_bound = NAN;
        if (P == 0 || N == 0)
                return NAN;
        if (err_bound)
                *err_bound = 0.5 * ties / (P * N);
        return (wins + 0.5 * ties) / (P * N);
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

static json_t *metrics_at(uint64_t tp, uint64_t fp, uint64_t tn,
                          uint64_t fn, double threshold) {
        double precision = ratio((double)tp, (double)(tp + fp));
        double recall = ratio((double)tp, (double)(tp + fn));
        double f1 = ratio(2 * precision * recall, precision + recall);
        return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "threshold",
                         jnum(threshold), "tp", jint(tp), "fp", jint(fp),
                         "tn", jint(tn), "fn", jint(fn), "precision",
                         jnum(precision), "recall", jnum(recall), "f1",
                         jnum(f1));
}

static json_t *purchase_json(const itd_report_t *rep) {
        json_t *head = json_object();
        double n = (double)rep->n, err;
        double auc = hist_auc(rep->pos, rep->neg, ITD_PV_BINS, 1, &err);
        double ece = 0;
        for (size_t b = 0; b < CAL_BINS; b++)
                ece += fabs(rep->cal_score[b] - (double)rep->cal_pos[b]);
        json_t *overall = metrics_at(rep->tp, rep->fp, rep->tn, rep->fn,
                                     rep->threshold);
        json_object_set_new(overall, "n", jint(rep->n));
        json_object_set_new(overall, "positives", jint(rep->positives));
        json_object_set_new(overall, "base_rate",
                            jnum(rep->n ? (double)rep->positives / n : NAN));
        json_object_set_new(overall, "auc", jnum(auc));
        json_object_set_new(overall, "auc_err_bound", jnum(err));
        json_object_set_new(overall, "logloss",
                            jnum(rep->n ? rep->logloss_sum / n : NAN));
        json_object_set_new(overall, "ece", jnum(rep->n ? ece / n : NAN));
        json_object_set_new(
            overall, "accuracy",
            jnum(rep->n ? (double)(rep->tp + rep->tn) / n : NAN));
        json_object_set_new(head, "overall", overall);
        json_object_set_new(head, "confusion",
                            json_pack("{s:o,s:o,s:o,s:o,s:o}", "threshold",
                                      jnum(rep->threshold), "tp",
                                      jint(rep->tp), "fp", jint(rep->fp),
                                      "tn", jint(rep->tn), "fn",
                                      jint(rep->fn)));

        /* sweep: tp(k) = positives reaching at least threshold k */
        json_t *sweep = json_array();
        uint64_t tp = 0, fp = 0;
        uint64_t tps[ITD_REPORT_SWEEP + 1], fps[ITD_REPORT_SWEEP + 1];
        for (int k = ITD_REPORT_SWEEP; k >= 1; k--) {
                tp += rep->sweep_pos[k];
                fp += rep->sweep_neg[k];
                tps[k] = tp;
                fps[k] = fp;
        }
        uint64_t P = rep->positives, N = rep->n - rep->positives;
        json_t *best = NULL;
        double best_f1 = -1;
        for (int k = 1; k <= ITD_REPORT_SWEEP; k++) {
                json_t *row = metrics_at(tps[k], fps[k], N - fps[k],
                                         P - tps[k], k / 100.0);
                double f1 = json_real_value(json_object_get(row, "f1"));
                if (f1 > best_f1) {
                        best_f1 = f1;
                        json_decref(best);
                        best = json_deep_copy(row);
                }
                json_array_append_new(sweep, row);
        }
        json_object_set_new(head, "sweep", sweep);
        json_object_set_new(head, "best_f1", best ? best : json_null());

        /* ROC and PR, from the top bin down */
        json_t *roc = json_array(), *pr = json_array();
        json_array_append_new(roc, json_pack("{s:f,s:f}", "fpr", 0.0, "tpr",
                                             0.0));
        double ctp = 0, cfp = 0, lx = 0, ly = 0, lr = -1, lp = -1;
        for (size_t b = ITD_PV_BINS; b-- > 0;) {
                ctp += (double)rep->pos[b];
                cfp += (double)rep->neg[b];
                if (rep->pos[b] == 0 && rep->neg[b] == 0)
                        continue;
                double fpr = ratio(cfp, (double)N), tpr = ratio(ctp, (double)P);
                int last = b == 0;
                if (last || fabs(fpr - lx) >= CURVE_STEP ||
                    fabs(tpr - ly) >= CURVE_STEP) {
                        json_array_append_new(
                            roc, json_pack("{s:f,s:f,s:f}", "fpr", fpr,
                                           "tpr", tpr, "threshold",
                                           (double)b / ITD_PV_BINS));
                        lx = fpr, ly = tpr;
                }
                double prec = ratio(ctp, ctp + cfp), rec = tpr;
                if (P && (last || fabs(rec - lr) >= CURVE_STEP ||
                          fabs(prec - lp) >= CURVE_STEP)) {
                        json_array_append_new(
                            pr, json_pack("{s:f,s:f,s:f}", "recall", rec,
                                          "precision", prec, "threshold",
                                          (double)b / ITD_PV_BINS));
                        lr = rec, lp = prec;
                }
        }
        json_object_set_new(head, "roc", roc);
        json_object_set_new(head, "pr", pr);

        json_t *cal = json_array();
        for (size_t b = 0; b < CAL_BINS; b++) {
                double c = (double)rep->cal_n[b];
                json_array_append_new(
                    cal, json_pack("{s:f,s:f,s:o,s:o,s:o}", "lo",
                                   (double)b / CAL_BINS, "hi",
                                   (double)(b + 1) / CAL_BINS, "count",
                                   jint(rep->cal_n[b]), "mean_predicted",
                                   jnum(c ? rep->cal_score[b] / c : NAN),
                                   "observed_rate",
                                   jnum(c ? (double)rep->cal_pos[b] / c
                                          : NAN)));
        }
        json_object_set_new(head, "calibration", cal);

        json_t *buckets = json_array();
        for (size_t i = 0; i < rep->n_buckets; i++) {
                const tbucket_t *b = &rep->tb[i];
                double bn = (double)b->n;
                json_array_append_new(
                    buckets,
                    json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "start_ts",
                              (json_int_t)(rep->base_ms +
                                           (int64_t)i * rep->width_ms),
                              "n", jint(b->n), "positives",
                              jint(b->positives), "base_rate",
                              jnum(b->n ? (double)b->positives / bn : NAN),
                              "auc",
                              jnum(hist_auc(b->pos, b->neg, TB_BINS, 0,
                                            NULL)),
                              "logloss",
                              jnum(b->n ? b->logloss_sum / bn : NAN),
                              "next_accuracy",
                              jnum(b->next_n ? (double)b->next_correct /
                                                   (double)b->next_n
                                             : NAN),
                              "next_logloss",
                              jnum(b->next_n ? b->next_logloss_sum /
                                                   (double)b->next_n
                                             : NAN)));
        }
        json_object_set_new(head, "over_time",
                            json_pack("{s:I,s:o}", "bucket_ms",
                                      (json_int_t)rep->width_ms, "buckets",
                                      buckets));
        return head;
}

static json_t *next_json(const itd_report_t *rep) {
        json_t *classes = json_array(), *conf = json_array();
        for (int t = 0; t < ITD_NEXT__COUNT; t++) {
                json_array_append_new(classes,
                                      json_string(itd_next_name(t)));
                json_t *row = json_array();
                for (int p = 0; p < ITD_NEXT__COUNT; p++)
                        json_array_append_new(row,
                                              jint(rep->next_conf[t][p]));
                json_array_append_new(conf, row);
        }
        double n = (double)rep->next_n;
        return json_pack("{s:o,s:o,s:o,s:o,s:o}", "n", jint(rep->next_n),
                         "accuracy",
                         jnum(n ? (double)rep->next_correct / n : NAN),
                         "logloss", jnum(n ? rep->next_logloss_sum / n : NAN),
                         "classes", classes, "confusion", conf);
}

static json_t *jduration(int64_t ms) {
        char buf[32];
        return json_string(itd_duration_format(ms, buf, sizeof buf));
}

/* The options that shape an offline evaluation. (A generic dump of every
 * option needs an accessor on the option table: asked of the lead.) */
static json_t *config_json(const itd_conf_t *conf) {
        static const char *const model_types[] = {"mlp", "logistic"};
        static const char *const optimizers[] = {"sgd", "adagrad", "adam"};
        json_t *o = json_object();
        json_t *w = json_array(), *h = json_array();
        for (size_t i = 0; i < conf->n_windows; i++)
                json_array_append_new(w, jduration(conf->windows_ms[i]));
        for (size_t i = 0; i < conf->n_model_hidden; i++)
                json_array_append_new(h, json_integer(conf->model_hidden[i]));
        json_object_set_new(o, "windows", w);
        json_object_set_new(o, "windows.allowed_lateness",
                            jduration(conf->windows_allowed_lateness_ms));
        json_object_set_new(o, "session.gap", jduration(conf->session_gap_ms));
        json_object_set_new(o, "state.idle_ttl",
                            jduration(conf->state_idle_ttl_ms));
        json_object_set_new(o, "state.max_users",
                            json_integer(conf->state_max_users));
        json_object_set_new(o, "labels.horizon",
                            jduration(conf->labels_horizon_ms));
        json_object_set_new(o, "labels.max_pending",
                            json_integer(conf->labels_max_pending));
        json_object_set_new(
            o, "model.type",
            json_string(conf->model_type >= 0 && conf->model_type < 2
                            ? model_types[conf->model_type]
                            : "?"));
        json_object_set_new(o, "model.hidden", h);
        json_object_set_new(o, "model.embedding.buckets",
                            json_integer(conf->model_embedding_buckets));
        json_object_set_new(o, "model.embedding.dim",
                            json_integer(conf->model_embedding_dim));
        json_object_set_new(
            o, "model.optimizer",
            json_string(conf->model_optimizer >= 0 &&
                                conf->model_optimizer < 3
                            ? optimizers[conf->model_optimizer]
                            : "?"));
        json_object_set_new(o, "model.learning.rate",
                            jnum(conf->model_learning_rate));
        json_object_set_new(o, "model.l2", jnum(conf->model_l2));
        json_object_set_new(o, "model.batch.size",
                            json_integer(conf->model_batch_size));
        json_object_set_new(o, "model.seed", json_integer(conf->model_seed));
        json_object_set_new(o, "model.loss.weight.next",
                            jnum(conf->model_loss_weight_next));
        json_object_set_new(o, "predict.threshold",
                            jnum(conf->predict_threshold));
        return o;
}

static json_t *pv_json(const itd_pv_summary_t *pv) {
        return json_pack(
            "{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "n",
            jint(pv->n), "positives", jint(pv->positives), "base_rate",
            jnum(pv->base_rate), "auc", jnum(pv->auc), "auc_err_bound",
            jnum(pv->auc_err_bound), "logloss", jnum(pv->logloss), "ece",
            jnum(pv->ece), "precision", jnum(pv->precision), "recall",
            jnum(pv->recall), "f1", jnum(pv->f1), "accuracy",
            jnum(pv->accuracy), "next_accuracy", jnum(pv->next_accuracy),
            "next_logloss", jnum(pv->next_logloss));
}

static json_t *ts_json(int64_t ms) {
        char buf[40];
        time_t t = (time_t)floor_div(ms, 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return json_null();
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(buf);
}

json_t *itd_report_json(const itd_report_t *rep, const itd_report_run_t *run) {
        json_t *root = json_object();
        json_object_set_new(root, "report", json_string("intentd replay"));
#ifdef ITD_VERSION
        json_object_set_new(root, "version", json_string(ITD_VERSION));
#endif
        json_t *mix = json_object();
        for (int t = 0; t < ITD_EV__COUNT; t++)
                json_object_set_new(mix, itd_event_type_name(t),
                                    jint(rep->by_type[t]));
        json_t *input = json_pack(
            "{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "path",
            run->input ? run->input : "", "format",
            run->format ? run->format : "", "events", jint(run->events),
            "bad_lines", jint(run->bad_lines), "late",
            jint(run->stats ? run->stats->late : 0), "filtered",
            jint(run->filtered), "first_event_ts",
            rep->events ? json_integer(rep->first_ts) : json_null(),
            "last_event_ts",
            rep->events ? json_integer(rep->last_ts) : json_null(),
            "first_event_time",
            rep->events ? ts_json(rep->first_ts) : json_null(),
            "last_event_time",
            rep->events ? ts_json(rep->last_ts) : json_null());
        json_object_set_new(root, "input", input);
        json_object_set_new(root, "event_mix", mix);

        json_t *samples = json_array();
        for (size_t i = 0; i < rep->n_tp; i++) {
                double rate = NAN;
                double ds = rep->tp_s[i] - (i ? rep->tp_s[i - 1] : 0.0);
                uint64_t de = rep->tp_events[i] -
                              (i ? rep->tp_events[i - 1] : 0);
                if (ds > 0)
                        rate = (double)de / ds;
                json_array_append_new(
                    samples, json_pack("{s:f,s:o,s:o}", "seconds",
                                       rep->tp_s[i], "events",
                                       jint(rep->tp_events[i]),
                                       "events_per_s", jnum(rate)));
        }
        json_object_set_new(
            root, "throughput",
            json_pack("{s:f,s:o,s:o}", "seconds", run->seconds,
                      "events_per_s",
                      jnum(run->seconds > 0
                               ? (double)run->events / run->seconds
                               : NAN),
                      "samples", samples));
        if (run->stats) {
                const itd_engine_stats_t *es = run->stats;
                json_object_set_new(
                    root, "engine",
                    json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                              "predictions", jint(es->predictions),
                              "examples_pos", jint(es->examples_pos),
                              "examples_neg", jint(es->examples_neg),
                              "pending", jint(es->pending), "train_steps",
                              jint(es->train_steps), "train_skipped",
                              jint(es->train_skipped), "users",
                              jint(es->users), "state_bytes",
                              jint(es->state_bytes), "evicted_ttl",
                              jint(es->evicted_ttl), "summary",
                              pv_json(&es->pv)));
        }
        if (run->conf)
                json_object_set_new(root, "config", config_json(run->conf));
        json_object_set_new(root, "threshold", jnum(rep->threshold));
        json_object_set_new(root, "purchase", purchase_json(rep));
        json_object_set_new(root, "next_action", next_json(rep));
        if (run->cmp)
                json_object_set_new(root, "compare",
                                    itd_compare_json(run->cmp));
        return root;
}

itd_err_t itd_report_write_json(const json_t *report, const char *path,
                                char *errstr, size_t errstr_size) {
        if (json_dump_file(report, path,
                           JSON_INDENT(1) | JSON_PRESERVE_ORDER |
                               JSON_REAL_PRECISION(8)) != 0) {
                snprintf(errstr, errstr_size, "cannot write report \"%s\": %s",
                         path, strerror(errno ? errno : EIO));
                return ITD_ERR_IO;
        }
        return ITD_OK;
}

/* ---- HTML ------------------------------------------------------------ */

#define CW 520  /* chart width, px */
#define CH 320  /* chart height */
#define ML 58   /* margins: left, right, top, bottom */
#define MR 16
#define MT 28
#define MB 44

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#ff7f0e", "#9467bd", "#8c564b"};

typedef struct {
        FILE *f;
        double x0, x1, y0, y1;
        int time_x;        /* x values are ms since the epoch */
        int legend_bottom; /* legend in the lower right (curves go up) */
} chart_t;

static double px(const chart_t *c, double x) {
        return ML + (x - c->x0) / (c->x1 - c->x0) * (CW - ML - MR);
}

static double py(const chart_t *c, double y) {
        return CH - MB - (y - c->y0) / (c->y1 - c->y0) * (CH - MT - MB);
}

static void html_escape(FILE *f, const char *s) {
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

static void tick_label(const chart_t *c, double v, int is_x, char *buf,
                       size_t cap) {
        if (is_x && c->time_x) {
                time_t t = (time_t)(v / 1000.0);
                struct tm tm;
                gmtime_r(&t, &tm);
                double span = c->x1 - c->x0;
                strftime(buf, cap,
                         span > 3 * 86400000.0 ? "%m-%d" : "%m-%d %H:%M",
                         &tm);
                return;
        }
        double a = fabs(v);
        if (a != 0 && (a >= 1e5 || a < 1e-3))
                snprintf(buf, cap, "%.1e", v);
        else if (a >= 100)
                snprintf(buf, cap, "%.0f", v);
        else
                snprintf(buf, cap, "%.3g", v);
}

/* Opens an <svg> with axes, grid and tick labels. */
static void chart_open(chart_t *c, FILE *f, const char *id,
                       const char *title, const char *xlabel,
                       const char *ylabel) {
        c->f = f;
        if (!(c->x1 > c->x0))
                c->x1 = c->x0 + 1;
        if (!(c->y1 > c->y0))
                c->y1 = c->y0 + 1;
        fprintf(f, "<figure><svg id=\"chart-%s\" xmlns=\"http://www.w3.org/"
                "2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "role=\"img\"><title>", id, CW, CH, CW, CH);
        html_escape(f, title);
        fprintf(f, "</title><rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
                "fill=\"#fff\"/>", CW, CH);
        fprintf(f, "<text x=\"%d\" y=\"18\" class=\"t\">", ML);
        html_escape(f, title);
        fputs("</text>", f);
        for (int i = 0; i <= 4; i++) {
                double xv = c->x0 + (c->x1 - c->x0) * i / 4.0;
                double yv = c->y0 + (c->y1 - c->y0) * i / 4.0;
                char lx[32], ly[32];
                tick_label(c, xv, 1, lx, sizeof lx);
                tick_label(c, yv, 0, ly, sizeof ly);
                /* the outer labels stay inside the picture */
                fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                        "class=\"g\"/><text x=\"%.1f\" y=\"%d\" "
                        "class=\"xt\"%s>%s</text>",
                        px(c, xv), MT, px(c, xv), CH - MB, px(c, xv),
                        CH - MB + 16,
                        i == 4 && c->time_x ? " style=\"text-anchor:end\""
                                            : "",
                        lx);
                fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                        "class=\"g\"/><text x=\"%d\" y=\"%.1f\" "
                        "class=\"yt\">%s</text>",
                        ML, py(c, yv), CW - MR, py(c, yv), ML - 6,
                        py(c, yv) + 4, ly);
        }
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                "class=\"frame\"/>", ML, MT, CW - ML - MR, CH - MT - MB);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"xl\">%s</text>",
                (ML + CW - MR) / 2, CH - 8, xlabel);
        fprintf(f, "<text transform=\"translate(14 %d) rotate(-90)\" "
                "class=\"xl\">%s</text>", (MT + CH - MB) / 2, ylabel);
}

static void chart_close(chart_t *c, const char *caption) {
        fputs("</svg><figcaption>", c->f);
        html_escape(c->f, caption);
        fputs("</figcaption></figure>\n", c->f);
}

/* One series as a path; NAN y values break the line. */
static void chart_line(chart_t *c, const double *x, const double *y,
                       size_t n, int colour, const char *name, int dashed,
                       int legend_row) {
        fprintf(c->f, "<path class=\"series\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"2\"%s d=\"", palette[colour % 6],
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
        for (size_t i = 0; n <= 40 && i < n; i++)
                if (isfinite(y[i]) && isfinite(x[i]))
                        fprintf(c->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\""
                                " fill=\"%s\"/>", px(c, x[i]), py(c, y[i]),
                                palette[colour % 6]);
        if (name) {
                double lx = CW - MR - 150, ly = MT + 14 + 16 * legend_row;
                if (c->legend_bottom)
                        ly = CH - MB - 40 + 16 * legend_row;
                fprintf(c->f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" "
                        "y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>"
                        "<text x=\"%.0f\" y=\"%.0f\" class=\"lg\">%s</text>",
                        lx, ly - 4, lx + 18, ly - 4, palette[colour % 6],
                        lx + 24, ly, name);
        }
}

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

static void html_roc(FILE *f, const json_t *pur) {
        double *x, *y;
        size_t n = series(json_object_get(pur, "roc"), "fpr", "tpr", &x, &y);
        chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1, .legend_bottom = 1};
        chart_open(&c, f, "roc", "ROC", "false positive rate",
                   "true positive rate");
        double dx[2] = {0, 1}, dy[2] = {0, 1};
        chart_line(&c, dx, dy, 2, 5, "chance", 1, 1);
        chart_line(&c, x, y, n, 0, "intentd", 0, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "AUC %.4f",
                 jd(json_object_get(pur, "overall"), "auc"));
        chart_close(&c, cap);
        free(x), free(y);
}

static void html_pr(FILE *f, const json_t *pur) {
        double *x, *y;
        size_t n = series(json_object_get(pur, "pr"), "recall", "precision",
                          &x, &y);
        double base = jd(json_object_get(pur, "overall"), "base_rate");
        chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1};
        chart_open(&c, f, "pr", "Precision-recall", "recall", "precision");
        double bx[2] = {0, 1}, by[2] = {base, base};
        chart_line(&c, bx, by, 2, 5, "base rate", 1, 1);
        chart_line(&c, x, y, n, 0, "intentd", 0, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "base rate %.4f", base);
        chart_close(&c, cap);
        free(x), free(y);
}

static void html_calibration(FILE *f, const json_t *pur) {
        double *x, *y;
        size_t n = series(json_object_get(pur, "calibration"),
                          "mean_predicted", "observed_rate", &x, &y);
        chart_t c = {.x0 = 0, .x1 = 1, .y0 = 0, .y1 = 1, .legend_bottom = 1};
        chart_open(&c, f, "calibration", "Calibration (10 bins)",
                   "mean predicted probability", "observed purchase rate");
        double dx[2] = {0, 1}, dy[2] = {0, 1};
        chart_line(&c, dx, dy, 2, 5, "perfect", 1, 1);
        chart_line(&c, x, y, n, 1, "intentd", 0, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "ECE %.4f",
                 jd(json_object_get(pur, "overall"), "ece"));
        chart_close(&c, cap);
        free(x), free(y);
}

static void html_over_time(FILE *f, const json_t *pur, const char *key,
                           const char *id, const char *title,
                           const char *ylabel, int colour) {
        const json_t *ot = json_object_get(pur, "over_time");
        const json_t *b = json_object_get(ot, "buckets");
        double *x, *y;
        size_t n = series(b, "start_ts", key, &x, &y);
        double width = jd(ot, "bucket_ms");
        for (size_t i = 0; i < n; i++)
                x[i] += width / 2; /* plot at the bucket's middle */
        chart_t c = {.time_x = 1};
        range_of(x, n, &c.x0, &c.x1);
        range_of(y, n, &c.y0, &c.y1);
        if (strcmp(key, "auc") == 0)
                c.y0 = fmin(c.y0, 0.5), c.y1 = fmax(c.y1, 1.0);
        else
                c.y0 = 0, c.y1 = c.y1 > 0 ? c.y1 * 1.1 : 1;
        if (n == 1)
                c.x0 -= width / 2, c.x1 += width / 2;
        chart_open(&c, f, id, title, "event time (UTC)", ylabel);
        chart_line(&c, x, y, n, colour, NULL, 0, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "one point per %.0f h of event time",
                 width / 3600000.0);
        chart_close(&c, cap);
        free(x), free(y);
}

static void html_event_mix(FILE *f, const json_t *mix) {
        size_t n = json_object_size(mix), i = 0;
        double max = 1;
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)mix, key, v)
                if (json_number_value(v) > max)
                        max = json_number_value(v);
        chart_t c = {.x0 = 0, .x1 = (double)n, .y0 = 0, .y1 = max * 1.1};
        /* a bar chart: only the y grid and category labels */
        fprintf(f, "<figure><svg id=\"chart-event_mix\" xmlns=\"http://www.w3."
                "org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
                "%d\" role=\"img\"><title>Event mix</title><rect x=\"0\" "
                "y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/><text "
                "x=\"%d\" y=\"18\" class=\"t\">Event mix</text>",
                CW, CH, CW, CH, CW, CH, ML);
        c.f = f;
        for (int k = 0; k <= 4; k++) {
                double yv = c.y1 * k / 4.0;
                char ly[32];
                tick_label(&c, yv, 0, ly, sizeof ly);
                fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                        "class=\"g\"/><text x=\"%d\" y=\"%.1f\" "
                        "class=\"yt\">%s</text>", ML, py(&c, yv), CW - MR,
                        py(&c, yv), ML - 6, py(&c, yv) + 4, ly);
        }
        json_object_foreach((json_t *)mix, key, v) {
                double x0 = px(&c, i + 0.15), x1 = px(&c, i + 0.85);
                double top = py(&c, json_number_value(v));
                fprintf(f, "<path class=\"series\" fill=\"%s\" d=\"M%.1f %.1f "
                        "L%.1f %.1f L%.1f %.1f L%.1f %.1f Z\"/>",
                        palette[i % 6], x0, py(&c, 0), x0, top, x1, top, x1,
                        py(&c, 0));
                /* ADD_TO_CART -> "add / to / cart" on three lines */
                fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xt\">",
                        (x0 + x1) / 2, CH - MB + 4);
                char word[32];
                const char *p = key;
                while (*p) {
                        size_t wl = strcspn(p, "_");
                        snprintf(word, sizeof word, "%.*s", (int)wl, p);
                        for (char *w = word; *w; w++)
                                *w = (char)(*w >= 'A' && *w <= 'Z'
                                                ? *w - 'A' + 'a'
                                                : *w);
                        fprintf(f, "<tspan x=\"%.1f\" dy=\"11\">%s</tspan>",
                                (x0 + x1) / 2, word);
                        p += wl + (p[wl] == '_');
                }
                fprintf(f, "</text><text x=\"%.1f\" y=\"%.1f\" "
                        "class=\"xt\">%.0f</text>",
                        (x0 + x1) / 2, top - 4, json_number_value(v));
                i++;
        }
        c.f = f;
        chart_close(&c, "events read, by type");
}

static void html_throughput(FILE *f, const json_t *tp) {
        double *x, *y;
        size_t n = series(json_object_get(tp, "samples"), "seconds",
                          "events_per_s", &x, &y);
        chart_t c = {0};
        range_of(x, n, &c.x0, &c.x1);
        range_of(y, n, &c.y0, &c.y1);
        c.x0 = 0;
        c.y0 = 0, c.y1 = c.y1 * 1.1;
        chart_open(&c, f, "throughput", "Throughput", "wall time (s)",
                   "events/s");
        chart_line(&c, x, y, n, 2, NULL, 0, 0);
        char cap[96];
        snprintf(cap, sizeof cap, "%.0f events/s over %.2f s",
                 jd(tp, "events_per_s"), jd(tp, "seconds"));
        chart_close(&c, cap);
        free(x), free(y);
}

static void row(FILE *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void row(FILE *f, const char *name, const char *fmt, ...) {
        char buf[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        fputs("<tr><th>", f);
        html_escape(f, name);
        fputs("</th><td>", f);
        html_escape(f, buf);
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
        row(f, "input", "%s (%s)",
            json_string_value(json_object_get(in, "path")),
            json_string_value(json_object_get(in, "format")));
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
        row(f, "ECE", "%.4f", jd(ov, "ece"));
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
        const json_t *pur = json_object_get(r, "purchase");
        const json_t *in = json_object_get(r, "input");
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
              "charset=\"utf-8\"><title>intentd replay: ", f);
        html_escape(f, str_or(json_object_get(in, "path"), ""));
        fputs("</title>\n<style>\n"
              "body{font-family:sans-serif;margin:24px;color:#222;"
              "background:#fff}\n"
              "h1{font-size:22px}figure{display:inline-block;margin:8px}\n"
              "figcaption{font-size:12px;color:#555;text-align:center}\n"
              "table{border-collapse:collapse;margin:12px 0}\n"
              "th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;"
              "text-align:left}\n"
              "svg .g{stroke:#e4e4e4}svg .frame{fill:none;stroke:#888}\n"
              "svg text{font-size:11px;fill:#333}svg .t{font-size:14px;"
              "font-weight:bold}\n"
              "svg .xt{text-anchor:middle}svg .yt{text-anchor:end}\n"
              "svg .xl{text-anchor:middle;font-size:12px}\n"
              "</style></head><body>\n<h1>intentd replay: ", f);
        html_escape(f, str_or(json_object_get(in, "path"), ""));
        fputs("</h1>\n<p>Progressive validation: every prediction was judged "
              "before the model learned from it.</p>\n", f);
        html_summary(f, r);
        fputs("<div class=\"charts\">\n", f);
        html_roc(f, pur);
        html_pr(f, pur);
        html_calibration(f, pur);
        html_over_time(f, pur, "auc", "auc_time", "AUC over event time",
                       "AUC", 0);
        html_over_time(f, pur, "logloss", "logloss_time",
                       "Log loss over event time", "log loss", 1);
        html_event_mix(f, json_object_get(r, "event_mix"));
        html_throughput(f, json_object_get(r, "throughput"));
        fputs("</div>\n", f);
        html_next_confusion(f, json_object_get(r, "next_action"));
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

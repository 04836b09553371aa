/*
 * report.c - the replay evaluation report: accumulators fed by the engine's
 * example hook and the JSON document (jansson); report_html.c draws the
 * HTML page from that document, so the two can never disagree.
 *
 * These accumulators count, in constant memory: the ITD_EVAL_BINS-bin score
 * histograms (the AUC they imply is the engine's, same bins, with its
 * error bound), exact confusion counts per sweep threshold, 10 equal-width
 * bins for the engine's ECE, the next-action confusion matrix, the event
 * mix and throughput. Everything judged beside the rules and the baseline
 * (curves, equal-mass calibration, AUC over event time, segments) comes
 * from the stored examples of replay/compare.c, under "compare".
 */
#include "intentd/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intentd/eval_progressive.h"
#include "intentd/mem.h"
#include "intentd/reader.h"

#define PROB_MIN 1e-7       /* log loss clamp, as model/eval_progressive.c */
#define CAL_BINS 10         /* the engine's ECE bins (equal width) */
#define THROUGHPUT_MAX 256  /* throughput samples kept */

struct itd_report_s {
        float threshold;
        /* purchase head */
        uint64_t pos[ITD_EVAL_BINS], neg[ITD_EVAL_BINS];
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
        rep->tp_stride = 1;
        for (int k = 0; k <= ITD_REPORT_SWEEP; k++)
                rep->sweep_thr[k] = (float)k / 100.0f;
        return rep;
}

void itd_report_destroy(itd_report_t *rep) {
        if (!rep)
                return;
        free(rep);
}

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void itd_report_event(itd_report_t *rep, const itd_event_t *ev) {
        if (rep->events == 0 || ev->ts_ms < rep->first_ts)
                rep->first_ts = ev->ts_ms;
        if (rep->events == 0 || ev->ts_ms > rep->last_ts)
                rep->last_ts = ev->ts_ms;
        rep->events++;
        if ((int)ev->type >= 0 && ev->type < ITD_EV__COUNT)
                rep->by_type[ev->type]++;
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

void itd_report_example(itd_report_t *rep, float score,
                        const float *next_probs, int label, itd_next_t next) {
        if (!isfinite(score))
                return;
        double s = score < 0.0f ? 0.0 : score > 1.0f ? 1.0 : score;
        int y = label != 0;
        rep->n++;
        rep->positives += (uint64_t)y;
        if (y)
                rep->pos[bin_of(s, ITD_EVAL_BINS)]++;
        else
                rep->neg[bin_of(s, ITD_EVAL_BINS)]++;
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
}

void itd_report_example_hook(void *arg, int32_t partition,
                             const itd_example_t *ex) {
        (void)partition;
        itd_report_example(arg, ex->score, ex->next_probs, ex->label,
                           ex->next);
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

/* AUC from the two ITD_EVAL_BINS-bin histograms; NAN without both
 * classes. Pairs within a bin count 1/2: err_bound bounds the error. */
static double hist_auc(const uint64_t *pos, const uint64_t *neg,
                       double *err_bound) {
        double wins = 0, ties = 0, neg_below = 0, P = 0, N = 0;
        for (size_t b = 0; b < ITD_EVAL_BINS; b++) {
                double p = (double)pos[b], q = (double)neg[b];
                wins += p * neg_below;
                ties += p * q;
                neg_below += q;
                P += p;
                N += q;
        }
        *err_bound = NAN;
        if (P == 0 || N == 0)
                return NAN;
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
        double auc = hist_auc(rep->pos, rep->neg, &err);
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

static json_t *eval_json(const itd_eval_summary_t *eval) {
        return json_pack(
            "{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "n",
            jint(eval->n), "positives", jint(eval->positives), "base_rate",
            jnum(eval->base_rate), "auc", jnum(eval->auc), "auc_err_bound",
            jnum(eval->auc_err_bound), "logloss", jnum(eval->logloss), "ece",
            jnum(eval->ece), "precision", jnum(eval->precision), "recall",
            jnum(eval->recall), "f1", jnum(eval->f1), "accuracy",
            jnum(eval->accuracy), "next_accuracy", jnum(eval->next_accuracy),
            "next_logloss", jnum(eval->next_logloss));
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
        if (run->triggers)
                json_object_set(root, "triggers", (json_t *)run->triggers);

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
                    json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                              "predictions", jint(es->predictions),
                              "risk_untrained", jint(es->risk_untrained),
                              "examples_pos", jint(es->examples_pos),
                              "examples_neg", jint(es->examples_neg),
                              "pending", jint(es->pending), "train_steps",
                              jint(es->train_steps), "train_skipped",
                              jint(es->train_skipped), "users",
                              jint(es->users), "state_bytes",
                              jint(es->state_bytes), "evicted_ttl",
                              jint(es->evicted_ttl), "summary",
                              eval_json(&es->eval)));
        }
        if (run->config)
                json_object_set(root, "config", (json_t *)run->config);
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

/*
 * cmd_replay.c - `intentd replay`: the engine over a file, no Kafka.
 *
 * The same engine as `run` (state, features, labeler, model, metrics),
 * fed from a reader in event-time order, deterministic. All events go to
 * partition 0, so one watermark covers the whole file. Besides the summary
 * it judges the model beside two rules and an optional baseline model on
 * the same examples (daemon/compare.c), and can write the evaluation
 * report (JSON, HTML; daemon/report.c), every resolved example as the
 * model saw it (CSV), and the users' window state.
 *
 * A resolved example does not say which event it was predicted on (the
 * hook passes the engine's user hash, ts and score), and examples resolve
 * inside itd_engine_process, before the batch's predictions are known
 * here; so they are held until the call returns, then matched to their
 * event by (event time, score bits) -- equal only for predictions of one
 * event time and bit-identical score, which the summary counts.
 *
 * The baseline is a second engine with another model.type over the same
 * batches; labels and their order do not depend on the model, so its
 * examples pair with the model's one to one (checked).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/reader.h"
#include "compare.h"
#include "report.h"
#include "trigsweep.h"

#define MAX_OVERRIDES 64
#define USER_SEED 0x6a09e667f3bcc908ULL /* export pseudonyms: not the
                                         * engine's hash, by design */
#define PROGRESS_MS 250                 /* progress line refresh */

static const char replay_usage[] =
    "usage: intentd replay [--config FILE] --input DATA\n"
    "                      [--format taobao|rees46|retailrocket|jsonl|avro]\n"
    "                      [--report OUT.json] [--html OUT.html]\n"
    "                      [--export-features OUT.csv]\n"
    "                      [--baseline mlp|logistic] [--resamples N]\n"
    "                      [--dump-state OUT.jsonl] [-o key=value]...\n"
    "\n"
    "Runs the pipeline of `intentd run` over a file, without Kafka, and\n"
    "prints the progressive-validation summary. Events are sorted by event\n"
    "time first (stable); DATA may be gzip-compressed (.gz). Without\n"
    "--config the defaults apply.\n"
    "\n"
    "  --format F          default from the file name: .avro -> avro,\n"
    "                      .jsonl/.json -> jsonl, 2019-Oct.csv or *rees46*\n"
    "                      -> rees46, events.csv or *retailrocket* ->\n"
    "                      retailrocket, else taobao\n"
    "  --report F          evaluation report as JSON: metrics overall,\n"
    "                      confusion matrix, threshold sweep, next action,\n"
    "                      the comparison with the rules and the baseline\n"
    "                      (curves, calibration, over event time, segments),\n"
    "                      event mix, throughput, configuration\n"
    "  --html F            the same as one self-contained HTML page with\n"
    "                      charts\n"
    "  --export-features F every resolved example as the model saw it:\n"
    "                      ts, user (hashed), the features of FEATURES.md,\n"
    "                      sparse ids, label, next_action, score\n"
    "  --baseline TYPE     also run model.type TYPE over the same stream and\n"
    "                      judge it on the same examples (FTRL: logistic)\n"
    "  --resamples N       bootstrap resamples of users for the 95%\n"
    "                      intervals (default 1000, fewer on very large\n"
    "                      inputs; 0: none)\n"
    "  --dump-state F      one JSON line per user: window counts per event\n"
    "                      type as of the end-of-input watermark\n"
    "\n"
    "Beside the progressive summary it prints, on the same examples, the\n"
    "model, the baseline, the purchase-rate rule and the label-rate rule\n"
    "over all labelled events and the last 30% of event time: exact AUC\n"
    "with its interval from resampling users, top-decile lift, ECE over\n"
    "equal-mass bins, log loss (docs/ACCURACY.md).\n";

/* ---- (event time, score) -> what the event was ----------------------- */

/* What replay knows of a predicted event when its prediction resolves:
 * the rules' view of it and the export's pseudonym of its user. */
typedef struct {
        itd_compare_ev_t ev;
        uint64_t user;
} known_t;

typedef struct {
        int64_t ts;
        uint32_t score_bits;
        uint8_t state; /* 0 empty, 1 live, 2 deleted */
        known_t k;
} slot_t;

typedef struct {
        slot_t *slot;
        size_t cap, used; /* used counts live and deleted slots */
} umap_t;

static uint32_t float_bits(float f) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
}

static size_t umap_hash(int64_t ts, uint32_t bits, size_t cap) {
        uint64_t h = (uint64_t)ts * 0x9e3779b97f4a7c15ULL ^
                     (uint64_t)bits * 0xc2b2ae3d27d4eb4fULL;
        h ^= h >> 29;
        return (size_t)(h & (cap - 1));
}

static slot_t *umap_find(umap_t *m, int64_t ts, uint32_t bits) {
        if (!m->cap)
                return NULL;
        size_t i = umap_hash(ts, bits, m->cap);
        while (m->slot[i].state != 0) {
                slot_t *s = &m->slot[i];
                if (s->state == 1 && s->ts == ts && s->score_bits == bits)
                        return s;
                i = (i + 1) & (m->cap - 1);
        }
        return NULL;
}

static void umap_put(umap_t *m, int64_t ts, uint32_t bits, const known_t *k);

static void umap_grow(umap_t *m) {
        umap_t old = *m;
        size_t live = 0;
        for (size_t i = 0; i < old.cap; i++)
                live += old.slot[i].state == 1;
        m->cap = old.cap ? old.cap : 1024;
        while (live * 2 >= m->cap)
                m->cap *= 2;
        m->slot = itd_xcalloc(m->cap, sizeof *m->slot);
        m->used = 0;
        for (size_t i = 0; i < old.cap; i++)
                if (old.slot[i].state == 1)
                        umap_put(m, old.slot[i].ts, old.slot[i].score_bits,
                                 &old.slot[i].k);
        free(old.slot);
}

static void umap_put(umap_t *m, int64_t ts, uint32_t bits, const known_t *k) {
        if ((m->used + 1) * 10 >= m->cap * 7)
                umap_grow(m);
        size_t i = umap_hash(ts, bits, m->cap);
        while (m->slot[i].state == 1)
                i = (i + 1) & (m->cap - 1);
        if (m->slot[i].state == 0)
                m->used++;
        m->slot[i] = (slot_t){ts, bits, 1, *k};
}

/* ---- the example hooks: report, comparison, export -------------------- */

typedef struct {
        int64_t ts;
        float score;
        int label;
        size_t off, len; /* of the export row's text after "ts,user," */
} held_t;

typedef struct {
        held_t *v;
        size_t n, cap;
} held_list_t;

typedef struct replay_s {
        itd_report_t *rep;
        itd_compare_t *cmp;
        FILE *csv;
        umap_t known;
        held_list_t held, base; /* the model's, the baseline's examples */
        char *text;
        size_t text_len, text_cap;
        uint64_t rows, unmatched, ambiguous, mismatched;
} replay_t;

static held_t *held_push(held_list_t *l, int64_t ts, float score,
                         int label) {
        if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 1024;
                l->v = itd_xrealloc(l->v, l->cap * sizeof *l->v);
        }
        held_t *h = &l->v[l->n++];
        *h = (held_t){.ts = ts, .score = score, .label = label != 0};
        return h;
}

static void text_add(replay_t *r, const char *s, size_t n) {
        if (r->text_len + n + 1 > r->text_cap) {
                r->text_cap = (r->text_len + n + 1) * 2;
                r->text = itd_xrealloc(r->text, r->text_cap);
        }
        memcpy(r->text + r->text_len, s, n);
        r->text_len += n;
}

static void example_hook(void *arg, const float *x, size_t dim,
                         const uint32_t *ids, size_t n_ids, uint64_t user_hash,
                         int64_t ts_ms, float score, const float *next_probs,
                         int label, itd_next_t next) {
        replay_t *r = arg;
        (void)user_hash;
        if (r->rep)
                itd_report_example(r->rep, score, next_probs, label, next);
        held_t *h = held_push(&r->held, ts_ms, score, label);
        if (!r->csv)
                return;
        h->off = r->text_len;
        char buf[48];
        for (size_t i = 0; i < dim; i++) {
                /* %.7g: floats read back to the same value */
                int n = snprintf(buf, sizeof buf, "%.7g,", (double)x[i]);
                text_add(r, buf, (size_t)n);
        }
        for (size_t i = 0; i < n_ids; i++) {
                int n = ids[i] == ITD_SPARSE_NONE
                            ? snprintf(buf, sizeof buf, ",")
                            : snprintf(buf, sizeof buf, "%" PRIu32 ",",
                                       ids[i]);
                text_add(r, buf, (size_t)n);
        }
        int n = snprintf(buf, sizeof buf, "%d,%s,%.9g\n", label != 0,
                         itd_next_name(next), (double)score);
        text_add(r, buf, (size_t)n);
        h->len = r->text_len - h->off;
}

/* The baseline engine resolves the same examples in the same order (labels
 * and their order do not depend on the model); flush_held checks that. */
static void baseline_hook(void *arg, const float *x, size_t dim,
                          const uint32_t *ids, size_t n_ids,
                          uint64_t user_hash, int64_t ts_ms, float score,
                          const float *next_probs, int label,
                          itd_next_t next) {
        replay_t *r = arg;
        (void)x, (void)dim, (void)ids, (void)n_ids, (void)user_hash;
        (void)next_probs, (void)next;
        held_push(&r->base, ts_ms, score, label);
}

/* Hands the examples resolved in the last batch on, now that every
 * prediction they came from is known. */
static void flush_held(replay_t *r, int have_baseline) {
        if (have_baseline && r->base.n != r->held.n)
                r->mismatched += r->base.n > r->held.n
                                     ? r->base.n - r->held.n
                                     : r->held.n - r->base.n;
        for (size_t i = 0; i < r->held.n; i++) {
                const held_t *h = &r->held.v[i];
                float base = NAN;
                int same = 1;
                if (have_baseline) {
                        const held_t *b =
                            i < r->base.n ? &r->base.v[i] : NULL;
                        if (b && b->ts == h->ts && b->label == h->label)
                                base = b->score;
                        else
                                same = 0, r->mismatched++;
                }
                slot_t *s = umap_find(&r->known, h->ts, float_bits(h->score));
                known_t k = {0};
                int found = s != NULL;
                if (s) {
                        k = s->k;
                        s->state = 2;
                        if (same)
                                itd_compare_add(r->cmp, &k.ev, h->ts,
                                                h->score, base, h->label);
                } else
                        r->unmatched++;
                if (!r->csv)
                        continue;
                if (found)
                        fprintf(r->csv, "%" PRId64 ",%016" PRIx64 ",", h->ts,
                                k.user);
                else
                        fprintf(r->csv, "%" PRId64 ",,", h->ts);
                fwrite(r->text + h->off, 1, h->len, r->csv);
                r->rows++;
        }
        r->held.n = r->base.n = 0;
        r->text_len = 0;
}

static void csv_header(FILE *csv, const itd_engine_t *eng) {
        const itd_state_conf_t *sc = &itd_engine_partition_conf(eng)->state;
        fputs("ts,user", csv);
        char name[64];
        for (size_t i = 0; i < itd_engine_dim(eng); i++) {
                const char *s = itd_features_name(sc, i, name, sizeof name);
                fprintf(csv, ",%s", s ? s : "?");
        }
        for (size_t i = 0; i < ITD_SPARSE_IDS; i++)
                fprintf(csv, ",sparse_%zu", i);
        fputs(",label,next_action,score\n", csv);
}

/* ---- progress on a terminal ------------------------------------------- */

static void progress(const itd_reader_t *rd, uint64_t events, int64_t t0,
                     int final) {
        uint64_t done, total;
        itd_reader_progress(rd, &done, &total);
        double s = (double)(itd_now_mono_ms() - t0) / 1000.0;
        double rate = s > 0 ? (double)events / s : 0.0;
        char eta[32] = "";
        if (total && done && !final) {
                double left = s * ((double)total / (double)done - 1.0);
                snprintf(eta, sizeof eta, "  ETA %.0f s", left);
        }
        fprintf(stderr, "\r  %llu events  %.0f events/s  %5.1f%%%s   %s",
                (unsigned long long)events, rate,
                total ? 100.0 * (double)done / (double)total : 0.0, eta,
                final ? "\n" : "");
        fflush(stderr);
}

static FILE *open_out(const char *path) {
        FILE *f = fopen(path, "w");
        if (!f)
                fprintf(stderr, "intentd replay: cannot write \"%s\": %s\n",
                        path, strerror(errno));
        return f;
}

/* A second configuration, the same but for model.type: the baseline. */
static itd_conf_t *baseline_conf(const char *conf_path, char **overrides,
                                 int n_overrides, const char *type) {
        itd_conf_t *conf = itd_cli_conf(conf_path, overrides, n_overrides);
        char errstr[256];
        if (conf && itd_conf_set(conf, "model.type", type, errstr,
                                 sizeof errstr) != ITD_OK) {
                fprintf(stderr, "intentd replay: --baseline \"%s\": %s\n",
                        type, errstr);
                itd_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

static const char *model_name(const itd_conf_t *conf) {
        return conf->model_type == ITD_MODEL_KIND_LOGISTIC ? "logistic" : "mlp";
}

int itd_cmd_replay(int argc, char **argv) {
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"dump-state", required_argument, NULL, 'D'},
            {"report", required_argument, NULL, 'R'},
            {"html", required_argument, NULL, 'H'},
            {"export-features", required_argument, NULL, 'X'},
            {"baseline", required_argument, NULL, 'B'},
            {"resamples", required_argument, NULL, 'N'},
            ITD_CLI_COMMON_OPTS};
        const char *conf_path = NULL, *input = NULL, *format_arg = NULL;
        const char *dump_path = NULL, *report_path = NULL, *html_path = NULL;
        const char *export_path = NULL, *baseline = NULL;
        long long resamples = -1;
        char *overrides[MAX_OVERRIDES];
        int n_overrides = 0;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:" ITD_CLI_COMMON_SHORT,
                                longopts, NULL)) != -1) {
                switch (c) {
                case 'c': conf_path = optarg; break;
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'D': dump_path = optarg; break;
                case 'R': report_path = optarg; break;
                case 'H': html_path = optarg; break;
                case 'X': export_path = optarg; break;
                case 'B': baseline = optarg; break;
                case 'N':
                        resamples = itd_cli_int("replay", "--resamples",
                                                optarg, 0, 1000000);
                        if (resamples < 0)
                                return 2;
                        break;
                case 'o':
                        if (n_overrides == MAX_OVERRIDES) {
                                fprintf(stderr, "intentd replay: more than "
                                        "%d -o options\n", MAX_OVERRIDES);
                                return 2;
                        }
                        overrides[n_overrides++] = optarg;
                        break;
                default: return itd_cli_common_opt(c, replay_usage);
                }
        }
        if (!input) {
                fprintf(stderr, "intentd replay: --input is required\n\n%s",
                        replay_usage);
                return 2;
        }
        if (baseline && strcmp(baseline, "none") == 0)
                baseline = NULL;
        itd_format_t format;
        if (itd_cli_format("replay", input, format_arg, &format) != 0)
                return 2;
        itd_conf_t *conf = itd_cli_conf(conf_path, overrides, n_overrides);
        if (!conf)
                return 1;
        itd_conf_t *bconf = NULL;
        if (baseline &&
            !(bconf = baseline_conf(conf_path, overrides, n_overrides,
                                    baseline))) {
                itd_conf_destroy(conf);
                return 2;
        }
        itd_cli_log_setup(conf);
        itd_cli_signals();

        char errstr[1024];
        int rc = 1;
        itd_reader_t *rd = NULL;
        itd_input_t *in = NULL;
        itd_prediction_t *preds = NULL, *bpreds = NULL;
        itd_outcome_t *outcome = NULL, *boutcome = NULL;
        itd_compare_ev_t *known = NULL;
        itd_engine_t *beng = NULL;
        json_t *doc = NULL, *trig_json = NULL;
        itd_trigsweep_t *sweep = NULL;
        replay_t r = {0};
        itd_engine_t *eng = itd_conf_new_engine(conf, errstr, sizeof errstr);
        if (!eng) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        if (bconf && !(beng = itd_conf_new_engine(bconf, errstr, sizeof errstr))) {
                fprintf(stderr, "intentd replay: baseline: %s\n", errstr);
                goto out;
        }
        itd_compare_conf_t cc;
        itd_compare_conf_defaults(&cc, conf->labels_horizon_ms);
        cc.model_name = model_name(conf);
        cc.baseline = bconf ? model_name(bconf) : NULL;
        if (resamples >= 0)
                cc.resamples = (size_t)resamples;
        r.cmp = itd_compare_new(&cc);
        if (report_path || html_path)
                r.rep = itd_report_new(conf->predict_threshold);
        if (export_path) {
                if (!(r.csv = open_out(export_path)))
                        goto out;
                csv_header(r.csv, eng);
        }
        /* Triggers as `run` decides them (in event time: a replay has no
         * wall clock), and how many other rules would have fired. */
        itd_engine_enable_triggers(eng);
        sweep = itd_trigsweep_new(conf, errstr, sizeof errstr);
        if (!sweep) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        itd_engine_set_example_hook(eng, example_hook, &r);
        if (beng)
                itd_engine_set_example_hook(beng, baseline_hook, &r);
        rd = itd_reader_open(input, format, 1, errstr, sizeof errstr);
        if (!rd) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        size_t max_batch = itd_engine_max_batch(eng);
        in = itd_xcalloc(max_batch, sizeof *in);
        preds = itd_xcalloc(max_batch, sizeof *preds);
        outcome = itd_xcalloc(max_batch, sizeof *outcome);
        bpreds = itd_xcalloc(max_batch, sizeof *bpreds);
        boutcome = itd_xcalloc(max_batch, sizeof *boutcome);
        known = itd_xcalloc(max_batch, sizeof *known);

        int tty = isatty(STDERR_FILENO);
        int64_t t0 = itd_now_mono_ms(), last_shown = t0;
        uint64_t events = 0, filtered = 0;
        int64_t offset = 0;
        itd_err_t err = ITD_OK;
        while (!itd_cli_stop && err == ITD_OK) {
                size_t n = 0;
                while (n < max_batch &&
                       (err = itd_reader_next(rd, &in[n].ev, errstr,
                                              sizeof errstr)) == ITD_OK) {
                        in[n].partition = 0;
                        in[n].offset = offset++;
                        if (r.rep)
                                itd_report_event(r.rep, &in[n].ev);
                        itd_compare_event(r.cmp, &in[n].ev, &known[n]);
                        n++;
                }
                if (n == 0)
                        break;
                /* A full pending pool drops its oldest prediction instead
                 * of refusing the batch (engine.h): process cannot fail
                 * on input that reached it. */
                int64_t wall = itd_now_wall_ms();
                if (itd_engine_process(eng, input, in, n, wall, preds, outcome,
                                       errstr, sizeof errstr) != ITD_OK ||
                    (beng && itd_engine_process(beng, input, in, n, wall,
                                                bpreds, boutcome, errstr,
                                                sizeof errstr) != ITD_OK)) {
                        fprintf(stderr, "intentd replay: the engine refused "
                                "a batch: %s\n", errstr);
                        goto out;
                }
                events += n;
                for (size_t i = 0; i < n; i++) {
                        if (outcome[i] != ITD_OUT_PREDICTED) {
                                filtered++;
                                continue;
                        }
                        itd_trigsweep_add(sweep, preds[i].user_id,
                                          preds[i].event_ts_ms,
                                          preds[i].purchase_probability);
                        known_t k = {known[i], 0};
                        if (r.csv)
                                k.user = itd_hash_str(in[i].ev.user_id,
                                                      USER_SEED);
                        uint32_t bits =
                            float_bits(preds[i].purchase_probability);
                        if (umap_find(&r.known, in[i].ev.ts_ms, bits))
                                r.ambiguous++;
                        umap_put(&r.known, in[i].ev.ts_ms, bits, &k);
                }
                flush_held(&r, beng != NULL);
                int64_t now = itd_now_mono_ms();
                if (r.rep)
                        itd_report_progress(r.rep, events,
                                            (double)(now - t0) / 1000.0);
                if (tty && now - last_shown >= PROGRESS_MS) {
                        progress(rd, events, t0, 0);
                        last_shown = now;
                }
        }
        if (tty)
                progress(rd, events, t0, 1);
        if (err != ITD_OK && err != ITD_ERR_EOF) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        double seconds = (double)(itd_now_mono_ms() - t0) / 1000.0;
        uint64_t bad = itd_reader_bad_lines(rd);
        if (bad)
                fprintf(stderr, "replay: skipped %llu malformed lines "
                        "(last: %s)\n", (unsigned long long)bad,
                        itd_reader_last_error(rd));
        if (dump_path) {
                FILE *f = fopen(dump_path, "w");
                if (!f || itd_engine_dump_state(eng, f) != ITD_OK ||
                    fclose(f) != 0) {
                        fprintf(stderr, "intentd replay: cannot write "
                                "\"%s\"\n", dump_path);
                        goto out;
                }
        }
        itd_engine_stats_t es;
        itd_engine_stats(eng, &es);
        if (r.csv) {
                FILE *csv = r.csv;
                r.csv = NULL;
                if (ferror(csv) | fclose(csv)) {
                        fprintf(stderr, "intentd replay: cannot write "
                                "\"%s\"\n", export_path);
                        goto out;
                }
        }
        if (r.unmatched)
                fprintf(stderr, "replay: %llu examples could not be matched "
                        "to their event (left out of the comparison and "
                        "without a user in the export)\n",
                        (unsigned long long)r.unmatched);
        if (r.ambiguous)
                fprintf(stderr, "replay: %llu predictions shared event time "
                        "and score bits with another pending one (their "
                        "examples may be matched to each other's event)\n",
                        (unsigned long long)r.ambiguous);
        if (r.mismatched)
                fprintf(stderr, "replay: %llu baseline examples differ from "
                        "the model's (left out of the comparison)\n",
                        (unsigned long long)r.mismatched);
        itd_compare_finish(r.cmp);
        trig_json = itd_trigsweep_json(sweep);
        if (r.rep) {
                itd_report_run_t run = {
                    .input = input, .format = itd_format_name(format),
                    .conf = conf, .stats = &es, .seconds = seconds,
                    .events = events, .bad_lines = bad,
                    .filtered = filtered, .cmp = r.cmp,
                    .triggers = trig_json};
                doc = itd_report_json(r.rep, &run);
                if ((report_path && itd_report_write_json(
                                        doc, report_path, errstr,
                                        sizeof errstr) != ITD_OK) ||
                    (html_path && itd_report_write_html(
                                      doc, html_path, errstr,
                                      sizeof errstr) != ITD_OK)) {
                        fprintf(stderr, "intentd replay: %s\n", errstr);
                        goto out;
                }
        }
        printf("replay of %s", input);
        itd_cli_summary(stdout, &es, seconds, events, bad, filtered,
                        conf->predict_threshold);
        itd_compare_print(r.cmp, stdout);
        itd_trigger_conf_t tc;
        char rule[256];
        itd_conf_to_triggers(conf, &tc);
        printf("  triggers        %llu UP, %llu DOWN; %llu held back by the "
               "cool-down, %llu stale, %llu before the distribution was "
               "warm\n                  (%s)\n",
               (unsigned long long)es.triggers_up,
               (unsigned long long)es.triggers_down,
               (unsigned long long)es.triggers_held_back,
               (unsigned long long)es.triggers_stale,
               (unsigned long long)es.triggers_warming,
               itd_trigger_conf_text(&tc, rule, sizeof rule));
        itd_trigsweep_print(sweep, stdout);
        if (export_path)
                printf("  exported        %llu examples to %s\n",
                       (unsigned long long)r.rows, export_path);
        rc = 0;
out:
        if (r.csv)
                fclose(r.csv);
        json_decref(doc);
        json_decref(trig_json);
        itd_trigsweep_destroy(sweep);
        itd_report_destroy(r.rep);
        itd_compare_destroy(r.cmp);
        free(r.known.slot);
        free(r.held.v);
        free(r.base.v);
        free(r.text);
        free(in);
        free(preds);
        free(outcome);
        free(bpreds);
        free(boutcome);
        free(known);
        itd_reader_destroy(rd);
        itd_engine_destroy(eng);
        itd_engine_destroy(beng);
        itd_conf_destroy(conf);
        itd_conf_destroy(bconf);
        return rc;
}

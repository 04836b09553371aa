/*
 * cmd_replay.c - `intentd replay`: the engine over a file, no Kafka.
 *
 * The same engine as `run` (state, features, labeler, model, metrics),
 * fed from a reader in event-time order, deterministic. All events go to
 * partition 0, so one watermark covers the whole file. Besides the summary
 * it can write the evaluation report (JSON, HTML; daemon/report.c), every
 * resolved example as the model saw it (CSV), and the users' window state.
 *
 * The feature export names each example's user by a hash, for evaluations
 * that resample users. The engine's example hook does not pass the user,
 * and examples resolve inside itd_engine_process, before the batch's
 * predictions are known here; so rows are held until the call returns,
 * then matched to their prediction by (event time, score bits) -- equal
 * only for predictions of one event time and bit-identical score, where a
 * wrong user costs a resampling nothing.
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
#include "engine.h"
#include "intentd/log.h"
#include "intentd/mem.h"
#include "intentd/reader.h"
#include "report.h"

#define MAX_OVERRIDES 64
#define USER_SEED 0x6a09e667f3bcc908ULL /* export pseudonyms: not the
                                         * engine's hash, by design */
#define PROGRESS_MS 250                 /* progress line refresh */

static const char replay_usage[] =
    "usage: intentd replay [--config FILE] --input DATA\n"
    "                      [--format taobao|rees46|retailrocket|jsonl|avro]\n"
    "                      [--report OUT.json] [--html OUT.html]\n"
    "                      [--export-features OUT.csv]\n"
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
    "  --report F          evaluation report as JSON: metrics overall and\n"
    "                      over event time, confusion matrix, threshold\n"
    "                      sweep, calibration, next action, event mix,\n"
    "                      throughput, configuration\n"
    "  --html F            the same as one self-contained HTML page with\n"
    "                      charts\n"
    "  --export-features F every resolved example as the model saw it:\n"
    "                      ts, user (hashed), the features of FEATURES.md,\n"
    "                      sparse ids, label, next_action, score\n"
    "  --dump-state F      one JSON line per user: window counts per event\n"
    "                      type as of the end-of-input watermark\n";

/* ---- (event time, score) -> user, for the feature export ------------- */

typedef struct {
        int64_t ts;
        uint32_t score_bits;
        uint8_t state; /* 0 empty, 1 live, 2 deleted */
        uint64_t user;
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

static void umap_put(umap_t *m, int64_t ts, uint32_t bits, uint64_t user);

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
                                 old.slot[i].user);
        free(old.slot);
}

static void umap_put(umap_t *m, int64_t ts, uint32_t bits, uint64_t user) {
        if ((m->used + 1) * 10 >= m->cap * 7)
                umap_grow(m);
        size_t i = umap_hash(ts, bits, m->cap);
        while (m->slot[i].state == 1)
                i = (i + 1) & (m->cap - 1);
        if (m->slot[i].state == 0)
                m->used++;
        m->slot[i] = (slot_t){ts, bits, 1, user};
}

/* Finds and removes; 0 if absent. */
static int umap_take(umap_t *m, int64_t ts, uint32_t bits, uint64_t *user) {
        if (!m->cap)
                return 0;
        size_t i = umap_hash(ts, bits, m->cap);
        while (m->slot[i].state != 0) {
                slot_t *s = &m->slot[i];
                if (s->state == 1 && s->ts == ts && s->score_bits == bits) {
                        *user = s->user;
                        s->state = 2;
                        return 1;
                }
                i = (i + 1) & (m->cap - 1);
        }
        return 0;
}

/* ---- the example hook: report + export -------------------------------- */

typedef struct {
        int64_t ts;
        uint32_t score_bits;
        size_t off, len; /* of the row text after "ts,user," */
} held_t;

typedef struct replay_s {
        itd_report_t *rep;
        FILE *csv;
        umap_t users;
        held_t *held;
        size_t n_held, cap_held;
        char *text;
        size_t text_len, text_cap;
        uint64_t rows, unmatched;
} replay_t;

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
                itd_report_example(r->rep, ts_ms, score, next_probs, label,
                                   next);
        if (!r->csv)
                return;
        if (r->n_held == r->cap_held) {
                r->cap_held = r->cap_held ? r->cap_held * 2 : 1024;
                r->held = itd_xrealloc(r->held,
                                       r->cap_held * sizeof *r->held);
        }
        held_t *h = &r->held[r->n_held++];
        h->ts = ts_ms;
        h->score_bits = float_bits(score);
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

/* Writes the rows held so far, now that every prediction they came from
 * is in the map. */
static void flush_held(replay_t *r) {
        for (size_t i = 0; i < r->n_held; i++) {
                const held_t *h = &r->held[i];
                uint64_t user;
                if (umap_take(&r->users, h->ts, h->score_bits, &user))
                        fprintf(r->csv, "%" PRId64 ",%016" PRIx64 ",", h->ts,
                                user);
                else {
                        fprintf(r->csv, "%" PRId64 ",,", h->ts);
                        r->unmatched++;
                }
                fwrite(r->text + h->off, 1, h->len, r->csv);
                r->rows++;
        }
        r->n_held = 0;
        r->text_len = 0;
}

static void csv_header(FILE *csv, const itd_engine_t *eng) {
        const itd_state_conf_t *sc = itd_engine_state_conf(eng);
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

int itd_cmd_replay(int argc, char **argv) {
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"input", required_argument, NULL, 'i'},
            {"format", required_argument, NULL, 'f'},
            {"dump-state", required_argument, NULL, 'D'},
            {"report", required_argument, NULL, 'R'},
            {"html", required_argument, NULL, 'H'},
            {"export-features", required_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0}};
        const char *conf_path = NULL, *input = NULL, *format_arg = NULL;
        const char *dump_path = NULL, *report_path = NULL, *html_path = NULL;
        const char *export_path = NULL;
        char *overrides[MAX_OVERRIDES];
        int n_overrides = 0;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c': conf_path = optarg; break;
                case 'i': input = optarg; break;
                case 'f': format_arg = optarg; break;
                case 'D': dump_path = optarg; break;
                case 'R': report_path = optarg; break;
                case 'H': html_path = optarg; break;
                case 'X': export_path = optarg; break;
                case 'o':
                        if (n_overrides == MAX_OVERRIDES) {
                                fprintf(stderr, "intentd replay: more than "
                                        "%d -o options\n", MAX_OVERRIDES);
                                return 2;
                        }
                        overrides[n_overrides++] = optarg;
                        break;
                case 'h': fputs(replay_usage, stdout); return 0;
                case 'V': printf("intentd %s\n", ITD_VERSION); return 0;
                default: fputs(replay_usage, stderr); return 2;
                }
        }
        if (!input) {
                fprintf(stderr, "intentd replay: --input is required\n\n%s",
                        replay_usage);
                return 2;
        }
        itd_format_t format;
        if (itd_cli_format("replay", input, format_arg, &format) != 0)
                return 2;
        itd_conf_t *conf = itd_cli_conf(conf_path, overrides, n_overrides);
        if (!conf)
                return 1;
        itd_cli_log_setup(conf);
        itd_cli_signals();

        char errstr[1024];
        int rc = 1;
        itd_reader_t *rd = NULL;
        itd_input_t *in = NULL;
        itd_prediction_t *preds = NULL;
        itd_outcome_t *outcome = NULL;
        json_t *doc = NULL;
        replay_t r = {0};
        itd_engine_t *eng = itd_engine_new(conf, errstr, sizeof errstr);
        if (!eng) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        if (report_path || html_path)
                r.rep = itd_report_new(conf->predict_threshold);
        if (export_path) {
                if (!(r.csv = open_out(export_path)))
                        goto out;
                csv_header(r.csv, eng);
        }
        if (r.rep || r.csv)
                itd_engine_set_example_hook(eng, example_hook, &r);
        rd = itd_reader_open(input, format, 1, errstr, sizeof errstr);
        if (!rd) {
                fprintf(stderr, "intentd replay: %s\n", errstr);
                goto out;
        }
        size_t max_batch = itd_engine_max_batch(eng);
        in = itd_xcalloc(max_batch, sizeof *in);
        preds = itd_xcalloc(max_batch, sizeof *preds);
        outcome = itd_xcalloc(max_batch, sizeof *outcome);

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
                        n++;
                }
                if (n == 0)
                        break;
                if (itd_engine_process(eng, input, in, n, preds, outcome) !=
                    ITD_OK) {
                        fprintf(stderr, "intentd replay: the pending-label "
                                "pool is full (labels.max_pending)\n");
                        goto out;
                }
                events += n;
                for (size_t i = 0; i < n; i++) {
                        if (outcome[i] != ITD_OUT_PREDICTED) {
                                filtered++;
                                continue;
                        }
                        if (r.csv)
                                umap_put(&r.users, in[i].ev.ts_ms,
                                         float_bits(
                                             preds[i].purchase_probability),
                                         itd_hash_str(in[i].ev.user_id,
                                                      USER_SEED));
                }
                if (r.csv)
                        flush_held(&r);
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
                if (r.unmatched)
                        fprintf(stderr, "replay: %llu exported examples "
                                "could not be matched to their user\n",
                                (unsigned long long)r.unmatched);
        }
        if (r.rep) {
                itd_report_run_t run = {
                    .input = input, .format = itd_format_name(format),
                    .conf = conf, .stats = &es, .seconds = seconds,
                    .events = events, .bad_lines = bad,
                    .filtered = filtered};
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
        if (r.csv == NULL && export_path)
                printf("  exported        %llu examples to %s\n",
                       (unsigned long long)r.rows, export_path);
        rc = 0;
out:
        if (r.csv)
                fclose(r.csv);
        json_decref(doc);
        itd_report_destroy(r.rep);
        free(r.users.slot);
        free(r.held);
        free(r.text);
        free(in);
        free(preds);
        free(outcome);
        itd_reader_destroy(rd);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return rc;
}

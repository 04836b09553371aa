/*
 * replay.c - the engine over a file, no Kafka (see replay.h).
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
#include "intentd/replay.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#define USER_SEED 0x6a09e667f3bcc908ULL /* export pseudonyms: not the
                                         * engine's hash, by design */
#define PROGRESS_MS 250                 /* progress line refresh */

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


/* ---- the loop ---------------------------------------------------------- */

itd_err_t itd_replay_run(const itd_replay_conf_t *c, itd_replay_result_t *res,
                         char *errstr, size_t errstr_size) {
        *res = (itd_replay_result_t){0};
        itd_err_t err = ITD_OK;
        replay_t r = {.csv = c->csv};
        itd_input_t *in = NULL;
        itd_prediction_t *preds = NULL, *bpreds = NULL;
        itd_outcome_t *outcome = NULL, *boutcome = NULL;
        itd_compare_ev_t *known = NULL;

        r.cmp = res->cmp = itd_compare_new(&c->compare);
        if (c->report)
                r.rep = res->rep = itd_report_new(c->threshold);
        if (r.csv)
                csv_header(r.csv, c->eng);
        /* Triggers as `run` decides them (in event time: a replay has no
         * wall clock), and how many other rules would have fired. */
        itd_engine_enable_triggers(c->eng);
        res->sweep = itd_trigsweep_new(&c->triggers, errstr, errstr_size);
        if (!res->sweep)
                return ITD_ERR_CONF;
        itd_engine_set_example_hook(c->eng, example_hook, &r);
        if (c->beng)
                itd_engine_set_example_hook(c->beng, baseline_hook, &r);
        size_t max_batch = itd_engine_max_batch(c->eng);
        in = itd_xcalloc(max_batch, sizeof *in);
        preds = itd_xcalloc(max_batch, sizeof *preds);
        outcome = itd_xcalloc(max_batch, sizeof *outcome);
        bpreds = itd_xcalloc(max_batch, sizeof *bpreds);
        boutcome = itd_xcalloc(max_batch, sizeof *boutcome);
        known = itd_xcalloc(max_batch, sizeof *known);

        int64_t t0 = itd_now_mono_ms(), last_shown = t0;
        int64_t offset = 0;
        while (!*c->stop && err == ITD_OK) {
                size_t n = 0;
                while (n < max_batch &&
                       (err = itd_reader_next(c->rd, &in[n].ev, errstr,
                                              errstr_size)) == ITD_OK) {
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
                char why[512];
                int64_t wall = itd_now_wall_ms();
                itd_err_t perr = itd_engine_process(c->eng, c->input, in, n,
                                                    wall, preds, outcome, why,
                                                    sizeof why);
                if (perr == ITD_OK && c->beng)
                        perr = itd_engine_process(c->beng, c->input, in, n,
                                                  wall, bpreds, boutcome, why,
                                                  sizeof why);
                if (perr != ITD_OK) {
                        snprintf(errstr, errstr_size,
                                 "the engine refused a batch: %s", why);
                        err = perr;
                        goto out;
                }
                res->events += n;
                for (size_t i = 0; i < n; i++) {
                        if (outcome[i] != ITD_OUT_PREDICTED) {
                                res->filtered++;
                                continue;
                        }
                        itd_trigsweep_add(res->sweep, preds[i].user_id,
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
                flush_held(&r, c->beng != NULL);
                int64_t now = itd_now_mono_ms();
                if (r.rep)
                        itd_report_progress(r.rep, res->events,
                                            (double)(now - t0) / 1000.0);
                if (c->progress && now - last_shown >= PROGRESS_MS) {
                        progress(c->rd, res->events, t0, 0);
                        last_shown = now;
                }
        }
        if (c->progress)
                progress(c->rd, res->events, t0, 1);
        if (err == ITD_ERR_EOF)
                err = ITD_OK;
        res->seconds = (double)(itd_now_mono_ms() - t0) / 1000.0;
        itd_compare_finish(r.cmp);
out:
        res->rows = r.rows;
        res->unmatched = r.unmatched;
        res->ambiguous = r.ambiguous;
        res->mismatched = r.mismatched;
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
        return err;
}

void itd_replay_result_fini(itd_replay_result_t *res) {
        itd_report_destroy(res->rep);
        itd_compare_destroy(res->cmp);
        itd_trigsweep_destroy(res->sweep);
        *res = (itd_replay_result_t){0};
}

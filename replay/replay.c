/*
 * replay.c - the engine over a file, no Kafka (see replay.h).
 *
 * Every row's offset is its position in the file, and a judged example
 * comes back with the offset of the row it was predicted on (engine.h),
 * so what replay knew of that event when it read it (the rules' view,
 * the user) is found by offset, exactly.
 *
 * The baseline is a second engine with another model.type over the same
 * batches; labels do not depend on the model, so it judges the same rows
 * with the same labels (checked, by offset).
 */
#include "intentd/replay.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/log.h"
#include "intentd/mem.h"

#define PROGRESS_MS 250                 /* progress line refresh */

/* ---- offset -> what the event was ------------------------------------- */

/* What replay knows of a predicted event until its example is judged: the
 * rules' view of it, and the model's score and label while the baseline's
 * judgement of the same row is still to come. */
typedef struct {
        itd_compare_ev_t ev;
        float score;
        int label;
        int judged; /* by the model */
} known_t;

typedef struct {
        int64_t offset;
        uint8_t state; /* 0 empty, 1 live, 2 deleted */
        known_t k;
} slot_t;

typedef struct {
        slot_t *slot;
        size_t cap, used; /* used counts live and deleted slots */
} omap_t;

static size_t omap_home(int64_t offset, size_t cap) {
        uint64_t h = (uint64_t)offset * 0x9e3779b97f4a7c15ULL;
        return (size_t)((h ^ h >> 29) & (cap - 1));
}

static slot_t *omap_find(omap_t *m, int64_t offset) {
        if (!m->cap)
                return NULL;
        size_t i = omap_home(offset, m->cap);
        while (m->slot[i].state != 0) {
                slot_t *s = &m->slot[i];
                if (s->state == 1 && s->offset == offset)
                        return s;
                i = (i + 1) & (m->cap - 1);
        }
        return NULL;
}

static void omap_put(omap_t *m, int64_t offset, const known_t *k);

static void omap_grow(omap_t *m) {
        omap_t old = *m;
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
                        omap_put(m, old.slot[i].offset, &old.slot[i].k);
        free(old.slot);
}

static void omap_put(omap_t *m, int64_t offset, const known_t *k) {
        if ((m->used + 1) * 10 >= m->cap * 7)
                omap_grow(m);
        size_t i = omap_home(offset, m->cap);
        while (m->slot[i].state == 1)
                i = (i + 1) & (m->cap - 1);
        if (m->slot[i].state == 0)
                m->used++;
        m->slot[i] = (slot_t){offset, 1, *k};
}

/* ---- the example hooks: report, comparison, export -------------------- */

typedef struct replay_s {
        itd_report_t *rep;
        itd_compare_t *cmp;
        FILE *csv;
        uint8_t export_key[16]; /* the export's pseudonyms */
        size_t dim;          /* dense features per exported example */
        int have_baseline;
        omap_t known;        /* by row offset */
        uint64_t rows, mismatched;
} replay_t;

/* The export's pseudonym of a user: a keyed hash (SipHash-2-4) of the
 * row's user hash. The user hash itself is unkeyed, so anyone holding
 * candidate ids could match it; without the export key they cannot. */
static uint64_t pseudonym(const replay_t *r, uint64_t user_hash) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
                le[i] = (uint8_t)(user_hash >> (8 * i));
        return itd_keyed_hash(r->export_key, le, sizeof le);
}

static void export_row(replay_t *r, const itd_example_t *ex) {
        FILE *f = r->csv;
        fprintf(f, "%" PRId64 ",%016" PRIx64 ",", ex->ts_ms,
                pseudonym(r, ex->user_hash));
        for (size_t i = 0; i < r->dim; i++)
                /* %.7g: floats read back to the same value */
                fprintf(f, "%.7g,", (double)ex->x[i]);
        for (size_t i = 0; i < ITD_SPARSE_IDS; i++) {
                if (ex->ids[i] == ITD_SPARSE_NONE)
                        fputc(',', f);
                else
                        fprintf(f, "%" PRIu32 ",", ex->ids[i]);
        }
        fprintf(f, "%d,%s,%.9g\n", ex->label != 0, itd_next_name(ex->next),
                (double)ex->score);
        r->rows++;
}

static void example_hook(void *arg, int32_t partition,
                         const itd_example_t *ex) {
        replay_t *r = arg;
        (void)partition; /* offsets are unique over the whole file */
        if (r->rep)
                itd_report_example(r->rep, ex->score, ex->next_probs,
                                   ex->label, ex->next);
        if (r->csv)
                export_row(r, ex);
        slot_t *s = omap_find(&r->known, ex->offset);
        assert(s); /* every row was known before the engine saw it */
        if (!r->have_baseline) {
                itd_compare_add(r->cmp, &s->k.ev, ex->ts_ms, ex->score, NAN,
                                ex->label);
                s->state = 2;
                return;
        }
        s->k.score = ex->score;
        s->k.label = ex->label != 0;
        s->k.judged = 1;
}

/* The baseline engine runs after the model's over each batch and judges
 * the same rows with the same labels; a row the model did not judge, or
 * judged otherwise, is counted and left out of the comparison. */
static void baseline_hook(void *arg, int32_t partition,
                          const itd_example_t *ex) {
        replay_t *r = arg;
        (void)partition;
        slot_t *s = omap_find(&r->known, ex->offset);
        if (!s || !s->k.judged || s->k.label != (ex->label != 0)) {
                r->mismatched++;
                return;
        }
        itd_compare_add(r->cmp, &s->k.ev, ex->ts_ms, s->k.score, ex->score,
                        s->k.label);
        s->state = 2;
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

/* ---- the loop's state: rounds, the sweep, reading ahead -------------- */

/* Where the i-th row of a round is: worker w's row k. */
typedef struct {
        uint32_t w, k;
} row_at_t;

/* A scored row, as the sweep takes it. */
typedef struct {
        uint64_t user_hash;
        int64_t ts_ms;
        float score;
} scored_t;

/* A round as read: its rows' places in stream order and each worker's
 * count. */
typedef struct {
        row_at_t *order;
        size_t *count;
        size_t n;
} round_t;

/*
 * With several workers the loop's thread is worker 0, and what it does
 * outside the engines the others wait through. So two things run beside
 * the engines, in the task every worker runs each round
 * (itd_workers_set_task):
 *
 *  - the trigger sweep, a round behind: its rule rows are cut into one
 *    part per worker (itd_trigsweep_add_part), worker 0's two thirds the
 *    size of the others', as worker 0 also reads; every part sees every
 *    score in stream order, so the counts are those of one thread;
 *  - reading the next round (the events, the comparison's per-user
 *    counts, the offset map): worker 0 reads it into `in` while the
 *    others finish theirs, and the rows go to their workers' rows when
 *    the round is over. The rounds are the ones one thread reads.
 *
 * With one worker the loop reads each round straight into the engine's
 * rows before it, and runs the whole sweep after it, as before.
 */
typedef struct {
        const itd_replay_conf_t *c;
        replay_t *r;
        size_t n_workers, engine_batch, max_batch;
        itd_row_t *seg[ITD_WORKERS_MAX]; /* each worker's rows */
        itd_row_t *in;                   /* (max_batch) read ahead */
        round_t round[2];
        int64_t offset;
        int read_into; /* the round worker 0 reads in the task; -1 none */
        itd_err_t err; /* the reader's: ITD_ERR_EOF at the end */
        char *errstr;
        size_t errstr_size;

        itd_trigsweep_t *sw;
        scored_t *scored; /* (max_batch) the last round's */
        size_t n_scored;
} loop_t;

/* Reads round `into`: until one worker has a full batch, the end, or an
 * error (L->err). */
static void read_round(loop_t *L, int into) {
        round_t *rd = &L->round[into];
        replay_t *r = L->r;
        size_t n = 0, full = 0;
        memset(rd->count, 0, L->n_workers * sizeof *rd->count);
        while (!full && n < L->max_batch) {
                itd_row_t *row = L->n_workers == 1
                                     ? &L->seg[0][rd->count[0]]
                                     : &L->in[n];
                L->err = itd_reader_next(L->c->rd, &row->ev, L->errstr,
                                         L->errstr_size);
                if (L->err != ITD_OK)
                        break;
                itd_row_decoded(row, 0, L->offset++);
                size_t w = (size_t)(row->user_hash % L->n_workers);
                row->partition = (int32_t)w;
                rd->order[n++] = (row_at_t){(uint32_t)w,
                                            (uint32_t)rd->count[w]};
                full = ++rd->count[w] == L->engine_batch;
                if (r->rep)
                        itd_report_event(r->rep, &row->ev);
                known_t k = {0};
                itd_compare_event(r->cmp, &row->ev, row->user_hash, &k.ev);
                omap_put(&r->known, row->offset, &k);
        }
        rd->n = n;
}

/* A round read ahead, to its workers' rows (the caller's part of each). */
static void place_round(loop_t *L, const round_t *rd) {
        for (size_t i = 0; i < rd->n; i++) {
                const itd_row_t *from = &L->in[i];
                itd_row_t *to = &L->seg[rd->order[i].w][rd->order[i].k];
                to->ev = from->ev;
                to->user_hash = from->user_hash;
                to->partition = from->partition;
                to->offset = from->offset;
        }
}

/* The sweep's rows per part: worker 0's part 2, the others' 3, as
 * worker 0 also reads the next round (the workers' parts of a round came
 * out nearest even so). */
#define SWEEP_WEIGHT_0 2
#define SWEEP_WEIGHT 3

static void sweep_part(loop_t *L, size_t part) {
        for (size_t i = 0; i < L->n_scored; i++)
                itd_trigsweep_add_part(L->sw, part, L->scored[i].user_hash,
                                       L->scored[i].ts_ms,
                                       L->scored[i].score);
}

static void round_task(void *arg, size_t w, size_t n) {
        loop_t *L = arg;
        (void)n;
        sweep_part(L, w);
        if (w == 0 && L->read_into >= 0)
                read_round(L, L->read_into);
}

/* The last round's, on this thread, after the last round. */
static void sweep_flush(loop_t *L) {
        for (size_t p = 0; p < itd_trigsweep_parts(L->sw); p++)
                sweep_part(L, p);
        L->n_scored = 0;
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
        memcpy(r.export_key, c->export_key, sizeof r.export_key);

        r.cmp = res->cmp = itd_compare_new(&c->compare);
        if (c->report)
                r.rep = res->rep = itd_report_new(c->threshold);
        itd_engine_t *eng0 = itd_workers_engine(c->wk, 0);
        if (r.csv) {
                csv_header(r.csv, eng0);
                r.dim = itd_engine_dim(eng0);
        }
        r.have_baseline = c->beng != NULL;
        /* Triggers as `run` decides them (in event time: a replay has no
         * wall clock), and how many other rules would have fired. */
        itd_workers_enable_triggers(c->wk);
        /* One worker: everything is partition 0. More: users are spread
         * over one partition per worker by their hash, as a producer
         * keyed by user spreads them over a topic's partitions. */
        size_t n_workers = itd_workers_count(c->wk);
        unsigned weight[ITD_WORKERS_MAX];
        for (size_t w = 0; w < n_workers; w++)
                weight[w] = w == 0 ? SWEEP_WEIGHT_0 : SWEEP_WEIGHT;
        res->sweep = itd_trigsweep_new(&c->triggers, n_workers, weight,
                                       errstr, errstr_size);
        if (!res->sweep)
                return ITD_ERR_CONF;
        itd_workers_set_example_hook(c->wk, example_hook, &r);
        if (c->beng)
                itd_engine_set_example_hook(c->beng, baseline_hook, &r);
        loop_t L = {.c = c, .r = &r, .n_workers = n_workers,
                    .engine_batch = itd_engine_max_batch(eng0),
                    .max_batch = itd_workers_max_rows(c->wk),
                    .read_into = -1, .errstr = errstr,
                    .errstr_size = errstr_size, .sw = res->sweep};
        for (size_t w = 0; w < n_workers; w++)
                L.seg[w] = itd_workers_rows(c->wk, w);
        if (n_workers > 1)
                L.in = itd_xcalloc(L.max_batch, sizeof *L.in);
        for (int i = 0; i < 2; i++) {
                L.round[i].order =
                    itd_xcalloc(L.max_batch, sizeof *L.round[i].order);
                L.round[i].count =
                    itd_xcalloc(n_workers, sizeof *L.round[i].count);
        }
        L.scored = itd_xcalloc(L.max_batch, sizeof *L.scored);
        /* the baseline takes the rows in stream order: with several
         * workers a copy of them */
        itd_row_t *flat = c->beng && n_workers > 1
                              ? itd_xcalloc(L.max_batch, sizeof *flat)
                              : NULL;
        itd_workers_set_task(c->wk, round_task, &L);

        int ahead = n_workers > 1; /* the next round read during this one */
        int64_t t0 = itd_now_mono_ms(), last_shown = t0;
        if (ahead && !*c->stop)
                read_round(&L, 0);
        for (int cur = 0;; cur ^= 1) {
                round_t *rd = &L.round[cur];
                if (!ahead) {
                        if (*c->stop || L.err != ITD_OK)
                                break;
                        read_round(&L, cur);
                }
                size_t n = rd->n;
                if (n == 0)
                        break;
                if (ahead) {
                        place_round(&L, rd);
                        L.round[cur ^ 1].n = 0;
                        L.read_into =
                            *c->stop || L.err != ITD_OK ? -1 : cur ^ 1;
                }
                /* A full pending pool drops its oldest prediction instead
                 * of refusing the batch (engine.h): process cannot fail
                 * on input that reached it. */
                char why[512];
                int64_t wall = itd_now_wall_ms();
                itd_err_t perr = itd_workers_process_own(
                    c->wk, c->input, rd->count, wall, why, sizeof why);
                if (perr != ITD_OK) {
                        snprintf(errstr, errstr_size,
                                 "the engine refused a batch: %s", why);
                        err = perr;
                        goto out;
                }
                res->events += n;
                /* the round before went through the sweep during this
                 * one: its place takes this round's */
                L.n_scored = 0;
                for (size_t i = 0; i < n; i++) {
                        const itd_row_t *row =
                            &L.seg[rd->order[i].w][rd->order[i].k];
                        if (flat)
                                flat[i] = *row;
                        if (row->outcome != ITD_OUT_PREDICTED) {
                                res->filtered++;
                                continue;
                        }
                        L.scored[L.n_scored++] = (scored_t){
                            row->user_hash, row->pred.event_ts_ms,
                            row->pred.purchase_probability};
                }
                /* The same rows through the baseline, in stream order
                 * (their engine's part is rewritten; the model's was read
                 * above). */
                itd_row_t *brows = flat ? flat : L.seg[0];
                for (size_t i0 = 0; c->beng && i0 < n;
                     i0 += L.engine_batch) {
                        size_t n0 = n - i0 < L.engine_batch ? n - i0
                                                            : L.engine_batch;
                        perr = itd_engine_process(c->beng, c->input,
                                                  brows + i0, n0, wall, why,
                                                  sizeof why);
                        if (perr != ITD_OK) {
                                snprintf(errstr, errstr_size,
                                         "the baseline refused a batch: %s",
                                         why);
                                err = perr;
                                goto out;
                        }
                }
                int64_t now = itd_now_mono_ms();
                if (r.rep)
                        itd_report_progress(r.rep, res->events,
                                            (double)(now - t0) / 1000.0);
                if (c->progress && now - last_shown >= PROGRESS_MS) {
                        progress(c->rd, res->events, t0, 0);
                        last_shown = now;
                }
        }
        sweep_flush(&L);
        if (c->progress)
                progress(c->rd, res->events, t0, 1);
        err = L.err == ITD_ERR_EOF ? ITD_OK : L.err;
        res->seconds = (double)(itd_now_mono_ms() - t0) / 1000.0;
        itd_compare_finish(r.cmp);
out:
        itd_workers_set_task(c->wk, NULL, NULL);
        res->rows = r.rows;
        res->mismatched = r.mismatched;
        free(r.known.slot);
        free(L.in);
        for (int i = 0; i < 2; i++) {
                free(L.round[i].order);
                free(L.round[i].count);
        }
        free(L.scored);
        free(flat);
        return err;
}

void itd_replay_result_fini(itd_replay_result_t *res) {
        itd_report_destroy(res->rep);
        itd_compare_destroy(res->cmp);
        itd_trigsweep_destroy(res->sweep);
        *res = (itd_replay_result_t){0};
}

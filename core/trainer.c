/*
 * trainer.c - eval, the mini-batch and the optimizer steps (trainer.h).
 */
#include "intentd/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "intentd/frame.h"
#include "intentd/mem.h"

/* Held rows of an older snapshot, which did not keep their partition:
 * every partition's negatives are their clock, as all were then. */
#define HOLD_ANY INT32_MIN

/* One partition's held positives and clock. */
typedef struct hold_part_s {
        int32_t id;
        int32_t head, tail; /* its held slots oldest first, -1 none */
        int64_t clock_ms;   /* latest prediction time of its resolved
                             * negatives; INT64_MIN before the first */
} hold_part_t;

struct itd_trainer_s {
        itd_trainer_conf_t conf;
        itd_model_t *model; /* borrowed: stepped, and (one thread) scored
                             * with */
        itd_eval_t *eval;   /* progressive validation, whole run */

        /* The mini-batch being filled, conf.batch rows. */
        float *x;           /* (batch, dim) */
        uint32_t *ids;      /* (batch, n_ids) */
        float *y;           /* (batch) */
        int *next;          /* (batch) */
        float *w;           /* (batch) importance weights */
        float neg_rate;     /* negatives kept for training, 0..1 */
        size_t n;

        /* Positives held until their horizon has closed: conf.hold_cap
         * slots (x, ids, next, ts_ms, arrival number), each partition's
         * chained by hlink in arrival order (a FIFO a partition), the
         * free ones too. */
        float *hx;
        uint32_t *hids;
        int *hnext;
        int64_t *hts;
        uint64_t *hseq;
        int32_t *hlink;
        int32_t hfree; /* first free slot, -1 none */
        size_t hn;
        uint64_t seq;  /* arrival number of the next held positive */
        hold_part_t *parts;
        size_t np, pcap, plast; /* plast: the last looked up */
        size_t any;             /* parts' HOLD_ANY, SIZE_MAX none */
        int64_t clock_new;      /* a partition's clock when first seen */

        uint64_t examples_pos, examples_neg, examples_neg_sampled_out;
};

/* Nothing held, no partition known; a partition first seen starts with
 * clock_new. */
static void hold_reset(itd_trainer_t *tr, int64_t clock_new) {
        for (size_t i = 0; i < tr->conf.hold_cap; i++)
                tr->hlink[i] = i + 1 < tr->conf.hold_cap ? (int32_t)(i + 1)
                                                         : -1;
        tr->hfree = tr->conf.hold_cap ? 0 : -1;
        tr->hn = 0;
        tr->seq = 0;
        tr->np = 0;
        tr->plast = 0;
        tr->any = SIZE_MAX;
        tr->clock_new = clock_new;
}

itd_trainer_t *itd_trainer_new(const itd_trainer_conf_t *conf,
                               itd_model_t *model, char *errstr,
                               size_t errstr_size) {
        if (conf->batch < 1) {
                snprintf(errstr, errstr_size,
                         "trainer: the mini-batch must hold at least 1 "
                         "example");
                return NULL;
        }
        itd_trainer_t *tr = itd_xcalloc(1, sizeof *tr);
        tr->conf = *conf;
        tr->model = model;
        tr->eval = itd_eval_new(conf->threshold);
        tr->x = itd_xcalloc(conf->batch * conf->dim, sizeof *tr->x);
        tr->ids = itd_xcalloc(conf->batch * conf->n_ids, sizeof *tr->ids);
        tr->y = itd_xcalloc(conf->batch, sizeof *tr->y);
        tr->next = itd_xcalloc(conf->batch, sizeof *tr->next);
        tr->w = itd_xcalloc(conf->batch, sizeof *tr->w);
        if (conf->hold_cap) {
                tr->hx = itd_xcalloc(conf->hold_cap * conf->dim,
                                     sizeof *tr->hx);
                tr->hids = itd_xcalloc(conf->hold_cap * conf->n_ids,
                                       sizeof *tr->hids);
                tr->hnext = itd_xcalloc(conf->hold_cap, sizeof *tr->hnext);
                tr->hts = itd_xcalloc(conf->hold_cap, sizeof *tr->hts);
                tr->hseq = itd_xcalloc(conf->hold_cap, sizeof *tr->hseq);
                tr->hlink = itd_xcalloc(conf->hold_cap, sizeof *tr->hlink);
        }
        hold_reset(tr, INT64_MIN);
        tr->neg_rate = conf->neg_sample_rate > 0.0f &&
                               conf->neg_sample_rate < 1.0f
                           ? conf->neg_sample_rate
                           : 1.0f;
        return tr;
}

void itd_trainer_destroy(itd_trainer_t *tr) {
        if (!tr)
                return;
        itd_eval_destroy(tr->eval);
        free(tr->x);
        free(tr->ids);
        free(tr->y);
        free(tr->next);
        free(tr->w);
        free(tr->hx);
        free(tr->hids);
        free(tr->hnext);
        free(tr->hts);
        free(tr->hseq);
        free(tr->hlink);
        free(tr->parts);
        free(tr);
}

void itd_trainer_flush(itd_trainer_t *tr) {
        if (tr->n == 0)
                return;
        float loss;
        /* a kept negative stands for 1 / neg_rate of them (importance
         * weight), so the model learns the full stream's base rate and
         * needs no calibration correction */
        const float *wt = NULL;
        if (tr->neg_rate < 1.0f) {
                for (size_t i = 0; i < tr->n; i++)
                        tr->w[i] = tr->y[i] > 0.0f ? 1.0f
                                                   : 1.0f / tr->neg_rate;
                wt = tr->w;
        }
        /* a non-finite loss skips the step; the model counts it
         * (itd_engine_stats_t.train_skipped) */
        (void)itd_model_train_weighted(tr->model, tr->x, tr->ids, tr->y,
                                       tr->next, wt, tr->n, &loss);
        tr->n = 0;
}

/*
 * Negative down-sampling (He et al. 2014, "Practical Lessons from
 * Predicting Clicks on Ads at Facebook", section 6): a negative is kept
 * for training with probability neg_rate, decided by a hash of its user
 * and event time, so a replay, a restart and a restored partition keep
 * the same ones. Positives are always kept.
 */
static int keep_for_training(const itd_trainer_t *tr,
                             const itd_example_t *ex) {
        if (ex->label || tr->neg_rate >= 1.0f)
                return 1;
        /* splitmix64's finaliser of user and time: uniform in [0, 1) */
        uint64_t h = ex->user_hash ^
                     ((uint64_t)ex->ts_ms * 0x9E3779B97F4A7C15ull);
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
        h ^= h >> 31;
        return (double)(h >> 11) * 0x1.0p-53 < (double)tr->neg_rate;
}

/* Row n of the mini-batch from its parts (x: dim floats, ids: n_ids u32,
 * as bytes: a snapshot's rows need not be aligned); steps when that fills
 * it. */
static void queue(itd_trainer_t *tr, const void *x, const void *ids,
                  float y, int next) {
        size_t r = tr->n++;
        memcpy(tr->x + r * tr->conf.dim, x, tr->conf.dim * sizeof(float));
        memcpy(tr->ids + r * tr->conf.n_ids, ids,
               tr->conf.n_ids * sizeof(uint32_t));
        tr->y[r] = y;
        tr->next[r] = next;
        if (tr->n == tr->conf.batch)
                itd_trainer_flush(tr);
}

/* Index in tr->parts of partition id, added when first seen. */
static size_t part_of(itd_trainer_t *tr, int32_t id) {
        if (tr->plast < tr->np && tr->parts[tr->plast].id == id)
                return tr->plast;
        for (size_t i = 0; i < tr->np; i++)
                if (tr->parts[i].id == id)
                        return tr->plast = i;
        if (tr->np == tr->pcap) {
                tr->pcap = tr->pcap ? 2 * tr->pcap : 8;
                tr->parts = itd_xrealloc(tr->parts,
                                         tr->pcap * sizeof *tr->parts);
        }
        tr->parts[tr->np] = (hold_part_t){.id = id,
                                          .head = -1,
                                          .tail = -1,
                                          .clock_ms = tr->clock_new};
        if (id == HOLD_ANY)
                tr->any = tr->np;
        return tr->plast = tr->np++;
}

/* Partition p's oldest held positive into the mini-batch. */
static void release_head(itd_trainer_t *tr, size_t p) {
        hold_part_t *hp = &tr->parts[p];
        int32_t h = hp->head;
        queue(tr, tr->hx + (size_t)h * tr->conf.dim,
              tr->hids + (size_t)h * tr->conf.n_ids, 1.0f, tr->hnext[h]);
        hp->head = tr->hlink[h];
        if (hp->head < 0)
                hp->tail = -1;
        tr->hlink[h] = tr->hfree;
        tr->hfree = h;
        tr->hn--;
}

/* The oldest held positive of all (the oldest head) into the mini-batch. */
static void release_oldest(itd_trainer_t *tr) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < tr->np; i++) {
                int32_t h = tr->parts[i].head;
                if (h >= 0 && (best == SIZE_MAX ||
                               tr->hseq[h] < tr->hseq[tr->parts[best].head]))
                        best = i;
        }
        release_head(tr, best);
}

/*
 * A positive is known at its purchase, a negative only once its horizon
 * has passed: learning each as soon as it is known feeds the model the
 * positives of up to a horizon later than the negatives, a base rate
 * that runs ahead of the stream's and weights that chase the latest
 * purchases. A held positive waits until a negative of its partition,
 * of a prediction made at or after its own, arrives: that prediction's
 * horizon has closed, so its own has, and both classes are learned with
 * the same delay. Resolved negatives are the clock (the labeler's
 * watermark is not needed), one a partition: partitions of one engine
 * can be far apart in event time (a backlog hands them over in chunks),
 * and one clock for all held a partition behind in time behind the
 * positives of one ahead. Each partition's are released in arrival order
 * (a FIFO: a purchase's positives leave together once the last is
 * closed; releasing any that is closed measured worse). Before a
 * partition's first negative there is no clock, and its positives are
 * learned at once: holding them would stall a cold start for a whole
 * horizon, and those first positives are what it learns from (measured,
 * docs/MODEL.md). A full hold learns the oldest of all at once.
 */
/* Holds a positive of partition p (x: dim floats, ids: n_ids u32, as
 * bytes); without a hold it goes into the mini-batch at once. */
static void hold_row(itd_trainer_t *tr, size_t p, const void *x,
                     const void *ids, int next, int64_t ts_ms) {
        if (!tr->conf.hold_cap) {
                queue(tr, x, ids, 1.0f, next);
                return;
        }
        if (tr->hn == tr->conf.hold_cap)
                release_oldest(tr);
        int32_t t = tr->hfree;
        tr->hfree = tr->hlink[t];
        memcpy(tr->hx + (size_t)t * tr->conf.dim, x,
               tr->conf.dim * sizeof(float));
        memcpy(tr->hids + (size_t)t * tr->conf.n_ids, ids,
               tr->conf.n_ids * sizeof(uint32_t));
        tr->hnext[t] = next;
        tr->hts[t] = ts_ms;
        tr->hseq[t] = tr->seq++;
        tr->hlink[t] = -1;
        hold_part_t *hp = &tr->parts[p];
        if (hp->tail >= 0)
                tr->hlink[hp->tail] = t;
        else
                hp->head = t;
        hp->tail = t;
        tr->hn++;
}

/* A negative of time ts_ms moves partition p's clock; what it closed is
 * released. */
static void advance(itd_trainer_t *tr, size_t p, int64_t ts_ms) {
        hold_part_t *hp = &tr->parts[p];
        if (ts_ms > hp->clock_ms)
                hp->clock_ms = ts_ms;
        while (hp->head >= 0 && tr->hts[hp->head] <= hp->clock_ms)
                release_head(tr, p);
}

void itd_trainer_add(itd_trainer_t *tr, const itd_example_t *ex) {
        /* labels.policy fake_negative: each prediction is judged once,
         * with its final label; its fake negative is trained only, and a
         * final negative (already learned) judged only (labeler.h) */
        if (ex->judge)
                itd_eval_add(tr->eval, ex->score, ex->label, ex->next_probs,
                             ex->next);
        if (tr->conf.hold_cap && !ex->label) {
                if (tr->any != SIZE_MAX)
                        advance(tr, tr->any, ex->ts_ms);
                advance(tr, part_of(tr, ex->partition), ex->ts_ms);
        }
        if (!ex->train)
                return;
        if (!keep_for_training(tr, ex)) {
                tr->examples_neg_sampled_out++;
                return;
        }
        if (ex->label)
                tr->examples_pos++;
        else
                tr->examples_neg++;
        if (ex->label && tr->conf.hold_cap) {
                size_t p = part_of(tr, ex->partition);
                if (tr->parts[p].clock_ms != INT64_MIN) {
                        hold_row(tr, p, ex->x, ex->ids, (int)ex->next,
                                 ex->ts_ms);
                        return;
                }
        }
        queue(tr, ex->x, ex->ids, (float)ex->label, (int)ex->next);
}

int64_t itd_trainer_publish(itd_trainer_t *tr) {
        /* One thread: the model stepped is the model scored with. */
        return itd_model_steps(tr->model);
}

void itd_trainer_set_threshold(itd_trainer_t *tr, float threshold) {
        itd_eval_set_threshold(tr->eval, threshold);
}

void itd_trainer_stats(const itd_trainer_t *tr, itd_trainer_stats_t *s) {
        s->examples_pos = tr->examples_pos;
        s->examples_neg = tr->examples_neg;
        s->examples_neg_sampled_out = tr->examples_neg_sampled_out;
        s->queued = tr->n;
        s->held = tr->hn;
        s->version = itd_model_steps(tr->model);
}

itd_eval_t *itd_trainer_eval(itd_trainer_t *tr) {
        return tr->eval;
}

/* ------------------------------------------------------------ snapshot */

/*
 * Version 4: the one framing (intentd/frame.h), kind ITD_FRAME_TRAINER,
 * little-endian, CRC32C. The kind's header: u64 dim, n_ids, n (rows of
 * the mini-batch), hn (held positives), i64 clock_ms (the clock of a
 * partition first seen: INT64_MIN, none, unless carried over from an
 * older snapshot), then the counters u64 events, predictions, late,
 * examples_pos, examples_neg, then u64 np (partitions with a clock).
 * Sections, one column each: "x" f32 (n, dim), "ids" u32 (n, n_ids), "y"
 * f32 (n), "next" u32 (n, an itd_next_t each), the held positives oldest
 * first: "held_x" f32 (hn, dim), "held_ids" u32 (hn, n_ids), "held_next"
 * u32 (hn), "held_ts" u64 (hn, ms since the epoch), "held_part" u32 (hn,
 * the partition, an i32; INT32_MIN: held before partitions were kept),
 * and the partitions' clocks: "part_id" u32 (np, an i32 each),
 * "part_clock" u64 (np, an i64 each: ms since the epoch).
 *
 * Version 3 is version 4 without np and the three sections after
 * "held_ts": it had one clock for all partitions (clock_ms). Its held
 * positives, and those of versions 1 and 2, go into one queue released by
 * every partition's negatives, as they were then, and every partition
 * starts with its clock.
 *
 * Versions 1 and 2 (before the one framing) are still read: "ITDTRAIN",
 * u64 version, u64 dim, u64 n_ids, u64 n, u64 counters[5] (events,
 * predictions, late, examples_pos, examples_neg), then n rows (x: dim
 * floats, ids: n_ids u32, y: float, next: int32); from version 2 then u64
 * hn, i64 clock_ms and hn held positives (a row, then its ts_ms: i64);
 * then the XXH64 of every byte before it, in the host's byte order.
 */
#define TRAINER_VERSION 4
#define TRAINER_WORDS 11 /* the kind's header, u64 each */
#define TRAINER_WORDS_V3 10
#define LEGACY_MAGIC "ITDTRAIN"
#define LEGACY_VERSION 2
#define LEGACY_HEAD (8 + 9 * 8)

/* The snapshot's columns in host order: the mini-batch's n rows, then the
 * hn held positives oldest first. */
typedef struct cols_s {
        uint64_t dim, n_ids, n, hn;
        int64_t clock_ms;
        uint64_t events, predictions, late, examples_pos, examples_neg;
        uint64_t np;
        float *x, *y, *hx;
        uint32_t *ids, *next, *hids, *hnext, *hpart, *pid;
        uint64_t *hts, *pclock;
} cols_t;

static void cols_alloc(cols_t *c) {
        c->x = itd_xcalloc(c->n * c->dim + 1, sizeof *c->x);
        c->ids = itd_xcalloc(c->n * c->n_ids + 1, sizeof *c->ids);
        c->y = itd_xcalloc(c->n + 1, sizeof *c->y);
        c->next = itd_xcalloc(c->n + 1, sizeof *c->next);
        c->hx = itd_xcalloc(c->hn * c->dim + 1, sizeof *c->hx);
        c->hids = itd_xcalloc(c->hn * c->n_ids + 1, sizeof *c->hids);
        c->hnext = itd_xcalloc(c->hn + 1, sizeof *c->hnext);
        c->hts = itd_xcalloc(c->hn + 1, sizeof *c->hts);
        c->hpart = itd_xcalloc(c->hn + 1, sizeof *c->hpart);
        c->pid = itd_xcalloc(c->np + 1, sizeof *c->pid);
        c->pclock = itd_xcalloc(c->np + 1, sizeof *c->pclock);
}

static void cols_free(cols_t *c) {
        free(c->x);
        free(c->ids);
        free(c->y);
        free(c->next);
        free(c->hx);
        free(c->hids);
        free(c->hnext);
        free(c->hts);
        free(c->hpart);
        free(c->pid);
        free(c->pclock);
}

/* One section a column, in the order of the header comment. */
typedef struct col_s {
        const char *name;
        uint32_t dtype;
        size_t off;   /* the column's pointer in cols_t */
        int held;     /* 0: n rows; 1: hn; 2: np */
        int width;    /* 0: one element a row; 1: dim; 2: n_ids */
        uint32_t since; /* the first version with it */
} col_t;

static const col_t COLS[] = {
    {"x", ITD_FRAME_F32, offsetof(cols_t, x), 0, 1, 3},
    {"ids", ITD_FRAME_U32, offsetof(cols_t, ids), 0, 2, 3},
    {"y", ITD_FRAME_F32, offsetof(cols_t, y), 0, 0, 3},
    {"next", ITD_FRAME_U32, offsetof(cols_t, next), 0, 0, 3},
    {"held_x", ITD_FRAME_F32, offsetof(cols_t, hx), 1, 1, 3},
    {"held_ids", ITD_FRAME_U32, offsetof(cols_t, hids), 1, 2, 3},
    {"held_next", ITD_FRAME_U32, offsetof(cols_t, hnext), 1, 0, 3},
    {"held_ts", ITD_FRAME_U64, offsetof(cols_t, hts), 1, 0, 3},
    {"held_part", ITD_FRAME_U32, offsetof(cols_t, hpart), 1, 0, 4},
    {"part_id", ITD_FRAME_U32, offsetof(cols_t, pid), 2, 0, 4},
    {"part_clock", ITD_FRAME_U64, offsetof(cols_t, pclock), 2, 0, 4},
};

static void *col_ptr(const cols_t *c, const col_t *col) {
        void *p;
        memcpy(&p, (const char *)c + col->off, sizeof p);
        return p;
}

static size_t col_bytes(const cols_t *c, const col_t *col) {
        uint64_t rows = col->held == 2 ? c->np : col->held ? c->hn : c->n;
        uint64_t w = col->width == 1 ? c->dim : col->width == 2 ? c->n_ids : 1;
        return (size_t)(rows * w) * itd_frame_dtype_size(col->dtype);
}

/* Two clocks as one: the earliest that is set (a held positive is
 * released no sooner than its own trainer would have), INT64_MIN when
 * neither is. */
static int64_t clock_min(int64_t a, int64_t b) {
        return a == INT64_MIN || (b != INT64_MIN && b < a) ? b : a;
}

/* The partitions' clocks of n_tr trainers as one, per partition, into c
 * (pid, pclock allocated for the sum of theirs; sets c->np). */
static void clocks_of(const itd_trainer_t *const *trs, size_t n_tr,
                      cols_t *c) {
        c->np = 0;
        for (size_t i = 0; i < n_tr; i++)
                for (size_t p = 0; p < trs[i]->np; p++) {
                        const hold_part_t *hp = &trs[i]->parts[p];
                        size_t k = 0;
                        while (k < c->np && c->pid[k] != (uint32_t)hp->id)
                                k++;
                        if (k == c->np) {
                                c->np++;
                                c->pid[k] = (uint32_t)hp->id;
                                c->pclock[k] = (uint64_t)hp->clock_ms;
                        }
                        c->pclock[k] = (uint64_t)clock_min(
                            (int64_t)c->pclock[k], hp->clock_ms);
                }
}

/* A held slot of one trainer, for writing them in arrival order. */
typedef struct held_ref_s {
        uint64_t seq;
        int32_t slot, part;
} held_ref_t;

static int held_ref_cmp(const void *a, const void *b) {
        const held_ref_t *x = a, *y = b;
        return (x->seq > y->seq) - (x->seq < y->seq);
}

/* tr's held positives oldest first into refs (tr->hn of them). */
static void held_in_order(const itd_trainer_t *tr, held_ref_t *refs) {
        size_t k = 0;
        for (size_t p = 0; p < tr->np; p++)
                for (int32_t h = tr->parts[p].head; h >= 0; h = tr->hlink[h])
                        refs[k++] = (held_ref_t){.seq = tr->hseq[h],
                                                 .slot = h,
                                                 .part = tr->parts[p].id};
        qsort(refs, k, sizeof *refs, held_ref_cmp);
}

/* The columns of n_tr trainers as one: counters summed, mini-batch rows
 * one trainer after another, held positives merged by time. */
static void cols_of(const itd_trainer_t *const *trs, size_t n_tr,
                    const itd_trainer_extra_t *extra, cols_t *c) {
        size_t dim = trs[0]->conf.dim, n_ids = trs[0]->conf.n_ids;
        *c = (cols_t){.dim = dim,
                      .n_ids = n_ids,
                      .clock_ms = INT64_MIN,
                      .events = extra->events,
                      .predictions = extra->predictions,
                      .late = extra->late};
        for (size_t i = 0; i < n_tr; i++) {
                c->clock_ms = clock_min(c->clock_ms, trs[i]->clock_new);
                c->n += trs[i]->n;
                c->hn += trs[i]->hn;
                c->np += trs[i]->np;
                c->examples_pos += trs[i]->examples_pos;
                c->examples_neg += trs[i]->examples_neg;
        }
        cols_alloc(c);
        clocks_of(trs, n_tr, c);
        size_t r = 0;
        for (size_t i = 0; i < n_tr; i++) {
                const itd_trainer_t *t = trs[i];
                memcpy(c->x + r * dim, t->x, t->n * dim * sizeof *c->x);
                memcpy(c->ids + r * n_ids, t->ids,
                       t->n * n_ids * sizeof *c->ids);
                memcpy(c->y + r, t->y, t->n * sizeof *c->y);
                for (size_t k = 0; k < t->n; k++)
                        c->next[r + k] = (uint32_t)t->next[k];
                r += t->n;
        }
        /* the held positives of all, merged by the time of their heads
         * (each trainer's in arrival order) */
        held_ref_t *refs[ITD_TRAINER_WRITE_MAX];
        size_t at[ITD_TRAINER_WRITE_MAX] = {0};
        for (size_t i = 0; i < n_tr; i++) {
                refs[i] = itd_xcalloc(trs[i]->hn + 1, sizeof *refs[i]);
                held_in_order(trs[i], refs[i]);
        }
        for (uint64_t k = 0; k < c->hn; k++) {
                const itd_trainer_t *t = NULL;
                size_t ti = 0;
                int32_t h = 0;
                for (size_t i = 0; i < n_tr; i++) {
                        if (at[i] == trs[i]->hn)
                                continue;
                        int32_t hi = refs[i][at[i]].slot;
                        if (!t || trs[i]->hts[hi] < t->hts[h]) {
                                t = trs[i];
                                ti = i;
                                h = hi;
                        }
                }
                c->hpart[k] = (uint32_t)refs[ti][at[ti]++].part;
                memcpy(c->hx + k * dim, t->hx + (size_t)h * dim,
                       dim * sizeof *c->hx);
                memcpy(c->hids + k * n_ids, t->hids + (size_t)h * n_ids,
                       n_ids * sizeof *c->hids);
                c->hnext[k] = (uint32_t)t->hnext[h];
                c->hts[k] = (uint64_t)t->hts[h];
        }
        for (size_t i = 0; i < n_tr; i++)
                free(refs[i]);
}

itd_err_t itd_trainer_write_all(const itd_trainer_t *const *trs, size_t n_tr,
                                const itd_trainer_extra_t *extra, FILE *out,
                                char *errstr, size_t errstr_size) {
        if (n_tr < 1 || n_tr > ITD_TRAINER_WRITE_MAX) {
                itd_errf(errstr, errstr_size,
                         "writing the trainer: %zu trainers, outside 1..%d",
                         n_tr, ITD_TRAINER_WRITE_MAX);
                return ITD_ERR_ARG;
        }
        cols_t c;
        cols_of(trs, n_tr, extra, &c);
        const uint64_t words[TRAINER_WORDS] = {
            c.dim,          c.n_ids,       c.n,
            c.hn,           (uint64_t)c.clock_ms,
            c.events,       c.predictions, c.late,
            c.examples_pos, c.examples_neg, c.np};
        uint8_t hdr[TRAINER_WORDS * 8];
        for (size_t i = 0; i < TRAINER_WORDS; i++)
                itd_put_le64(hdr + 8 * i, words[i]);
        itd_frame_buf_t b = {0};
        itd_frame_buf_begin(&b, TRAINER_VERSION, ITD_FRAME_TRAINER, hdr,
                            sizeof hdr);
        for (size_t i = 0; i < sizeof COLS / sizeof COLS[0]; i++)
                itd_frame_buf_section(&b, COLS[i].name, COLS[i].dtype,
                                      col_ptr(&c, &COLS[i]),
                                      col_bytes(&c, &COLS[i]));
        itd_frame_buf_end(&b);
        cols_free(&c);
        itd_err_t err = ITD_OK;
        if (fwrite(b.buf, 1, b.len, out) != b.len) {
                itd_errf(errstr, errstr_size, "writing the trainer: %s",
                         strerror(errno));
                err = ITD_ERR_IO;
        }
        itd_frame_buf_fini(&b);
        return err;
}

itd_err_t itd_trainer_write(const itd_trainer_t *tr,
                            const itd_trainer_extra_t *extra, FILE *out,
                            char *errstr, size_t errstr_size) {
        return itd_trainer_write_all(&tr, 1, extra, out, errstr, errstr_size);
}

/* A version 3 snapshot into c (allocated: cols_free), checked against
 * this trainer's shape. */
static itd_err_t read_frame(const itd_trainer_t *tr, const void *data,
                            size_t len, cols_t *c, char *errstr,
                            size_t errstr_size) {
        itd_frame_view_t v;
        char why[256];
        if (itd_frame_parse(&v, data, len, ITD_FRAME_TRAINER,
                            TRAINER_WORDS_V3 * 8, why, sizeof why)) {
                itd_errf(errstr, errstr_size, "corrupt trainer snapshot: %s",
                         why);
                return ITD_ERR_CORRUPT;
        }
        uint64_t w[TRAINER_WORDS] = {0};
        size_t words = v.version >= 4 ? TRAINER_WORDS : TRAINER_WORDS_V3;
        if (v.header_bytes < words * 8) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: a %zu-byte header, "
                         "version %" PRIu32 " has %zu",
                         v.header_bytes, v.version, words * 8);
                return ITD_ERR_CORRUPT;
        }
        for (size_t i = 0; i < words; i++)
                w[i] = itd_get_le64(v.header + 8 * i);
        if (v.version < 3 || v.version > TRAINER_VERSION ||
            w[0] != tr->conf.dim || w[1] != tr->conf.n_ids) {
                itd_errf(errstr, errstr_size,
                         "incompatible trainer snapshot: version %" PRIu32
                         ", %" PRIu64 " dense and %" PRIu64
                         " sparse features; this build: %d (or 1 to 3), %zu, "
                         "%zu",
                         v.version, w[0], w[1], TRAINER_VERSION, tr->conf.dim,
                         tr->conf.n_ids);
                return ITD_ERR_INCOMPATIBLE;
        }
        /* the CRC vouches for these, but a row count past the file's size
         * would still be a writer's bug: refused before allocating */
        uint64_t row = (w[0] + w[1] + 2) * 4;
        if (w[2] > len / row || w[3] > len / row || w[10] > len / 12) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %" PRIu64 " rows, %"
                         PRIu64 " held and %" PRIu64 " partitions do not "
                         "fit %zu bytes",
                         w[2], w[3], w[10], len);
                return ITD_ERR_CORRUPT;
        }
        *c = (cols_t){.dim = w[0],
                      .n_ids = w[1],
                      .n = w[2],
                      .hn = w[3],
                      .clock_ms = (int64_t)w[4],
                      .events = w[5],
                      .predictions = w[6],
                      .late = w[7],
                      .examples_pos = w[8],
                      .examples_neg = w[9],
                      .np = w[10]};
        cols_alloc(c);
        for (uint64_t i = 0; i < c->hn; i++)
                c->hpart[i] = (uint32_t)HOLD_ANY; /* version 3 */
        for (size_t i = 0; i < sizeof COLS / sizeof COLS[0]; i++) {
                if (COLS[i].since > v.version)
                        continue;
                if (itd_frame_get(&v, COLS[i].name, COLS[i].dtype,
                                  col_ptr(c, &COLS[i]), col_bytes(c, &COLS[i]),
                                  why, sizeof why)) {
                        itd_errf(errstr, errstr_size,
                                 "corrupt trainer snapshot: %s", why);
                        cols_free(c);
                        return ITD_ERR_CORRUPT;
                }
        }
        return ITD_OK;
}

static size_t legacy_row_bytes(const itd_trainer_t *tr) {
        return tr->conf.dim * sizeof(float) +
               tr->conf.n_ids * sizeof(uint32_t) + sizeof(float) +
               sizeof(int32_t);
}

/* Legacy row r into row i of c's columns (held: the held ones); returns
 * the byte after it. */
static const unsigned char *legacy_row(const unsigned char *r, cols_t *c,
                                       size_t i, int held) {
        float *x = held ? c->hx : c->x;
        uint32_t *ids = held ? c->hids : c->ids;
        int32_t next;
        memcpy(x + i * c->dim, r, c->dim * sizeof(float));
        r += c->dim * sizeof(float);
        memcpy(ids + i * c->n_ids, r, c->n_ids * sizeof(uint32_t));
        r += c->n_ids * sizeof(uint32_t);
        if (!held)
                memcpy(&c->y[i], r, sizeof(float));
        memcpy(&next, r + sizeof(float), sizeof next);
        (held ? c->hnext : c->next)[i] = (uint32_t)next;
        return r + sizeof(float) + sizeof next;
}

/* A version 1 or 2 snapshot into c (allocated: cols_free). */
static itd_err_t read_legacy(const itd_trainer_t *tr, const void *data,
                             size_t len, cols_t *c, char *errstr,
                             size_t errstr_size) {
        const unsigned char *buf = data;
        size_t dim = tr->conf.dim, n_ids = tr->conf.n_ids;
        uint64_t head[9], h;
        if (len < LEGACY_HEAD + 8) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %zu bytes, shorter than "
                         "a \"%s\" header", len, LEGACY_MAGIC);
                return ITD_ERR_CORRUPT;
        }
        memcpy(&h, buf + len - 8, 8);
        if (XXH64(buf, len - 8, 0) != h) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: checksum mismatch over "
                         "bytes 0..%zu", len - 8);
                return ITD_ERR_CORRUPT;
        }
        memcpy(head, buf + 8, sizeof head);
        if ((head[0] != 1 && head[0] != LEGACY_VERSION) || head[1] != dim ||
            head[2] != n_ids) {
                itd_errf(errstr, errstr_size,
                         "incompatible trainer snapshot: version %" PRIu64
                         ", %" PRIu64 " dense and %" PRIu64
                         " sparse features; this build: %d (or 1 to 3), %zu, "
                         "%zu",
                         head[0], head[1], head[2], TRAINER_VERSION, dim,
                         n_ids);
                return ITD_ERR_INCOMPATIBLE;
        }
        size_t n = (size_t)head[3], rb = legacy_row_bytes(tr);
        uint64_t hn = 0;
        int64_t clock_ms = INT64_MIN;
        size_t body = len - 8 - LEGACY_HEAD;
        int fits = n <= body / rb;
        if (fits && head[0] >= 2) {
                const unsigned char *t = buf + LEGACY_HEAD + n * rb;
                fits = body - n * rb >= 16;
                if (fits) {
                        memcpy(&hn, t, 8);
                        memcpy(&clock_ms, t + 8, 8);
                        fits = hn == (body - n * rb - 16) / (rb + 8) &&
                               body - n * rb - 16 == hn * (rb + 8);
                }
        } else if (fits) {
                fits = body == n * rb;
        }
        if (!fits) {
                itd_errf(errstr, errstr_size,
                         "corrupt trainer snapshot: %zu rows do not fit %zu "
                         "bytes", n, len);
                return ITD_ERR_CORRUPT;
        }
        *c = (cols_t){.dim = dim,
                      .n_ids = n_ids,
                      .n = n,
                      .hn = hn,
                      .clock_ms = clock_ms,
                      .events = head[4],
                      .predictions = head[5],
                      .late = head[6],
                      .examples_pos = head[7],
                      .examples_neg = head[8]};
        cols_alloc(c);
        const unsigned char *r = buf + LEGACY_HEAD;
        for (size_t i = 0; i < n; i++)
                r = legacy_row(r, c, i, 0);
        r += 16;
        for (size_t i = 0; i < hn; i++) {
                int64_t ts_ms;
                r = legacy_row(r, c, i, 1);
                memcpy(&ts_ms, r, 8);
                r += 8;
                c->hts[i] = (uint64_t)ts_ms;
                c->hpart[i] = (uint32_t)HOLD_ANY;
        }
        return ITD_OK;
}

itd_err_t itd_trainer_read(itd_trainer_t *tr, const void *data, size_t len,
                           int apply, itd_trainer_extra_t *extra,
                           char *errstr, size_t errstr_size) {
        cols_t c;
        itd_err_t err;
        if (len >= 8 && memcmp(data, LEGACY_MAGIC, 8) == 0)
                err = read_legacy(tr, data, len, &c, errstr, errstr_size);
        else
                err = read_frame(tr, data, len, &c, errstr, errstr_size);
        if (err)
                return err;
        if (!apply) {
                cols_free(&c);
                return ITD_OK;
        }
        tr->n = 0;
        hold_reset(tr, c.clock_ms);
        for (size_t i = 0; i < c.np; i++) {
                size_t p = part_of(tr, (int32_t)c.pid[i]);
                tr->parts[p].clock_ms = (int64_t)c.pclock[i];
        }
        extra->events = c.events;
        extra->predictions = c.predictions;
        extra->late = c.late;
        tr->examples_pos = c.examples_pos;
        tr->examples_neg = c.examples_neg;
        /* A smaller model.batch.size than at the checkpoint: the surplus rows
         * are learned from at once, in steps of the new size. */
        for (size_t i = 0; i < c.n; i++)
                queue(tr, c.x + i * c.dim, c.ids + i * c.n_ids, c.y[i],
                      (int)c.next[i]);
        /* held again; without a hold (model.positives.hold 0, or fewer
         * than at the checkpoint) the surplus is learned at once, oldest first
         */
        for (size_t i = 0; i < c.hn; i++)
                hold_row(tr, part_of(tr, (int32_t)c.hpart[i]),
                         c.hx + i * c.dim, c.hids + i * c.n_ids,
                         (int)c.hnext[i], (int64_t)c.hts[i]);
        cols_free(&c);
        return ITD_OK;
}

/*
 * trainer.c - eval, the mini-batch, the positives hold and the optimizer
 * steps (trainer.h); the snapshot is in trainer_snap.c.
 */
#include "trainer_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/mem.h"

/* Nothing held, no partition known; a partition first seen starts with
 * clock_new. */
void itd_trainer_hold_reset(itd_trainer_t *tr, int64_t clock_new) {
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
        itd_trainer_hold_reset(tr, INT64_MIN);
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
void itd_trainer_queue_row(itd_trainer_t *tr, const void *x, const void *ids,
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
size_t itd_trainer_part_of(itd_trainer_t *tr, int32_t id) {
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
        itd_trainer_queue_row(tr, tr->hx + (size_t)h * tr->conf.dim,
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
void itd_trainer_hold_row(itd_trainer_t *tr, size_t p, const void *x,
                     const void *ids, int next, int64_t ts_ms) {
        if (!tr->conf.hold_cap) {
                itd_trainer_queue_row(tr, x, ids, 1.0f, next);
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
                advance(tr, itd_trainer_part_of(tr, ex->partition), ex->ts_ms);
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
                size_t p = itd_trainer_part_of(tr, ex->partition);
                if (tr->parts[p].clock_ms != INT64_MIN) {
                        itd_trainer_hold_row(tr, p, ex->x, ex->ids, (int)ex->next,
                                 ex->ts_ms);
                        return;
                }
        }
        itd_trainer_queue_row(tr, ex->x, ex->ids, (float)ex->label, (int)ex->next);
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


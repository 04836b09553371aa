/*
 * trainer.c - eval, the mini-batch and the optimizer steps (trainer.h).
 */
#include "intentd/trainer.h"

#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "intentd/mem.h"

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

        /* Positives held until their horizon has closed (conf.hold_cap
         * rows, a FIFO in arrival order): x, ids, next, ts_ms. */
        float *hx;
        uint32_t *hids;
        int *hnext;
        int64_t *hts;
        size_t hhead, hn;
        int64_t clock_ms; /* latest prediction time of a resolved negative */

        uint64_t examples_pos, examples_neg, examples_neg_sampled_out;
};

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
        }
        tr->clock_ms = INT64_MIN;
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

/* The oldest held positive into the mini-batch. */
static void release_one(itd_trainer_t *tr) {
        size_t h = tr->hhead;
        queue(tr, tr->hx + h * tr->conf.dim, tr->hids + h * tr->conf.n_ids,
              1.0f, tr->hnext[h]);
        tr->hhead = (h + 1) % tr->conf.hold_cap;
        tr->hn--;
}

/*
 * A positive is known at its purchase, a negative only once its horizon
 * has passed: learning each as soon as it is known feeds the model the
 * positives of up to a horizon later than the negatives, a base rate
 * that runs ahead of the stream's and weights that chase the latest
 * purchases. A held positive waits until a negative of a prediction made
 * at or after its own arrives: that prediction's horizon has closed, so
 * its own has, and both classes are learned with the same delay.
 * Resolved negatives are the clock (the labeler's watermark is not
 * needed). Before the first negative there is no clock, and positives
 * are learned at once: holding them would stall a cold start for a whole
 * horizon, and those first positives are what it learns from (measured,
 * docs/MODEL.md).
 */
/* Holds a positive (x: dim floats, ids: n_ids u32, as bytes); without a
 * hold it goes into the mini-batch at once. */
static void hold_row(itd_trainer_t *tr, const void *x, const void *ids,
                     int next, int64_t ts_ms) {
        if (!tr->conf.hold_cap) {
                queue(tr, x, ids, 1.0f, next);
                return;
        }
        if (tr->hn == tr->conf.hold_cap)
                release_one(tr);
        size_t t = (tr->hhead + tr->hn) % tr->conf.hold_cap;
        memcpy(tr->hx + t * tr->conf.dim, x, tr->conf.dim * sizeof(float));
        memcpy(tr->hids + t * tr->conf.n_ids, ids,
               tr->conf.n_ids * sizeof(uint32_t));
        tr->hnext[t] = next;
        tr->hts[t] = ts_ms;
        tr->hn++;
}

static void release_closed(itd_trainer_t *tr) {
        while (tr->hn && tr->hts[tr->hhead] <= tr->clock_ms)
                release_one(tr);
}

void itd_trainer_add(itd_trainer_t *tr, const itd_example_t *ex) {
        /* labels.policy fake_negative: each prediction is judged once,
         * with its final label; its fake negative is trained only, and a
         * final negative (already learned) judged only (labeler.h) */
        if (ex->judge)
                itd_eval_add(tr->eval, ex->score, ex->label, ex->next_probs,
                             ex->next);
        if (tr->conf.hold_cap && !ex->label) {
                if (ex->ts_ms > tr->clock_ms)
                        tr->clock_ms = ex->ts_ms;
                release_closed(tr);
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
        if (ex->label && tr->conf.hold_cap && tr->clock_ms != INT64_MIN)
                hold_row(tr, ex->x, ex->ids, (int)ex->next, ex->ts_ms);
        else
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
 * "ITDTRAIN", u64 version, u64 dim, u64 n_ids, u64 n, u64 counters[5]
 * (events, predictions, late, examples_pos, examples_neg), then n rows
 * (x: dim floats, ids: n_ids u32, y: float, next: int32); from version 2
 * then u64 hn, i64 clock_ms and hn held positives (a row, then its ts_ms:
 * i64); then the XXH64 of every byte before it. Native byte order, like
 * the state snapshots. Version 1 (no held positives) is still read.
 */
#define TRAINER_MAGIC "ITDTRAIN"
#define TRAINER_VERSION 2
#define TRAINER_HEAD (8 + 9 * 8)

static size_t row_bytes(const itd_trainer_t *tr) {
        return tr->conf.dim * sizeof(float) +
               tr->conf.n_ids * sizeof(uint32_t) + sizeof(float) +
               sizeof(int32_t);
}

static unsigned char *put_row(const itd_trainer_t *tr, unsigned char *w,
                              const float *x, const uint32_t *ids, float y,
                              int next) {
        int32_t nx = next;
        memcpy(w, x, tr->conf.dim * sizeof(float));
        w += tr->conf.dim * sizeof(float);
        memcpy(w, ids, tr->conf.n_ids * sizeof(uint32_t));
        w += tr->conf.n_ids * sizeof(uint32_t);
        memcpy(w, &y, sizeof y);
        w += sizeof y;
        memcpy(w, &nx, sizeof nx);
        return w + sizeof nx;
}

/* The clock of several trainers as one: the earliest that is set (a
 * held positive is released no sooner than its own trainer would have),
 * INT64_MIN when none is. */
static int64_t clock_of(const itd_trainer_t *const *trs, size_t n) {
        int64_t c = INT64_MIN;
        for (size_t i = 0; i < n; i++)
                if (trs[i]->clock_ms != INT64_MIN &&
                    (c == INT64_MIN || trs[i]->clock_ms < c))
                        c = trs[i]->clock_ms;
        return c;
}

itd_err_t itd_trainer_write_all(const itd_trainer_t *const *trs, size_t n_tr,
                                const itd_trainer_extra_t *extra, FILE *out,
                                char *errstr, size_t errstr_size) {
        if (n_tr < 1 || n_tr > ITD_TRAINER_WRITE_MAX) {
                snprintf(errstr, errstr_size,
                         "writing the trainer: %zu trainers, outside 1..%d",
                         n_tr, ITD_TRAINER_WRITE_MAX);
                return ITD_ERR_ARG;
        }
        const itd_trainer_t *tr = trs[0];
        size_t dim = tr->conf.dim, n_ids = tr->conf.n_ids;
        uint64_t rows = 0, hn = 0, pos = 0, neg = 0;
        for (size_t i = 0; i < n_tr; i++) {
                rows += trs[i]->n;
                hn += trs[i]->hn;
                pos += trs[i]->examples_pos;
                neg += trs[i]->examples_neg;
        }
        size_t len = TRAINER_HEAD + rows * row_bytes(tr) + 16 +
                     hn * (row_bytes(tr) + 8);
        unsigned char *buf = itd_xmalloc(len + 8);
        unsigned char *w = buf;
        uint64_t head[9] = {TRAINER_VERSION, dim,    n_ids,
                            rows,            extra->events,
                            extra->predictions, extra->late, pos, neg};
        memcpy(w, TRAINER_MAGIC, 8);
        memcpy(w + 8, head, sizeof head);
        w += TRAINER_HEAD;
        for (size_t i = 0; i < n_tr; i++)
                for (size_t r = 0; r < trs[i]->n; r++)
                        w = put_row(tr, w, trs[i]->x + r * dim,
                                    trs[i]->ids + r * n_ids, trs[i]->y[r],
                                    trs[i]->next[r]);
        int64_t clock_ms = clock_of(trs, n_tr);
        memcpy(w, &hn, 8);
        memcpy(w + 8, &clock_ms, 8);
        w += 16;
        /* the held positives of all, merged by the time of their heads
         * (each trainer's are in arrival order) */
        size_t at[ITD_TRAINER_WRITE_MAX] = {0};
        for (uint64_t k = 0; k < hn; k++) {
                const itd_trainer_t *t = NULL;
                size_t ti = 0, h = 0;
                for (size_t i = 0; i < n_tr; i++) {
                        if (at[i] == trs[i]->hn)
                                continue;
                        size_t hi = (trs[i]->hhead + at[i]) %
                                    trs[i]->conf.hold_cap;
                        if (!t || trs[i]->hts[hi] < t->hts[h]) {
                                t = trs[i];
                                ti = i;
                                h = hi;
                        }
                }
                at[ti]++;
                w = put_row(tr, w, t->hx + h * dim, t->hids + h * n_ids, 1.0f,
                            t->hnext[h]);
                memcpy(w, &t->hts[h], 8);
                w += 8;
        }
        uint64_t h = XXH64(buf, len, 0);
        memcpy(w, &h, 8);
        itd_err_t err = ITD_OK;
        if (fwrite(buf, 1, len + 8, out) != len + 8) {
                snprintf(errstr, errstr_size, "writing the trainer: %s",
                         strerror(errno));
                err = ITD_ERR_IO;
        }
        free(buf);
        return err;
}

itd_err_t itd_trainer_write(const itd_trainer_t *tr,
                            const itd_trainer_extra_t *extra, FILE *out,
                            char *errstr, size_t errstr_size) {
        return itd_trainer_write_all(&tr, 1, extra, out, errstr, errstr_size);
}

/* The snapshot row at r, into its parts; returns the byte after it. */
static const unsigned char *get_row(const itd_trainer_t *tr,
                                    const unsigned char *r,
                                    const unsigned char **x,
                                    const unsigned char **ids, float *y,
                                    int32_t *next) {
        *x = r;
        *ids = r + tr->conf.dim * sizeof(float);
        r += tr->conf.dim * sizeof(float) + tr->conf.n_ids * sizeof(uint32_t);
        memcpy(y, r, sizeof *y);
        memcpy(next, r + sizeof *y, sizeof *next);
        return r + sizeof *y + sizeof *next;
}

itd_err_t itd_trainer_read(itd_trainer_t *tr, const void *data, size_t len,
                           int apply, itd_trainer_extra_t *extra,
                           char *errstr, size_t errstr_size) {
        const unsigned char *buf = data;
        size_t dim = tr->conf.dim, n_ids = tr->conf.n_ids;
        uint64_t head[9], h;
        if (len < TRAINER_HEAD + 8 || memcmp(buf, TRAINER_MAGIC, 8) != 0) {
                snprintf(errstr, errstr_size,
                         "corrupt trainer: %zu bytes, no \"%s\" header", len,
                         TRAINER_MAGIC);
                return ITD_ERR_CORRUPT;
        }
        memcpy(&h, buf + len - 8, 8);
        if (XXH64(buf, len - 8, 0) != h) {
                snprintf(errstr, errstr_size,
                         "corrupt trainer: checksum mismatch over bytes "
                         "0..%zu", len - 8);
                return ITD_ERR_CORRUPT;
        }
        memcpy(head, buf + 8, sizeof head);
        if ((head[0] != 1 && head[0] != TRAINER_VERSION) || head[1] != dim ||
            head[2] != n_ids) {
                snprintf(errstr, errstr_size,
                         "incompatible trainer: version %llu, %llu dense and "
                         "%llu sparse features; this build: %d (or 1), %zu, "
                         "%zu",
                         (unsigned long long)head[0],
                         (unsigned long long)head[1],
                         (unsigned long long)head[2], TRAINER_VERSION, dim,
                         n_ids);
                return ITD_ERR_INCOMPATIBLE;
        }
        size_t n = (size_t)head[3], rb = row_bytes(tr);
        uint64_t hn = 0;
        int64_t clock_ms = INT64_MIN;
        size_t body = len - 8 - TRAINER_HEAD;
        int fits = n <= body / rb;
        if (fits && head[0] >= 2) {
                const unsigned char *t = buf + TRAINER_HEAD + n * rb;
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
                snprintf(errstr, errstr_size,
                         "corrupt trainer: %zu rows do not fit %zu bytes", n,
                         len);
                return ITD_ERR_CORRUPT;
        }
        if (!apply)
                return ITD_OK;
        tr->n = 0;
        tr->hn = 0;
        tr->hhead = 0;
        tr->clock_ms = clock_ms;
        extra->events = head[4];
        extra->predictions = head[5];
        extra->late = head[6];
        tr->examples_pos = head[7];
        tr->examples_neg = head[8];
        /* A smaller model.batch.size than at the checkpoint: the surplus rows
         * are learned from at once, in steps of the new size. */
        const unsigned char *r = buf + TRAINER_HEAD;
        for (size_t i = 0; i < n; i++) {
                const unsigned char *x, *ids;
                float y;
                int32_t next;
                r = get_row(tr, r, &x, &ids, &y, &next);
                queue(tr, x, ids, y, next);
        }
        /* held again; without a hold (model.positives.hold 0, or fewer
         * than at the checkpoint) the surplus is learned at once, oldest first
         */
        r += 16;
        for (uint64_t i = 0; i < hn; i++) {
                const unsigned char *x, *ids;
                float y;
                int32_t next;
                int64_t ts_ms;
                r = get_row(tr, r, &x, &ids, &y, &next);
                memcpy(&ts_ms, r, 8);
                r += 8;
                hold_row(tr, x, ids, next, ts_ms);
        }
        return ITD_OK;
}

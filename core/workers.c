/*
 * workers.c - engines on threads, one model by merging after every round
 * (workers.h).
 */
#include "intentd/workers.h"

#include <pthread.h>
#include <string.h>

#include "intentd/mem.h"
#include "intentd/msync.h"

#define SYNC_MAX_BYTES (1u << 20) /* largest sync message */
/* Rounds between merges: publishing scans the whole model for changed
 * rows, so merging after every round cost a third of the work of two
 * workers; every 8 rounds (at most 4096 events per worker) costs little
 * and left the simulator's progressive AUC where one worker has it
 * (docs/ARCHITECTURE.md, Workers). */
#define SYNC_ROUNDS 8

/* The examples one worker judged in a round, copied (their x and ids
 * live in the labelers and go with the next call), for the hook. */
typedef struct {
        itd_example_t *ex;   /* x, ids: offsets into xs, ids (as indexes) */
        int32_t *part;
        size_t n, cap;
        float *xs;
        uint32_t *ids;
} judged_t;

/* One worker's messages of a round, back to back: u32 length, bytes. */
typedef struct {
        unsigned char *buf;
        size_t len, cap;
} outbox_t;

typedef struct worker_s {
        struct itd_workers_s *wk;
        size_t w;
        itd_engine_t *eng;
        itd_msync_t *ms;
        pthread_t thread;
        int started;

        itd_row_t *rows;     /* (max_batch) this round's rows */
        size_t *src;         /* (max_batch) their index in the caller's
                              * (itd_workers_process) */
        size_t n;
        judged_t judged;
        outbox_t out;
        itd_err_t err;
        char errstr[512];
} worker_t;

struct itd_workers_s {
        worker_t *w;
        size_t n;
        size_t max_batch, dim, n_ids;
        pthread_barrier_t bar;
        int bar_on;
        int quit;
        uint64_t rounds;
        int sync;             /* this round ends with a merge */
        int64_t version_offset; /* model_version less the replicas' steps
                                 * (itd_workers_set_version_offset) */

        /* the round's arguments */
        const char *topic;
        int64_t now_ms;

        itd_example_hook_t hook;
        void *hook_arg;
        itd_workers_task_t task; /* itd_workers_set_task */
        void *task_arg;
        int task_on;             /* this round runs it */
};

/* ---- the hook, buffered per worker ----------------------------------- */

static void judged_hook(void *arg, int32_t partition,
                        const itd_example_t *ex) {
        worker_t *wo = arg;
        judged_t *j = &wo->judged;
        size_t dim = wo->wk->dim, n_ids = wo->wk->n_ids;
        if (j->n == j->cap) {
                j->cap = j->cap ? 2 * j->cap : 256;
                j->ex = itd_xrealloc(j->ex, j->cap * sizeof *j->ex);
                j->part = itd_xrealloc(j->part, j->cap * sizeof *j->part);
                j->xs = itd_xrealloc(j->xs, j->cap * dim * sizeof *j->xs);
                j->ids = itd_xrealloc(j->ids, j->cap * n_ids * sizeof *j->ids);
        }
        memcpy(j->xs + j->n * dim, ex->x, dim * sizeof *j->xs);
        memcpy(j->ids + j->n * n_ids, ex->ids, n_ids * sizeof *j->ids);
        j->ex[j->n] = *ex;
        j->part[j->n] = partition;
        j->n++;
}

static void judged_deliver(itd_workers_t *wk, worker_t *wo) {
        judged_t *j = &wo->judged;
        for (size_t i = 0; i < j->n; i++) {
                itd_example_t ex = j->ex[i];
                ex.x = j->xs + i * wk->dim;
                ex.ids = j->ids + i * wk->n_ids;
                wk->hook(wk->hook_arg, j->part[i], &ex);
        }
        j->n = 0;
}

/* ---- the round -------------------------------------------------------- */

static itd_err_t outbox_emit(const void *buf, size_t len, void *arg) {
        outbox_t *o = arg;
        uint32_t l = (uint32_t)len;
        if (o->len + 4 + len > o->cap) {
                o->cap = (o->len + 4 + len) * 2;
                o->buf = itd_xrealloc(o->buf, o->cap);
        }
        memcpy(o->buf + o->len, &l, 4);
        memcpy(o->buf + o->len + 4, buf, len);
        o->len += 4 + len;
        return ITD_OK;
}

static void fail(worker_t *wo, itd_err_t err, const char *what,
                 const char *why) {
        if (wo->err != ITD_OK)
                return;
        wo->err = err;
        snprintf(wo->errstr, sizeof wo->errstr, "worker %zu: %s%s", wo->w,
                 what, why);
}

/* Phase one: the worker's rows, then what its replica learned from them
 * into its outbox. */
static void round_process(worker_t *wo) {
        itd_workers_t *wk = wo->wk;
        char why[400];
        wo->err = ITD_OK;
        wo->out.len = 0;
        if (wo->n > 0) {
                itd_err_t err = itd_engine_process(wo->eng, wk->topic,
                                                   wo->rows, wo->n, wk->now_ms,
                                                   why, sizeof why);
                if (err != ITD_OK)
                        fail(wo, err, "", why);
        }
        if (wk->task_on)
                wk->task(wk->task_arg, wo->w, wk->n);
        if (!wk->sync)
                return;
        itd_err_t err = itd_msync_publish(wo->ms, 0, outbox_emit, &wo->out,
                                          NULL, why, sizeof why);
        if (err != ITD_OK)
                fail(wo, err, "publishing: ", why);
}

/* Phase two: the mean of every worker's change, its own first, then the
 * others in worker order. */
static void round_merge(worker_t *wo) {
        itd_workers_t *wk = wo->wk;
        char why[400];
        double scale = 1.0 / (double)wk->n;
        for (size_t j = 0; j < wk->n; j++) {
                size_t k = j == 0 ? wo->w : (j <= wo->w ? j - 1 : j);
                const outbox_t *o = &wk->w[k].out;
                for (size_t at = 0; at < o->len;) {
                        uint32_t l;
                        memcpy(&l, o->buf + at, 4);
                        itd_err_t err = itd_msync_merge_mean(
                            wo->ms, o->buf + at + 4, l, scale, k == wo->w,
                            why, sizeof why);
                        if (err != ITD_OK)
                                fail(wo, err, "merging: ", why);
                        at += 4 + l;
                }
        }
}

static void round_run(worker_t *wo) {
        itd_workers_t *wk = wo->wk;
        /* read before the barrier: past it, the caller may already be
         * setting up the next round */
        int sync = wk->sync;
        round_process(wo);
        pthread_barrier_wait(&wk->bar);
        if (!sync)
                return;
        round_merge(wo);
        pthread_barrier_wait(&wk->bar);
}

static void *worker_main(void *arg) {
        worker_t *wo = arg;
        itd_workers_t *wk = wo->wk;
        for (;;) {
                pthread_barrier_wait(&wk->bar);
                if (wk->quit)
                        return NULL;
                round_run(wo);
        }
}

/* ---- the set ---------------------------------------------------------- */

itd_workers_t *itd_workers_new(itd_engine_t **engs, size_t n, char *errstr,
                               size_t errstr_size) {
        if (n < 1 || n > ITD_WORKERS_MAX) {
                snprintf(errstr, errstr_size,
                         "workers: %zu is outside 1..%d", n, ITD_WORKERS_MAX);
                for (size_t i = 0; i < n; i++) {
                        itd_engine_destroy(engs[i]);
                        engs[i] = NULL;
                }
                return NULL;
        }
        itd_workers_t *wk = itd_xcalloc(1, sizeof *wk);
        wk->n = n;
        wk->w = itd_xcalloc(n, sizeof *wk->w);
        for (size_t i = 0; i < n; i++) {
                wk->w[i].wk = wk;
                wk->w[i].w = i;
                wk->w[i].eng = engs[i];
                engs[i] = NULL;
        }
        wk->max_batch = itd_engine_max_batch(wk->w[0].eng);
        wk->dim = itd_engine_dim(wk->w[0].eng);
        wk->n_ids = ITD_SPARSE_IDS;
        /* itd_workers_rows: worker 0's also with one worker */
        wk->w[0].rows = itd_xcalloc(wk->max_batch, sizeof *wk->w[0].rows);
        if (n == 1)
                return wk;
        for (size_t i = 0; i < n; i++) {
                worker_t *wo = &wk->w[i];
                if (!wo->rows)
                        wo->rows = itd_xcalloc(wk->max_batch,
                                               sizeof *wo->rows);
                wo->src = itd_xcalloc(wk->max_batch, sizeof *wo->src);
                itd_engine_set_example_hook(wo->eng, judged_hook, wo);
                /* the base is the model as built: equal in every worker */
                wo->ms = itd_msync_new(itd_engine_model(wo->eng), i + 1,
                                       SYNC_MAX_BYTES, errstr, errstr_size);
                if (!wo->ms)
                        goto fail;
        }
        if (pthread_barrier_init(&wk->bar, NULL, (unsigned)n) != 0) {
                snprintf(errstr, errstr_size, "workers: no barrier");
                goto fail;
        }
        wk->bar_on = 1;
        for (size_t i = 1; i < n; i++) {
                if (pthread_create(&wk->w[i].thread, NULL, worker_main,
                                   &wk->w[i]) != 0) {
                        snprintf(errstr, errstr_size,
                                 "workers: thread %zu did not start", i);
                        goto fail;
                }
                wk->w[i].started = 1;
        }
        return wk;
fail:
        itd_workers_destroy(wk);
        return NULL;
}

void itd_workers_destroy(itd_workers_t *wk) {
        if (!wk)
                return;
        int all = 1;
        for (size_t i = 1; i < wk->n; i++)
                all &= wk->w[i].started;
        if (wk->bar_on && all) {
                wk->quit = 1;
                pthread_barrier_wait(&wk->bar);
        } else if (wk->bar_on) {
                /* a thread did not start: the others wait at a barrier
                 * that can never fill */
                for (size_t i = 1; i < wk->n; i++)
                        if (wk->w[i].started)
                                pthread_cancel(wk->w[i].thread);
        }
        for (size_t i = 1; i < wk->n; i++)
                if (wk->w[i].started)
                        pthread_join(wk->w[i].thread, NULL);
        if (wk->bar_on)
                pthread_barrier_destroy(&wk->bar);
        for (size_t i = 0; i < wk->n; i++) {
                worker_t *wo = &wk->w[i];
                itd_msync_destroy(wo->ms);
                itd_engine_destroy(wo->eng);
                free(wo->rows);
                free(wo->src);
                free(wo->judged.ex);
                free(wo->judged.part);
                free(wo->judged.xs);
                free(wo->judged.ids);
                free(wo->out.buf);
        }
        free(wk->w);
        free(wk);
}

size_t itd_workers_count(const itd_workers_t *wk) {
        return wk->n;
}

itd_engine_t *itd_workers_engine(itd_workers_t *wk, size_t w) {
        return w < wk->n ? wk->w[w].eng : NULL;
}

size_t itd_workers_max_rows(const itd_workers_t *wk) {
        return wk->n * wk->max_batch;
}

void itd_workers_enable_triggers(itd_workers_t *wk) {
        for (size_t i = 0; i < wk->n; i++)
                itd_engine_enable_triggers(wk->w[i].eng);
}

void itd_workers_set_example_hook(itd_workers_t *wk, itd_example_hook_t hook,
                                  void *arg) {
        wk->hook = hook;
        wk->hook_arg = arg;
        if (wk->n == 1)
                itd_engine_set_example_hook(wk->w[0].eng, hook, arg);
}

/* After a merge, each replica's predictions carry the steps of all of
 * them (the one model's), plus its own until the next merge; and what a
 * restore carried over beyond them
 * (itd_workers_set_version_offset). */
static void set_versions(itd_workers_t *wk) {
        int64_t total = wk->version_offset;
        for (size_t i = 0; i < wk->n; i++)
                total += itd_model_steps(itd_engine_model(wk->w[i].eng));
        for (size_t i = 0; i < wk->n; i++)
                itd_engine_set_version_base(
                    wk->w[i].eng,
                    total - itd_model_steps(itd_engine_model(wk->w[i].eng)));
}

void itd_workers_set_version_offset(itd_workers_t *wk, int64_t offset) {
        wk->version_offset = offset;
        set_versions(wk);
}

void itd_workers_set_task(itd_workers_t *wk, itd_workers_task_t fn,
                          void *arg) {
        wk->task = fn;
        wk->task_arg = arg;
}

/* One round over every worker's wo->rows[0..wo->n) (several workers). */
static itd_err_t round_all(itd_workers_t *wk, const char *topic,
                           int64_t now_ms, char *errstr,
                           size_t errstr_size) {
        wk->topic = topic;
        wk->now_ms = now_ms;
        wk->sync = ++wk->rounds % SYNC_ROUNDS == 0;
        wk->task_on = wk->task != NULL;
        pthread_barrier_wait(&wk->bar); /* start */
        round_run(&wk->w[0]);
        if (wk->sync)
                set_versions(wk);
        itd_err_t err = ITD_OK;
        for (size_t i = 0; i < wk->n; i++) {
                worker_t *wo = &wk->w[i];
                if (wk->hook)
                        judged_deliver(wk, wo);
                else
                        wo->judged.n = 0;
                if (wo->err != ITD_OK && err == ITD_OK) {
                        err = wo->err;
                        snprintf(errstr, errstr_size, "%s", wo->errstr);
                }
        }
        return err;
}

/* One worker: the engine over rows[0..n), then the task. */
static itd_err_t round_one(itd_workers_t *wk, const char *topic,
                           itd_row_t *rows, size_t n, int64_t now_ms,
                           char *errstr, size_t errstr_size) {
        itd_err_t err = itd_engine_process(wk->w[0].eng, topic, rows, n,
                                           now_ms, errstr, errstr_size);
        if (wk->task)
                wk->task(wk->task_arg, 0, 1);
        return err;
}

itd_err_t itd_workers_process(itd_workers_t *wk, const char *topic,
                              itd_row_t *rows, size_t n, int64_t now_ms,
                              char *errstr, size_t errstr_size) {
        if (wk->n == 1)
                return round_one(wk, topic, rows, n, now_ms, errstr,
                                 errstr_size);
        for (size_t i = 0; i < wk->n; i++)
                wk->w[i].n = 0;
        for (size_t i = 0; i < n; i++) {
                int32_t p = rows[i].partition < 0 ? 0 : rows[i].partition;
                worker_t *wo = &wk->w[(size_t)p % wk->n];
                if (wo->n == wk->max_batch) {
                        snprintf(errstr, errstr_size,
                                 "a round gives worker %zu more than %zu "
                                 "events", wo->w, wk->max_batch);
                        return ITD_ERR_ARG;
                }
                wo->src[wo->n] = i;
                wo->rows[wo->n++] = rows[i];
        }
        itd_err_t err = round_all(wk, topic, now_ms, errstr, errstr_size);
        for (size_t i = 0; i < wk->n; i++) {
                worker_t *wo = &wk->w[i];
                for (size_t k = 0; k < wo->n; k++)
                        rows[wo->src[k]] = wo->rows[k];
        }
        return err;
}

itd_row_t *itd_workers_rows(itd_workers_t *wk, size_t w) {
        return w < wk->n ? wk->w[w].rows : NULL;
}

itd_err_t itd_workers_process_own(itd_workers_t *wk, const char *topic,
                                  const size_t *counts, int64_t now_ms,
                                  char *errstr, size_t errstr_size) {
        for (size_t i = 0; i < wk->n; i++) {
                worker_t *wo = &wk->w[i];
                if (counts[i] > wk->max_batch) {
                        snprintf(errstr, errstr_size,
                                 "a round gives worker %zu %zu events, more "
                                 "than %zu", i, counts[i], wk->max_batch);
                        return ITD_ERR_ARG;
                }
                for (size_t k = 0; wk->n > 1 && k < counts[i]; k++) {
                        int32_t p = wo->rows[k].partition;
                        if ((size_t)(p < 0 ? 0 : p) % wk->n != i) {
                                snprintf(errstr, errstr_size,
                                         "worker %zu's row %zu is of "
                                         "partition %d, another worker's",
                                         i, k, (int)p);
                                return ITD_ERR_ARG;
                        }
                }
        }
        if (wk->n == 1)
                return round_one(wk, topic, wk->w[0].rows, counts[0], now_ms,
                                 errstr, errstr_size);
        for (size_t i = 0; i < wk->n; i++)
                wk->w[i].n = counts[i];
        return round_all(wk, topic, now_ms, errstr, errstr_size);
}

itd_err_t itd_workers_sync(itd_workers_t *wk, char *errstr,
                           size_t errstr_size) {
        if (wk->n == 1)
                return ITD_OK;
        for (size_t i = 0; i < wk->n; i++)
                wk->w[i].n = 0;
        wk->sync = 1;
        wk->task_on = 0;
        pthread_barrier_wait(&wk->bar); /* start */
        round_run(&wk->w[0]);
        set_versions(wk);
        for (size_t i = 0; i < wk->n; i++) {
                worker_t *wo = &wk->w[i];
                if (wo->err != ITD_OK) {
                        snprintf(errstr, errstr_size, "%s", wo->errstr);
                        return wo->err;
                }
        }
        return ITD_OK;
}

/* Worker 0 publishes what changed since the last merge (moving its base
 * past it); every other replica adds it, base too (itd_msync_merge: a
 * sum, as another instance's change), on the caller's thread: the
 * workers wait at the start barrier meanwhile. */
itd_err_t itd_workers_spread(itd_workers_t *wk, char *errstr,
                             size_t errstr_size) {
        if (wk->n == 1)
                return ITD_OK;
        worker_t *w0 = &wk->w[0];
        char why[400];
        w0->out.len = 0;
        itd_err_t err = itd_msync_publish(w0->ms, 0, outbox_emit, &w0->out,
                                          NULL, why, sizeof why);
        for (size_t k = 1; k < wk->n && err == ITD_OK; k++) {
                for (size_t at = 0; at < w0->out.len && err == ITD_OK;) {
                        uint32_t l;
                        memcpy(&l, w0->out.buf + at, 4);
                        err = itd_msync_merge(wk->w[k].ms,
                                              w0->out.buf + at + 4, l, 0,
                                              why, sizeof why);
                        at += 4 + l;
                }
        }
        if (err != ITD_OK) {
                snprintf(errstr, errstr_size,
                         "workers: spreading worker 0's model: %s", why);
                return err;
        }
        set_versions(wk);
        return ITD_OK;
}

void itd_workers_stats(itd_workers_t *wk, itd_engine_stats_t *s) {
        itd_engine_stats(wk->w[0].eng, s);
        if (wk->n == 1)
                return;
        itd_eval_t *ev = itd_eval_new(0.5f);
        for (size_t i = 0; i < wk->n; i++) {
                itd_eval_merge(ev, itd_engine_eval(wk->w[i].eng));
                if (i == 0)
                        continue;
                itd_engine_stats_t t;
                itd_engine_stats(wk->w[i].eng, &t);
                itd_engine_stats_add(s, &t);
        }
        itd_eval_summary(ev, &s->eval);
        itd_eval_destroy(ev);
}

itd_err_t itd_workers_dump_state(const itd_workers_t *wk, FILE *out) {
        int64_t wm = INT64_MIN;
        for (size_t i = 0; i < wk->n; i++) {
                int64_t w = itd_engine_watermark(wk->w[i].eng);
                if (w > wm)
                        wm = w;
        }
        for (size_t i = 0; i < wk->n; i++) {
                itd_err_t err = itd_engine_dump_state_at(wk->w[i].eng, wm,
                                                         out);
                if (err != ITD_OK)
                        return err;
        }
        return ITD_OK;
}

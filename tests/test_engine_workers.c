/*
 * test_engine_workers.c - two workers (workers.h) against one engine on
 * the same generated stream of two partitions: every row comes back
 * predicted with what its partition's state says (the same prediction
 * ids, users and top categories as the single engine), every judged
 * example reaches the hook once, the replicas are one model after a
 * merge, and predictions then carry the steps of both replicas as their
 * model_version. A checkpoint of two workers (the model file, engine.bin,
 * workers.bin) restarted as two goes on as if never stopped, and restored
 * by one or three its model_version goes on from the checkpoint's.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enginesim.h"
#include "intentd/msync.h"
#include "intentd/replicas.h"
#include "intentd/workers.h"

#define ROUND 64   /* rows per round: 16 rounds, 2 merges, over MAXN */
#define MERGE_AT 8 /* rounds between merges (workers.c) */

typedef struct {
        size_t judged;
} count_t;

static void count_hook(void *arg, int32_t partition,
                       const itd_example_t *ex) {
        count_t *c = arg;
        (void)partition;
        cr_assert(ex->x && ex->ids);
        c->judged += ex->judge != 0;
}

static itd_workers_t *n_workers(const itd_conf_t *conf, size_t n) {
        char err[256];
        itd_engine_t *engs[8];
        cr_assert_leq(n, 8);
        for (size_t i = 0; i < n; i++) {
                engs[i] = itd_conf_new_engine(conf, err, sizeof err);
                cr_assert_not_null(engs[i], "%s", err);
        }
        itd_workers_t *wk = itd_workers_new(engs, n, err, sizeof err);
        cr_assert_not_null(wk, "%s", err);
        cr_assert_null(engs[0]);
        return wk;
}

static itd_workers_t *two_workers(const itd_conf_t *conf) {
        return n_workers(conf, 2);
}

Test(engine_workers, two_workers_predict_like_one_engine_as_one_model) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[MAXN], rows[MAXN];
        gen_stream(in, MAXN, 40, 6 * 60 * MIN_MS, 5);
        sim_t *one = sim_new(conf);
        sim_feed(one, in, MAXN, ROUND);

        itd_workers_t *wk = two_workers(conf);
        count_t c = {0};
        itd_workers_set_example_hook(wk, count_hook, &c);
        memcpy(rows, in, sizeof rows);
        char err[256];
        int64_t steps_at_merge = -1;
        for (size_t r = 0; r * ROUND < MAXN; r++) {
                itd_row_t *b = rows + r * ROUND;
                cr_assert_eq(itd_workers_process(wk, "events", b, ROUND,
                                                 T0, err, sizeof err),
                             ITD_OK, "%s", err);
                /* the round after a merge is scored with both replicas'
                 * steps */
                for (size_t i = 0; steps_at_merge >= 0 && i < ROUND; i++)
                        if (b[i].outcome == ITD_OUT_PREDICTED)
                                cr_assert_geq(b[i].pred.model_version,
                                              steps_at_merge, "row %zu",
                                              r * ROUND + i);
                steps_at_merge = -1;
                if ((r + 1) % MERGE_AT == 0) {
                        itd_model_t *m0 =
                            itd_engine_model(itd_workers_engine(wk, 0));
                        itd_model_t *m1 =
                            itd_engine_model(itd_workers_engine(wk, 1));
                        double d = itd_msync_distance(m0, m1);
                        cr_assert(d >= 0 && d < 1e-5,
                                  "replicas %g apart after a merge", d);
                        steps_at_merge = itd_model_steps(m0) +
                                         itd_model_steps(m1);
                        cr_assert_gt(itd_model_steps(m0), 0);
                        cr_assert_gt(itd_model_steps(m1), 0);
                }
        }

        /* state is the partitions': the same outcome, prediction id, user
         * and top categories as one engine */
        for (size_t i = 0; i < MAXN; i++) {
                cr_assert_eq(rows[i].outcome, one->oc[i], "row %zu", i);
                if (rows[i].outcome != ITD_OUT_PREDICTED)
                        continue;
                const itd_prediction_t *a = &rows[i].pred, *b = &one->out[i];
                cr_assert_str_eq(a->prediction_id, b->prediction_id);
                cr_assert_str_eq(a->user_id, b->user_id);
                cr_assert_eq(a->n_top_categories, b->n_top_categories,
                             "row %zu", i);
                for (size_t k = 0; k < a->n_top_categories; k++)
                        cr_assert_str_eq(a->top_categories[k],
                                         b->top_categories[k], "row %zu", i);
        }

        /* counters summed, one evaluation over both workers' examples */
        itd_engine_stats_t s1 = sim_stats(one), s2;
        itd_workers_stats(wk, &s2);
        cr_assert_eq(s2.events, s1.events);
        cr_assert_eq(s2.predictions, s1.predictions);
        cr_assert_eq(s2.late, s1.late);
        cr_assert_eq(s2.users, s1.users);
        cr_assert_gt(c.judged, 0);
        cr_assert_eq(s2.eval.n, c.judged, "evaluated %llu, hook saw %zu",
                     (unsigned long long)s2.eval.n, c.judged);
        cr_assert_eq(s2.eval.n, s1.eval.n);

        itd_workers_destroy(wk);
        sim_destroy(one);
        itd_conf_destroy(conf);
}

Test(engine_workers, one_worker_is_the_engine_and_bad_counts_are_refused) {
        itd_conf_t *conf = conf_with(NULL, 0);
        char err[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng);
        itd_workers_t *wk = itd_workers_new(&eng, 1, err, sizeof err);
        cr_assert_not_null(wk, "%s", err);
        cr_assert_eq(itd_workers_max_rows(wk),
                     itd_engine_max_batch(itd_workers_engine(wk, 0)));
        itd_workers_destroy(wk);

        itd_engine_t *none[1] = {NULL};
        cr_assert_null(itd_workers_new(none, 0, err, sizeof err));
        cr_assert(strstr(err, "0 is outside 1..64"), "%s", err);
        itd_conf_destroy(conf);
}

Test(engine_workers, a_round_too_large_for_one_worker_is_refused) {
        itd_conf_t *conf = conf_with(NULL, 0);
        itd_workers_t *wk = two_workers(conf);
        size_t max = itd_workers_max_rows(wk);
        itd_row_t *rows = calloc(max, sizeof *rows);
        for (size_t i = 0; i < max; i++)
                set_input(&rows[i], "u1", T0 + (int64_t)i, ITD_EV_VIEW, 0,
                          (int64_t)i);
        char err[256];
        cr_assert_eq(itd_workers_process(wk, "t", rows, max, T0, err,
                                         sizeof err),
                     ITD_ERR_ARG);
        cr_assert(strstr(err, "worker 0"), "%s", err);
        free(rows);
        itd_workers_destroy(wk);
        itd_conf_destroy(conf);
}

/* A task's calls per worker, and the calls that came with the wrong n
 * or before the worker's engine had taken the round's rows. */
typedef struct {
        itd_workers_t *wk;
        size_t n;           /* workers */
        uint64_t events[3]; /* each worker's rows up to this round's end */
        size_t calls[3];
        size_t bad;
} task_t;

static void count_task(void *arg, size_t w, size_t n) {
        task_t *t = arg;
        cr_assert_lt(w, 3);
        t->calls[w]++;
        itd_engine_stats_t s;
        itd_engine_stats(itd_workers_engine(t->wk, w), &s);
        t->bad += n != t->n || s.events != t->events[w];
}

/* The caller's task runs on every worker once per round, rounds that
 * merge included, and not in a merge between rounds. */
Test(engine_workers, a_task_runs_once_per_worker_per_round) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t rows[MAXN];
        gen_stream(rows, MAXN, 40, 6 * 60 * MIN_MS, 5);
        for (size_t i = 0; i < MAXN; i++)
                rows[i].partition = (int32_t)(i % 3);
        itd_workers_t *wk = n_workers(conf, 3);
        task_t t = {.wk = wk, .n = 3};
        itd_workers_set_task(wk, count_task, &t);
        char err[256];
        size_t rounds = 0;
        for (size_t r = 0; r * ROUND < MAXN; r++, rounds++) {
                for (size_t i = r * ROUND; i < (r + 1) * ROUND; i++)
                        t.events[i % 3]++;
                cr_assert_eq(itd_workers_process(wk, "events",
                                                 rows + r * ROUND, ROUND, T0,
                                                 err, sizeof err),
                             ITD_OK, "%s", err);
        }
        cr_assert_gt(rounds, MERGE_AT);
        cr_assert_eq(itd_workers_sync(wk, err, sizeof err), ITD_OK);
        for (size_t w = 0; w < 3; w++)
                cr_assert_eq(t.calls[w], rounds, "worker %zu: %zu calls", w,
                             t.calls[w]);
        cr_assert_eq(t.bad, 0);
        itd_workers_set_task(wk, NULL, NULL);
        cr_assert_eq(itd_workers_process(wk, "events", rows, ROUND, T0, err,
                                         sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(t.calls[0], rounds);
        itd_workers_destroy(wk);

        /* one worker: after the engine, on the caller's thread */
        char e1[256];
        itd_engine_t *eng = itd_conf_new_engine(conf, e1, sizeof e1);
        cr_assert_not_null(eng, "%s", e1);
        wk = itd_workers_new(&eng, 1, e1, sizeof e1);
        cr_assert_not_null(wk, "%s", e1);
        task_t t1 = {.wk = wk, .n = 1, .events = {ROUND}};
        itd_workers_set_task(wk, count_task, &t1);
        cr_assert_eq(itd_workers_process(wk, "events", rows, ROUND, T0, err,
                                         sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(t1.calls[0], 1);
        cr_assert_eq(t1.bad, 0);
        itd_workers_destroy(wk);
        itd_conf_destroy(conf);
}

/* Rows written straight into the workers' rows (itd_workers_process_own)
 * come out as itd_workers_process makes them (each worker gets the same
 * rows in the same order: exactly the same work); a row put with another
 * worker's partition is refused before anything runs. */
Test(engine_workers, rows_written_in_place_come_out_as_copied_ones) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t in[MAXN], rows[MAXN];
        gen_stream(in, MAXN, 40, 6 * 60 * MIN_MS, 5);
        memcpy(rows, in, sizeof rows);
        itd_workers_t *copied = two_workers(conf), *own = two_workers(conf);
        char err[256];
        for (size_t r = 0; r * ROUND < MAXN; r++) {
                itd_row_t *b = rows + r * ROUND;
                cr_assert_eq(itd_workers_process(copied, "events", b, ROUND,
                                                 T0, err, sizeof err),
                             ITD_OK, "%s", err);
                size_t counts[2] = {0, 0}, at[ROUND];
                for (size_t i = 0; i < ROUND; i++) {
                        const itd_row_t *x = &in[r * ROUND + i];
                        size_t w = (size_t)x->partition % 2;
                        at[i] = counts[w];
                        itd_workers_rows(own, w)[counts[w]++] = *x;
                }
                cr_assert_eq(itd_workers_process_own(own, "events", counts,
                                                     T0, err, sizeof err),
                             ITD_OK, "%s", err);
                for (size_t i = 0; i < ROUND; i++) {
                        size_t w = (size_t)b[i].partition % 2;
                        const itd_row_t *o = &itd_workers_rows(own, w)[at[i]];
                        cr_assert_eq(o->offset, b[i].offset);
                        cr_assert_eq(o->outcome, b[i].outcome, "row %zu",
                                     r * ROUND + i);
                        if (o->outcome != ITD_OUT_PREDICTED)
                                continue;
                        expect_same_prediction(&o->pred, &b[i].pred,
                                               r * ROUND + i, "in place");
                        cr_assert_eq(o->pred.purchase_probability,
                                     b[i].pred.purchase_probability);
                }
        }
        cr_assert_null(itd_workers_rows(own, 2));
        itd_row_t *w0 = itd_workers_rows(own, 0);
        w0[0] = in[0];
        w0[0].partition = 1;
        size_t counts[2] = {1, 0};
        cr_assert_eq(itd_workers_process_own(own, "events", counts, T0, err,
                                             sizeof err),
                     ITD_ERR_ARG);
        cr_assert(strstr(err, "partition 1"), "%s", err);
        itd_workers_destroy(copied);
        itd_workers_destroy(own);
        itd_conf_destroy(conf);
}

/*
 * A checkpoint of two workers keeps what both had taken for training and
 * not yet learned from (each one's partial mini-batch and held
 * positives), and their counters summed: one engine reading it back holds
 * every such example, learned from at once or still waiting
 * (itd_engine_write_trainers). Worker 0's trainer alone, what a
 * checkpoint held before, would leave worker 1's out.
 */
Test(engine_workers, a_checkpoint_of_two_workers_keeps_every_unlearned_example) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t rows[MAXN];
        gen_stream(rows, MAXN, 40, 6 * 60 * MIN_MS, 5);
        itd_workers_t *wk = two_workers(conf);
        char err[256];
        for (size_t r = 0; r * ROUND < MAXN; r++)
                cr_assert_eq(itd_workers_process(wk, "events",
                                                 rows + r * ROUND, ROUND, T0,
                                                 err, sizeof err),
                             ITD_OK, "%s", err);
        itd_engine_stats_t all, w1;
        itd_workers_stats(wk, &all);
        itd_engine_stats(itd_workers_engine(wk, 1), &w1);
        cr_assert_gt(w1.examples_unlearned, 0,
                     "worker 1 has nothing unlearned: the case is empty");
        cr_assert_gt(all.examples_pos, 0);

        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        const itd_engine_t *engs[2] = {itd_workers_engine(wk, 0),
                                       itd_workers_engine(wk, 1)};
        cr_assert_eq(itd_engine_write_trainers(engs, 2, f, err, sizeof err),
                     ITD_OK, "%s", err);
        fclose(f);

        itd_engine_t *back = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(back, "%s", err);
        cr_assert_eq(itd_engine_read_trainer(back, buf, len, 1, err,
                                             sizeof err),
                     ITD_OK, "%s", err);
        itd_engine_stats_t s;
        itd_engine_stats(back, &s);
        uint64_t learned = itd_model_examples(itd_engine_model(back));
        fprintf(stderr,
                "workers: %llu examples unlearned at the checkpoint (worker "
                "1: %llu); read back: %llu learned at once, %llu waiting\n",
                (unsigned long long)all.examples_unlearned,
                (unsigned long long)w1.examples_unlearned,
                (unsigned long long)learned,
                (unsigned long long)s.examples_unlearned);
        cr_assert_eq(s.examples_unlearned + learned, all.examples_unlearned);
        cr_assert_eq(s.examples_pos, all.examples_pos);
        cr_assert_eq(s.examples_neg, all.examples_neg);
        cr_assert_eq(s.events, all.events);
        cr_assert_eq(s.predictions, all.predictions);
        cr_assert_eq(s.late, all.late);

        free(buf);
        itd_engine_destroy(back);
        itd_workers_destroy(wk);
        itd_conf_destroy(conf);
}

/* ---- a checkpoint and a restart of several workers -------------------- */

/* What a checkpoint of workers keeps of the model (checkpoint.c): worker
 * 0's model file, every trainer as one (engine.bin) and, unless old,
 * workers.bin (replicas.h); the partitions move as they are (their
 * snapshots are tested elsewhere). */
typedef struct {
        char dir[64], model[128];
        char *trainer, *reps;
        size_t trainer_len, reps_len;
        itd_partition_t *parts[8];
        int32_t part_ids[8];
        size_t n_parts;
        int64_t version; /* model_version at the checkpoint */
} ckpt_t;

static char *mem_write(size_t *len, itd_workers_t *wk, int reps) {
        size_t n = itd_workers_count(wk);
        itd_engine_t *engs[8];
        for (size_t i = 0; i < n; i++)
                engs[i] = itd_workers_engine(wk, i);
        char *buf = NULL, err[256];
        FILE *f = open_memstream(&buf, len);
        itd_err_t e =
            reps ? itd_replicas_write(engs, n, f, err, sizeof err)
                 : itd_engine_write_trainers((const itd_engine_t *const *)engs,
                                             n, f, err, sizeof err);
        cr_assert_eq(e, ITD_OK, "%s", err);
        fclose(f);
        return buf;
}

/* A checkpoint (a merge first, as run's), then the instance stops. */
static void checkpoint_and_stop(itd_workers_t *wk, ckpt_t *c, int reps) {
        char err[256];
        cr_assert_eq(itd_workers_sync(wk, err, sizeof err), ITD_OK, "%s", err);
        itd_engine_t *e0 = itd_workers_engine(wk, 0);
        c->version = itd_engine_model_version(e0);
        strcpy(c->dir, "/tmp/itd-workers-XXXXXX");
        cr_assert_not_null(mkdtemp(c->dir));
        snprintf(c->model, sizeof c->model, "%s/model.ckpt", c->dir);
        cr_assert_eq(itd_model_save(itd_engine_model(e0), c->model, NULL, err,
                                    sizeof err),
                     ITD_OK, "%s", err);
        c->trainer = mem_write(&c->trainer_len, wk, 0);
        c->reps = reps ? mem_write(&c->reps_len, wk, 1) : NULL;
        c->n_parts = 0;
        for (size_t i = 0; i < itd_workers_count(wk); i++) {
                itd_engine_t *e = itd_workers_engine(wk, i);
                int32_t ps[8];
                size_t m = itd_engine_partitions(e, ps, 8);
                for (size_t k = 0; k < m; k++) {
                        c->part_ids[c->n_parts] = ps[k];
                        c->parts[c->n_parts++] = itd_engine_detach(e, ps[k]);
                }
        }
        itd_workers_destroy(wk);
}

/* A new instance of n workers from it: run's restore (checkpoint_restore.c
 * and commit.c) without the files. */
static itd_workers_t *restart(const itd_conf_t *conf, size_t n, ckpt_t *c) {
        char err[256];
        itd_workers_t *wk = n_workers(conf, n);
        itd_engine_t *engs[8];
        for (size_t i = 0; i < n; i++)
                engs[i] = itd_workers_engine(wk, i);
        itd_replicas_t *r = NULL;
        if (c->reps) {
                r = itd_replicas_parse(c->reps, c->reps_len, err, sizeof err);
                cr_assert_not_null(r, "%s", err);
                cr_assert_eq(itd_replicas_check(r, engs, n, err, sizeof err),
                             ITD_OK, "%s", err);
        }
        cr_assert_eq(itd_model_load(itd_engine_model(engs[0]), c->model, NULL,
                                    err, sizeof err),
                     ITD_OK, "%s", err);
        itd_replicas_install(r, engs, n, c->trainer, c->trainer_len);
        for (size_t k = 0; k < c->n_parts; k++)
                itd_engine_adopt(engs[(size_t)c->part_ids[k] % n], c->parts[k]);
        cr_assert_eq(itd_workers_spread(wk, err, sizeof err), ITD_OK, "%s",
                     err);
        if (r)
                itd_workers_set_version_offset(
                    wk, itd_replicas_version_offset(r, n));
        itd_replicas_destroy(r);
        free(c->trainer);
        free(c->reps);
        unlink(c->model);
        rmdir(c->dir);
        return wk;
}

/* Rounds [from, to) of rows; the least model_version predicted. */
static int64_t feed(itd_workers_t *wk, itd_row_t *rows, size_t from,
                    size_t to) {
        char err[256];
        int64_t least = INT64_MAX;
        for (size_t r = from; r < to; r++) {
                itd_row_t *b = rows + r * ROUND;
                cr_assert_eq(itd_workers_process(wk, "events", b, ROUND, T0,
                                                 err, sizeof err),
                             ITD_OK, "%s", err);
                for (size_t i = 0; i < ROUND; i++)
                        if (b[i].outcome == ITD_OUT_PREDICTED &&
                            b[i].pred.model_version < least)
                                least = b[i].pred.model_version;
        }
        return least;
}

#define ROUNDS (MAXN / ROUND)
#define CUT MERGE_AT /* the checkpoint: after a merge, as the rounds go */

/* Two workers, uninterrupted but for a checkpoint at CUT: their steps
 * (w0, w1) and the model_version at the end (after a merge). */
static void uninterrupted(const itd_conf_t *conf, int64_t steps[2],
                          int64_t *version, itd_engine_t **m0) {
        static itd_row_t rows[MAXN];
        gen_stream(rows, MAXN, 40, 6 * 60 * MIN_MS, 5);
        itd_workers_t *wk = two_workers(conf);
        char err[256];
        feed(wk, rows, 0, CUT);
        cr_assert_eq(itd_workers_sync(wk, err, sizeof err), ITD_OK);
        feed(wk, rows, CUT, ROUNDS);
        cr_assert_eq(itd_workers_sync(wk, err, sizeof err), ITD_OK);
        for (size_t i = 0; i < 2; i++)
                steps[i] = itd_model_steps(
                    itd_engine_model(itd_workers_engine(wk, i)));
        *version = itd_engine_model_version(itd_workers_engine(wk, 0));
        /* keep worker 0's model to compare with */
        *m0 = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(*m0, "%s", err);
        char path[] = "/tmp/itd-workers-m0-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(itd_model_save(
                         itd_engine_model(itd_workers_engine(wk, 0)), path,
                         NULL, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(itd_model_load(itd_engine_model(*m0), path, NULL, err,
                                    sizeof err),
                     ITD_OK, "%s", err);
        unlink(path);
        itd_workers_destroy(wk);
}

/*
 * Two workers checkpointed at CUT and restarted as two go on as if never
 * stopped: the first predictions after the restart carry at least the
 * model_version of the checkpoint (it never goes back), and at the end
 * each replica has taken the steps it takes uninterrupted, so the
 * model_version is the same and the model within float rounding (a
 * replica's parameters come back as worker 0's restored plus nothing:
 * the same values, summed in another order). Without workers.bin (what a
 * checkpoint held before) worker 1's steps and moments start afresh and
 * the version drops to worker 0's steps.
 */
static void two_restart_two(int reps, int64_t *after, int64_t *at,
                            int64_t steps[2], int64_t *end, double *dist) {
        itd_conf_t *conf = conf_with(NULL, 0);
        int64_t ust[2], uver;
        itd_engine_t *um0;
        uninterrupted(conf, ust, &uver, &um0);

        static itd_row_t rows[MAXN];
        gen_stream(rows, MAXN, 40, 6 * 60 * MIN_MS, 5);
        itd_workers_t *wk = two_workers(conf);
        feed(wk, rows, 0, CUT);
        ckpt_t c;
        checkpoint_and_stop(wk, &c, reps);
        *at = c.version;
        wk = restart(conf, 2, &c);
        *after = feed(wk, rows, CUT, CUT + 1);
        feed(wk, rows, CUT + 1, ROUNDS);
        char err[256];
        cr_assert_eq(itd_workers_sync(wk, err, sizeof err), ITD_OK);
        for (size_t i = 0; i < 2; i++)
                steps[i] = itd_model_steps(
                    itd_engine_model(itd_workers_engine(wk, i)));
        *end = itd_engine_model_version(itd_workers_engine(wk, 0));
        *dist = itd_msync_distance(itd_engine_model(itd_workers_engine(wk, 0)),
                                   itd_engine_model(um0));
        fprintf(stderr,
                "restart of two workers%s: version %lld at the checkpoint, "
                "%lld first after; end: steps %lld + %lld, version %lld, "
                "model %g from the uninterrupted run's (steps %lld + %lld, "
                "version %lld)\n",
                reps ? "" : " without workers.bin", (long long)*at,
                (long long)*after, (long long)steps[0], (long long)steps[1],
                (long long)*end, *dist, (long long)ust[0], (long long)ust[1],
                (long long)uver);
        cr_assert_eq(uver, ust[0] + ust[1]);
        if (reps) {
                cr_assert_eq(steps[0], ust[0]);
                cr_assert_eq(steps[1], ust[1]);
                cr_assert_eq(*end, uver);
        }
        itd_engine_destroy(um0);
        itd_workers_destroy(wk);
        itd_conf_destroy(conf);
}

Test(engine_workers, a_restart_of_two_workers_keeps_the_models_identity) {
        int64_t after, at, steps[2], end;
        double dist;
        two_restart_two(1, &after, &at, steps, &end, &dist);
        cr_assert_gt(at, 0);
        cr_assert_geq(after, at, "model_version went back: %lld after a "
                      "restart at %lld", (long long)after, (long long)at);
        cr_assert(dist >= 0 && dist < 1e-4, "%g", dist);
}

/*
 * A checkpoint of two workers read back by one and by three: the
 * model_version goes on from the checkpoint's; worker 1 (of three) takes
 * its own optimizer state back, worker 2 worker 0's (moments with the
 * step count they were built with); the unlearned examples are engine.bin's
 * (worker 0 takes them). Then all of the rest of the stream goes through.
 */
Test(engine_workers, a_checkpoint_of_two_workers_restores_into_one_or_three) {
        itd_conf_t *conf = conf_with(NULL, 0);
        static itd_row_t rows[MAXN];
        for (size_t n = 1; n <= 3; n += 2) {
                gen_stream(rows, MAXN, 40, 6 * 60 * MIN_MS, 5);
                itd_workers_t *wk = two_workers(conf);
                feed(wk, rows, 0, CUT);
                int64_t saved[2];
                for (size_t i = 0; i < 2; i++)
                        saved[i] = itd_model_steps(
                            itd_engine_model(itd_workers_engine(wk, i)));
                ckpt_t c;
                checkpoint_and_stop(wk, &c, 1);
                cr_assert_eq(c.version, saved[0] + saved[1]);
                wk = restart(conf, n, &c);
                itd_engine_t *e0 = itd_workers_engine(wk, 0);
                cr_assert_eq(itd_engine_model_version(e0), c.version,
                             "%zu workers", n);
                cr_assert_eq(itd_model_steps(itd_engine_model(e0)),
                             saved[0]);
                if (n == 3) {
                        itd_model_t *m0 = itd_engine_model(e0);
                        itd_model_t *m1 =
                            itd_engine_model(itd_workers_engine(wk, 1));
                        itd_model_t *m2 =
                            itd_engine_model(itd_workers_engine(wk, 2));
                        cr_assert_eq(itd_model_steps(m1), saved[1]);
                        cr_assert_eq(itd_model_steps(m2), saved[0]);
                        itd_model_opt_t c0, c2;
                        size_t n0, n2;
                        float *f0 = itd_model_opt(m0, &c0, &n0);
                        float *f2 = itd_model_opt(m2, &c2, &n2);
                        cr_assert_gt(n0, 0);
                        cr_assert_eq(n0, n2);
                        cr_assert(memcmp(f0, f2, n0 * sizeof *f0) == 0);
                }
                int64_t after = feed(wk, rows, CUT, ROUNDS);
                fprintf(stderr,
                        "two workers restored by %zu: version %lld at the "
                        "checkpoint, least after %lld\n",
                        n, (long long)c.version, (long long)after);
                cr_assert_geq(after, c.version, "%zu workers", n);
                itd_workers_destroy(wk);
        }
        itd_conf_destroy(conf);
}

/* A checkpoint from before workers.bin still restores two workers: worker
 * 0 as written, worker 1 with a fresh optimizer (what it had then). */
Test(engine_workers, a_checkpoint_without_replicas_still_restores) {
        int64_t after, at, steps[2], end;
        double dist;
        two_restart_two(0, &after, &at, steps, &end, &dist);
        cr_assert_gt(at, 0);
        cr_assert_gt(steps[0], 0);
}

/*
 * test_engine_workers.c - two workers (workers.h) against one engine on
 * the same generated stream of two partitions: every row comes back
 * predicted with what its partition's state says (the same prediction
 * ids, users and top categories as the single engine), every judged
 * example reaches the hook once, the replicas are one model after a
 * merge, and predictions then carry the steps of both replicas as their
 * model_version.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "enginesim.h"
#include "intentd/msync.h"
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

static itd_workers_t *two_workers(const itd_conf_t *conf) {
        char err[256];
        itd_engine_t *engs[2];
        for (int i = 0; i < 2; i++) {
                engs[i] = itd_conf_new_engine(conf, err, sizeof err);
                cr_assert_not_null(engs[i], "%s", err);
        }
        itd_workers_t *wk = itd_workers_new(engs, 2, err, sizeof err);
        cr_assert_not_null(wk, "%s", err);
        cr_assert_null(engs[0]);
        return wk;
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

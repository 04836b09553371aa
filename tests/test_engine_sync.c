/*
 * test_engine_sync.c - one model across instances (model/sync.c): a change
 * encoded by one model and merged by another, full snapshots adopted by a
 * new instance, damaged or foreign messages refused without a change, two
 * models fed different streams converging, and three engines that each
 * see a third of the simulator's partitions scoring, synced, as one engine
 * that sees them all; and an instance of two pipeline workers (workers.h)
 * syncing with an instance of one the way the daemon does.
 *
 * The three engines run in this process and exchange their messages
 * through a list in memory, through the same encode and merge code the
 * daemon sends over the model topic (daemon/modelsync.c); three daemons
 * would spend minutes of this machine's two cores on the same check.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enginesim.h"
#include "intentd/eval.h"
#include "intentd/model.h"
#include "intentd/msync.h"
#include "intentd/simulator.h"
#include "intentd/workers.h"

/* ---- messages in memory ------------------------------------------------ */

typedef struct bus_s {
        uint8_t **msg;
        size_t *len;
        size_t n, cap;
} bus_t;

static itd_err_t to_bus(const void *buf, size_t len, void *arg) {
        bus_t *b = arg;
        if (b->n == b->cap) {
                b->cap = b->cap ? 2 * b->cap : 64;
                b->msg = realloc(b->msg, b->cap * sizeof(*b->msg));
                b->len = realloc(b->len, b->cap * sizeof(*b->len));
        }
        b->msg[b->n] = malloc(len);
        memcpy(b->msg[b->n], buf, len);
        b->len[b->n++] = len;
        return ITD_OK;
}

static void bus_free(bus_t *b) {
        for (size_t i = 0; i < b->n; i++)
                free(b->msg[i]);
        free(b->msg);
        free(b->len);
        memset(b, 0, sizeof(*b));
}

/* Merges b's messages [from, n) into ms; returns n. */
static size_t drain(itd_msync_t *ms, const bus_t *b, size_t from, int adopt) {
        char err[256];
        for (size_t i = from; i < b->n; i++)
                cr_assert_eq(itd_msync_merge(ms, b->msg[i], b->len[i], adopt,
                                             err, sizeof err),
                             ITD_OK, "message %zu: %s", i, err);
        return b->n;
}

/* ---- small models ------------------------------------------------------ */

enum { D = 8, F = 2, S = 2, B = 16 };

static itd_model_t *small_model(int type, uint64_t seed) {
        itd_model_conf_t c;
        itd_model_conf_defaults(&c, type, D, F, S);
        c.mlp.emb_buckets = 64;
        c.mlp.n_hidden = 1;
        c.mlp.hidden[0] = 8;
        c.mlp.max_batch = B;
        c.mlp.seed = seed;
        c.mlp.norm_max_count = 500.0f;
        c.mlp.avg_steps = 20;
        c.mlp.n_offsets = 1;
        c.mlp.offset_input[0] = 0;
        char err[256];
        itd_model_t *m = itd_model_new(&c, err, sizeof err);
        cr_assert_not_null(m, "%s", err);
        return m;
}

/* One seeded batch: the label follows x[1] and the first id. */
static void train_batch(itd_model_t *m, uint64_t *rng) {
        float x[B * D], y[B];
        uint32_t ids[B * F * S];
        int next[B];
        for (size_t i = 0; i < B; i++) {
                for (size_t d = 0; d < D; d++) {
                        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
                        x[i * D + d] = (float)((*rng >> 40) % 1000) / 250.0f;
                }
                for (size_t k = 0; k < F * S; k++) {
                        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
                        ids[i * F * S + k] = (uint32_t)((*rng >> 33) % 200);
                }
                y[i] = x[i * D + 1] + (float)(ids[i * F * S] % 3) > 3.0f;
                next[i] = (int)(ids[i * F * S + 1] % ITD_NEXT__COUNT);
        }
        float loss;
        cr_assert_eq(itd_model_train(m, x, ids, y, next, B, &loss), ITD_OK);
}

static void expect_same_scores(itd_model_t *a, itd_model_t *b, double tol) {
        uint64_t rng = 99;
        float x[B * D], pa[B], pb[B];
        uint32_t ids[B * F * S];
        for (size_t i = 0; i < B * D; i++)
                x[i] = (float)(i % 7) * 0.5f;
        for (size_t i = 0; i < B * F * S; i++) {
                rng = rng * 6364136223846793005ull + 1;
                ids[i] = (uint32_t)((rng >> 33) % 200);
        }
        itd_model_predict(a, x, ids, B, pa, NULL);
        itd_model_predict(b, x, ids, B, pb, NULL);
        for (size_t i = 0; i < B; i++)
                cr_expect(fabsf(pa[i] - pb[i]) <= tol, "row %zu: %g vs %g", i,
                          (double)pa[i], (double)pb[i]);
}

static void change_is_merged(int type) {
        itd_model_t *a = small_model(type, 5), *b = small_model(type, 5);
        char err[256];
        itd_msync_t *sa = itd_msync_new(a, 1, 1 << 16, err, sizeof err);
        itd_msync_t *sb = itd_msync_new(b, 2, 1 << 16, err, sizeof err);
        cr_assert(sa && sb, "%s", err);
        cr_assert_eq(itd_msync_distance(a, b), 0.0);
        uint64_t rng = 1;
        for (int t = 0; t < 30; t++)
                train_batch(a, &rng);
        cr_assert_gt(itd_msync_distance(a, b), 1e-3);
        bus_t bus = {0};
        size_t n;
        cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, &n, err,
                                       sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(n, bus.n);
        cr_assert_geq(n, 1);
        drain(sb, &bus, 0, 0);
        /* float rounding only: b = base + (a - base) */
        cr_expect_lt(itd_msync_distance(a, b), 1e-6, "distance %g",
                     itd_msync_distance(a, b));
        expect_same_scores(a, b, 1e-5);
        itd_msync_stats_t st;
        itd_msync_stats(sb, &st);
        cr_expect_eq(st.merged, n);
        cr_expect_eq(st.examples_merged, 30 * B);
        /* its own messages are skipped; nothing changed publishes nothing */
        drain(sa, &bus, 0, 0);
        itd_msync_stats(sa, &st);
        cr_expect_eq(st.skipped, n);
        cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, &n, err,
                                       sizeof err),
                     ITD_OK);
        cr_expect_eq(n, 0);
        /* b publishes nothing either: the merged change is not its own */
        cr_assert_eq(itd_msync_publish(sb, 0, to_bus, &bus, &n, err,
                                       sizeof err),
                     ITD_OK);
        cr_expect_eq(n, 0);
        bus_free(&bus);
        itd_msync_destroy(sa);
        itd_msync_destroy(sb);
        itd_model_destroy(a);
        itd_model_destroy(b);
}

Test(msync, a_change_merged_by_another_model_gives_the_same_model) {
        change_is_merged(ITD_MODEL_KIND_MLP);
}

Test(msync, a_logistic_change_merged_gives_the_same_model) {
        change_is_merged(ITD_MODEL_KIND_LOGISTIC);
}

Test(msync, small_messages_carry_the_same_change_in_parts) {
        itd_model_t *a = small_model(ITD_MODEL_KIND_MLP, 5);
        itd_model_t *b = small_model(ITD_MODEL_KIND_MLP, 5);
        char err[256];
        itd_msync_t *sa = itd_msync_new(a, 1, ITD_MSYNC_MIN_BYTES, err,
                                        sizeof err);
        itd_msync_t *sb = itd_msync_new(b, 2, ITD_MSYNC_MIN_BYTES, err,
                                        sizeof err);
        cr_assert(sa && sb, "%s", err);
        uint64_t rng = 3;
        for (int t = 0; t < 40; t++)
                train_batch(a, &rng);
        bus_t bus = {0};
        size_t n;
        cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, &n, err,
                                       sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_gt(n, 1, "the change fits one message of 4 KiB");
        for (size_t i = 0; i < bus.n; i++)
                cr_expect_leq(bus.len[i], ITD_MSYNC_MIN_BYTES);
        /* parts apply in any order */
        for (size_t i = bus.n; i-- > 0;)
                cr_assert_eq(itd_msync_merge(sb, bus.msg[i], bus.len[i], 0, err,
                                             sizeof err),
                             ITD_OK, "%s", err);
        cr_expect_lt(itd_msync_distance(a, b), 1e-6);
        bus_free(&bus);
        itd_msync_destroy(sa);
        itd_msync_destroy(sb);
        itd_model_destroy(a);
        itd_model_destroy(b);
}

Test(msync, a_new_instance_adopts_the_full_snapshot) {
        itd_model_t *a = small_model(ITD_MODEL_KIND_MLP, 5);
        char err[256];
        itd_msync_t *sa = itd_msync_new(a, 1, 1 << 12, err, sizeof err);
        uint64_t rng = 4;
        bus_t bus = {0};
        for (int r = 0; r < 3; r++) { /* changes published along the way */
                for (int t = 0; t < 20; t++)
                        train_batch(a, &rng);
                cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, NULL, err,
                                               sizeof err),
                             ITD_OK);
        }
        size_t from = bus.n;
        cr_assert_eq(itd_msync_publish(sa, 1, to_bus, &bus, NULL, err,
                                       sizeof err),
                     ITD_OK);
        cr_assert_gt(bus.n, from);
        itd_model_t *c = small_model(ITD_MODEL_KIND_MLP, 5);
        itd_msync_t *sc = itd_msync_new(c, 3, 1 << 12, err, sizeof err);
        /* a running instance skips snapshots */
        drain(sc, &bus, from, 0);
        cr_expect_gt(itd_msync_distance(a, c), 1e-3);
        drain(sc, &bus, from, 1);
        cr_expect_eq(itd_msync_distance(a, c), 0.0, "%g",
                     itd_msync_distance(a, c));
        expect_same_scores(a, c, 0.0);
        /* and follows the changes from there */
        for (int t = 0; t < 10; t++)
                train_batch(a, &rng);
        from = bus.n;
        cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, NULL, err,
                                       sizeof err),
                     ITD_OK);
        drain(sc, &bus, from, 0);
        cr_expect_lt(itd_msync_distance(a, c), 1e-6);
        bus_free(&bus);
        itd_msync_destroy(sa);
        itd_msync_destroy(sc);
        itd_model_destroy(a);
        itd_model_destroy(c);
}

Test(msync, damaged_or_foreign_messages_are_refused_and_change_nothing) {
        itd_model_t *a = small_model(ITD_MODEL_KIND_MLP, 5);
        itd_model_t *b = small_model(ITD_MODEL_KIND_MLP, 5);
        itd_model_t *other = small_model(ITD_MODEL_KIND_MLP, 6);
        char err[256];
        itd_msync_t *sa = itd_msync_new(a, 1, 1 << 16, err, sizeof err);
        itd_msync_t *sb = itd_msync_new(b, 2, 1 << 16, err, sizeof err);
        itd_msync_t *so = itd_msync_new(other, 3, 1 << 16, err, sizeof err);
        uint64_t rng = 5;
        for (int t = 0; t < 10; t++)
                train_batch(a, &rng);
        bus_t bus = {0};
        cr_assert_eq(itd_msync_publish(sa, 0, to_bus, &bus, NULL, err,
                                       sizeof err),
                     ITD_OK);
        cr_assert_eq(bus.n, 1);
        /* another seed: another initial model */
        cr_expect_eq(itd_msync_merge(so, bus.msg[0], bus.len[0], 0, err,
                                     sizeof err),
                     ITD_ERR_INCOMPATIBLE);
        cr_expect(strstr(err, "model.seed"), "%s", err);
        /* a flipped payload byte, a truncation, garbage */
        bus.msg[0][bus.len[0] - 3] ^= 0x40;
        cr_expect_eq(itd_msync_merge(sb, bus.msg[0], bus.len[0], 0, err,
                                     sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect(strstr(err, "checksum"), "%s", err);
        bus.msg[0][bus.len[0] - 3] ^= 0x40;
        cr_expect_eq(itd_msync_merge(sb, bus.msg[0], 40, 0, err, sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect_eq(itd_msync_merge(sb, "hello", 5, 0, err, sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect_eq(itd_msync_distance(b, other), -1.0, "another seed");
        itd_model_t *fresh = small_model(ITD_MODEL_KIND_MLP, 5);
        cr_expect_eq(itd_msync_distance(b, fresh), 0.0, "b changed");
        itd_model_destroy(fresh);
        bus_free(&bus);
        itd_msync_destroy(sa);
        itd_msync_destroy(sb);
        itd_msync_destroy(so);
        itd_model_destroy(a);
        itd_model_destroy(b);
        itd_model_destroy(other);
}

/*
 * Two models fed different streams, exchanging changes every 5 steps:
 * after one quiet exchange (both publish, both merge, nobody trains) they
 * hold the same parameters to float rounding. Without the exchange they
 * stay far apart.
 */
Test(msync, two_models_fed_different_streams_converge) {
        for (int sync = 0; sync <= 1; sync++) {
                itd_model_t *m[2] = {small_model(ITD_MODEL_KIND_MLP, 5),
                                     small_model(ITD_MODEL_KIND_MLP, 5)};
                char err[256];
                itd_msync_t *s[2];
                for (int i = 0; i < 2; i++)
                        s[i] = itd_msync_new(m[i], (uint64_t)i + 1, 1 << 16,
                                             err, sizeof err);
                uint64_t rng[2] = {11, 12};
                bus_t bus = {0};
                size_t seen[2] = {0, 0};
                for (int round = 0; round <= 20; round++) {
                        for (int i = 0; i < 2 && round < 20; i++)
                                for (int t = 0; t < 5; t++)
                                        train_batch(m[i], &rng[i]);
                        if (!sync)
                                continue;
                        for (int i = 0; i < 2; i++)
                                cr_assert_eq(itd_msync_publish(s[i], 0, to_bus,
                                                               &bus, NULL, err,
                                                               sizeof err),
                                             ITD_OK);
                        for (int i = 0; i < 2; i++)
                                seen[i] = drain(s[i], &bus, seen[i], 0);
                }
                double d = itd_msync_distance(m[0], m[1]);
                if (sync)
                        cr_expect_lt(d, 1e-5, "synced: distance %g", d);
                else
                        cr_expect_gt(d, 0.05, "unsynced: distance %g", d);
                bus_free(&bus);
                for (int i = 0; i < 2; i++) {
                        itd_msync_destroy(s[i]);
                        itd_model_destroy(m[i]);
                }
        }
}

/* ---- three engines on the simulator ------------------------------------ */

#define PARTS 6
#define INST 3
#define EBATCH 256

typedef struct judged_s {
        float *score;
        uint8_t *label;
        int32_t *part;
        size_t n, cap;
} judged_t;

static void on_judged(void *arg, int32_t partition, const itd_example_t *ex) {
        float score = ex->score;
        int label = ex->label;
        judged_t *j = arg;
        if (j->n == j->cap) {
                j->cap = j->cap ? 2 * j->cap : 4096;
                j->score = realloc(j->score, j->cap * sizeof(float));
                j->label = realloc(j->label, j->cap);
                j->part = realloc(j->part, j->cap * sizeof(int32_t));
        }
        j->score[j->n] = score;
        j->part[j->n] = partition;
        j->label[j->n++] = (uint8_t)(label > 0);
}

/* The progressive AUC of the judged examples of the partitions in mask
 * (bit p: partition p). */
static double auc_of(const judged_t *j, unsigned mask) {
        float *s = malloc((j->n ? j->n : 1) * sizeof(float));
        uint8_t *l = malloc(j->n ? j->n : 1);
        size_t k = 0;
        for (size_t i = 0; i < j->n; i++)
                if (mask >> j->part[i] & 1u) {
                        s[k] = j->score[i];
                        l[k++] = j->label[i];
                }
        double auc = itd_eval_auc(s, l, k);
        free(s);
        free(l);
        return auc;
}

static itd_row_t *sim_stream(size_t *n) {
        itd_sim_conf_t sc = {.users = 1500, .days = 2.0, .seed = 1,
                             .start_ms = T0};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        size_t cap = 1 << 15;
        itd_row_t *in = malloc(cap * sizeof(*in));
        int64_t next_off[PARTS] = {0};
        *n = 0;
        while (itd_sim_next(sim, &in[*n].ev) == ITD_OK) {
                int32_t p =
                    (int32_t)(itd_hash_str(in[*n].ev.user_id, 1) % PARTS);
                itd_row_decoded(&in[*n], p, next_off[p]++);
                if (++*n == cap)
                        in = realloc(in, (cap *= 2) * sizeof(*in));
        }
        itd_sim_destroy(sim);
        return in;
}

typedef struct run_s {
        double auc;
        double auc_of[INST]; /* over each instance's partitions */
        double auc_focus;    /* over the layout's focus partitions */
        double dist; /* largest pairwise distance after a quiet exchange,
                      * over every replica of every instance */
        size_t judged;
        uint64_t merged;
} run_t;

/* How the stream's partitions and workers are spread: instance owner[p]
 * holds partition p, with workers[i] pipeline workers (workers.h: p goes
 * to worker p % workers[i]). */
typedef struct layout_s {
        int n_inst;
        int owner[PARTS];
        int workers[INST];
        unsigned focus; /* bit p: partition p's examples make auc_focus */
} layout_t;

/* n_inst instances of one worker, instance i holding p % n_inst == i. */
static layout_t plain(int n_inst) {
        layout_t l = {.n_inst = n_inst};
        for (int p = 0; p < PARTS; p++)
                l.owner[p] = p % n_inst;
        for (int i = 0; i < n_inst; i++)
                l.workers[i] = 1;
        return l;
}

/*
 * The instances of lay, each a set of workers fed its partitions in
 * stream order; with sync, every sync_every events of the stream each
 * does what the daemon's model-sync tick does (daemon/run.c): merge its
 * replicas (itd_workers_sync), publish its change from worker 0; then
 * each merges what the others published into worker 0 and spreads that
 * to its other replicas (itd_workers_spread).
 */
static run_t run_instances(const itd_row_t *in, size_t n, const layout_t *lay,
                           int sync, size_t sync_every) {
        char err[256], w[16];
        itd_workers_t *wk[INST];
        itd_msync_t *ms[INST];
        judged_t j = {0};
        const int n_inst = lay->n_inst;
        for (int i = 0; i < n_inst; i++) {
                snprintf(w, sizeof w, "%d", lay->workers[i]);
                kv_t kv[] = {{"pipeline.workers", w}};
                itd_conf_t *conf = conf_with(kv, 1);
                wk[i] = itd_conf_new_workers(conf, err, sizeof err);
                cr_assert_not_null(wk[i], "%s", err);
                itd_conf_destroy(conf);
                cr_assert_eq(itd_workers_count(wk[i]),
                             (size_t)lay->workers[i]);
                itd_workers_set_example_hook(wk[i], on_judged, &j);
                ms[i] = itd_msync_new(
                    itd_engine_model(itd_workers_engine(wk[i], 0)),
                    (uint64_t)i + 1, 1 << 20, err, sizeof err);
                cr_assert_not_null(ms[i], "%s", err);
        }
        static itd_row_t part[INST][EBATCH];
        bus_t bus = {0};
        size_t seen[INST] = {0}, since = 0;
        for (size_t at = 0; at < n; at += EBATCH) {
                size_t k = n - at < EBATCH ? n - at : EBATCH;
                size_t cnt[INST] = {0};
                for (size_t e = 0; e < k; e++) {
                        int i = lay->owner[in[at + e].partition];
                        part[i][cnt[i]++] = in[at + e];
                }
                for (int i = 0; i < n_inst; i++)
                        if (cnt[i])
                                cr_assert_eq(itd_workers_process(
                                                 wk[i], "events", part[i],
                                                 cnt[i], T0, err, sizeof err),
                                             ITD_OK, "%s", err);
                since += k;
                if (!sync || (since < sync_every && at + k < n))
                        continue;
                since = 0;
                for (int i = 0; i < n_inst; i++) {
                        cr_assert_eq(itd_workers_sync(wk[i], err, sizeof err),
                                     ITD_OK, "%s", err);
                        cr_assert_eq(itd_msync_publish(ms[i], 0, to_bus, &bus,
                                                       NULL, err, sizeof err),
                                     ITD_OK, "%s", err);
                }
                for (int i = 0; i < n_inst; i++) {
                        seen[i] = drain(ms[i], &bus, seen[i], 0);
                        cr_assert_eq(itd_workers_spread(wk[i], err,
                                                        sizeof err),
                                     ITD_OK, "%s", err);
                }
        }
        run_t r = {0};
        r.auc = itd_eval_auc(j.score, j.label, j.n);
        for (int i = 0; i < n_inst; i++) {
                unsigned mask = 0;
                for (int p = 0; p < PARTS; p++)
                        mask |= (unsigned)(lay->owner[p] == i) << p;
                r.auc_of[i] = auc_of(&j, mask);
        }
        r.auc_focus = auc_of(&j, lay->focus);
        r.judged = j.n;
        /* every replica of every instance against every other */
        itd_model_t *m[INST * 2];
        size_t n_m = 0;
        for (int i = 0; i < n_inst; i++) {
                itd_msync_stats_t st;
                itd_msync_stats(ms[i], &st);
                r.merged += st.merged;
                for (size_t k = 0; k < itd_workers_count(wk[i]) && n_m < INST * 2;
                     k++)
                        m[n_m++] = itd_engine_model(itd_workers_engine(wk[i], k));
        }
        for (size_t a = 0; a < n_m; a++)
                for (size_t b = a + 1; b < n_m; b++) {
                        double d = itd_msync_distance(m[a], m[b]);
                        if (d > r.dist)
                                r.dist = d;
                }
        for (int i = 0; i < n_inst; i++) {
                itd_msync_destroy(ms[i]);
                itd_workers_destroy(wk[i]);
        }
        bus_free(&bus);
        free(j.score);
        free(j.label);
        free(j.part);
        return r;
}

/*
 * The bound on the distance after the quiet exchange that ends the
 * stream (all publish, all merge, nobody trains): 1e-5 relative, float
 * rounding of the same additions in another order (docs/OPERATIONS.md,
 * "One model across instances").
 */
#define QUIET_BOUND 1e-5

Test(msync, three_synced_engines_score_as_one_on_the_simulator,
     .timeout = 240) {
        size_t n;
        itd_row_t *in = sim_stream(&n);
        cr_assert_gt(n, 20000, "%zu events", n);
        layout_t l1 = plain(1), l3 = plain(INST);
        run_t one = run_instances(in, n, &l1, 0, 0);
        run_t synced = run_instances(in, n, &l3, 1, 2000);
        run_t apart = run_instances(in, n, &l3, 0, 0);
        fprintf(stderr,
                "msync: %zu events; progressive AUC one %.4f (%zu judged), "
                "3 synced %.4f (distance %.2g, %llu merges), 3 unsynced "
                "%.4f (distance %.2g)\n",
                n, one.auc, one.judged, synced.auc, synced.dist,
                (unsigned long long)synced.merged, apart.auc, apart.dist);
        cr_expect_eq(synced.judged, one.judged);
        cr_expect_lt(fabs(synced.auc - one.auc), 0.01,
                     "synced %.4f vs one %.4f", synced.auc, one.auc);
        cr_expect_lt(synced.dist, QUIET_BOUND, "distance %g", synced.dist);
        cr_expect_gt(apart.dist, 0.05, "unsynced distance %g", apart.dist);
        /* the gap: each unsynced model learns from a third of the examples
         * (0.007 to 0.02 lower than synced on simulator seeds 1 to 4) */
        cr_expect_lt(apart.auc, synced.auc, "unsynced %.4f vs synced %.4f",
                     apart.auc, synced.auc);
        free(in);
}

/*
 * An instance of two pipeline workers beside an instance of one, synced
 * as the daemon syncs them (each tick: merge the replicas, publish from
 * worker 0, merge the other's change into worker 0, spread it to the
 * other replica): after the quiet exchange at the end all three replicas
 * hold one model (QUIET_BOUND), and the two-worker instance's progressive
 * AUC on its partitions is within 0.01 of one engine's on the same
 * partitions of the same stream. Without sync the instances drift apart
 * (the two replicas of the two-worker one still merge each other).
 */
Test(msync, an_instance_of_two_workers_syncs_with_one_of_one,
     .timeout = 240) {
        size_t n;
        itd_row_t *in = sim_stream(&n);
        /* instance 0: partitions 0, 1, 3, 4 (its worker 0: 0 and 4,
         * worker 1: 1 and 3); instance 1: 2 and 5 */
        layout_t mixed = {.n_inst = 2,
                          .owner = {0, 0, 1, 0, 0, 1},
                          .workers = {2, 1},
                          .focus = 1u << 0 | 1u << 1 | 1u << 3 | 1u << 4};
        layout_t l1 = plain(1);
        l1.focus = mixed.focus;
        run_t one = run_instances(in, n, &l1, 0, 0);
        run_t synced = run_instances(in, n, &mixed, 1, 2000);
        run_t apart = run_instances(in, n, &mixed, 0, 0);
        fprintf(stderr,
                "msync, workers 2 + 1: %zu events; progressive AUC on the "
                "two-worker instance's partitions: one engine %.4f, synced "
                "%.4f, unsynced %.4f; all partitions: one %.4f, synced %.4f "
                "(distance %.2g over 3 replicas, %llu merges), unsynced %.4f "
                "(distance %.2g)\n",
                n, one.auc_focus, synced.auc_of[0], apart.auc_of[0], one.auc,
                synced.auc, synced.dist, (unsigned long long)synced.merged,
                apart.auc, apart.dist);
        cr_expect_eq(synced.judged, one.judged);
        cr_expect_lt(fabs(synced.auc_of[0] - one.auc_focus), 0.01,
                     "two workers synced %.4f vs one engine %.4f",
                     synced.auc_of[0], one.auc_focus);
        cr_expect_lt(fabs(synced.auc - one.auc), 0.01,
                     "synced %.4f vs one %.4f", synced.auc, one.auc);
        cr_expect_gt(synced.merged, 0);
        cr_expect_lt(synced.dist, QUIET_BOUND, "distance %g", synced.dist);
        cr_expect_gt(apart.dist, 0.05, "unsynced distance %g", apart.dist);
        free(in);
}

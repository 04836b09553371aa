/*
 * test_model.c - the model facade (model/model.c): both model types behind
 * one interface, checkpoints that restore a model exactly (bit-identical
 * predictions, identical further training), refused checkpoints that leave
 * the model untouched, seeded training runs against stored loss curves, and
 * the MLP against the logistic baseline on the simulator.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "intentd/eval_progressive.h"
#include "intentd/labeler.h"
#include "intentd/model.h"
#include "intentd/simulator.h"
#include "intentd/state.h"
#include "testutil.h"
#include "rand_helpers.h"

/* ---- shared data ------------------------------------------------------- */

enum { D = 10, F = 2, S = 3, NB = 16, NBATCH = 60 };
#define NS (F * S)

typedef struct data_s {
        float x[NBATCH][NB * D];
        uint32_t ids[NBATCH][NB * NS];
        float y[NBATCH][NB];
        int next[NBATCH][NB];
} data_t;

/*
 * A seeded stream: label from a non-linear dense score plus a per-id
 * effect, next action loosely tied to the score, some empty id slots.
 */
static data_t *make_data(uint64_t seed) {
        data_t *d = malloc(sizeof(*d));
        rng_state = seed;
        float effect[30];
        for (size_t k = 0; k < 30; k++)
                effect[k] = (float)nrand();
        for (size_t t = 0; t < NBATCH; t++)
                for (size_t b = 0; b < NB; b++) {
                        float *x = d->x[t] + b * D;
                        for (size_t j = 0; j < D; j++)
                                x[j] = (float)nrand();
                        uint32_t *ids = d->ids[t] + b * NS;
                        for (size_t s = 0; s < NS; s++)
                                ids[s] = urand() < 0.3
                                             ? UINT32_MAX
                                             : (uint32_t)(urand() * 30);
                        double z = x[0] - x[1] + 0.5 * x[2] * x[3] - 1.5 +
                                   (ids[0] != UINT32_MAX ? effect[ids[0]] : 0);
                        d->y[t][b] = urand() < 1.0 / (1.0 + exp(-z)) ? 1.0f
                                                                    : 0.0f;
                        d->next[t][b] =
                            z > 0.5 ? ITD_NEXT_PURCHASE
                                    : (int)(urand() * ITD_NEXT__COUNT);
                }
        return d;
}

static itd_model_conf_t conf_of(int type, itd_opt_t opt) {
        itd_model_conf_t c;
        itd_model_conf_defaults(&c, type, D, F, S);
        c.mlp.emb_buckets = 64;
        c.mlp.emb_dim = 4;
        c.mlp.hidden[0] = 16;
        c.mlp.hidden[1] = 8;
        c.mlp.max_batch = NB;
        c.mlp.optimizer = opt;
        c.mlp.seed = 7;
        return c;
}

/* conf_of with dense inputs 4 and 5 as offsets and 0, 2 and 6 as Newton
 * inputs (mlp.h) */
static itd_model_conf_t with_offsets(itd_model_conf_t c) {
        c.mlp.n_offsets = 2;
        c.mlp.offset_input[0] = 4;
        c.mlp.offset_input[1] = 5;
        c.mlp.n_linear = 3;
        c.mlp.linear_input[0] = 0;
        c.mlp.linear_input[1] = 2;
        c.mlp.linear_input[2] = 6;
        return c;
}

static itd_model_t *new_model(int type, itd_opt_t opt) {
        itd_model_conf_t c = conf_of(type, opt);
        char err[256];
        itd_model_t *m = itd_model_new(&c, err, sizeof(err));
        cr_assert_not_null(m, "%s", err);
        return m;
}

static void train_range(itd_model_t *m, const data_t *d, size_t from,
                        size_t to, float *losses) {
        for (size_t t = from; t < to; t++) {
                float loss;
                cr_assert_eq(itd_model_train(m, d->x[t], d->ids[t], d->y[t],
                                             d->next[t], NB, &loss),
                             ITD_OK);
                if (losses)
                        losses[t] = loss;
        }
}

/* ---- facade ------------------------------------------------------------ */

Test(model, both_types_score_train_and_count_through_one_interface) {
        data_t *d = make_data(1);
        for (int type = 0; type < 2; type++) {
                itd_model_t *m = new_model(type, ITD_OPT_ADAM);
                cr_assert_eq(itd_model_type(m), type);
                float p[NB], next[NB * ITD_NEXT__COUNT];
                itd_model_predict(m, d->x[0], d->ids[0], NB, p, next);
                for (size_t b = 0; b < NB; b++) {
                        cr_expect(p[b] > 0.0f && p[b] < 1.0f, "p %g", p[b]);
                        double sum = 0.0;
                        for (size_t k = 0; k < ITD_NEXT__COUNT; k++)
                                sum += next[b * ITD_NEXT__COUNT + k];
                        cr_expect_float_eq(sum, 1.0, 1e-5 /* float sum */);
                }
                train_range(m, d, 0, 10, NULL);
                cr_assert_eq(itd_model_steps(m), 10);
                cr_assert_eq(itd_model_examples(m), 10 * NB);
                cr_assert_eq(itd_model_skipped(m), 0);
                float bad[NB * D];
                memcpy(bad, d->x[0], sizeof(bad));
                bad[3] = INFINITY;
                cr_assert_eq(itd_model_train(m, bad, d->ids[0], d->y[0], NULL,
                                             NB, NULL),
                             ITD_ERR_NONFINITE);
                cr_assert_eq(itd_model_skipped(m), 1);
                cr_assert_eq(itd_model_examples(m), 10 * NB, "not counted");
                cr_assert_eq(itd_model_train(m, d->x[0], d->ids[0], d->y[0],
                                             NULL, NB + 1, NULL),
                             ITD_ERR_ARG);
                size_t want = type == ITD_MODEL_KIND_LOGISTIC
                                  ? 1 + D + F * 64
                                  : (D + F * 4) * 16 + 16 + 16 * 8 + 8 + 8 +
                                        1 + 8 * ITD_NEXT__COUNT +
                                        ITD_NEXT__COUNT + D /* wide */ +
                                        F * 64 * 4;
                cr_assert_eq(itd_model_n_params(m), want, "type %d", type);
                itd_model_destroy(m);
        }
        free(d);
        itd_model_destroy(NULL);
}

Test(model, unknown_type_and_bad_shapes_are_refused_with_a_reason) {
        char err[256];
        itd_model_conf_t c = conf_of(7, ITD_OPT_ADAM);
        cr_assert_null(itd_model_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "type") && strstr(err, "7"), "%s", err);
        c = conf_of(ITD_MODEL_KIND_LOGISTIC, ITD_OPT_ADAM);
        c.ftrl.alpha = -1.0f;
        cr_assert_null(itd_model_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "alpha"), "%s", err);
        c = conf_of(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
        c.mlp.n_hidden = 0;
        cr_assert_null(itd_model_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "n_hidden"), "%s", err);
}

Test(model, config_hash_follows_the_state_shape_not_the_step_size) {
        itd_model_conf_t a = conf_of(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM), b = a;
        b.mlp.lr *= 2.0f;
        b.mlp.l2 = 0.0f;
        cr_assert_eq(itd_model_conf_hash(&a), itd_model_conf_hash(&b));
        b.mlp.hidden[1] = 9;
        cr_assert_neq(itd_model_conf_hash(&a), itd_model_conf_hash(&b));
        b = a;
        b.mlp.optimizer = ITD_OPT_SGD;
        cr_assert_neq(itd_model_conf_hash(&a), itd_model_conf_hash(&b));
        b = a;
        b.type = ITD_MODEL_KIND_LOGISTIC;
        cr_assert_neq(itd_model_conf_hash(&a), itd_model_conf_hash(&b));
        /* offsets change what every weight means; their prior does not
         * shape the state */
        b = with_offsets(a);
        cr_assert_neq(itd_model_conf_hash(&a), itd_model_conf_hash(&b));
        itd_model_conf_t b2 = b;
        b2.mlp.offset_prior *= 3.0f;
        cr_assert_eq(itd_model_conf_hash(&b), itd_model_conf_hash(&b2));
        b2.mlp.offset_input[1] = 6;
        cr_assert_neq(itd_model_conf_hash(&b), itd_model_conf_hash(&b2));
        /* so do the Newton inputs (and they size the offset sections) */
        b2 = b;
        b2.mlp.linear_prior *= 3.0f;
        b2.mlp.intercept_prior *= 3.0f;
        cr_assert_eq(itd_model_conf_hash(&b), itd_model_conf_hash(&b2));
        b2.mlp.n_linear = 2;
        cr_assert_neq(itd_model_conf_hash(&b), itd_model_conf_hash(&b2));
        b2 = b;
        b2.mlp.linear_input[2] = 7;
        cr_assert_neq(itd_model_conf_hash(&b), itd_model_conf_hash(&b2));
}

/* ---- checkpoints restore exactly --------------------------------------- */

static void same_predictions(itd_model_t *a, itd_model_t *b, const data_t *d,
                             size_t t) {
        float pa[NB], pb[NB], na[NB * ITD_NEXT__COUNT],
            nb[NB * ITD_NEXT__COUNT];
        itd_model_predict(a, d->x[t], d->ids[t], NB, pa, na);
        itd_model_predict(b, d->x[t], d->ids[t], NB, pb, nb);
        cr_assert_eq(memcmp(pa, pb, sizeof(pa)), 0, "scores differ");
        cr_assert_eq(memcmp(na, nb, sizeof(na)), 0, "next differs");
        /* and the batch-1 (sgemv) path too */
        itd_model_predict(a, d->x[t], d->ids[t], 1, pa, NULL);
        itd_model_predict(b, d->x[t], d->ids[t], 1, pb, NULL);
        cr_assert_eq(memcmp(pa, pb, sizeof(float)), 0, "B = 1 differs");
}

static void check_restores_exactly_as(int type, itd_opt_t opt, int offsets) {
        char dir[512], path[600], err[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof(dir)));
        snprintf(path, sizeof(path), "%s/model.ckpt", dir);
        data_t *d = make_data(2);
        itd_model_conf_t ca = conf_of(type, opt);
        if (offsets)
                ca = with_offsets(ca);
        itd_model_t *a = itd_model_new(&ca, err, sizeof(err));
        cr_assert_not_null(a, "%s", err);
        train_range(a, d, 0, 30, NULL);
        itd_snapshot_meta_t meta = {.feature_spec_hash = 5};
        cr_assert_eq(itd_model_save(a, path, &meta, err, sizeof(err)), ITD_OK,
                     "%s", err);

        /* another seed: every value must come from the file */
        itd_model_conf_t c = ca;
        c.mlp.seed = 12345;
        itd_model_t *b = itd_model_new(&c, err, sizeof(err));
        cr_assert_not_null(b);
        cr_assert_eq(itd_model_load(b, path, &meta, err, sizeof(err)), ITD_OK,
                     "%s", err);
        cr_assert_eq(itd_model_steps(b), itd_model_steps(a));
        cr_assert_eq(itd_model_examples(b), itd_model_examples(a));
        cr_assert_eq(itd_model_skipped(b), itd_model_skipped(a));
        same_predictions(a, b, d, 31);

        /* training on goes step for step alike, losses bit for bit */
        float la[NBATCH], lb[NBATCH];
        train_range(a, d, 30, NBATCH, la);
        train_range(b, d, 30, NBATCH, lb);
        cr_assert_eq(memcmp(la + 30, lb + 30, (NBATCH - 30) * sizeof(float)),
                     0, "losses differ after the reload");
        same_predictions(a, b, d, 0);
        itd_model_destroy(a);
        itd_model_destroy(b);
        free(d);
}

static void check_restores_exactly(int type, itd_opt_t opt) {
        check_restores_exactly_as(type, opt, 0);
}

Test(model, mlp_with_offsets_checkpoint_restores_exactly_and_trains_on_alike) {
        /* theta (offsets, Newton inputs, intercept) and its curvature come
         * back too: predictions and the Newton steps after the reload are
         * bit for bit the same */
        check_restores_exactly_as(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM, 1);
}

Test(model, mlp_adam_checkpoint_restores_exactly_and_trains_on_alike) {
        check_restores_exactly(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
}

Test(model, mlp_adagrad_checkpoint_restores_exactly_and_trains_on_alike) {
        check_restores_exactly(ITD_MODEL_KIND_MLP, ITD_OPT_ADAGRAD);
}

Test(model, mlp_sgd_checkpoint_restores_exactly_and_trains_on_alike) {
        check_restores_exactly(ITD_MODEL_KIND_MLP, ITD_OPT_SGD);
}

Test(model, logistic_checkpoint_restores_exactly_and_trains_on_alike) {
        check_restores_exactly(ITD_MODEL_KIND_LOGISTIC, ITD_OPT_ADAM);
}

Test(model, a_refused_checkpoint_leaves_the_model_unchanged) {
        char dir[512], path[600], err[512];
        cr_assert_not_null(tu_tmpdir(dir, sizeof(dir)));
        snprintf(path, sizeof(path), "%s/model.ckpt", dir);
        data_t *d = make_data(3);
        itd_model_t *src = new_model(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
        train_range(src, d, 0, 5, NULL);
        cr_assert_eq(itd_model_save(src, path, NULL, err, sizeof(err)),
                     ITD_OK);

        itd_model_t *m = new_model(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
        itd_model_t *ref = new_model(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
        /* wrong feature spec */
        itd_snapshot_meta_t expect = {.feature_spec_hash = 1};
        cr_assert_eq(itd_model_load(m, path, &expect, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        same_predictions(m, ref, d, 0);
        cr_assert_eq(itd_model_steps(m), 0);

        /* another type, another shape, another optimizer */
        itd_model_t *lr = new_model(ITD_MODEL_KIND_LOGISTIC, ITD_OPT_ADAM);
        cr_assert_eq(itd_model_load(lr, path, NULL, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "mlp model") && strstr(err, "logistic"), "%s",
                  err);
        itd_model_destroy(lr);
        itd_model_conf_t c = conf_of(ITD_MODEL_KIND_MLP, ITD_OPT_ADAM);
        c.mlp.hidden[0] = 32;
        itd_model_t *wide = itd_model_new(&c, NULL, 0);
        cr_assert_eq(itd_model_load(wide, path, NULL, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "hidden"), "%s", err);
        itd_model_destroy(wide);
        itd_model_t *sgd = new_model(ITD_MODEL_KIND_MLP, ITD_OPT_SGD);
        cr_assert_eq(itd_model_load(sgd, path, NULL, err, sizeof(err)),
                     ITD_ERR_INCOMPATIBLE);
        cr_assert(strstr(err, "optimizer adam") && strstr(err, "sgd"), "%s",
                  err);
        itd_model_destroy(sgd);

        /* damaged file */
        FILE *fp = fopen(path, "r+b");
        fseek(fp, 500, SEEK_SET);
        fputc(0x5A, fp);
        fclose(fp);
        cr_assert_eq(itd_model_load(m, path, NULL, err, sizeof(err)),
                     ITD_ERR_CORRUPT);
        same_predictions(m, ref, d, 0);

        /* no file */
        snprintf(path, sizeof(path), "%s/absent.ckpt", dir);
        cr_assert_eq(itd_model_load(m, path, NULL, err, sizeof(err)),
                     ITD_ERR_NOT_FOUND);
        itd_model_destroy(m);
        itd_model_destroy(ref);
        itd_model_destroy(src);
        free(d);
}

/* ---- stored loss curves (STYLE.md section 9) --------------------------- */

/*
 * Mean training loss over blocks of 12 batches, two passes over the seeded
 * stream above (10 blocks), as this code computed it when the test was
 * written. Any change to initialisation,
 * the forward pass, the gradients or the update rules moves these numbers.
 *
 * MLP tolerance: the values come from float arithmetic through OpenBLAS;
 * another OpenBLAS kernel (other CPU, other version) sums in another order,
 * which moves the 4th-5th significant digit after 60 steps at most; 1e-4
 * absolute on losses ~0.5 allows that and still catches any real change
 * (a wrong gradient or step moves the curve by 1e-2 within a few steps).
 * Logistic: double arithmetic in plain C, no BLAS: 1e-6.
 */
#define CURVE_TOL_MLP 1e-4
#define CURVE_TOL_LOGISTIC 1e-6

/*
 * MLP curve re-stored when the defaults gained input standardisation and
 * the wide path (issues 5, 6): the network's purchase output now starts
 * at 0 and the first blocks are learned by the wide path alone, so the
 * start is higher (0.76 vs 0.74); the end is about the same (0.410 vs
 * 0.405).
 * The previous curve: 0.7439919, 0.5370511, 0.5045819, 0.4267356,
 * 0.4422509, 0.4954947, 0.3868697, 0.4025488, 0.3815236, 0.4048079.
 */
static const double curve_mlp[10] = {
    0.7598258, 0.7459066, 0.4800858, 0.3997532, 0.4564669,
    0.5192799, 0.4145577, 0.4131123, 0.3592793, 0.4097731,
};
static const double curve_logistic[10] = {
    0.6568775, 0.5151768, 0.3988663, 0.3947613, 0.4306082,
    0.4859702, 0.4123547, 0.3734790, 0.3854092, 0.4118083,
};

static void check_curve(int type, const double *want, double tol) {
        data_t *d = make_data(4);
        itd_model_conf_t c = conf_of(type, ITD_OPT_ADAM);
        c.mlp.lr = 1e-2f; /* so that 60 steps make a curve, not a line */
        itd_model_t *m = itd_model_new(&c, NULL, 0);
        float loss[NBATCH];
        double block[10] = {0};
        for (int epoch = 0; epoch < 2; epoch++) {
                train_range(m, d, 0, NBATCH, loss);
                for (size_t t = 0; t < NBATCH; t++)
                        block[5 * epoch + t / 12] += loss[t] / 12.0;
        }
        char line[512] = "";
        for (size_t i = 0; i < 10; i++) {
                size_t len = strlen(line);
                snprintf(line + len, sizeof(line) - len, "%.7f, ", block[i]);
        }
        cr_log_info("type %d curve: %s", type, line);
        for (size_t i = 0; i < 10; i++)
                cr_expect_float_eq(block[i], want[i], tol,
                                   "block %zu: %.7f, stored %.7f", i,
                                   block[i], want[i]);
        cr_expect_lt(block[9], block[0], "the loss goes down");
        itd_model_destroy(m);
        free(d);
}

Test(model, mlp_seeded_loss_curve_matches_the_stored_one) {
        check_curve(ITD_MODEL_KIND_MLP, curve_mlp, CURVE_TOL_MLP);
}

Test(model, logistic_seeded_loss_curve_matches_the_stored_one) {
        check_curve(ITD_MODEL_KIND_LOGISTIC, curve_logistic,
                    CURVE_TOL_LOGISTIC);
}

/* ---- the MLP against the baseline -------------------------------------- */

#define HORIZON_MS (30 * 60000ll)

/*
 * The simulator's stream through the real state, features and labeler, in
 * the daemon's order of work (core/engine.c): each chunk of 256 events
 * is scored, the predictions wait in the labeler, and both models learn in
 * mini-batches of 64 from the examples the watermark resolves. Judged
 * progressively on those examples.
 *
 * An earlier form of this test labelled by looking ahead and learned every
 * label at once. That leaks the future: the session goes on with the same
 * item and category ids, whose embedding rows or FTRL weights have just
 * learned whether it ends in a purchase; it scored AUC 0.85 and rewarded
 * the fastest-memorising model, where the daemon sees 0.66-0.71.
 *
 * With the defaults the MLP (wide path, standardised inputs) scores ~0.71
 * here and FTRL ~0.68, as `intentd replay` does on seeds 1-3 (0.71-0.72
 * and 0.67-0.68). 0.01 leaves room for simulator changes without letting
 * a broken MLP pass.
 */
Test(model, mlp_beats_the_logistic_baseline_progressively_on_the_simulator,
     .timeout = 60) {
        itd_sim_conf_t sc = {.users = 2000, .days = 3.0, .seed = 1,
                             .start_ms = 1700000000000ll};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof(err));
        cr_assert_not_null(sim, "%s", err);
        size_t cap = 1 << 16, n = 0;
        itd_event_t *ev = malloc(cap * sizeof(*ev));
        while (itd_sim_next(sim, &ev[n]) == ITD_OK)
                if (++n == cap)
                        ev = realloc(ev, (cap *= 2) * sizeof(*ev));
        itd_sim_destroy(sim);
        cr_assert(n > 50000, "%zu events", n);

        itd_state_conf_t stc;
        memset(&stc, 0, sizeof(stc));
        stc.n_windows = 4;
        stc.window_ms[0] = 5 * 60000;
        stc.window_ms[1] = 3600000;
        stc.window_ms[2] = 24 * 3600000ll;
        stc.window_ms[3] = 7 * 24 * 3600000ll;
        stc.session_gap_ms = HORIZON_MS;
        stc.idle_ttl_ms = 30 * 24 * 3600000ll;
        stc.max_users = 1000000;
        itd_state_t *st = itd_state_new(&stc, err, sizeof(err));
        cr_assert_not_null(st, "%s", err);
        const size_t dim = itd_features_dim(&stc);

        enum { B = 256 };
        itd_model_t *m[2];
        itd_eval_t *eval[2];
        for (int type = 0; type < 2; type++) {
                itd_model_conf_t c;
                itd_model_conf_defaults(&c, type, dim, ITD_SPARSE_FIELDS,
                                        ITD_SPARSE_SLOTS);
                c.mlp.max_batch = B;
                m[type] = itd_model_new(&c, err, sizeof(err));
                cr_assert_not_null(m[type], "%s", err);
                eval[type] = itd_eval_new(0.5f);
        }
        /*
         * The daemon's order of work (core/engine.c): score a chunk of
         * events, hand the predictions to the labeler, and learn, in
         * mini-batches of TB, from what the watermark has resolved.
         */
        itd_labeler_conf_t lc = {.dim = dim, .n_ids = ITD_SPARSE_IDS,
                                 .horizon_ms = HORIZON_MS,
                                 .session_gap_ms = HORIZON_MS,
                                 .max_pending = 1000000,
                                 .max_pending_per_user = 256};
        itd_labeler_t *lb[2];
        enum { TB = 64 };
        float *x = malloc(B * dim * sizeof(float)), p[B];
        float *tx = malloc(TB * dim * sizeof(float)), ty[TB];
        uint32_t ids[B * ITD_SPARSE_IDS], tids[TB * ITD_SPARSE_IDS];
        uint64_t uh[B];
        int tnext[TB];
        size_t tn[2] = {0, 0};
        itd_event_t *chunk[B];
        for (int type = 0; type < 2; type++) {
                lb[type] = itd_labeler_new(&lc, err, sizeof(err));
                cr_assert_not_null(lb[type], "%s", err);
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (itd_state_update(st, &ev[i], itd_user_hash(ev[i].user_id), x + k * dim,
                                     ids + k * ITD_SPARSE_IDS,
                                     NULL) != ITD_OK)
                        continue;
                uh[k] = itd_hash_str(ev[i].user_id, 1);
                chunk[k++] = &ev[i];
                if (k < B && i + 1 < n)
                        continue;
                for (int type = 0; type < 2; type++) {
                        itd_model_predict(m[type], x, ids, k, p, NULL);
                        for (size_t b = 0; b < k; b++) {
                                itd_labeler_observe(lb[type], uh[b],
                                                    chunk[b]->ts_ms,
                                                    chunk[b]->type);
                                cr_assert_eq(itd_labeler_add(
                                                 lb[type], uh[b],
                                                 chunk[b]->ts_ms,
                                                 (int64_t)b,
                                                 x + b * dim,
                                                 ids + b * ITD_SPARSE_IDS,
                                                 p[b], NULL),
                                             ITD_OK);
                        }
                        itd_labeler_advance(lb[type], itd_state_watermark(st));
                        itd_example_t ex[64];
                        size_t got;
                        while ((got = itd_labeler_take(lb[type], ex, 64)) > 0)
                                for (size_t e = 0; e < got; e++) {
                                        itd_eval_add(eval[type], ex[e].score,
                                                     ex[e].label, NULL,
                                                     ITD_NEXT_VIEW);
                                        size_t r = tn[type]++;
                                        memcpy(tx + r * dim, ex[e].x,
                                               dim * sizeof(float));
                                        memcpy(tids + r * ITD_SPARSE_IDS,
                                               ex[e].ids,
                                               sizeof(uint32_t) *
                                                   ITD_SPARSE_IDS);
                                        ty[r] = (float)ex[e].label;
                                        tnext[r] = (int)ex[e].next;
                                        if (tn[type] < TB)
                                                continue;
                                        cr_assert_eq(
                                            itd_model_train(m[type], tx, tids,
                                                            ty, tnext, TB,
                                                            NULL),
                                            ITD_OK);
                                        tn[type] = 0;
                                }
                }
                k = 0;
        }
        for (int type = 0; type < 2; type++)
                itd_labeler_destroy(lb[type]);
        free(tx);
        itd_eval_summary_t s[2];
        for (int type = 0; type < 2; type++)
                itd_eval_summary(eval[type], &s[type]);
        cr_log_info("simulator, %llu events, base rate %.3f: mlp AUC %.4f "
                    "log loss %.4f; logistic AUC %.4f log loss %.4f",
                    (unsigned long long)s[0].n, s[0].base_rate, s[0].auc,
                    s[0].logloss, s[1].auc, s[1].logloss);
        cr_expect_gt(s[0].auc, s[1].auc + 0.01, "mlp %.4f, logistic %.4f",
                     s[0].auc, s[1].auc);
        cr_expect_lt(s[0].logloss, s[1].logloss, "mlp %.4f, logistic %.4f",
                     s[0].logloss, s[1].logloss);
        for (int type = 0; type < 2; type++) {
                itd_model_destroy(m[type]);
                itd_eval_destroy(eval[type]);
        }
        itd_state_destroy(st);
        free(x);
        free(ev);
}

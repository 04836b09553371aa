/*
 * test_mlp.c - the whole network (model/mlp.c, model/optim.c): gradients
 * against finite differences, optimizer steps against hand-computed values,
 * determinism, non-finite handling, configuration, and the sgemv (B = 1)
 * path against the sgemm path. What it learns is in test_mlp_learn.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "intentd/mlp.h"
#include "layers_int.h"
#include "mlp_int.h"

#include "mlp_helpers.h"

/* ---- gradients --------------------------------------------------------- */

/*
 * Whole-network finite differences. The trunk has ReLU kinks: a difference
 * that straddles one is wrong by design, not by a bug, so a parameter whose
 * estimates at FD_EPS and FD_EPS / 2 disagree is skipped (and the skips must
 * stay rare). Tolerances as in test_layers.c: truncation O(eps^2), float
 * rounding of a ~1 loss / (2 eps) ~ 1e-5 absolute.
 */
#define FD_EPS 1e-2f

#define FD_REL_TOL 1e-2
#define FD_ABS_TOL 1e-3

static double central_diff(itd_mlp_t *m, float *p, float eps, const float *x) {
        float saved = *p;
        *p = saved + eps;
        double lp = itd_mlp_loss(m, x, tiny_ids, tiny_y, tiny_next, TB);
        *p = saved - eps;
        double lm = itd_mlp_loss(m, x, tiny_ids, tiny_y, tiny_next, TB);
        *p = saved;
        return (lp - lm) / (2.0 * (double)eps);
}

Test(mlp, gradients_match_finite_differences_for_every_tensor) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_SGD);
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert_not_null(m);
        float x[TB * TD];
        tiny_x(x);
        /* move the embeddings off their small init so they matter */
        for (size_t i = m->n_dense_params; i < m->n_params; i++)
                m->params[i] = (float)(urand() - 0.5);
        itd_mlp_zero_grad(m);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB,
                                 NULL);

        size_t checked = 0, kinks = 0;
        size_t per_tensor[ITD_MLP_MAX_TENSORS + 1] = {0};
        for (size_t i = 0; i < m->n_params; i++) {
                double g1 = central_diff(m, &m->params[i], FD_EPS, x);
                double g2 = central_diff(m, &m->params[i], FD_EPS / 2, x);
                if (fabs(g1 - g2) > FD_REL_TOL * fmax(fabs(g1), fabs(g2)) +
                                        FD_ABS_TOL) {
                        kinks++;
                        continue;
                }
                double a = m->grads[i];
                double tol = FD_REL_TOL * fmax(fabs(a), fabs(g2)) + FD_ABS_TOL;
                cr_expect(fabs(a - g2) <= tol,
                          "param %zu: analytic %.6g vs numeric %.6g", i, a, g2);
                checked++;
                size_t t = 0;
                while (t < m->n_tensors &&
                       i >= m->tensors[t].off + m->tensors[t].n)
                        t++;
                per_tensor[t]++; /* t == n_tensors: embeddings */
        }
        cr_assert(kinks * 10 < m->n_params, "%zu of %zu params at a kink",
                  kinks, m->n_params);
        for (size_t t = 0; t <= m->n_tensors; t++)
                cr_expect(per_tensor[t] > 0, "tensor %s never checked",
                          t < m->n_tensors ? m->tensors[t].name : "emb");
        cr_assert(checked > 100);
        itd_mlp_destroy(m);
}

/* ---- optimizer steps, by hand ------------------------------------------ */

/* float arithmetic against double hand values: a few ulps of 1 */
#define STEP_TOL 1e-6

Test(mlp, sgd_update_matches_hand_computed_values) {
        /* w -= lr (g + l2 w): 1 - 0.1 (0.5 + 0.01) = 0.949;
         * 0.949 - 0.1 (-1 + 0.00949) = 1.048051 */
        float w = 1.0f, g = 0.5f;
        itd_sgd_update(&w, &g, 1, 1.0f, 0.1f, 0.01f);
        cr_assert_float_eq(w, 0.949, STEP_TOL);
        g = -1.0f;
        itd_sgd_update(&w, &g, 1, 1.0f, 0.1f, 0.01f);
        cr_assert_float_eq(w, 1.048051, STEP_TOL);
}

Test(mlp, adagrad_update_matches_hand_computed_values) {
        /* G = 0.25, w = 1 - 0.1 * 0.5 / 0.5 = 0.9;
         * G = 1.25, w = 0.9 + 0.1 / sqrt(1.25) = 0.98944272 */
        float w = 1.0f, g = 0.5f, G = 0.0f;
        itd_adagrad_update(&w, &g, &G, 1, 1.0f, 0.1f, 0.0f, 1e-8f);
        cr_assert_float_eq(G, 0.25, STEP_TOL);
        cr_assert_float_eq(w, 0.9, STEP_TOL);
        g = -1.0f;
        itd_adagrad_update(&w, &g, &G, 1, 1.0f, 0.1f, 0.0f, 1e-8f);
        cr_assert_float_eq(w, 0.98944272, STEP_TOL);
}

Test(mlp, adam_update_matches_hand_computed_values) {
        /*
         * lr 0.1, beta1 0.9, beta2 0.999. t = 1, g = 0.5: m = 0.05,
         * v = 0.00025, m_hat = 0.5, v_hat = 0.25, w = 1 - 0.1 = 0.9.
         * t = 2, g = -1: m = -0.055, v = 0.00124975, m_hat = -0.055 / 0.19,
         * v_hat = 0.00124975 / 0.001999, w = 0.93661035.
         */
        float w = 1.0f, g = 0.5f, mom = 0.0f, v = 0.0f;
        itd_adam_update(&w, &g, &mom, &v, NULL, 1, 1.0f, 0.1f, 0.0f, 0.9f,
                        0.999f, 1e-8f, 1.0f - 0.9f, 1.0f - 0.999f, 0.0f);
        cr_assert_float_eq(mom, 0.05, STEP_TOL);
        cr_assert_float_eq(v, 0.00025, STEP_TOL);
        cr_assert_float_eq(w, 0.9, STEP_TOL);
        g = -1.0f;
        itd_adam_update(&w, &g, &mom, &v, NULL, 1, 1.0f, 0.1f, 0.0f, 0.9f,
                        0.999f, 1e-8f, (float)(1.0 - 0.81),
                        (float)(1.0 - 0.998001), 0.0f);
        /* bc2 = 0.001999 in float carries ~1e-7 relative: 1e-5 on w */
        cr_assert_float_eq(w, 0.93661035, 1e-5);
}

Test(mlp, adam_update_gives_the_same_bits_in_any_lane_and_tail) {
        /*
         * The update runs four lanes at a time plus a scalar tail; an
         * element must come out the same whichever did it, or a model's
         * result would depend on tensor sizes.
         */
        enum { N = 19 }; /* two lanes of eight and a tail of three */
        float w[N], g[N], mom[N], v[N], a[N], w1[N], m1[N], v1[N], a1[N];
        rng_state = 5;
        for (size_t i = 0; i < N; i++) {
                w[i] = w1[i] = (float)nrand();
                g[i] = (float)nrand();
                mom[i] = m1[i] = (float)(0.1 * nrand());
                v[i] = v1[i] = (float)(0.01 * urand());
                a[i] = a1[i] = (float)nrand();
        }
        itd_adam_update(w, g, mom, v, a, N, 0.7f, 1e-3f, 1e-4f, 0.9f, 0.999f,
                        1e-8f, 0.2f, 0.003f, 0.3f);
        for (size_t i = 0; i < N; i++)
                itd_adam_update(w1 + i, g + i, m1 + i, v1 + i, a1 + i, 1, 0.7f,
                                1e-3f, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.2f,
                                0.003f, 0.3f);
        cr_assert_eq(memcmp(w, w1, sizeof(w)), 0, "w differs");
        cr_assert_eq(memcmp(mom, m1, sizeof(mom)), 0, "m differs");
        cr_assert_eq(memcmp(v, v1, sizeof(v)), 0, "v differs");
        cr_assert_eq(memcmp(a, a1, sizeof(a)), 0, "avg differs");
}

/*
 * The vectorised Adam (FMA where the CPU has it) against the plain loop:
 * FMA rounds once where the loop rounds twice, a few ulps per operation,
 * so 1e-6 relative on m, v, w and the average after three steps.
 */
#define ADAM_VEC_TOL 1e-6

Test(mlp, adam_update_agrees_with_the_plain_loop_reference) {
        enum { N = 1037 };
        static float w[N], g[N], mom[N], v[N], a[N];
        static float w1[N], m1[N], v1[N], a1[N];
        rng_state = 9;
        for (size_t i = 0; i < N; i++) {
                w[i] = w1[i] = (float)nrand();
                mom[i] = m1[i] = (float)(0.1 * nrand());
                v[i] = v1[i] = (float)(0.01 * urand());
                a[i] = a1[i] = (float)nrand();
        }
        for (int t = 1; t <= 3; t++) {
                for (size_t i = 0; i < N; i++)
                        g[i] = (float)nrand();
                float bc1 = (float)(1.0 - pow(0.9, t));
                float bc2 = (float)(1.0 - pow(0.999, t));
                itd_adam_update(w, g, mom, v, a, N, 0.8f, 1e-3f, 1e-4f, 0.9f,
                                0.999f, 1e-8f, bc1, bc2, 0.25f);
                itd_adam_update_ref(w1, g, m1, v1, a1, N, 0.8f, 1e-3f, 1e-4f,
                                    0.9f, 0.999f, 1e-8f, bc1, bc2, 0.25f);
        }
        /* m = 0.9 m + 0.1 g can cancel to near 0: its error is relative
         * to the terms (~0.1-1), not to the result; w and the average are
         * ~1, v a sum of positive terms */
        for (size_t i = 0; i < N; i++) {
                cr_expect_float_eq(w[i], w1[i],
                                   ADAM_VEC_TOL * (fabsf(w1[i]) + 1.0f),
                                   "w[%zu]", i);
                cr_expect_float_eq(mom[i], m1[i], ADAM_VEC_TOL, "m[%zu]", i);
                cr_expect_float_eq(v[i], v1[i], ADAM_VEC_TOL * fabsf(v1[i]),
                                   "v[%zu]", i);
                cr_expect_float_eq(a[i], a1[i],
                                   ADAM_VEC_TOL * (fabsf(a1[i]) + 1.0f),
                                   "avg[%zu]", i);
        }
}

/* grads of the tiny net at its initial point; params copied out */
static void tiny_grads(itd_mlp_t *m, const float *x, float *p0, float *g0) {
        memcpy(p0, m->params, m->n_params * sizeof(float));
        itd_mlp_zero_grad(m);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB,
                                 NULL);
        memcpy(g0, m->grads, m->n_params * sizeof(float));
        itd_mlp_zero_grad(m);
}

static int is_decayed(const itd_mlp_t *m, size_t i) {
        for (size_t t = 0; t < m->n_tensors; t++)
                if (i >= m->tensors[t].off &&
                    i < m->tensors[t].off + m->tensors[t].n)
                        return m->tensors[t].decay;
        return 1; /* embeddings */
}

static int emb_row_touched(const itd_mlp_t *m, size_t i) {
        if (i < m->n_dense_params)
                return 1;
        size_t row = (i - m->n_dense_params) / m->conf.emb_dim;
        size_t f = row / m->conf.emb_buckets, r = row % m->conf.emb_buckets;
        for (size_t b = 0; b < TB; b++)
                for (size_t k = 0; k < m->conf.ids_per_field; k++) {
                        uint32_t id = tiny_ids[b * TS + f * 3 + k];
                        if (id != E_ && id % m->conf.emb_buckets == r)
                                return 1;
                }
        return 0;
}

static void check_sgd_step(float clip) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_SGD);
        c.lr = 0.05f;
        c.l2 = 0.1f; /* large: a missing decay or a decayed bias shows */
        c.clip = clip;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        float x[TB * TD];
        tiny_x(x);
        float *p0 = malloc(m->n_params * sizeof(float));
        float *g0 = malloc(m->n_params * sizeof(float));
        tiny_grads(m, x, p0, g0);
        double norm = 0.0;
        for (size_t i = 0; i < m->n_params; i++)
                norm += (double)g0[i] * g0[i];
        norm = sqrt(norm);
        double gscale = clip > 0.0f && norm > clip ? clip / norm : 1.0;
        if (clip > 0.0f)
                cr_assert(gscale < 0.5, "clip %g does not bind (norm %g)",
                          clip, norm);
        float loss;
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, tiny_next, TB,
                                   &loss),
                     ITD_OK);
        size_t untouched = 0;
        for (size_t i = 0; i < m->n_params; i++) {
                double want = p0[i];
                /* embedding rows step at emb_lr, the rest at lr */
                double lr = i >= m->n_dense_params ? c.emb_lr : c.lr;
                if (emb_row_touched(m, i))
                        want -= lr * (gscale * g0[i] +
                                      (is_decayed(m, i) ? c.l2 : 0.0f) *
                                          p0[i]);
                else
                        untouched++;
                cr_expect_float_eq(m->params[i], want, STEP_TOL,
                                   "param %zu: %.8g, want %.8g", i,
                                   m->params[i], want);
        }
        cr_assert(untouched > 0, "test needs an untouched embedding row");
        cr_assert_eq(itd_mlp_steps(m), 1);
        /* embedding gradients (added into) are zero again after the step;
         * the dense ones are overwritten by the next backward */
        for (size_t i = m->n_dense_params; i < m->n_params; i++)
                cr_expect_eq(m->grads[i], 0.0f, "grad %zu left over", i);
        cr_expect_eq(m->n_touched, 0);
        free(p0);
        free(g0);
        itd_mlp_destroy(m);
}

Test(mlp, sgd_step_through_the_network_matches_hand_computed_update) {
        check_sgd_step(0.0f);
}

Test(mlp, clipping_scales_the_gradient_to_the_clip_norm) {
        check_sgd_step(0.05f);
}

Test(mlp, adam_first_step_moves_each_touched_param_by_lr_and_no_other) {
        /* at t = 1, m_hat = g and v_hat = g^2: step lr g / (|g| + eps),
         * with emb_lr for the embedding rows */
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        c.l2 = 0.0f;
        c.clip = 0.0f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        float x[TB * TD];
        tiny_x(x);
        float *p0 = malloc(m->n_params * sizeof(float));
        float *g0 = malloc(m->n_params * sizeof(float));
        tiny_grads(m, x, p0, g0);
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, tiny_next, TB, NULL),
                     ITD_OK);
        for (size_t i = 0; i < m->n_params; i++) {
                double g = g0[i];
                double lr = i >= m->n_dense_params ? c.emb_lr : c.lr;
                double want = p0[i] - lr * g / (fabs(g) + c.eps);
                /* steps of 1e-3 and 0.1: float keeps ~1e-7 of a unit
                 * weight */
                cr_expect_float_eq(m->params[i], want, STEP_TOL,
                                   "param %zu: %.8g, want %.8g", i,
                                   m->params[i], want);
                if (!emb_row_touched(m, i)) {
                        cr_expect_eq(m->params[i], p0[i]);
                        cr_expect_eq(m->moments[i], 0.0f);
                        cr_expect_eq(m->moments[m->n_params + i], 0.0f);
                }
        }
        free(p0);
        free(g0);
        itd_mlp_destroy(m);
}

/*
 * The production step (vectorised norm, Adam fused with the average, no
 * zeroing passes) against the plain loops, on the tiny net with the wide
 * path, standardisation and averaging on:
 * two models from one seed, five steps each; one steps with itd_mlp_train,
 * the other with forward_backward, the reference norm and the reference
 * step. The two drift apart only by FMA rounding.
 */
Test(mlp, the_vectorised_step_agrees_with_the_plain_loop_step) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        c.wide = 1;
        c.norm_inputs = 1;
        c.avg_steps = 3;
        c.clip = 0.85f; /* binds on some steps: gscale goes through both */
        itd_mlp_t *fast = itd_mlp_new(&c, NULL, 0);
        itd_mlp_t *ref = itd_mlp_new(&c, NULL, 0);
        float x[TB * TD];
        tiny_x(x);
        int clipped = 0;
        for (int s = 0; s < 5; s++) {
                x[s] += 0.3f;
                cr_assert_eq(itd_mlp_train(fast, x, tiny_ids, tiny_y,
                                           tiny_next, TB, NULL),
                             ITD_OK);
                itd_mlp_norm_update(ref, x, TB);
                itd_mlp_forward_backward(ref, x, tiny_ids, tiny_y, tiny_next,
                                         NULL, TB, NULL);
                double n_fast = itd_mlp_grad_norm(ref);
                double gnorm = itd_mlp_grad_norm_ref(ref);
                cr_expect_float_eq(n_fast, gnorm, 1e-6 * gnorm,
                                   "norm %.9g vs %.9g", n_fast, gnorm);
                float gscale = gnorm > c.clip ? (float)(c.clip / gnorm) : 1;
                clipped += gscale < 1.0f;
                cr_log_info("step %d: gradient norm %.4f", s, gnorm);
                itd_mlp_apply_step_ref(ref, gscale);
                itd_mlp_zero_grad(ref);
                ref->steps++;
                itd_mlp_avg_update(ref);
        }
        cr_assert(clipped > 0 && clipped < 5, "clip bound on %d of 5 steps",
                  clipped);
        const size_t n = fast->n_params;
        for (size_t i = 0; i < n; i++) {
                cr_expect_float_eq(fast->params[i], ref->params[i],
                                   1e-5 * fabsf(ref->params[i]) + 1e-7,
                                   "param %zu", i);
                cr_expect_float_eq(fast->moments[n + i], ref->moments[n + i],
                                   1e-4 * fabsf(ref->moments[n + i]) + 1e-12,
                                   "v %zu", i);
        }
        for (size_t i = 0; i < fast->n_dense_params; i++)
                cr_expect_float_eq(fast->avg[i], ref->avg[i],
                                   1e-5 * fabsf(ref->avg[i]) + 1e-7,
                                   "avg %zu", i);
        itd_mlp_destroy(fast);
        itd_mlp_destroy(ref);
}

/*
 * An importance weight of 2 is the example twice: one batch with weights
 * {2, 1, 1, 1, 1} and one with the first example duplicated give the same
 * step (up to summation order), both heads and the embeddings included.
 */
Test(mlp, a_weight_of_two_trains_as_the_example_twice) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        itd_mlp_t *w = itd_mlp_new(&c, NULL, 0);
        itd_mlp_t *d = itd_mlp_new(&c, NULL, 0);
        float x[TB * TD], x2[(TB + 1) * TD], y2[TB + 1];
        uint32_t ids2[(TB + 1) * TS];
        int next2[TB + 1];
        tiny_x(x);
        memcpy(x2, x, TD * sizeof(float));
        memcpy(x2 + TD, x, TB * TD * sizeof(float));
        memcpy(ids2, tiny_ids, TS * sizeof(uint32_t));
        memcpy(ids2 + TS, tiny_ids, TB * TS * sizeof(uint32_t));
        y2[0] = tiny_y[0];
        memcpy(y2 + 1, tiny_y, TB * sizeof(float));
        next2[0] = tiny_next[0];
        memcpy(next2 + 1, tiny_next, TB * sizeof(int));
        const float wt[TB] = {2, 1, 1, 1, 1};
        for (int s = 0; s < 3; s++) {
                cr_assert_eq(itd_mlp_train_weighted(w, x, tiny_ids, tiny_y,
                                                    tiny_next, wt, TB, NULL),
                             ITD_OK);
                cr_assert_eq(itd_mlp_train(d, x2, ids2, y2, next2, TB + 1,
                                           NULL),
                             ITD_OK);
        }
        for (size_t i = 0; i < w->n_params; i++)
                cr_expect_float_eq(w->params[i], d->params[i],
                                   1e-5 * fabsf(d->params[i]) + 1e-6,
                                   "param %zu: %g vs %g", i, w->params[i],
                                   d->params[i]);
        /* and weights of 1 are no weights at all, to the bit */
        itd_mlp_t *a = itd_mlp_new(&c, NULL, 0), *b = itd_mlp_new(&c, NULL, 0);
        const float ones[TB] = {1, 1, 1, 1, 1};
        itd_mlp_train_weighted(a, x, tiny_ids, tiny_y, tiny_next, ones, TB,
                               NULL);
        itd_mlp_train(b, x, tiny_ids, tiny_y, tiny_next, TB, NULL);
        cr_expect_eq(memcmp(a->params, b->params,
                            a->n_params * sizeof(float)),
                     0);
        itd_mlp_destroy(w), itd_mlp_destroy(d);
        itd_mlp_destroy(a), itd_mlp_destroy(b);
}

/* ---- determinism and paths --------------------------------------------- */

static void run_steps(itd_mlp_t *m, int n) {
        float x[TB * TD];
        tiny_x(x);
        for (int s = 0; s < n; s++) {
                x[s % (TB * TD)] += 0.1f; /* vary the batches */
                cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, tiny_next,
                                           TB, NULL),
                             ITD_OK);
        }
}

Test(mlp, same_seed_and_inputs_give_identical_outputs) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        itd_mlp_t *a = itd_mlp_new(&c, NULL, 0);
        itd_mlp_t *b = itd_mlp_new(&c, NULL, 0);
        c.seed = 43;
        itd_mlp_t *other = itd_mlp_new(&c, NULL, 0);
        cr_assert_eq(memcmp(a->params, b->params,
                            a->n_params * sizeof(float)), 0);
        cr_assert_neq(memcmp(a->params, other->params,
                             a->n_params * sizeof(float)), 0);
        run_steps(a, 20);
        run_steps(b, 20);
        cr_assert_eq(memcmp(a->params, b->params,
                            a->n_params * sizeof(float)), 0);
        float x[TB * TD], pa[TB], pb[TB], na[TB * ITD_NEXT__COUNT],
            nb[TB * ITD_NEXT__COUNT];
        tiny_x(x);
        itd_mlp_predict(a, x, tiny_ids, TB, pa, na);
        itd_mlp_predict(b, x, tiny_ids, TB, pb, nb);
        cr_assert_eq(memcmp(pa, pb, sizeof(pa)), 0);
        cr_assert_eq(memcmp(na, nb, sizeof(na)), 0);
        itd_mlp_destroy(a);
        itd_mlp_destroy(b);
        itd_mlp_destroy(other);
}

/*
 * sgemv and sgemm sum the same products in different orders; logits differ
 * by a few float ulps of their magnitude (< 1e-5 here), probabilities by
 * at most a quarter of that.
 */
#define PATH_TOL 1e-5

Test(mlp, predict_at_batch_1_equals_predict_at_batch_32_row_for_row) {
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, 20, 3, 2);
        c.max_batch = 16; /* B = 32 also exercises chunking */
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        enum { PB = 32, PD = 20, PS = 6, K = ITD_NEXT__COUNT };
        float x[PB * PD];
        uint32_t ids[PB * PS];
        rng_state = 99;
        for (size_t i = 0; i < PB * PD; i++)
                x[i] = (float)(4.0 * urand() - 1.0);
        for (size_t i = 0; i < PB * PS; i++)
                ids[i] = urand() < 0.3 ? E_ : (uint32_t)(urand() * 1e6);
        float p[PB], next[PB * K];
        itd_mlp_predict(m, x, ids, PB, p, next);
        for (size_t i = 0; i < PB; i++) {
                float p1, n1[K];
                itd_mlp_predict(m, x + i * PD, ids + i * PS, 1, &p1, n1);
                cr_expect_float_eq(p1, p[i], PATH_TOL, "row %zu", i);
                for (size_t k = 0; k < K; k++)
                        cr_expect_float_eq(n1[k], next[i * K + k], PATH_TOL);
        }
        /* the purchase head starts near its base-rate bias, logit(0.05) */
        double mean = 0.0;
        for (size_t i = 0; i < PB; i++)
                mean += p[i] / PB;
        cr_expect(mean > 0.01 && mean < 0.25, "initial mean p %g", mean);
        itd_mlp_destroy(m);
}

Test(mlp, predict_leaves_gradients_and_optimizer_untouched) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        run_steps(m, 3);
        /* leave a gradient pending, as between backward and step */
        float x[TB * TD];
        tiny_x(x);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB,
                                 NULL);
        size_t n = m->n_params * sizeof(float);
        float *params = malloc(n), *grads = malloc(n), *mom = malloc(2 * n);
        memcpy(params, m->params, n);
        memcpy(grads, m->grads, n);
        memcpy(mom, m->moments, 2 * n);
        size_t n_touched = m->n_touched;
        float p[TB], next[TB * ITD_NEXT__COUNT];
        itd_mlp_predict(m, x, tiny_ids, TB, p, next);
        itd_mlp_predict(m, x, tiny_ids, 1, p, NULL);
        cr_assert_eq(memcmp(params, m->params, n), 0);
        cr_assert_eq(memcmp(grads, m->grads, n), 0);
        cr_assert_eq(memcmp(mom, m->moments, 2 * n), 0);
        cr_assert_eq(m->n_touched, n_touched);
        cr_assert_eq(itd_mlp_steps(m), 3);
        free(params), free(grads), free(mom);
        itd_mlp_destroy(m);
}

/* ---- non-finite input -------------------------------------------------- */

Test(mlp, non_finite_input_skips_the_step_and_counts_it) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        run_steps(m, 2);
        size_t n = m->n_params * sizeof(float);
        float *params = malloc(n), *mom = malloc(2 * n);
        memcpy(params, m->params, n);
        memcpy(mom, m->moments, 2 * n);
        float x[TB * TD], y[TB], loss = 0.0f;
        tiny_x(x);
        x[7] = NAN;
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, tiny_next, TB,
                                   &loss),
                     ITD_ERR_NONFINITE);
        cr_assert(isnan(loss));
        tiny_x(x);
        x[3] = INFINITY;
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, NULL, TB, NULL),
                     ITD_ERR_NONFINITE);
        tiny_x(x);
        memcpy(y, tiny_y, sizeof(y));
        y[2] = NAN;
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, y, tiny_next, TB, NULL),
                     ITD_ERR_NONFINITE);
        cr_assert_eq(itd_mlp_skipped(m), 3);
        cr_assert_eq(itd_mlp_steps(m), 2);
        cr_assert_eq(memcmp(params, m->params, n), 0, "params moved");
        cr_assert_eq(memcmp(mom, m->moments, 2 * n), 0, "moments moved");
        /* the embedding gradients (added into) are zero again; a NaN left
         * in a dense one is overwritten by the next backward */
        for (size_t i = m->n_dense_params; i < m->n_params; i++)
                cr_assert_eq(m->grads[i], 0.0f, "grad %zu left over", i);
        /* and the model still learns afterwards */
        cr_assert_eq(itd_mlp_train(m, x, tiny_ids, tiny_y, tiny_next, TB,
                                   &loss),
                     ITD_OK);
        cr_assert(isfinite(loss));
        cr_assert_eq(itd_mlp_steps(m), 3);
        free(params), free(mom);
        itd_mlp_destroy(m);
}

/* ---- configuration ----------------------------------------------------- */

Test(mlp, bad_configuration_is_refused_with_the_field_named) {
        char err[256];
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        c.n_hidden = 0;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "n_hidden") != NULL, "%s", err);
        c = tiny_conf(ITD_OPT_ADAM);
        c.lr = -1.0f;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "lr") != NULL, "%s", err);
        c = tiny_conf(ITD_OPT_ADAM);
        c.beta2 = 1.0f;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "beta2") != NULL, "%s", err);
}

Test(mlp, defaults_count_weights_biases_and_embeddings) {
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, 40, 4, 3);
        cr_assert_eq(c.hidden[0], 128);
        cr_assert_eq(c.hidden[1], 64);
        cr_assert_eq(c.optimizer, ITD_OPT_ADAM);
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        size_t in = 40 + 4 * 8, K = ITD_NEXT__COUNT;
        /* ... + the wide path's 40 weights (on by default) */
        size_t want = in * 128 + 128 + 128 * 64 + 64 + 64 + 1 + 64 * K + K +
                      40 + 4 * 65536 * 8;
        cr_assert_eq(itd_mlp_n_params(m), want);
        cr_assert_eq(itd_mlp_steps(m), 0);
        itd_mlp_destroy(m);
}

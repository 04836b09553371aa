/*
 * test_mlp_learn.c - what the network (model/mlp.c) learns: a synthetic
 * problem, running input statistics and the wide path, offset weights
 * and Newton inputs (gradients, steps against hand values, signals found).
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

/* ---- learnability ------------------------------------------------------ */

static double exact_auc(const float *s, const float *y, size_t n) {
        /* O(n^2) is fine for a thousand rows and obviously right */
        double wins = 0.0, pairs = 0.0;
        for (size_t i = 0; i < n; i++) {
                if (y[i] < 0.5f)
                        continue;
                for (size_t j = 0; j < n; j++) {
                        if (y[j] > 0.5f)
                                continue;
                        pairs += 1.0;
                        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
                }
        }
        return wins / pairs;
}

enum { SN = 5000, STRAIN = 4000, SD = 8, SF = 2, SK = 2, SBATCH = 32 };

/*
 * Label = [2 (x0 - x1) + x2 x3 + effect(id of field 0) + noise > 1]: a
 * non-linear dense part, a per-id effect only the embeddings can learn, and
 * a little noise, so a Bayes-optimal AUC is near but below 1.
 */
static void synth(float *x, uint32_t *ids, float *y) {
        rng_state = 2024;
        float effect[50];
        for (size_t k = 0; k < 50; k++)
                effect[k] = (float)(2.0 * nrand());
        for (size_t i = 0; i < SN; i++) {
                float *xi = x + i * SD;
                for (size_t d = 0; d < SD; d++)
                        xi[d] = (float)nrand();
                uint32_t id = (uint32_t)(urand() * 50);
                uint32_t *ii = ids + i * SF * SK;
                ii[0] = id;
                ii[1] = E_;
                ii[2] = urand() < 0.5 ? (uint32_t)(urand() * 1000) : E_;
                ii[3] = E_;
                double z = 2.0 * (xi[0] - xi[1]) + xi[2] * xi[3] + effect[id] +
                           0.3 * nrand();
                y[i] = z > 1.0 ? 1.0f : 0.0f;
        }
}

Test(mlp, training_learns_a_synthetic_problem) {
        float *x = malloc(SN * SD * sizeof(float));
        uint32_t *ids = malloc(SN * SF * SK * sizeof(uint32_t));
        float *y = malloc(SN * sizeof(float));
        synth(x, ids, y);
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, SD, SF, SK);
        c.emb_buckets = 1024;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        double first = 0.0, last = 0.0;
        const int epochs = 5;
        for (int ep = 0; ep < epochs; ep++) {
                double sum = 0.0;
                size_t n = 0;
                for (size_t i0 = 0; i0 + SBATCH <= STRAIN; i0 += SBATCH) {
                        float loss;
                        cr_assert_eq(itd_mlp_train(m, x + i0 * SD,
                                                   ids + i0 * SF * SK, y + i0,
                                                   NULL, SBATCH, &loss),
                                     ITD_OK);
                        sum += loss;
                        n++;
                }
                if (ep == 0)
                        first = sum / n;
                last = sum / n;
        }
        float *p = malloc((SN - STRAIN) * sizeof(float));
        itd_mlp_predict(m, x + STRAIN * SD, ids + STRAIN * SF * SK,
                        SN - STRAIN, p, NULL);
        double auc = exact_auc(p, y + STRAIN, SN - STRAIN);
        cr_log_info("synthetic: train loss %.4f -> %.4f, held-out AUC %.4f",
                    first, last, auc);
        cr_expect(last < 0.7 * first, "loss %g -> %g", first, last);
        cr_expect(auc > 0.9, "held-out AUC %g", auc);
        free(x), free(ids), free(y), free(p);
        itd_mlp_destroy(m);
}

/* ---- input standardisation and the wide path ---------------------------- */

Test(mlp, running_input_statistics_match_the_sample_mean_and_variance) {
        enum { ND = 3, NROWS = 200, NBS = 8 };
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, ND, 0, 0);
        c.max_batch = NBS;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert_not_null(m);
        /* columns of very different scales: 0.03, 1 and 100 */
        static const double scale[ND] = {0.03, 1.0, 100.0};
        rng_state = 99;
        float x[NROWS * ND], y[NROWS];
        double sum[ND] = {0}, sq[ND] = {0};
        for (size_t i = 0; i < NROWS; i++) {
                for (size_t d = 0; d < ND; d++) {
                        x[i * ND + d] = (float)(scale[d] * (1.0 + nrand()));
                        sum[d] += x[i * ND + d];
                        sq[d] += (double)x[i * ND + d] * x[i * ND + d];
                }
                y[i] = urand() < 0.1;
        }
        for (size_t i = 0; i < NROWS; i += NBS)
                cr_assert_eq(itd_mlp_train(m, x + i * ND, NULL, y + i, NULL,
                                           NBS, NULL),
                             ITD_OK);
        cr_assert_float_eq(m->norm_count, NROWS, 0.0);
        for (size_t d = 0; d < ND; d++) {
                double mean = sum[d] / NROWS;
                double var = sq[d] / NROWS - mean * mean;
                /* Welford in double against the two-pass sums in double:
                 * they differ by rounding only, relative 1e-9 */
                cr_assert_float_eq(m->norm_mean[d], mean,
                                   1e-9 * scale[d], "mean %zu", d);
                cr_assert_float_eq(m->norm_var[d], var,
                                   1e-9 * scale[d] * scale[d], "var %zu", d);
                /* what forward uses: 1 / sd, in float */
                cr_assert_float_eq(m->norm_scale[d], 1.0 / sqrt(var),
                                   1e-5 / sqrt(var), "scale %zu", d);
        }
        itd_mlp_destroy(m);
}

Test(mlp, a_fresh_wide_model_predicts_the_base_rate_whatever_the_input) {
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, 5, 2, 3);
        c.emb_buckets = 7;
        c.max_batch = TB;
        cr_assert_eq(c.wide, 1, "the wide path is on by default");
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        float x[TB * TD], p[TB];
        rng_state = 5;
        for (size_t i = 0; i < TB * TD; i++)
                x[i] = (float)(3.0 * nrand());
        itd_mlp_predict(m, x, tiny_ids, TB, p, NULL);
        /* wide weights and the network's purchase output both start at 0,
         * so only the bias speaks: logit(0.05); float sigmoid, 1e-6 */
        for (size_t b = 0; b < TB; b++)
                cr_assert_float_eq(p[b], 0.05, 1e-6, "row %zu: %g", b,
                                   (double)p[b]);
        itd_mlp_destroy(m);
}

static double sigm(double t) { return 1.0 / (1.0 + exp(-t)); }

Test(mlp, the_wide_path_alone_learns_a_feature_of_tiny_scale) {
        /*
         * The label follows a feature with sd 0.03 (like the purchase rate)
         * among noise columns of sd 1. Standardised, the wide path ranks
         * by it within a few hundred steps; the network is kept silent
         * (lr tiny) so this is the wide path's doing.
         */
        enum { ND = 6, NBS = 32, STEPS = 300, NTEST = 2000 };
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, ND, 0, 0);
        c.max_batch = NBS;
        c.lr = 1e-7f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        rng_state = 17;
        float x[NBS * ND], y[NBS];
        for (int s = 0; s < STEPS; s++) {
                for (size_t i = 0; i < NBS; i++) {
                        for (size_t d = 0; d < ND; d++)
                                x[i * ND + d] = (float)nrand();
                        double r = 0.05 + 0.03 * nrand();
                        x[i * ND] = (float)r;
                        y[i] = urand() < sigm((r - 0.05) / 0.015 - 2.0);
                }
                cr_assert_eq(itd_mlp_train(m, x, NULL, y, NULL, NBS, NULL),
                             ITD_OK);
        }
        float *tx = malloc(NTEST * ND * sizeof(float)), ty[NTEST], p[NTEST];
        for (size_t i = 0; i < NTEST; i++) {
                for (size_t d = 0; d < ND; d++)
                        tx[i * ND + d] = (float)nrand();
                double r = 0.05 + 0.03 * nrand();
                tx[i * ND] = (float)r;
                ty[i] = urand() < sigm((r - 0.05) / 0.015 - 2.0);
        }
        for (size_t i = 0; i < NTEST; i += NBS) {
                size_t n = NTEST - i < NBS ? NTEST - i : NBS;
                itd_mlp_predict(m, tx + i * ND, NULL, n, p + i, NULL);
        }
        double auc = exact_auc(p, ty, NTEST);
        cr_log_info("wide path on a 0.03-scale feature: AUC %.4f", auc);
        /* the Bayes AUC of this label is ~0.87; a model that had not
         * found the feature would sit at 0.5 */
        cr_expect(auc > 0.8, "held-out AUC %g", auc);
        free(tx);
        itd_mlp_destroy(m);
}

/* ---- offsets ----------------------------------------------------------- */

/* tiny_conf with inputs 1 and 3 as offsets, theta moved off its prior */
static itd_mlp_t *tiny_offset_model(void) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_SGD);
        c.n_offsets = 2;
        c.offset_input[0] = 1;
        c.offset_input[1] = 3;
        c.offset_prior = 2.0f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert_not_null(m);
        cr_assert_float_eq(m->theta[0], 0.5, 1e-12, "prior mean 1/K");
        cr_assert_float_eq(m->theta[1], 0.5, 1e-12, "prior mean 1/K");
        m->theta[0] = 0.7;
        m->theta[1] = -0.4;
        return m;
}

/* theta[0..k) (offsets, Newton inputs, intercept): the analytic gradient
 * of one backward pass against central finite differences of the loss,
 * which is smooth in theta (no ReLU in its path); each must move the loss
 * by more than min_effect. */
static void expect_theta_gradients(itd_mlp_t *m, const float *x, size_t k_n,
                                   double min_effect) {
        itd_mlp_zero_grad(m);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB,
                                 NULL);
        for (size_t k = 0; k < k_n; k++) {
                const double eps = 1e-3, saved = m->theta[k];
                m->theta[k] = saved + eps;
                double lp = itd_mlp_loss(m, x, tiny_ids, tiny_y, tiny_next, TB);
                m->theta[k] = saved - eps;
                double lm = itd_mlp_loss(m, x, tiny_ids, tiny_y, tiny_next, TB);
                m->theta[k] = saved;
                double fd = (lp - lm) / (2 * eps);
                cr_log_info("theta[%zu]: analytic %.6f, finite difference "
                            "%.6f", k, m->dtheta[k], fd);
                cr_expect(fabs(fd) > min_effect, "theta[%zu] must matter", k);
                cr_expect_float_eq(m->dtheta[k], fd,
                                   1e-3 * fabs(fd) + 1e-5, "theta[%zu]", k);
        }
}

Test(mlp, offset_weight_gradients_match_finite_differences) {
        itd_mlp_t *m = tiny_offset_model();
        float x[TB * TD];
        tiny_x(x);
        expect_theta_gradients(m, x, 2, 1e-3);
        itd_mlp_destroy(m);
}

Test(mlp, offset_newton_step_matches_hand_computed_values) {
        itd_mlp_t *m = tiny_offset_model();
        float x[TB * TD];
        tiny_x(x);
        itd_mlp_zero_grad(m);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB,
                                 NULL);
        /* by hand: H = prior I + sum p (1 - p) o o^T, g = sum (p - y) o,
         * step = H^-1 g by Cramer's rule */
        double H[4] = {2.0, 0.0, 0.0, 2.0}, g[2] = {0, 0};
        for (size_t i = 0; i < TB; i++) {
                double p = m->p[i], o[2] = {x[i * TD + 1], x[i * TD + 3]};
                for (int a = 0; a < 2; a++) {
                        g[a] += (p - tiny_y[i]) * o[a];
                        for (int b = 0; b < 2; b++)
                                H[a * 2 + b] += p * (1 - p) * o[a] * o[b];
                }
        }
        double det = H[0] * H[3] - H[1] * H[2];
        double s0 = (H[3] * g[0] - H[1] * g[1]) / det;
        double s1 = (H[0] * g[1] - H[2] * g[0]) / det;
        itd_mlp_offset_step(m, x, NULL, TB);
        /* p is float, the rest double */
        cr_expect_float_eq(m->theta[0], 0.7 - s0, 1e-6, "%.9f", m->theta[0]);
        cr_expect_float_eq(m->theta[1], -0.4 - s1, 1e-6, "%.9f",
                           m->theta[1]);
        for (int k = 0; k < 4; k++)
                cr_expect_float_eq(m->offset_h[k], H[k], 1e-6, "H[%d]", k);
        itd_mlp_destroy(m);
}

Test(mlp, offset_weights_find_which_log_odds_input_tells_the_label) {
        /*
         * Two log-odds inputs: the label follows the first exactly (weight
         * 1), the second is noise of the same spread. From the prior's
         * 1/2 each, the Newton steps take theta to about (1, 0) while the
         * rest of the model, silent here, learns nothing. A weak prior
         * (worth some 300 examples), so the data decide.
         */
        enum { ND = 4, NBS = 64, STEPS = 300 };
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, ND, 0, 0);
        c.max_batch = NBS;
        c.lr = 1e-7f;
        c.wide_lr = 1e-7f;
        c.n_offsets = 2;
        c.offset_input[0] = 0;
        c.offset_input[1] = 2;
        c.offset_prior = 10.0f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        rng_state = 99;
        float x[NBS * ND], y[NBS];
        const double bias = log(0.05 / 0.95); /* the model's initial bias */
        for (int s = 0; s < STEPS; s++) {
                for (size_t i = 0; i < NBS; i++) {
                        for (size_t d = 0; d < ND; d++)
                                x[i * ND + d] = (float)(0.8 * nrand());
                        y[i] = urand() < sigm(bias + x[i * ND]);
                }
                cr_assert_eq(itd_mlp_train(m, x, NULL, y, NULL, NBS, NULL),
                             ITD_OK);
        }
        cr_log_info("theta after %d steps: %.3f %.3f", STEPS, m->theta[0],
                    m->theta[1]);
        /* 19,200 examples: the standard error of each is ~0.04 */
        cr_expect_float_eq(m->theta[0], 1.0, 0.15, "%g", m->theta[0]);
        cr_expect_float_eq(m->theta[1], 0.0, 0.15, "%g", m->theta[1]);
        itd_mlp_destroy(m);
}

/* tiny_model with inputs 1 and 3 as offsets, 0 and 2 as Newton inputs
 * (standardised) and their intercept, theta moved off its prior */
static itd_mlp_t *tiny_newton_model(float *x) {
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_SGD);
        c.n_offsets = 2;
        c.offset_input[0] = 1;
        c.offset_input[1] = 3;
        c.offset_prior = 2.0f;
        c.n_linear = 2;
        c.linear_input[0] = 0;
        c.linear_input[1] = 2;
        c.linear_prior = 3.0f;
        c.intercept_prior = 5.0f;
        c.norm_inputs = 1;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert_not_null(m);
        cr_assert_eq(m->n_newton, 5, "2 offsets, 2 inputs, the intercept");
        for (size_t k = 2; k < 5; k++)
                cr_assert_float_eq(m->theta[k], 0.0, 1e-12, "prior mean 0");
        cr_assert_float_eq(m->offset_h[2 * 5 + 2], 3.0, 1e-12);
        cr_assert_float_eq(m->offset_h[4 * 5 + 4], 5.0, 1e-12);
        /* statistics from the batch, so the inputs are read standardised */
        tiny_x(x);
        itd_mlp_norm_update(m, x, TB);
        const double th[5] = {0.7, -0.4, 0.3, -0.6, 0.2};
        memcpy(m->theta, th, sizeof th);
        return m;
}

Test(mlp, newton_input_gradients_match_finite_differences) {
        float x[TB * TD];
        itd_mlp_t *m = tiny_newton_model(x);
        expect_theta_gradients(m, x, 5, 1e-4);
        itd_mlp_destroy(m);
}

Test(mlp, newton_step_over_offsets_inputs_and_intercept_solves_its_system) {
        float x[TB * TD];
        itd_mlp_t *m = tiny_newton_model(x);
        enum { K = 5 };
        double th0[K], H0[K * K];
        memcpy(th0, m->theta, sizeof th0);
        memcpy(H0, m->offset_h, sizeof H0);
        itd_mlp_zero_grad(m);
        itd_mlp_forward_backward(m, x, tiny_ids, tiny_y, tiny_next, NULL, TB, NULL);
        /* by hand: o = (x1, x3, z0, z2, 1), z standardised as forward read
         * it; H = H0 + sum p (1 - p) o o^T, g = sum (p - y) o */
        double H[K * K], g[K] = {0};
        memcpy(H, H0, sizeof H);
        for (size_t i = 0; i < TB; i++) {
                double p = m->p[i];
                double o[K] = {x[i * TD + 1], x[i * TD + 3], m->xn[i * TD],
                               m->xn[i * TD + 2], 1.0};
                for (int a = 0; a < K; a++) {
                        g[a] += (p - tiny_y[i]) * o[a];
                        for (int b = 0; b < K; b++)
                                H[a * K + b] += p * (1 - p) * o[a] * o[b];
                }
        }
        itd_mlp_offset_step(m, x, NULL, TB);
        for (int k = 0; k < K * K; k++)
                cr_expect_float_eq(m->offset_h[k], H[k], 1e-6, "H[%d]", k);
        /* the step solves H (th0 - theta) = g */
        for (int a = 0; a < K; a++) {
                double r = -g[a];
                for (int b = 0; b < K; b++)
                        r += H[a * K + b] * (th0[b] - m->theta[b]);
                cr_expect(fabs(r) < 1e-6, "row %d: residual %g", a, r);
        }
        itd_mlp_destroy(m);
}

Test(mlp, newton_inputs_learn_a_linear_signal_in_a_few_thousand_examples) {
        /*
         * The label follows input 1 (weight 1 per standard deviation) at a
         * 5% base rate; the network is frozen (tiny rates). The Newton
         * weight of input 1 reaches about 1 within 64 steps (4,096
         * examples) against a prior worth ~40 examples; the noise inputs
         * stay near 0. The wide path is on and learns input 3 only: the
         * Newton inputs are left to the Newton step.
         */
        enum { ND = 4, NBS = 64, STEPS = 64 };
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, ND, 0, 0);
        c.max_batch = NBS;
        c.lr = 1e-7f;
        c.wide_lr = 0.05f;
        c.n_linear = 3;
        c.linear_input[0] = 0;
        c.linear_input[1] = 1;
        c.linear_input[2] = 2;
        c.linear_prior = 3.0f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert_not_null(m);
        rng_state = 7;
        float x[NBS * ND], y[NBS];
        const double bias = log(0.05 / 0.95);
        for (int s = 0; s < STEPS; s++) {
                for (size_t i = 0; i < NBS; i++) {
                        for (size_t d = 0; d < ND; d++)
                                x[i * ND + d] = (float)(2.0 + 0.5 * nrand());
                        y[i] = urand() <
                               sigm(bias + (x[i * ND + 1] - 2.0) / 0.5);
                }
                cr_assert_eq(itd_mlp_train(m, x, NULL, y, NULL, NBS, NULL),
                             ITD_OK);
        }
        cr_log_info("Newton weights after %d steps: %.3f %.3f %.3f, "
                    "intercept %.3f", STEPS, m->theta[0], m->theta[1],
                    m->theta[2], m->theta[3]);
        cr_expect_float_eq(m->theta[1], 1.0, 0.25, "%g", m->theta[1]);
        cr_expect(fabs(m->theta[0]) < 0.25, "%g", m->theta[0]);
        cr_expect(fabs(m->theta[2]) < 0.25, "%g", m->theta[2]);
        for (size_t d = 0; d < 3; d++)
                cr_expect(m->ww[d] == 0.0f, "ww[%zu] %g", d, m->ww[d]);
        cr_expect(m->ww[3] != 0.0f, "the wide path learns input 3");
        itd_mlp_destroy(m);
}

Test(mlp, offsets_out_of_range_are_refused_with_the_field_named) {
        char err[256];
        itd_mlp_conf_t c = tiny_conf(ITD_OPT_ADAM);
        c.n_offsets = 1;
        c.offset_input[0] = TD;
        c.offset_prior = 1.0f;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "offset_input[0]") != NULL, "%s", err);
        c.offset_input[0] = 0;
        c.offset_prior = 0.0f;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "offset_prior") != NULL, "%s", err);
        c.offset_prior = 1.0f;
        c.n_linear = 1;
        c.linear_input[0] = TD;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "linear_input[0]") != NULL, "%s", err);
        c.linear_input[0] = 0;
        c.intercept_prior = -1.0f;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "intercept_prior") != NULL, "%s", err);
        c.offset_prior = 1.0f;
        c.n_offsets = ITD_MLP_MAX_OFFSETS + 1;
        cr_assert_null(itd_mlp_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "n_offsets") != NULL, "%s", err);
}

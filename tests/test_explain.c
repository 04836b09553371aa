/*
 * test_explain.c - each prediction's explanation (predict.explain): the
 * input-times-gradient contributions of itd_mlp_predict_explain agree with
 * finite differences of the purchase logit through every path (trunk with
 * embeddings, wide path over standardised inputs, an offset, averaged
 * parameters), scoring is unchanged by explaining, and the engine names
 * the largest contributions in each prediction, or none when off.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/mlp.h"
#include "intentd/state.h"

enum { D = 6, F = 2, S = 2, B = 4 };

static uint64_t rs = 0x2545F4914F6CDD1DULL;
static double urand(void) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}

static double logit_of(float p) { return log((double)p / (1.0 - p)); }

Test(explain, input_times_gradient_matches_finite_differences) {
        itd_mlp_conf_t c;
        itd_mlp_conf_defaults(&c, D, F, S);
        c.emb_buckets = 11;
        c.emb_dim = 3;
        c.hidden[0] = 16;
        c.hidden[1] = 8;
        c.max_batch = 32;
        c.wide = 1;
        c.wide_lr = 0.05f;
        c.norm_inputs = 1;
        c.n_offsets = 1;
        c.offset_input[0] = D - 1;
        c.avg_steps = 10;
        c.lr = 0.01f;
        itd_mlp_t *m = itd_mlp_new(&c, NULL, 0);
        cr_assert(m);
        /* Some training, so weights, statistics, averages and the offset
         * weight are all away from their start. */
        static float x[32 * D], y[32];
        static uint32_t ids[32 * F * S];
        for (int step = 0; step < 60; step++) {
                for (int i = 0; i < 32; i++) {
                        for (int d = 0; d < D; d++)
                                x[i * D + d] = (float)(2 * urand() - 1);
                        y[i] = urand() < 0.3 + 0.3 * x[i * D] ? 1.0f : 0.0f;
                        for (int k = 0; k < F * S; k++)
                                ids[i * F * S + k] = (uint32_t)(urand() * 20);
                }
                float loss;
                itd_mlp_train(m, x, ids, y, NULL, 32, &loss);
        }

        float p[B], p2[B], contrib[B * D];
        itd_mlp_predict_explain(m, x, ids, B, p, NULL, contrib);
        itd_mlp_predict(m, x, ids, B, p2, NULL);
        cr_expect(memcmp(p, p2, sizeof p) == 0,
                  "explaining changed the scores");

        /* Central differences in double over float scores: h 1e-3 keeps
         * clear of ReLU kinks for these random inputs, and the float
         * rounding of a logit (~1e-7 relative) divided by 2h stays under
         * 1e-3; the tolerance adds 2% of the value. */
        const float h = 1e-3f;
        for (int i = 0; i < B; i++)
                for (int d = 0; d < D; d++) {
                        float xp[B * D], xm[B * D], pp[B], pm[B];
                        memcpy(xp, x, sizeof xp);
                        memcpy(xm, x, sizeof xm);
                        xp[i * D + d] += h;
                        xm[i * D + d] -= h;
                        itd_mlp_predict(m, xp, ids, B, pp, NULL);
                        itd_mlp_predict(m, xm, ids, B, pm, NULL);
                        double fd = (logit_of(pp[i]) - logit_of(pm[i])) /
                                    (2.0 * h);
                        double want = (double)x[i * D + d] * fd;
                        double got = contrib[i * D + d];
                        cr_expect(fabs(got - want) <= 2e-3 + 0.02 * fabs(want),
                                  "row %d input %d: %g, finite differences "
                                  "%g",
                                  i, d, got, want);
                }
        itd_mlp_destroy(m);
}

static itd_prediction_t score_one(const char *explain) {
        char err[256];
        itd_conf_t *conf = itd_conf_new();
        cr_assert_eq(itd_conf_set(conf, "predict.explain", explain, err,
                                  sizeof err), ITD_OK, "%s", err);
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert(eng, "%s", err);
        itd_prediction_t out;
        for (int i = 0; i < 3; i++) {
                itd_row_t in = {0};
                strcpy(in.ev.user_id, "u1");
                itd_row_decoded(&in, 0, i);
                strcpy(in.ev.category, "c1");
                in.ev.ts_ms = 1700000000000LL + i * 60000;
                in.ev.type = i == 1 ? ITD_EV_ADD_TO_CART : ITD_EV_VIEW;
                in.ev.price = 9.5;
                cr_assert_eq(itd_engine_process(eng, "t", &in, 1,
                                                in.ev.ts_ms, NULL, 0),
                             ITD_OK);
                out = in.pred;
        }
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return out;
}

Test(explain, the_engine_names_the_largest_contributions) {
        /* An untrained model's purchase head and wide weights start at 0,
         * so only the offsets' inputs contribute yet: at least one name,
         * at most three, largest magnitude first, each a dense feature. */
        itd_prediction_t pr = score_one("3");
        cr_assert(pr.n_explanation >= 1 && pr.n_explanation <= 3, "%zu",
                  pr.n_explanation);
        itd_conf_t *conf = itd_conf_new();
        itd_state_conf_t sc = {.n_windows = conf->n_windows};
        for (size_t w = 0; w < conf->n_windows; w++)
                sc.window_ms[w] = conf->windows_ms[w];
        for (size_t k = 0; k < pr.n_explanation; k++) {
                int known = 0;
                char buf[64];
                for (size_t d = 0; d < itd_features_dim(&sc) && !known; d++)
                        known = !strcmp(itd_features_name(&sc, d, buf,
                                                          sizeof buf),
                                        pr.explanation_feature[k]);
                cr_expect(known, "%s is no dense feature",
                          pr.explanation_feature[k]);
                cr_expect(isfinite(pr.explanation_contribution[k]) &&
                          pr.explanation_contribution[k] != 0);
                if (k)
                        cr_expect_geq(fabsf(pr.explanation_contribution[k - 1]),
                                      fabsf(pr.explanation_contribution[k]));
        }
        itd_conf_destroy(conf);
        itd_prediction_t off = score_one("0");
        cr_expect_eq(off.n_explanation, 0);
        cr_expect(off.purchase_probability == pr.purchase_probability,
                  "explaining changed the score");
}

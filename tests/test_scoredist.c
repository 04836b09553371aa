/*
 * test_scoredist.c - the live score distribution behind relative trigger
 * thresholds (intentd/scoredist.h): quantiles against the exact
 * ones of a sample, exponential forgetting, the mean, determinism across
 * save and load, refusal of damaged words.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/scoredist.h"

/* A deterministic stream (xorshift) of scores that look like purchase
 * intent: logit-normal around 2%. */
static uint64_t rng = 88172645463325252ULL;
static double uniform(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float intent_score(double mean_logit) {
        double u1 = uniform(), u2 = uniform();
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        return (float)(1.0 / (1.0 + exp(-(mean_logit + 0.8 * z))));
}

static int fcmp(const void *a, const void *b) {
        float x = *(const float *)a, y = *(const float *)b;
        return (x > y) - (x < y);
}

/* Bins are 1/64 of a logit unit; interpolation within one keeps the
 * quantile's logit within a bin width of the exact one, and at the 99th
 * percentile of 20000 samples sampling adds little. */
#define LOGIT_TOL (1.0 / 64.0)

static double logit(double p) { return log(p / (1 - p)); }

Test(scoredist, quantiles_match_the_exact_ones_of_a_sample) {
        enum { N = 20000 };
        /* A half-life far beyond N: practically no forgetting. */
        itd_scoredist_t *d = itd_scoredist_new(UINT64_C(1) << 40);
        static float s[N];
        for (int i = 0; i < N; i++) {
                s[i] = intent_score(-3.9);
                itd_scoredist_add(d, s[i]);
        }
        qsort(s, N, sizeof *s, fcmp);
        const double fracs[] = {0.001, 0.01, 0.05, 0.2, 0.5, 0.9};
        for (size_t k = 0; k < sizeof fracs / sizeof fracs[0]; k++) {
                float exact = s[(int)((1 - fracs[k]) * N)];
                float got = itd_scoredist_top(d, fracs[k]);
                cr_expect(fabs(logit(got) - logit(exact)) <= LOGIT_TOL,
                          "top %g: %g, exact %g", fracs[k], (double)got,
                          (double)exact);
        }
        double sum = 0;
        for (int i = 0; i < N; i++)
                sum += s[i];
        cr_expect_float_eq(itd_scoredist_mean(d), sum / N, 1e-6);
        cr_expect_eq(itd_scoredist_count(d), N);
        itd_scoredist_destroy(d);
}

Test(scoredist, recent_scores_outweigh_old_ones_by_the_half_life) {
        itd_scoredist_t *d = itd_scoredist_new(1000);
        /* 20000 scores at 1%, then 10000 at 10%: ten half-lives later the
         * old ones weigh 2^-10 of the new, so the median is the new one. */
        for (int i = 0; i < 20000; i++)
                itd_scoredist_add(d, 0.01f);
        cr_expect_float_eq(itd_scoredist_mean(d), 0.01, 1e-7);
        for (int i = 0; i < 10000; i++)
                itd_scoredist_add(d, 0.10f);
        float med = itd_scoredist_top(d, 0.5);
        cr_expect(fabs(logit(med) - logit(0.10)) <= LOGIT_TOL, "median %g",
                  (double)med);
        /* Exactly one half-life after a switch, the old scores hold half
         * the weight (up to what fell out of the first run): the mean is
         * halfway. */
        itd_scoredist_t *e = itd_scoredist_new(1000);
        for (int i = 0; i < 100000; i++)
                itd_scoredist_add(e, 0.0f);
        for (int i = 0; i < 1000; i++)
                itd_scoredist_add(e, 1.0f);
        cr_expect_float_eq(itd_scoredist_mean(e), 0.5, 1e-3);
        itd_scoredist_destroy(e);
        itd_scoredist_destroy(d);
}

Test(scoredist, empty_or_bad_input_says_nan) {
        cr_expect_null(itd_scoredist_new(0));
        itd_scoredist_t *d = itd_scoredist_new(100);
        cr_expect(isnan(itd_scoredist_top(d, 0.01)));
        cr_expect(isnan(itd_scoredist_mean(d)));
        itd_scoredist_add(d, NAN);
        itd_scoredist_add(d, INFINITY);
        cr_expect_eq(itd_scoredist_count(d), 0);
        itd_scoredist_add(d, 0.3f);
        cr_expect(isnan(itd_scoredist_top(d, 0)));
        cr_expect(isnan(itd_scoredist_top(d, 1.5)));
        /* One score: every quantile is within its bin. */
        cr_expect(fabs(logit(itd_scoredist_top(d, 0.01)) - logit(0.3)) <=
                  LOGIT_TOL);
        /* Scores at the ends of [0, 1] clamp into the end bins. */
        itd_scoredist_add(d, 0.0f);
        itd_scoredist_add(d, 1.0f);
        float top = itd_scoredist_top(d, 0.01);
        cr_expect(top > 0.99f && top <= 1.0f, "%g", (double)top);
        itd_scoredist_destroy(d);
}

Test(scoredist, save_and_load_continue_bit_identically) {
        /* Enough scores to pass several rescalings (the weight grows by
         * 2^(1/10) a score and is rescaled past 1e150). */
        itd_scoredist_t *a = itd_scoredist_new(10);
        for (int i = 0; i < 20000; i++)
                itd_scoredist_add(a, intent_score(-3.0));
        static uint64_t words[ITD_SCOREDIST_WORDS];
        itd_scoredist_save(a, words);
        itd_scoredist_t *b = itd_scoredist_new(10);
        cr_assert_eq(itd_scoredist_load(b, words), 0);
        for (int i = 0; i < 5000; i++) {
                float s = intent_score(-2.0);
                itd_scoredist_add(a, s);
                itd_scoredist_add(b, s);
                float qa = itd_scoredist_top(a, 0.01);
                float qb = itd_scoredist_top(b, 0.01);
                cr_assert(memcmp(&qa, &qb, sizeof qa) == 0,
                          "score %d: %a and %a", i, (double)qa, (double)qb);
        }
        cr_expect_eq(itd_scoredist_count(a), itd_scoredist_count(b));

        /* Damaged words are refused and change nothing. */
        itd_scoredist_save(a, words);
        words[0] = 7; /* another bin count */
        cr_expect_eq(itd_scoredist_load(b, words), -1);
        itd_scoredist_save(a, words);
        double neg = -1;
        memcpy(&words[6 + 100], &neg, sizeof neg);
        cr_expect_eq(itd_scoredist_load(b, words), -1);
        cr_expect_eq(itd_scoredist_count(b), itd_scoredist_count(a));
        itd_scoredist_destroy(a);
        itd_scoredist_destroy(b);
}

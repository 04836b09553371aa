/*
 * test_eval.c - model/eval.c: exact AUC with ties, the user-resampled
 * interval (separable data gives [1, 1]; resampling draws whole groups),
 * the robust span (outlier timestamps do not stretch it), top-fraction
 * lift with ties, and equal-mass calibration (ties share a bin).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "intentd/eval.h"

/* Exact arithmetic on small counts: only rounding of a few divisions. */
#define EPS 1e-12

/* xorshift: reproducible data without rand()'s global state */
static double uniform(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return (double)(*s >> 11) / 9007199254740992.0;
}

Test(eval, auc_counts_ties_as_half_a_win) {
        /* pos {0.4, 0.8}, neg {0.1, 0.4}: 0.4>0.1, 0.4=0.4 (1/2), 0.8>both */
        float s[] = {0.1f, 0.4f, 0.4f, 0.8f};
        uint8_t y[] = {0, 1, 0, 1};
        cr_assert_float_eq(itd_eval_auc(s, y, 4), 3.5 / 4.0, EPS);
        float flat[] = {0.3f, 0.3f, 0.3f, 0.3f};
        cr_assert_float_eq(itd_eval_auc(flat, y, 4), 0.5, EPS);
        float rev[] = {0.9f, 0.1f, 0.8f, 0.2f};
        cr_assert_float_eq(itd_eval_auc(rev, y, 4), 0.0, EPS);
        uint8_t one_class[] = {1, 1, 1, 1};
        cr_assert(isnan(itd_eval_auc(s, one_class, 4)));
}

Test(eval, order_is_stable_among_equal_scores) {
        float s[] = {0.5f, 0.2f, 0.5f, 0.2f, 0.9f};
        uint32_t order[5];
        itd_eval_order(s, 5, order);
        uint32_t want[] = {1, 3, 0, 2, 4};
        for (int i = 0; i < 5; i++)
                cr_expect_eq(order[i], want[i], "rank %d", i);
}

Test(eval, separable_examples_give_the_interval_one_one) {
        enum { N = 400 };
        float s[N];
        uint8_t y[N];
        uint32_t g[N];
        for (int i = 0; i < N; i++) {
                y[i] = i % 5 == 0;
                s[i] = y[i] ? 0.9f : 0.1f;
                g[i] = (uint32_t)(i % 40);
        }
        const float *sc[] = {s};
        itd_eval_interval_t ci, d;
        itd_eval_auc_boot(sc, 1, y, g, N, 40, 500, 7, 0.95, &ci, &d);
        cr_assert_eq(ci.lo, 1.0);
        cr_assert_eq(ci.hi, 1.0);
        cr_assert_eq(ci.resamples, 500);
        cr_assert_eq(d.lo, 0.0); /* a scorer against itself */
        cr_assert_eq(d.hi, 0.0);
}

/* One group: every resample draws it, so every resample is the data
 * itself and the interval has no width. The same examples as their own
 * groups give a wide one. */
Test(eval, resampling_draws_whole_groups) {
        enum { N = 300 };
        float s[N];
        uint8_t y[N];
        uint32_t one[N], own[N];
        uint64_t rng = 11;
        for (int i = 0; i < N; i++) {
                y[i] = uniform(&rng) < 0.3;
                s[i] = (float)(0.3 * y[i] + uniform(&rng));
                one[i] = 12345; /* ids need not be dense */
                own[i] = (uint32_t)i;
        }
        double exact = itd_eval_auc(s, y, N);
        const float *sc[] = {s};
        itd_eval_interval_t ci;
        itd_eval_auc_boot(sc, 1, y, one, N, 12346, 200, 3, 0.95, &ci, NULL);
        cr_assert_float_eq(ci.lo, exact, EPS);
        cr_assert_float_eq(ci.hi, exact, EPS);
        itd_eval_auc_boot(sc, 1, y, own, N, N, 200, 3, 0.95, &ci, NULL);
        cr_assert_lt(ci.lo, exact - 0.02);
        cr_assert_gt(ci.hi, exact + 0.02);
}

Test(eval, resamples_without_both_classes_are_skipped) {
        /* two users, one all positive, one all negative: half the
         * resamples draw the same user twice and cannot be judged */
        float s[] = {0.9f, 0.8f, 0.2f, 0.1f};
        uint8_t y[] = {1, 1, 0, 0};
        uint32_t g[] = {0, 0, 1, 1};
        const float *sc[] = {s};
        itd_eval_interval_t ci;
        itd_eval_auc_boot(sc, 1, y, g, 4, 2, 1000, 5, 0.95, &ci, NULL);
        cr_assert_gt(ci.resamples, 400);
        cr_assert_lt(ci.resamples, 600);
        cr_assert_eq(ci.lo, 1.0);
}

Test(eval, the_interval_is_deterministic_given_the_seed) {
        enum { N = 500 };
        float a[N], b[N];
        uint8_t y[N];
        uint32_t g[N];
        uint64_t rng = 99;
        for (int i = 0; i < N; i++) {
                y[i] = uniform(&rng) < 0.2;
                a[i] = (float)(0.2 * y[i] + uniform(&rng));
                b[i] = (float)(0.1 * y[i] + uniform(&rng));
                g[i] = (uint32_t)(i / 10);
        }
        const float *sc[] = {a, b};
        itd_eval_interval_t c1[2], c2[2], d1[2], d2[2];
        itd_eval_auc_boot(sc, 2, y, g, N, N / 10, 300, 42, 0.95, c1, d1);
        itd_eval_auc_boot(sc, 2, y, g, N, N / 10, 300, 42, 0.95, c2, d2);
        for (int j = 0; j < 2; j++) {
                cr_assert_eq(c1[j].lo, c2[j].lo);
                cr_assert_eq(c1[j].hi, c2[j].hi);
                cr_assert_eq(d1[j].lo, d2[j].lo);
        }
        /* the paired difference holds the point difference */
        double diff = itd_eval_auc(b, y, N) - itd_eval_auc(a, y, N);
        cr_assert_lt(d1[1].lo, diff);
        cr_assert_gt(d1[1].hi, diff);
        itd_eval_auc_boot(sc, 2, y, g, N, N / 10, 300, 43, 0.95, c2, d2);
        cr_assert_neq(c1[0].lo, c2[0].lo, "another seed, other resamples");
}

Test(eval, outlier_timestamps_do_not_stretch_the_span) {
        enum { N = 2000 };
        int64_t ts[N];
        for (int i = 0; i < N; i++)
                ts[i] = 1000000 + (int64_t)i * 1000;
        /* one event dated two months early, one a year late */
        ts[17] = 1000000 - 60LL * 86400000;
        ts[1500] = 1000000 + 365LL * 86400000;
        int64_t lo, hi;
        itd_eval_span(ts, N, 0.001, &lo, &hi);
        cr_assert_geq(lo, 1000000);
        cr_assert_leq(lo, 1000000 + 2 * 1000);
        cr_assert_geq(hi, 1000000 + (N - 4) * 1000LL);
        cr_assert_leq(hi, 1000000 + (N - 1) * 1000LL);
        /* without the quantiles the outliers would be the span */
        itd_eval_span(ts, N, 0.0, &lo, &hi);
        cr_assert_eq(lo, ts[17]);
        cr_assert_eq(hi, ts[1500]);
}

Test(eval, lift_takes_ties_at_the_cut_in_proportion) {
        enum { N = 100 };
        float s[N];
        uint8_t y[N] = {0};
        /* the 5 positives score highest: top 10 holds all of them */
        for (int i = 0; i < N; i++)
                s[i] = (float)i / N;
        for (int i = 95; i < N; i++)
                y[i] = 1;
        cr_assert_float_eq(itd_eval_lift(s, y, N, 0.1), 0.5 / 0.05, EPS);
        /* a constant score: lift 1 whatever the labels */
        for (int i = 0; i < N; i++)
                s[i] = 0.5f;
        cr_assert_float_eq(itd_eval_lift(s, y, N, 0.1), 1.0, EPS);
        /* 4 on top (2 positive), then 12 tied (3 positive): the top 10
         * take the 4 and half... 6/12 of the tie: 2 + 3 * 0.5 = 3.5 */
        for (int i = 0; i < N; i++)
                s[i] = 0.1f, y[i] = 0;
        for (int i = 0; i < 4; i++)
                s[i] = 0.9f, y[i] = i < 2;
        for (int i = 4; i < 16; i++)
                s[i] = 0.5f, y[i] = i < 7;
        double base = 5.0 / N;
        cr_assert_float_eq(itd_eval_lift(s, y, N, 0.1), (3.5 / 10) / base,
                           EPS);
}

Test(eval, calibration_bins_hold_equal_mass_and_keep_ties_together) {
        enum { N = 1000 };
        float s[N];
        uint8_t y[N];
        uint64_t rng = 5;
        for (int i = 0; i < N; i++) {
                s[i] = (float)uniform(&rng);
                y[i] = uniform(&rng) < s[i];
        }
        itd_eval_bin_t bins[10];
        double ece;
        cr_assert_eq(itd_eval_calibration(s, y, N, 10, bins, &ece), 10);
        double err = 0;
        for (int b = 0; b < 10; b++) {
                cr_expect_eq(bins[b].n, 100, "bin %d", b);
                err += fabs(bins[b].mean_score - bins[b].rate) * 100;
                if (b)
                        cr_expect_geq(bins[b].lo, bins[b - 1].hi);
        }
        cr_assert_float_eq(ece, err / N, 1e-9);
        /* a constant score is one bin: ECE = |score - base rate| */
        for (int i = 0; i < N; i++)
                s[i] = 0.2f, y[i] = i % 10 == 0;
        cr_assert_eq(itd_eval_calibration(s, y, N, 10, bins, &ece), 1);
        cr_assert_float_eq(ece, 0.2 - 0.1, 1e-6);
        /* 550 tied at the bottom fill the first bin past five shares;
         * the next closes at the edge at 600, the rest hold 100 each */
        for (int i = 0; i < N; i++)
                s[i] = i < 550 ? 0.05f : (float)i / N, y[i] = 0;
        size_t nb = itd_eval_calibration(s, y, N, 10, bins, &ece);
        cr_assert_eq(nb, 6);
        cr_assert_eq(bins[0].n, 550);
        cr_assert_eq(bins[1].n, 50);
        for (int b = 2; b < 6; b++)
                cr_expect_eq(bins[b].n, 100, "bin %d", b);
}

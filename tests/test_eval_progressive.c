/*
 * test_eval_progressive.c - progressive-validation accumulators
 * (model/eval_progressive.c):
 * the histogram AUC against an exact rank AUC within its stated bound, and
 * log loss, F1, ECE and the next-action metrics on hand-computed cases;
 * merging, and the sliding window against a fresh accumulator fed the
 * same last examples; snapshots round trip exactly and refuse damage.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "intentd/crc32c.h"
#include "intentd/eval_progressive.h"
#include "intentd/frame.h"

/* sums of a handful of doubles: exact to ~1e-15 */
#define HAND_TOL 1e-9

static uint64_t rng_state = 4242;

static double urand(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double)((rng_state * 2685821657736338717ull) >> 11) *
               0x1.0p-53;
}

struct scored {
        float s;
        int y;
};

static int by_score(const void *a, const void *b) {
        float sa = ((const struct scored *)a)->s;
        float sb = ((const struct scored *)b)->s;
        return (sa > sb) - (sa < sb);
}

/* Mann-Whitney: AUC from the rank sum of the positives, ties at mean rank */
static double exact_auc(struct scored *v, size_t n) {
        qsort(v, n, sizeof(*v), by_score);
        double rank_sum = 0.0, P = 0.0;
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j < n && v[j].s == v[i].s)
                        j++;
                double mean_rank = (double)(i + 1 + j) / 2.0; /* 1-based */
                for (size_t k = i; k < j; k++)
                        if (v[k].y) {
                                rank_sum += mean_rank;
                                P += 1.0;
                        }
                i = j;
        }
        double N = (double)n - P;
        return (rank_sum - P * (P + 1.0) / 2.0) / (P * N);
}

static void check_against_exact(size_t n, int quantize) {
        struct scored *v = malloc(n * sizeof(*v));
        itd_eval_t *eval = itd_eval_new(0.5f);
        for (size_t i = 0; i < n; i++) {
                int y = urand() < 0.1;
                /* overlapping classes: positives skew high */
                double s = y ? pow(urand(), 0.5) : pow(urand(), 2.0);
                if (quantize) /* many exact ties, and ties across bins */
                        s = floor(s * 50.0) / 50.0;
                v[i].s = (float)s;
                v[i].y = y;
                itd_eval_add(eval, v[i].s, y, NULL, ITD_NEXT_VIEW);
        }
        itd_eval_summary_t sum;
        itd_eval_summary(eval, &sum);
        double exact = exact_auc(v, n);
        cr_log_info("n %zu quantize %d: histogram AUC %.6f exact %.6f "
                    "bound %.2g",
                    n, quantize, sum.auc, exact, sum.auc_err_bound);
        /* 1e-12: the two sums are accumulated in different orders */
        cr_expect(fabs(sum.auc - exact) <= sum.auc_err_bound + 1e-12,
                  "auc %.9f exact %.9f bound %.3g", sum.auc, exact,
                  sum.auc_err_bound);
        if (!quantize)
                cr_expect(sum.auc_err_bound < 1e-3, "bound %g",
                          sum.auc_err_bound);
        free(v);
        itd_eval_destroy(eval);
}

Test(eval_progressive, histogram_auc_is_within_its_bound_of_the_exact_auc) {
        check_against_exact(20000, 0);
        check_against_exact(5000, 1);
        check_against_exact(300, 0);
}

Test(eval_progressive, perfect_and_reversed_rankings_give_one_and_zero) {
        itd_eval_t *good = itd_eval_new(0.5f), *bad = itd_eval_new(0.5f);
        for (int i = 0; i < 100; i++) {
                float lo = 0.01f * (float)(i % 40), hi = 0.6f + 0.003f * i;
                itd_eval_add(good, hi, 1, NULL, ITD_NEXT_VIEW);
                itd_eval_add(good, lo, 0, NULL, ITD_NEXT_VIEW);
                itd_eval_add(bad, hi, 0, NULL, ITD_NEXT_VIEW);
                itd_eval_add(bad, lo, 1, NULL, ITD_NEXT_VIEW);
        }
        itd_eval_summary_t g, b;
        itd_eval_summary(good, &g);
        itd_eval_summary(bad, &b);
        cr_assert_float_eq(g.auc, 1.0, HAND_TOL);
        cr_assert_float_eq(b.auc, 0.0, HAND_TOL);
        cr_assert_float_eq(g.auc_err_bound, 0.0, HAND_TOL);
        cr_assert_float_eq(g.f1, 1.0, HAND_TOL);
        cr_assert_float_eq(b.f1, 0.0, HAND_TOL);
        itd_eval_destroy(good);
        itd_eval_destroy(bad);
}

Test(eval_progressive, auc_is_nan_until_both_classes_are_seen) {
        itd_eval_t *eval = itd_eval_new(0.5f);
        itd_eval_summary_t s;
        itd_eval_summary(eval, &s);
        cr_assert_eq(s.n, 0);
        cr_assert(isnan(s.auc) && isnan(s.logloss) && isnan(s.base_rate));
        itd_eval_add(eval, 0.2f, 0, NULL, ITD_NEXT_VIEW);
        itd_eval_add(eval, 0.7f, 0, NULL, ITD_NEXT_VIEW);
        itd_eval_summary(eval, &s);
        cr_assert(isnan(s.auc));
        cr_assert_float_eq(s.base_rate, 0.0, HAND_TOL);
        itd_eval_add(eval, 0.9f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_summary(eval, &s);
        cr_assert_float_eq(s.auc, 1.0, HAND_TOL);
        itd_eval_reset(eval);
        itd_eval_summary(eval, &s);
        cr_assert_eq(s.n, 0);
        cr_assert(isnan(s.auc));
        itd_eval_destroy(eval);
}

Test(eval_progressive, logloss_f1_and_ece_match_hand_computed_values) {
        /*
         *  score label  threshold 0.5   ECE bin  |score - label|
         *  0.8   1      TP              8        0.2
         *  0.3   0      TN              3        0.3
         *  0.6   0      FP              6        0.6
         *  0.0   1      FN (clamped)    0        1.0
         * log loss = -(ln .8 + ln .7 + ln .4 + ln 1e-7) / 4
         * accuracy = precision = recall = F1 = 0.5; ECE = 2.1 / 4
         */
        itd_eval_t *eval = itd_eval_new(0.5f);
        float s[4] = {0.8f, 0.3f, 0.6f, 0.0f};
        int y[4] = {1, 0, 0, 1};
        for (int i = 0; i < 4; i++)
                itd_eval_add(eval, s[i], y[i], NULL, ITD_NEXT_VIEW);
        itd_eval_summary_t r;
        itd_eval_summary(eval, &r);
        /* the scores are floats: use their exact values in the logs */
        double ll = -(log((double)0.8f) + log(1.0 - (double)0.3f) +
                      log(1.0 - (double)0.6f) + log(1e-7)) / 4.0;
        cr_assert_float_eq(r.logloss, ll, HAND_TOL);
        cr_assert_float_eq(r.accuracy, 0.5, HAND_TOL);
        cr_assert_float_eq(r.precision, 0.5, HAND_TOL);
        cr_assert_float_eq(r.recall, 0.5, HAND_TOL);
        cr_assert_float_eq(r.f1, 0.5, HAND_TOL);
        cr_assert_float_eq(r.base_rate, 0.5, HAND_TOL);
        /* ECE tolerance: float scores are off their decimals by ~1e-8 */
        cr_assert_float_eq(r.ece, 2.1 / 4.0, 1e-7);
        /* AUC: pairs (0.8 vs 0.3), (0.8 vs 0.6) won, (0.0 vs both) lost */
        cr_assert_float_eq(r.auc, 0.5, HAND_TOL);
        itd_eval_destroy(eval);
}

Test(eval_progressive, ece_averages_within_a_bin_before_comparing) {
        /* bin 7 holds 0.71 (1) and 0.79 (0): |1.5 - 1| / 2 = 0.25, where
         * per-example gaps would give 0.5 */
        itd_eval_t *eval = itd_eval_new(0.5f);
        itd_eval_add(eval, 0.71f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_add(eval, 0.79f, 0, NULL, ITD_NEXT_VIEW);
        itd_eval_summary_t r;
        itd_eval_summary(eval, &r);
        cr_assert_float_eq(r.ece, 0.25, 1e-7);
        /* precision 1/2 (both predicted positive), recall 1: F1 = 2/3 */
        cr_assert_float_eq(r.f1, 2.0 / 3.0, HAND_TOL);
        itd_eval_destroy(eval);
}

Test(eval_progressive, next_action_accuracy_and_logloss_match_hand_values) {
        itd_eval_t *eval = itd_eval_new(0.5f);
        float a[ITD_NEXT__COUNT] = {0.1f, 0.6f, 0.1f, 0.1f, 0.1f};
        float b[ITD_NEXT__COUNT] = {0.5f, 0.2f, 0.1f, 0.1f, 0.1f};
        itd_eval_add(eval, 0.5f, 0, a, ITD_NEXT_SEARCH); /* right, p = 0.6 */
        itd_eval_add(eval, 0.5f, 0, b, ITD_NEXT_LEAVE);  /* wrong, p = 0.1 */
        /* no head: not judged */
        itd_eval_add(eval, 0.5f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_summary_t r;
        itd_eval_summary(eval, &r);
        cr_assert_eq(r.n, 3);
        cr_assert_eq(r.next_n, 2);
        cr_assert_float_eq(r.next_accuracy, 0.5, HAND_TOL);
        double ll = -(log((double)0.6f) + log((double)0.1f)) / 2.0;
        cr_assert_float_eq(r.next_logloss, ll, HAND_TOL);
        itd_eval_destroy(eval);
}

/* ---- merging and the sliding window ------------------------------------ */

/* summaries equal field by field (NaN equals NaN) */
static void expect_same_summary(const itd_eval_summary_t *a,
                                const itd_eval_summary_t *b, const char *what) {
        cr_expect_eq(a->n, b->n, "%s: n %llu vs %llu", what,
                     (unsigned long long)a->n, (unsigned long long)b->n);
        cr_expect_eq(a->positives, b->positives, "%s: positives", what);
        cr_expect_eq(a->next_n, b->next_n, "%s: next_n", what);
        const double fa[] = {a->base_rate, a->auc, a->auc_err_bound,
                             a->logloss, a->accuracy, a->precision, a->recall,
                             a->f1, a->ece, a->next_accuracy, a->next_logloss};
        const double fb[] = {b->base_rate, b->auc, b->auc_err_bound,
                             b->logloss, b->accuracy, b->precision, b->recall,
                             b->f1, b->ece, b->next_accuracy, b->next_logloss};
        for (size_t i = 0; i < sizeof(fa) / sizeof(fa[0]); i++) {
                if (isnan(fa[i]) || isnan(fb[i])) {
                        cr_expect(isnan(fa[i]) && isnan(fb[i]),
                                  "%s: field %zu %g vs %g", what, i, fa[i],
                                  fb[i]);
                        continue;
                }
                /* same sums, added in another grouping */
                cr_expect_float_eq(fa[i], fb[i], HAND_TOL, "%s: field %zu",
                                   what, i);
        }
}

typedef struct judged_s {
        float s;
        int y;
        float next[ITD_NEXT__COUNT];
        itd_next_t nx;
} judged_t;

static void make_judged(judged_t *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                /* the score's meaning flips half-way: a drifting model */
                v[i].y = urand() < 0.2;
                double s = v[i].y ? pow(urand(), 0.5) : pow(urand(), 2.0);
                v[i].s = (float)(i < n / 2 ? s : 1.0 - s);
                double sum = 0.0;
                for (size_t k = 0; k < ITD_NEXT__COUNT; k++)
                        sum += v[i].next[k] = (float)(urand() + 0.1);
                for (size_t k = 0; k < ITD_NEXT__COUNT; k++)
                        v[i].next[k] = (float)(v[i].next[k] / sum);
                v[i].nx = (itd_next_t)(urand() * ITD_NEXT__COUNT);
        }
}

Test(eval_progressive, merged_accumulators_judge_the_union_of_their_examples) {
        enum { N = 3000 };
        judged_t *v = malloc(N * sizeof(*v));
        make_judged(v, N);
        itd_eval_t *a = itd_eval_new(0.4f), *b = itd_eval_new(0.4f),
                   *all = itd_eval_new(0.4f);
        for (size_t i = 0; i < N; i++) {
                itd_eval_add(i % 3 ? a : b, v[i].s, v[i].y, v[i].next, v[i].nx);
                itd_eval_add(all, v[i].s, v[i].y, v[i].next, v[i].nx);
        }
        itd_eval_merge(a, b);
        itd_eval_summary_t sa, sall;
        itd_eval_summary(a, &sa);
        itd_eval_summary(all, &sall);
        expect_same_summary(&sa, &sall, "merged");
        itd_eval_destroy(a);
        itd_eval_destroy(b);
        itd_eval_destroy(all);
        free(v);
}

/*
 * Window 500 in 5 chunks of 100: after i examples (i > 500) it holds the
 * last 401..500 of them, exactly 500 - 100 + ((i - 1) % 100 + 1).
 */
Test(eval_progressive, sliding_window_judges_exactly_its_most_recent_chunks) {
        enum { N = 2345, W = 500, C = 5, CS = W / C };
        judged_t *v = malloc(N * sizeof(*v));
        make_judged(v, N);
        itd_eval_window_t *evalw = itd_eval_window_new(0.5f, W, C);
        cr_assert_not_null(evalw);
        for (size_t i = 1; i <= N; i++) {
                const judged_t *e = &v[i - 1];
                itd_eval_window_add(evalw, e->s, e->y, e->next, e->nx);
                if (i % 97 && i != N)
                        continue;
                size_t held = i <= W ? i : W - CS + (i - 1) % CS + 1;
                itd_eval_t *fresh = itd_eval_new(0.5f);
                for (size_t k = i - held; k < i; k++)
                        itd_eval_add(fresh, v[k].s, v[k].y, v[k].next, v[k].nx);
                itd_eval_summary_t sw, sf;
                itd_eval_window_summary(evalw, &sw);
                itd_eval_summary(fresh, &sf);
                char what[32];
                snprintf(what, sizeof(what), "after %zu", i);
                expect_same_summary(&sw, &sf, what);
                cr_expect((sw.n > W - CS && sw.n <= W) || i < W, "n %llu",
                          (unsigned long long)sw.n);
                itd_eval_destroy(fresh);
        }
        /* the drift shows in the window, not in a whole-run average */
        itd_eval_summary_t sw;
        itd_eval_window_summary(evalw, &sw);
        cr_expect_lt(sw.auc, 0.5, "window AUC %g after the flip", sw.auc);

        itd_eval_window_add(evalw, NAN, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_summary_t again;
        itd_eval_window_summary(evalw, &again);
        cr_expect_eq(again.n, sw.n, "a non-finite score is left out");
        itd_eval_window_reset(evalw);
        itd_eval_window_summary(evalw, &again);
        cr_expect_eq(again.n, 0);
        cr_expect(isnan(again.auc));
        itd_eval_window_destroy(evalw);
        free(v);
}

Test(eval_progressive, sliding_window_refuses_impossible_sizes) {
        cr_expect_null(itd_eval_window_new(0.5f, 100, 0));
        cr_expect_null(itd_eval_window_new(0.5f, 3, 4));
        itd_eval_window_t *evalw = itd_eval_window_new(0.5f, 1, 1);
        cr_assert_not_null(evalw);
        itd_eval_window_add(evalw, 0.9f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_window_add(evalw, 0.1f, 0, NULL, ITD_NEXT_VIEW);
        itd_eval_summary_t s;
        itd_eval_window_summary(evalw, &s);
        cr_expect_eq(s.n, 1, "a window of one holds the last example");
        cr_expect_eq(s.positives, 0);
        itd_eval_window_destroy(evalw);
        itd_eval_window_destroy(NULL);
}

/* ---- snapshots --------------------------------------------------------- */

/* A restored accumulator holds the very same counts, so unlike merged ones
 * (expect_same_summary) its summary must be bit-identical. */
#define SAME_COUNTS_EPS 0.0

static itd_eval_t *filled_eval(float threshold, size_t n) {
        itd_eval_t *eval = itd_eval_new(threshold);
        for (size_t i = 0; i < n; i++) {
                int y = urand() < 0.2;
                float s = (float)(y ? pow(urand(), 0.5) : pow(urand(), 2.0));
                float probs[ITD_NEXT__COUNT];
                for (size_t k = 0; k < ITD_NEXT__COUNT; k++)
                        probs[k] = (float)urand() / ITD_NEXT__COUNT;
                itd_eval_add(eval, s, y, probs,
                             (itd_next_t)(i % ITD_NEXT__COUNT));
        }
        return eval;
}

static char *snapshot_of(const itd_eval_t *eval, size_t *len) {
        char *buf = NULL;
        FILE *m = open_memstream(&buf, len);
        char err[256];
        cr_assert_eq(itd_eval_snapshot(eval, m, err, sizeof err), ITD_OK, "%s",
                     err);
        fclose(m);
        return buf;
}

static itd_err_t restore_from(itd_eval_t *eval, const void *buf, size_t len,
                              char *err, size_t err_size) {
        FILE *f = fmemopen((void *)buf, len, "rb");
        cr_assert(f);
        itd_err_t rc = itd_eval_restore(eval, f, err, err_size);
        fclose(f);
        return rc;
}

static void expect_identical_summary(const itd_eval_summary_t *a,
                                     const itd_eval_summary_t *b) {
        cr_expect_eq(a->n, b->n);
        cr_expect_eq(a->positives, b->positives);
        cr_expect_eq(a->next_n, b->next_n);
        const double got[] = {a->auc, a->auc_err_bound, a->logloss,
                              a->accuracy, a->precision, a->recall, a->f1,
                              a->ece, a->next_accuracy, a->next_logloss};
        const double want[] = {b->auc, b->auc_err_bound, b->logloss,
                               b->accuracy, b->precision, b->recall, b->f1,
                               b->ece, b->next_accuracy, b->next_logloss};
        for (size_t i = 0; i < sizeof got / sizeof *got; i++) {
                if (isnan(got[i]) || isnan(want[i]))
                        cr_expect(isnan(got[i]) && isnan(want[i]),
                                  "metric %zu: %g vs %g", i, got[i],
                                  want[i]);
                else
                        cr_expect_float_eq(got[i], want[i], SAME_COUNTS_EPS,
                                           "metric %zu: %.17g vs %.17g", i,
                                           got[i], want[i]);
        }
}

/* Restores the len bytes at *buf (followed by a marker: restore reads
 * exactly its bytes) into back and expects eval's very summary. *buf may
 * move. */
static void expect_exact_restore(const itd_eval_t *eval, itd_eval_t *back,
                                 char **buf, size_t len) {
        *buf = realloc(*buf, len + 1);
        (*buf)[len] = 'X';
        FILE *f = fmemopen(*buf, len + 1, "rb");
        cr_assert(f);
        char err[256];
        cr_assert_eq(itd_eval_restore(back, f, err, sizeof err), ITD_OK, "%s",
                     err);
        cr_expect_eq(fgetc(f), 'X', "restore read past its snapshot");
        fclose(f);
        itd_eval_summary_t a, b;
        itd_eval_summary(eval, &a);
        itd_eval_summary(back, &b);
        expect_identical_summary(&b, &a);
}

Test(eval_progressive, snapshot_round_trip_restores_every_metric) {
        itd_eval_t *eval = filled_eval(0.5f, 5000);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        itd_eval_t *back = itd_eval_new(0.9f);
        itd_eval_add(back, 0.3f, 1, NULL, ITD_NEXT_VIEW); /* replaced */
        expect_exact_restore(eval, back, &buf, len);
        itd_eval_summary_t a, b;
        itd_eval_summary(back, &b);
        cr_assert_eq(b.n, 5000);

        /* The restored accumulator keeps its own threshold (0.9): a
         * positive scored 0.7 is a miss there, a hit at 0.5. */
        itd_eval_add(eval, 0.7f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_add(back, 0.7f, 1, NULL, ITD_NEXT_VIEW);
        itd_eval_summary(eval, &a);
        itd_eval_summary(back, &b);
        cr_expect(b.recall < a.recall, "recall %g at 0.9, %g at 0.5",
                  b.recall, a.recall);
        free(buf);
        itd_eval_destroy(eval);
        itd_eval_destroy(back);
}

Test(eval_progressive, empty_accumulator_round_trips) {
        itd_eval_t *eval = itd_eval_new(0.5f), *back = filled_eval(0.5f, 10);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        char err[256];
        cr_assert_eq(restore_from(back, buf, len, err, sizeof err), ITD_OK,
                     "%s", err);
        itd_eval_summary_t b;
        itd_eval_summary(back, &b);
        cr_expect_eq(b.n, 0);
        cr_expect_eq(b.next_n, 0);
        cr_expect(isnan(b.auc));
        free(buf);
        itd_eval_destroy(eval);
        itd_eval_destroy(back);
}

Test(eval_progressive, damaged_snapshot_is_refused_and_leaves_the_accumulator) {
        itd_eval_t *eval = filled_eval(0.5f, 2000);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        itd_eval_t *target = filled_eval(0.5f, 300);
        itd_eval_summary_t before, after;
        itd_eval_summary(target, &before);
        char err[256];
        /* a flipped bit in the magic, the header, the histograms, the
         * sums and the CRC itself */
        const size_t at[] = {0, 9, 30, 4000, len / 2, len - 40, len - 1};
        for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
                buf[at[i]] ^= 0x04;
                cr_expect_eq(restore_from(target, buf, len, err, sizeof err),
                             ITD_ERR_CORRUPT, "flip at byte %zu accepted",
                             at[i]);
                buf[at[i]] ^= 0x04;
        }
        cr_expect(strstr(err, "CRC32C") != NULL, "%s", err);
        /* truncated anywhere */
        const size_t cut[] = {0, 10, 24, len / 3, len - 1};
        for (size_t i = 0; i < sizeof cut / sizeof *cut; i++)
                cr_expect_eq(restore_from(target, buf, cut[i], err,
                                          sizeof err),
                             ITD_ERR_CORRUPT, "%zu of %zu bytes accepted",
                             cut[i], len);
        cr_expect(strstr(err, "truncated") != NULL, "%s", err);
        itd_eval_summary(target, &after);
        expect_identical_summary(&after, &before);
        free(buf);
        itd_eval_destroy(eval);
        itd_eval_destroy(target);
}

/* Rewrites a u32 of the snapshot and its CRC, as a writer would have. */
static void patch_u32(char *buf, size_t len, size_t off, uint32_t v) {
        memcpy(buf + off, &v, sizeof v);
        uint32_t crc = itd_crc32c(0, buf, len - 4);
        memcpy(buf + len - 4, &crc, sizeof crc);
}

Test(eval_progressive,
     snapshot_of_another_version_or_bin_count_is_incompatible) {
        itd_eval_t *eval = filled_eval(0.5f, 100);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        char err[256];
        patch_u32(buf, len, 8, 99); /* version */
        cr_expect_eq(restore_from(eval, buf, len, err, sizeof err),
                     ITD_ERR_INCOMPATIBLE);
        cr_expect(strstr(err, "version 99") != NULL, "%s", err);
        patch_u32(buf, len, 8, 2);
        /* the kind's header after the 24-byte prefix: u64 histogram bins
         * (low half first) */
        patch_u32(buf, len, 24, 1024);
        cr_expect_eq(restore_from(eval, buf, len, err, sizeof err),
                     ITD_ERR_INCOMPATIBLE);
        patch_u32(buf, len, 24, ITD_EVAL_BINS);
        cr_expect_eq(restore_from(eval, buf, len, err, sizeof err), ITD_OK,
                     "%s", err);
        free(buf);
        itd_eval_destroy(eval);
}

Test(eval_progressive, snapshot_whose_counts_disagree_is_corrupt) {
        itd_eval_t *eval = filled_eval(0.5f, 100);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        /* the first histogram bin, after the prefix (24), the kind's
         * header (16) and the section's header (32): one more positive
         * than n and positives say, under a valid CRC */
        uint32_t lo;
        memcpy(&lo, buf + 72, sizeof lo);
        patch_u32(buf, len, 72, lo + 1);
        char err[256];
        cr_expect_eq(restore_from(eval, buf, len, err, sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect(strstr(err, "histograms") != NULL, "%s", err);
        free(buf);
        itd_eval_destroy(eval);
}

/* Version 1 (before the one framing), as an older intentd wrote it: its
 * own magic and header, the same fields in the host's order, CRC32C. Built
 * from the sections of eval's current snapshot. */
static char *version_1_snapshot_of(const itd_eval_t *eval, size_t *len) {
        static const struct {
                const char *name;
                uint32_t dtype;
                size_t count;
        } secs[] = {
            {"pos", ITD_FRAME_U64, ITD_EVAL_BINS},
            {"neg", ITD_FRAME_U64, ITD_EVAL_BINS},
            {"counts", ITD_FRAME_U64, 6},
            {"logloss_sum", ITD_FRAME_F64, 1},
            {"ece_n", ITD_FRAME_U64, 10},
            {"ece_score", ITD_FRAME_F64, 10},
            {"ece_label", ITD_FRAME_F64, 10},
            {"next_counts", ITD_FRAME_U64, 2},
            {"next_logloss", ITD_FRAME_F64, 1},
        };
        size_t n2, payload = 0;
        char *v2 = snapshot_of(eval, &n2), err[256];
        itd_frame_view_t v;
        cr_assert_eq(itd_frame_parse(&v, v2, n2, ITD_FRAME_EVAL, 16, err,
                                     sizeof err),
                     ITD_OK, "%s", err);
        for (size_t i = 0; i < sizeof secs / sizeof *secs; i++)
                payload += 8 * secs[i].count;
        *len = 24 + payload + 4;
        char *buf = malloc(*len), *w = buf + 24;
        const uint32_t head[4] = {1, ITD_EVAL_BINS, 10, (uint32_t)payload};
        memcpy(buf, "ITDPV\0\0\0", 8);
        memcpy(buf + 8, head, sizeof head);
        for (size_t i = 0; i < sizeof secs / sizeof *secs; i++) {
                cr_assert_eq(itd_frame_get(&v, secs[i].name, secs[i].dtype, w,
                                           8 * secs[i].count, err, sizeof err),
                             ITD_OK, "%s", err);
                w += 8 * secs[i].count;
        }
        uint32_t crc = itd_crc32c(0, buf, *len - 4);
        memcpy(buf + *len - 4, &crc, sizeof crc);
        free(v2);
        return buf;
}

Test(eval_progressive, a_version_1_snapshot_is_still_read) {
        itd_eval_t *eval = filled_eval(0.5f, 3000);
        size_t len;
        char *buf = version_1_snapshot_of(eval, &len);
        itd_eval_t *back = itd_eval_new(0.5f);
        expect_exact_restore(eval, back, &buf, len);
        itd_eval_summary_t b;
        itd_eval_summary(back, &b);
        cr_assert_eq(b.n, 3000);
        char err[256];
        /* damaged, it is refused like a current one */
        buf[len / 2] ^= 0x08;
        cr_expect_eq(restore_from(back, buf, len, err, sizeof err),
                     ITD_ERR_CORRUPT);
        cr_expect(strstr(err, "progressive-validation") != NULL, "%s", err);
        free(buf);
        itd_eval_destroy(eval);
        itd_eval_destroy(back);
}

Test(eval_progressive, a_snapshot_is_little_endian_in_the_one_framing) {
        itd_eval_t *eval = filled_eval(0.5f, 50);
        size_t len;
        char *buf = snapshot_of(eval, &len);
        cr_expect_eq(memcmp(buf, ITD_FRAME_MAGIC, 8), 0);
        const uint8_t *u = (const uint8_t *)buf;
        cr_expect_eq(itd_get_le32(u + 8), 2, "version");
        cr_expect_eq(itd_get_le32(u + 12), ITD_FRAME_EVAL, "kind");
        /* the kind's header (u64 bins, u64 calibration bins), then the
         * first section's name */
        cr_expect_eq(itd_get_le64(u + 24), ITD_EVAL_BINS);
        cr_expect_eq(itd_get_le64(u + 32), 10);
        cr_expect_eq(memcmp(u + 40, "pos", 4), 0);
        free(buf);
        itd_eval_destroy(eval);
}

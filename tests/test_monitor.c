/*
 * test_monitor.c - the windowed progressive metrics of `intentd run`
 * (daemon/monitor.h): the intentd_progressive_window_* gauges follow the
 * most recent judged examples and forget older ones, where the cumulative
 * accumulator averages them; and the score histogram of published scores.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/eval_progressive.h"
#include "prom.h"
#include "monitor.h"

/* The value of an unlabelled series in a /metrics text. */
static double sample(const char *text, const char *name) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *p = strstr(text, key);
        cr_assert(p, "no sample %s in /metrics", name);
        return strtod(p + strlen(key), NULL);
}

/* One judged example: perfect ranking when good, inverted when not. */
static void judge(itd_monitor_t *mon, itd_eval_t *all, int i, int good) {
        int label = i % 10 == 0;
        float hi = 0.9f, lo = 0.1f;
        float score = (label == good) ? hi : lo;
        /* next ITD_NEXT__COUNT: no next-action outcome, as NULL
         * probabilities below */
        itd_example_t ex = {.score = score, .label = label,
                            .next = ITD_NEXT__COUNT, .judge = 1};
        itd_monitor_hook(mon, 0, &ex);
        itd_eval_add(all, score, label, NULL, ITD_NEXT_VIEW);
}

Test(monitor, window_gauges_follow_the_recent_examples_only) {
        itd_monitor_t *mon = itd_monitor_new(1000, 0.5f);
        cr_assert(mon);
        itd_eval_t *all = itd_eval_new(0.5f);
        itd_prom_t *m = itd_prom_new();
        size_t len;

        /* Before any example: no window, NaN gauges, 0 examples. */
        itd_monitor_publish(mon, m);
        char *text = itd_prom_render_dup(m, &len);
        cr_expect(isnan(sample(text, "intentd_progressive_window_auc")));
        cr_expect_eq(sample(text, "intentd_progressive_window_examples"), 0);
        free(text);

        /* 5000 well-ranked examples, then 1000 inverted ones: the window
         * (1000, dropping its oldest tenth at once) holds only the
         * inverted ones, the cumulative judge mostly the good ones. */
        for (int i = 0; i < 5000; i++)
                judge(mon, all, i, 1);
        for (int i = 0; i < 1000; i++)
                judge(mon, all, i, 0);
        itd_monitor_publish(mon, m);
        text = itd_prom_render_dup(m, &len);
        itd_eval_summary_t cum;
        itd_eval_summary(all, &cum);
        double n = sample(text, "intentd_progressive_window_examples");
        cr_expect(n >= 900 && n <= 1000, "window holds %g examples", n);
        /* Exact: every pair in the window is ordered wrongly. */
        cr_expect_eq(sample(text, "intentd_progressive_window_auc"), 0.0);
        cr_expect_gt(cum.auc, 0.8, "cumulative AUC %g", cum.auc);
        /* Base rate: one example in ten is positive. */
        cr_expect_float_eq(
            sample(text, "intentd_progressive_window_base_rate"), 0.1, 1e-9);
        /* Scores 0.9 for the negatives, 0.1 for the positives: the
         * calibration error is |0.9 - 0| * 0.9 + |0.1 - 1| * 0.1. */
        cr_expect_float_eq(sample(text, "intentd_progressive_window_ece"),
                           0.9 * 0.9 + 0.9 * 0.1, 1e-6);
        cr_expect_gt(sample(text, "intentd_progressive_window_logloss"),
                     cum.logloss);
        free(text);
        itd_prom_destroy(m);
        itd_eval_destroy(all);
        itd_monitor_destroy(mon);
}

Test(monitor, refuses_a_window_below_ten) {
        cr_expect_null(itd_monitor_new(9, 0.5f));
}

Test(monitor, score_histogram_buckets_probabilities) {
        itd_prom_t *m = itd_prom_new();
        const float scores[] = {0.0005f, 0.015f, 0.015f, 0.5f, 1.0f};
        for (size_t i = 0; i < 5; i++)
                cr_expect_eq(itd_prom_observe(m, ITD_M_SCORE, scores[i]),
                             0);
        size_t len;
        char *text = itd_prom_render_dup(m, &len);
        /* Cumulative buckets: <= 0.001 one, <= 0.02 three, <= 0.5 four,
         * +Inf all five. */
        cr_expect(strstr(text, "intentd_score_bucket{le=\"0.001\"} 1\n"));
        cr_expect(strstr(text, "intentd_score_bucket{le=\"0.02\"} 3\n"));
        cr_expect(strstr(text, "intentd_score_bucket{le=\"0.5\"} 4\n"));
        cr_expect(strstr(text, "intentd_score_bucket{le=\"+Inf\"} 5\n"));
        cr_expect(strstr(text, "intentd_score_count 5\n"));
        free(text);
        itd_prom_destroy(m);
}

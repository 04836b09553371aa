/*
 * test_compare.c - replay/compare.c: the two rules on a small stream
 * computed by hand (each using only what was known at the prediction,
 * whatever order the examples resolve in), the robust last-30% split,
 * and the judgements every scorer gets on the same examples.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compare_int.h"

#define MIN_MS 60000LL
/* floats of small ratios: exact to float rounding */
#define EPS 1e-6

static void event(itd_event_t *ev, const char *user, int64_t minute,
                  itd_event_type_t type) {
        itd_event_clear(ev);
        snprintf(ev->user_id, sizeof ev->user_id, "%s", user);
        ev->ts_ms = minute * MIN_MS;
        ev->type = type;
}

/*
 * seq user minute type      label (horizon 30 min)   decided
 *  0   A    0    VIEW       1 (A buys at 10)         at seq 2
 *  1   B    0    VIEW       0                        after minute 30
 *  2   A   10    PURCHASE   0 (no later purchase)    after minute 40
 *  3   A   50    VIEW       0                        after minute 80
 *  4   B   60    VIEW       0                        after minute 90
 *  5   A   70    VIEW       0                        after minute 100
 */
Test(compare, the_rules_use_only_what_was_known_at_each_prediction) {
        itd_compare_conf_t conf;
        itd_compare_conf_defaults(&conf, 30 * MIN_MS);
        conf.resamples = 0;
        itd_compare_t *cmp = itd_compare_new(&conf);
        const struct {
                const char *user;
                int64_t minute;
                itd_event_type_t type;
                int label;
        } stream[] = {{"A", 0, ITD_EV_VIEW, 1},      {"B", 0, ITD_EV_VIEW, 0},
                      {"A", 10, ITD_EV_PURCHASE, 0}, {"A", 50, ITD_EV_VIEW, 0},
                      {"B", 60, ITD_EV_VIEW, 0},     {"A", 70, ITD_EV_VIEW, 0}};
        itd_compare_ev_t known[6];
        for (int i = 0; i < 6; i++) {
                itd_event_t ev;
                event(&ev, stream[i].user, stream[i].minute, stream[i].type);
                itd_compare_event(cmp, &ev, itd_user_hash(ev.user_id), &known[i]);
                cr_assert_eq(known[i].seq, (uint64_t)i);
        }
        /* purchase-rate rule: (purchases + 0.5) / (events + 10), this
         * event included */
        const double rate[] = {0.5 / 11, 0.5 / 11, 1.5 / 12,
                               1.5 / 13, 0.5 / 12, 1.5 / 14};
        const int bought[] = {0, 0, 1, 1, 0, 1};
        for (int i = 0; i < 6; i++) {
                cr_expect_float_eq(known[i].purchase_rate, rate[i], EPS,
                                   "event %d", i);
                cr_expect_eq(known[i].bought, bought[i], "event %d", i);
        }
        cr_assert_eq(known[0].user, known[2].user);
        cr_assert_neq(known[0].user, known[1].user);
        /* examples resolve out of stream order; the rule must not care */
        const int resolved[] = {0, 1, 2, 4, 3, 5};
        for (int j = 0; j < 6; j++) {
                int i = resolved[j];
                itd_compare_add(cmp, &known[i], stream[i].minute * MIN_MS,
                                0.1f * (float)i, NAN, stream[i].label);
        }
        itd_compare_finish(cmp);
        /* label-rate rule, prior weight 10 towards (gp + 1) / (gp + gq + 2):
         *  A0, B1: nothing decided: (0 + 10 * 0.5) / 10
         *  A2: A0's positive decided at this purchase; prior 2/3
         *  A3: A0 +, A2 - (40 < 50); over all 1 +, 2 - (B1, A2): 2/5
         *  B4: B1 - ; prior 2/5 (A3 is open until minute 80)
         *  A5: A0 +, A2 -, A3 still open; prior 2/5 (B4 open) */
        const double want[] = {0.5,
                               0.5,
                               (1 + 10 * 2.0 / 3) / 11,
                               (1 + 10 * 0.4) / 12,
                               (0 + 10 * 0.4) / 11,
                               (1 + 10 * 0.4) / 12};
        for (int j = 0; j < 6; j++) {
                int i = resolved[j];
                cr_expect_float_eq(cmp->score[ITD_SC_LABEL_RATE][j], want[i],
                                   EPS, "example of event %d", i);
                cr_expect_float_eq(cmp->score[ITD_SC_PURCHASE_RATE][j],
                                   rate[i], EPS, "example of event %d", i);
        }
        const itd_compare_period_t *all = itd_compare_period(cmp, 0);
        cr_assert_eq(all->n, 6);
        cr_assert_eq(all->positives, 1);
        cr_assert_eq(all->users, 2);
        cr_assert(!itd_compare_has(cmp, ITD_SC_BASELINE));
        itd_compare_destroy(cmp);
}

/* xorshift: reproducible data without rand()'s global state */
static double uniform(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return (double)(*s >> 11) / 9007199254740992.0;
}

/* 40 users over 10 days, one event a user an hour in turn, plus one
 * event dated two months early: the last 30% still starts on day 7. */
Test(compare, an_early_outlier_does_not_move_the_last_30_percent) {
        itd_compare_conf_t conf;
        itd_compare_conf_defaults(&conf, 30 * MIN_MS);
        conf.resamples = 50;
        conf.baseline = "logistic";
        itd_compare_t *cmp = itd_compare_new(&conf);
        uint64_t rng = 3;
        int64_t t0 = 1500000000000LL;
        size_t n = 0;
        for (int h = -1; h < 240; h++) {
                for (int u = 0; u < 40; u++) {
                        if (h == -1 && u > 0)
                                break;
                        itd_event_t ev;
                        char name[16];
                        snprintf(name, sizeof name, "u%d", u);
                        int64_t minute = h < 0 ? -60 * 24 * 60 : h * 60 + u;
                        event(&ev, name, 0, ITD_EV_VIEW);
                        ev.ts_ms = t0 + minute * MIN_MS;
                        itd_compare_ev_t k;
                        itd_compare_event(cmp, &ev, itd_user_hash(ev.user_id), &k);
                        int y = uniform(&rng) < 0.1;
                        float score = (float)(0.3 * y + 0.7 * uniform(&rng));
                        itd_compare_add(cmp, &k, ev.ts_ms, score,
                                        (float)uniform(&rng), y);
                        n++;
                }
        }
        itd_compare_finish(cmp);
        const itd_compare_period_t *all = itd_compare_period(cmp, 0);
        const itd_compare_period_t *last = itd_compare_period(cmp, 1);
        cr_assert_eq(all->n, n);
        double share = (double)last->n / (double)all->n;
        cr_assert(share > 0.28 && share < 0.32, "last period holds %.3f",
                  share);
        cr_assert_geq(last->from_ts, t0 + 7 * 24 * 60 * MIN_MS - 60 * MIN_MS);
        /* every scorer judged, the model leads the random baseline */
        for (int c = 0; c < ITD_SC__COUNT; c++) {
                cr_expect(isfinite(all->sc[c].auc), "scorer %d", c);
                cr_expect(isfinite(all->sc[c].ece), "scorer %d", c);
                cr_expect_leq(all->sc[c].auc_ci.lo, all->sc[c].auc);
                cr_expect_geq(all->sc[c].auc_ci.hi, all->sc[c].auc);
        }
        cr_assert_gt(all->sc[ITD_SC_MODEL].auc, 0.7);
        cr_assert_gt(all->sc[ITD_SC_BASELINE].model_lead.lo, 0.1);
        /* the JSON has every section */
        json_t *doc = itd_compare_json(cmp);
        const char *keys[] = {"scorers",     "method",    "split",
                              "periods",     "curves",    "calibration",
                              "histogram",   "over_time", "segments"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                cr_expect_not_null(json_object_get(doc, keys[i]), "%s",
                                   keys[i]);
        const json_t *ot = json_object_get(doc, "over_time");
        /* 10 days: the first round step with < 48 points is 6 h */
        cr_assert_eq(json_integer_value(json_object_get(ot, "step_ms")),
                     6 * 60 * MIN_MS);
        json_decref(doc);
        itd_compare_destroy(cmp);
}

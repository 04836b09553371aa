/*
 * test_labeler_policy.c - labels.policy: fake_negative (a negative at
 * once, a positive later, each prediction judged and trained once, like
 * wait) and predictions that are judged but never learned from.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intentd/labeler.h"
#include "labeler_helpers.h"

/* ------------------------------------------------ labels.policy */

static itd_labeler_t *make_fake(size_t max_pending, size_t per_user) {
        itd_labeler_conf_t c = {.dim = 3,
                                .n_ids = 2,
                                .horizon_ms = H,
                                .session_gap_ms = GAP,
                                .max_pending = max_pending,
                                .max_pending_per_user = per_user,
                                .policy = ITD_LABELS_FAKE_NEGATIVE};
        itd_labeler_t *lb = itd_labeler_new(&c, NULL, 0);
        cr_assert_not_null(lb);
        return lb;
}

Test(labeler, fake_negative_emits_a_negative_at_once_and_a_positive_later) {
        itd_labeler_t *lb = make_fake(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        itd_example_t ex[4];
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1, "the fake negative");
        cr_expect_eq(ex[0].label, 0);
        cr_expect_eq(ex[0].next, ITD_NEXT__COUNT, "no next-action label");
        cr_expect_eq(ex[0].judge, 0);
        cr_expect_eq(ex[0].train, 1);
        cr_expect_eq(ex[0].ts_ms, 1000);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f);
        cr_expect_float_eq(ex[0].score, 0.25f, 0.0f);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 1, "still waiting for a purchase");
        cr_expect_eq(s.negatives, 0, "a fake negative is no resolution");

        itd_labeler_observe(lb, 1, 2000, ITD_EV_VIEW);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0);
        itd_labeler_observe(lb, 1, 1000 + H, ITD_EV_PURCHASE);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1, "the positive");
        cr_expect_eq(ex[0].label, 1);
        cr_expect_eq(ex[0].next, ITD_NEXT_VIEW);
        cr_expect_eq(ex[0].judge, 1);
        cr_expect_eq(ex[0].train, 1);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f);
        itd_labeler_advance(lb, INT64_MAX);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "nothing more");
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.positives, 1);
        cr_expect_eq(s.pending, 0);
        itd_labeler_destroy(lb);
}

Test(labeler, fake_negative_judges_a_negative_once_and_trains_it_once) {
        itd_labeler_t *lb = make_fake(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        itd_example_t ex[4];
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect(ex[0].train && !ex[0].judge && ex[0].label == 0);
        itd_labeler_advance(lb, 1000 + H);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "horizon not passed");
        itd_labeler_advance(lb, 1000 + H + 1);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].label, 0);
        cr_expect_eq(ex[0].next, ITD_NEXT_LEAVE);
        cr_expect_eq(ex[0].judge, 1, "judged with its true label");
        cr_expect_eq(ex[0].train, 0, "no second negative");
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.negatives, 1);
        itd_labeler_destroy(lb);
}

Test(labeler, wait_judges_and_trains_every_example_once) {
        itd_labeler_t *lb = make(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        cr_assert_eq(add(lb, 2, 1000), ITD_OK);
        itd_example_t ex[4];
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "nothing at once");
        itd_labeler_observe(lb, 1, 2000, ITD_EV_PURCHASE);
        itd_labeler_advance(lb, INT64_MAX);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 2);
        cr_expect(ex[0].label == 1 && ex[0].judge && ex[0].train);
        cr_expect(ex[1].label == 0 && ex[1].judge && ex[1].train);
        itd_labeler_destroy(lb);
}

/* The fake of a prediction the per-user cap drops before it is taken
 * keeps its features until taken. */
Test(labeler, fake_negative_of_a_dropped_prediction_keeps_its_features) {
        itd_labeler_t *lb = make_fake(16, 1);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        cr_assert_eq(add(lb, 1, 2000), ITD_OK); /* drops the first */
        cr_assert_eq(add(lb, 2, 3000), ITD_OK); /* may reuse a free slot */
        itd_example_t ex[8];
        cr_assert_eq(itd_labeler_take(lb, ex, 8), 3);
        for (int i = 0; i < 3; i++) {
                cr_expect_eq(ex[i].ts_ms, 1000 + 1000 * i);
                cr_expect_float_eq(ex[i].x[0], (float)ex[i].ts_ms, 0.0f);
                cr_expect_eq(ex[i].judge, 0);
        }
        itd_labeler_advance(lb, INT64_MAX);
        cr_expect_eq(itd_labeler_take(lb, ex, 8), 2, "the dropped is gone");
        itd_labeler_destroy(lb);
}

Test(labeler, fake_negative_full_pool_drops_the_oldest_final_example) {
        itd_labeler_t *lb = make_fake(2, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        cr_assert_eq(add(lb, 2, 2000), ITD_OK);
        itd_example_t ex[8];
        cr_assert_eq(itd_labeler_take(lb, ex, 8), 2, "the fake negatives");
        cr_assert_eq(add(lb, 3, 3000), ITD_OK); /* drops ts 1000 */
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 2);
        cr_expect_eq(s.dropped_full, 1);
        cr_assert_eq(itd_labeler_take(lb, ex, 8), 1);
        cr_expect_eq(ex[0].ts_ms, 3000);
        cr_expect_eq(ex[0].judge, 0);
        itd_labeler_advance(lb, INT64_MAX);
        cr_assert_eq(itd_labeler_take(lb, ex, 8), 2, "judged once each");
        cr_expect_eq(ex[0].ts_ms, 2000);
        cr_expect_eq(ex[1].ts_ms, 3000);
        cr_expect_eq(ex[0].judge + ex[1].judge, 2);
        itd_labeler_destroy(lb);
}

typedef struct logged_s {
        int64_t ts_ms;
        uint64_t user_hash;
        int label, next, judge, train;
} logged_t;

static void log_examples(logged_t **log, size_t *n, size_t *cap,
                         const itd_example_t *ex, size_t k) {
        for (size_t j = 0; j < k; j++) {
                /* random_op writes the prediction time into x[1]: a slot
                 * reused too early would show another */
                cr_assert_float_eq(ex[j].x[1], (float)ex[j].ts_ms, 0.0f);
                if (*n == *cap) {
                        *cap = *cap ? 2 * *cap : 1024;
                        *log = realloc(*log, *cap * sizeof(**log));
                        cr_assert_not_null(*log);
                }
                (*log)[(*n)++] = (logged_t){ex[j].ts_ms, ex[j].user_hash,
                                            ex[j].label, (int)ex[j].next,
                                            ex[j].judge, ex[j].train};
        }
}

/* The same random stream through both policies: fake_negative judges
 * exactly the examples wait hands out, in the same order, and trains one
 * negative per prediction plus the positives. */
Test(labeler, fake_negative_judges_each_prediction_once_like_wait) {
        itd_labeler_conf_t c = small_conf();
        itd_labeler_t *w = itd_labeler_new(&c, NULL, 0);
        c.policy = ITD_LABELS_FAKE_NEGATIVE;
        itd_labeler_t *f = itd_labeler_new(&c, NULL, 0);
        unsigned seed_w = 5, seed_f = 5;
        int64_t now_w = 1000000, now_f = 1000000;
        itd_example_t ex[16];
        logged_t *lw = NULL, *lf = NULL;
        size_t nw = 0, nf = 0, cw = 0, cf = 0, k;
        for (int i = 0; i < 8000; i++) {
                random_op(w, &seed_w, &now_w, ex, &k);
                log_examples(&lw, &nw, &cw, ex, k);
                random_op(f, &seed_f, &now_f, ex, &k);
                log_examples(&lf, &nf, &cf, ex, k);
        }
        itd_labeler_advance(w, INT64_MAX);
        itd_labeler_advance(f, INT64_MAX);
        while ((k = itd_labeler_take(w, ex, 16)) > 0)
                log_examples(&lw, &nw, &cw, ex, k);
        while ((k = itd_labeler_take(f, ex, 16)) > 0)
                log_examples(&lf, &nf, &cf, ex, k);

        size_t judged = 0, fakes = 0, pos = 0;
        for (size_t i = 0; i < nw; i++)
                cr_assert(lw[i].judge && lw[i].train, "wait: all judged");
        for (size_t i = 0; i < nf; i++) {
                if (!lf[i].judge) {
                        cr_assert(lf[i].train && lf[i].label == 0 &&
                                  lf[i].next == ITD_NEXT__COUNT);
                        fakes++;
                        continue;
                }
                cr_assert_lt(judged, nw);
                const logged_t *a = &lw[judged++], *b = &lf[i];
                cr_assert(a->ts_ms == b->ts_ms &&
                              a->user_hash == b->user_hash &&
                              a->label == b->label && a->next == b->next,
                          "judged example %zu differs", judged - 1);
                cr_assert_eq(b->train, b->label, "train positives only");
                pos += b->label;
        }
        cr_expect_eq(judged, nw);
        itd_labeler_stats_t sw, sf;
        itd_labeler_stats(w, &sw);
        itd_labeler_stats(f, &sf);
        cr_expect(memcmp(&sw, &sf, sizeof(sw)) == 0, "same stats");
        /* one fake per prediction added, dropped ones included */
        cr_expect_eq(fakes, sw.positives + sw.negatives + sw.dropped_full);
        cr_expect_gt(pos, 50);
        cr_expect_gt(sw.dropped_full, 0);
        free(lw);
        free(lf);
        itd_labeler_destroy(w);
        itd_labeler_destroy(f);
}

/* ------------------------------------------------ ITD_LABEL_NO_TRAIN */

static void add_untrained(itd_labeler_t *lb, uint64_t user, int64_t ts) {
        float x[3] = {(float)ts, 1, 2};
        uint32_t ids[2] = {(uint32_t)user, 7};
        cr_assert_eq(itd_labeler_add_opt(lb, user, ts, ts, x, ids, 0.25f,
                                         NULL, ITD_LABEL_NO_TRAIN),
                     ITD_OK);
}

Test(labeler, an_untrained_prediction_is_judged_never_learned_from) {
        /* under both policies, and after a snapshot */
        for (int fake = 0; fake < 2; fake++) {
                itd_labeler_t *lb = fake ? make_fake(16, 0) : make(16, 0);
                add_untrained(lb, 1, 1000);
                cr_assert_eq(add(lb, 2, 1000), ITD_OK);
                itd_example_t ex[4];
                size_t n = itd_labeler_take(lb, ex, 4);
                cr_expect_eq(n, (size_t)fake,
                             "policy %d: a fake negative for the trained "
                             "prediction only", fake);
                for (size_t i = 0; i < n; i++)
                        cr_expect_eq(ex[i].user_hash, 2);

                size_t len;
                unsigned char *buf = labeler_bytes(lb, &len);
                itd_labeler_conf_t c = {.dim = 3, .n_ids = 2,
                                        .horizon_ms = H,
                                        .session_gap_ms = GAP,
                                        .max_pending = 16,
                                        .policy = fake
                                                      ? ITD_LABELS_FAKE_NEGATIVE
                                                      : ITD_LABELS_WAIT};
                char err[256];
                itd_labeler_t *back = labeler_from(buf, len, &c, err,
                                                   sizeof err);
                cr_assert_not_null(back, "%s", err);
                free(buf);
                itd_labeler_destroy(lb);

                itd_labeler_observe(back, 1, 2000, ITD_EV_PURCHASE);
                itd_labeler_observe(back, 2, 2000, ITD_EV_PURCHASE);
                itd_labeler_advance(back, INT64_MAX);
                n = itd_labeler_take(back, ex, 4);
                cr_assert_eq(n, 2);
                for (size_t i = 0; i < n; i++) {
                        cr_expect_eq(ex[i].judge, 1);
                        cr_expect_eq(ex[i].label, 1);
                        cr_expect_eq(ex[i].train, ex[i].user_hash == 2,
                                     "policy %d, user %llu", fake,
                                     (unsigned long long)ex[i].user_hash);
                }
                itd_labeler_destroy(back);
        }
}

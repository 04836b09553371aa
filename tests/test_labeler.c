/*
 * test_labeler.c - delayed labels: positives within the horizon, negatives
 * once the watermark passes it, next actions and LEAVE, the bounded pool,
 * and a random stream against a brute-force labelling.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/labeler.h"

#define H 1800000LL   /* 30 min horizon */
#define GAP 600000LL  /* 10 min session gap */

static itd_labeler_t *make(size_t max_pending, size_t per_user) {
        itd_labeler_conf_t c = {.dim = 3,
                                .n_ids = 2,
                                .horizon_ms = H,
                                .session_gap_ms = GAP,
                                .max_pending = max_pending,
                                .max_pending_per_user = per_user};
        itd_labeler_t *lb = itd_labeler_new(&c, NULL, 0);
        cr_assert_not_null(lb);
        return lb;
}

static itd_err_t add(itd_labeler_t *lb, uint64_t user, int64_t ts) {
        float x[3] = {(float)ts, 1, 2};
        uint32_t ids[2] = {(uint32_t)user, 7};
        float probs[ITD_NEXT__COUNT] = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
        return itd_labeler_add(lb, user, ts, x, ids, 0.25f, probs);
}

Test(labeler, purchase_within_horizon_is_positive) {
        itd_labeler_t *lb = make(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        itd_labeler_observe(lb, 2, 1500, ITD_EV_PURCHASE); /* other user */
        itd_labeler_observe(lb, 1, 2000, ITD_EV_VIEW);     /* next: VIEW */
        itd_example_t ex[4];
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "label still open");
        itd_labeler_observe(lb, 1, 1000 + H, ITD_EV_PURCHASE);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].label, 1);
        cr_expect_eq(ex[0].next, ITD_NEXT_VIEW);
        cr_expect_eq(ex[0].ts_ms, 1000);
        cr_expect_eq(ex[0].user_hash, 1);
        cr_expect_float_eq(ex[0].score, 0.25f, 0.0f);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f);
        cr_expect_eq(ex[0].ids[0], 1);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.positives, 1);
        cr_expect_eq(s.pending, 0);
        itd_labeler_destroy(lb);
}

Test(labeler, negative_only_once_the_watermark_passes_the_horizon) {
        itd_labeler_t *lb = make(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        itd_labeler_observe(lb, 1, 1000 + H + 1, ITD_EV_PURCHASE); /* late */
        itd_example_t ex[4];
        itd_labeler_advance(lb, 1000 + H);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "t + horizon not passed");
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 1);
        itd_labeler_advance(lb, 1000 + H + 1);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].label, 0);
        /* its next event came after the session gap: the user left */
        cr_expect_eq(ex[0].next, ITD_NEXT_LEAVE);
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.negatives, 1);
        cr_expect_eq(s.pending, 0);
        itd_labeler_destroy(lb);
}

Test(labeler, next_action_maps_event_types_and_leave) {
        static const struct {
                itd_event_type_t type;
                itd_next_t next;
        } rows[] = {{ITD_EV_VIEW, ITD_NEXT_VIEW},
                    {ITD_EV_SEARCH, ITD_NEXT_SEARCH},
                    {ITD_EV_ADD_TO_CART, ITD_NEXT_ADD_TO_CART},
                    {ITD_EV_REMOVE_FROM_CART, ITD_NEXT_VIEW},
                    {ITD_EV_PURCHASE, ITD_NEXT_PURCHASE},
                    {ITD_EV_FAVORITE, ITD_NEXT_VIEW}};
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                itd_labeler_t *lb = make(4, 0);
                cr_assert_eq(add(lb, 9, 5000), ITD_OK);
                itd_labeler_observe(lb, 9, 4000, ITD_EV_SEARCH); /* older */
                itd_labeler_observe(lb, 9, 5000 + GAP, rows[i].type);
                itd_labeler_advance(lb, 5000 + H + 1);
                itd_example_t ex;
                cr_assert_eq(itd_labeler_take(lb, &ex, 1), 1);
                cr_expect_eq(ex.next, rows[i].next, "row %zu", i);
                cr_expect_eq(ex.label, rows[i].type == ITD_EV_PURCHASE);
                itd_labeler_destroy(lb);
        }
        /* no later event before the watermark passes t + gap: LEAVE */
        itd_labeler_t *lb = make(4, 0);
        cr_assert_eq(add(lb, 9, 5000), ITD_OK);
        itd_labeler_advance(lb, 5000 + GAP + 1);
        itd_labeler_observe(lb, 9, 5000 + 10, ITD_EV_PURCHASE);
        itd_example_t ex;
        cr_assert_eq(itd_labeler_take(lb, &ex, 1), 1);
        cr_expect_eq(ex.next, ITD_NEXT_LEAVE, "the watermark decided first");
        cr_expect_eq(ex.label, 1);
        itd_labeler_destroy(lb);
}

Test(labeler, full_pool_refuses_until_examples_are_taken) {
        itd_labeler_t *lb = make(3, 0);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(add(lb, (uint64_t)i, 1000 + i), ITD_OK);
        cr_expect_eq(add(lb, 5, 2000), ITD_ERR_FULL);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 3);
        itd_labeler_advance(lb, 1000 + H + 1); /* resolves user 0 only */
        cr_expect_eq(add(lb, 5, 2000), ITD_ERR_FULL,
                     "resolved but not taken still holds its slot");
        itd_example_t ex[4];
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].user_hash, 0);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f,
                           "valid until the next call");
        cr_expect_eq(add(lb, 5, 2000), ITD_OK);
        itd_labeler_destroy(lb);
}

Test(labeler, per_user_cap_drops_the_users_oldest_prediction) {
        itd_labeler_t *lb = make(16, 2);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        cr_assert_eq(add(lb, 1, 2000), ITD_OK);
        cr_assert_eq(add(lb, 2, 2500), ITD_OK);
        cr_assert_eq(add(lb, 1, 3000), ITD_OK);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.dropped_full, 1);
        cr_expect_eq(s.pending, 3);
        itd_labeler_advance(lb, 100000000);
        itd_example_t ex[8];
        size_t n = itd_labeler_take(lb, ex, 8);
        cr_assert_eq(n, 3);
        for (size_t i = 0; i < n; i++)
                cr_expect_neq(ex[i].ts_ms, 1000, "the dropped one is gone");
        itd_labeler_destroy(lb);
}

Test(labeler, copies_features_at_add_time) {
        itd_labeler_t *lb = make(4, 0);
        float x[3] = {1, 2, 3};
        uint32_t ids[2] = {4, 5};
        cr_assert_eq(itd_labeler_add(lb, 1, 0, x, ids, 0.5f, NULL), ITD_OK);
        x[0] = 99;
        ids[0] = 99;
        itd_labeler_advance(lb, H + 1);
        itd_example_t ex;
        cr_assert_eq(itd_labeler_take(lb, &ex, 1), 1);
        cr_expect_float_eq(ex.x[0], 1.0f, 0.0f);
        cr_expect_eq(ex.ids[0], 4);
        itd_labeler_destroy(lb);
}

/* Brute force: the label of the prediction on event i is "a later-arriving
 * purchase of the user with ts in [t, t + H]"; its next action is the type
 * of the first later-arriving event of the user with ts >= t (LEAVE when
 * that is past t + GAP or there is none). Events arrive out of order within
 * a lateness L, and those older than the watermark are filtered out first,
 * as the pipeline does. */
Test(labeler, random_stream_matches_brute_force_labels) {
        enum { N = 4000, USERS = 25 };
        const int64_t L = 120000;
        int64_t *ts = malloc(N * sizeof(*ts));
        int *user = malloc(N * sizeof(*user)), *type = malloc(N * sizeof(*type));
        int n = 0;
        srand(5);
        int64_t base = 0, max_ts = INT64_MIN;
        for (int i = 0; i < N; i++) {
                base += rand() % 20000;
                int64_t t = base - rand() % (L + 30000); /* some are late */
                if (max_ts != INT64_MIN && t < max_ts - L)
                        continue;
                if (t > max_ts)
                        max_ts = t;
                ts[n] = t;
                user[n] = rand() % USERS;
                type[n] = rand() % 10 == 0 ? ITD_EV_PURCHASE : rand() % 4;
                n++;
        }
        itd_labeler_t *lb = make((size_t)N, 0);
        int *label = malloc(n * sizeof(int)), *next = malloc(n * sizeof(int));
        int resolved = 0;
        itd_example_t ex[64];
        max_ts = INT64_MIN;
        for (int i = 0; i < n; i++) {
                itd_labeler_observe(lb, (uint64_t)user[i], ts[i],
                                    (itd_event_type_t)type[i]);
                float x[3] = {(float)i, 0, 0};
                uint32_t ids[2] = {0, 0};
                cr_assert_eq(itd_labeler_add(lb, (uint64_t)user[i], ts[i], x,
                                             ids, 0, NULL), ITD_OK);
                if (ts[i] > max_ts)
                        max_ts = ts[i];
                itd_labeler_advance(lb, max_ts - L);
                size_t k;
                while ((k = itd_labeler_take(lb, ex, 64)) > 0)
                        for (size_t j = 0; j < k; j++) {
                                int at = (int)ex[j].x[0];
                                label[at] = ex[j].label;
                                next[at] = ex[j].next;
                                resolved++;
                        }
        }
        itd_labeler_advance(lb, INT64_MAX);
        size_t k;
        while ((k = itd_labeler_take(lb, ex, 64)) > 0)
                for (size_t j = 0; j < k; j++) {
                        int at = (int)ex[j].x[0];
                        label[at] = ex[j].label;
                        next[at] = ex[j].next;
                        resolved++;
                }
        cr_assert_eq(resolved, n);
        int positives = 0;
        for (int i = 0; i < n; i++) {
                int want_label = 0, want_next = -1;
                for (int j = i + 1; j < n; j++) {
                        if (user[j] != user[i] || ts[j] < ts[i])
                                continue;
                        if (type[j] == ITD_EV_PURCHASE && ts[j] - ts[i] <= H)
                                want_label = 1;
                        if (want_next < 0) {
                                static const int map[] = {
                                    ITD_NEXT_VIEW, ITD_NEXT_SEARCH,
                                    ITD_NEXT_ADD_TO_CART, ITD_NEXT_VIEW,
                                    ITD_NEXT_PURCHASE, ITD_NEXT_VIEW};
                                want_next = ts[j] - ts[i] <= GAP
                                                ? map[type[j]]
                                                : ITD_NEXT_LEAVE;
                        }
                }
                if (want_next < 0)
                        want_next = ITD_NEXT_LEAVE;
                positives += want_label;
                cr_expect_eq(label[i], want_label, "label of event %d", i);
                cr_expect_eq(next[i], want_next, "next of event %d", i);
        }
        cr_expect_gt(positives, 50);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.positives, (uint64_t)positives);
        cr_expect_eq(s.pending, 0);
        itd_labeler_destroy(lb);
        free(ts);
        free(user);
        free(type);
        free(label);
        free(next);
}

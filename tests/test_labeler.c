/*
 * test_labeler.c - delayed labels: positives within the horizon, negatives
 * once the watermark passes it, next actions and LEAVE, the bounded pool
 * (grown on demand, its oldest pending dropped when full), a random stream
 * against a brute-force labelling, and snapshots (round trip, corruption,
 * configuration mismatch). labels.policy and untrained predictions are in
 * test_labeler_policy.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intentd/labeler.h"
#include "labeler_helpers.h"

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
        cr_expect_eq(ex[0].offset, 1000, "the offset it was added with");
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

/* Late data (docs/FEATURES.md): an event older than the watermark is
 * only observed, never added. It resolves what is still open and nothing
 * already resolved; it never makes a negative. */
Test(labeler, a_late_event_resolves_open_labels_and_never_closed_ones) {
        itd_labeler_t *lb = make(16, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);        /* A */
        cr_assert_eq(add(lb, 1, 1000 + GAP / 2), ITD_OK); /* B */
        cr_assert_eq(add(lb, 2, 1000 + GAP / 2), ITD_OK); /* C, other user */
        int64_t wm = 1000 + H + 1; /* A's horizon closed, B's open */
        itd_labeler_advance(lb, wm);
        itd_example_t ex[4];
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].ts_ms, 1000);
        cr_expect_eq(ex[0].label, 0);
        /* a purchase at 1000 + H arrives late (older than wm): inside A's
         * horizon, but A is resolved; inside B's, which is open */
        itd_labeler_observe(lb, 1, 1000 + H, ITD_EV_PURCHASE);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].ts_ms, 1000 + GAP / 2);
        cr_expect_eq(ex[0].user_hash, 1);
        cr_expect_eq(ex[0].label, 1);
        /* a late view of user 2 before C's time says nothing about C; C
         * stays pending until the watermark closes its horizon */
        itd_labeler_observe(lb, 2, 1000, ITD_EV_VIEW);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 1);
        cr_expect_eq(s.positives, 1);
        cr_expect_eq(s.negatives, 1);
        itd_labeler_advance(lb, 1000 + GAP / 2 + H + 1);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].label, 0);
        cr_expect_eq(ex[0].user_hash, 2);
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

Test(labeler, full_pool_drops_its_oldest_pending_predictions) {
        enum { N = 5, K = 3 };
        itd_labeler_t *lb = make(N, 0);
        /* one user each, so only the pool (not the per-user cap) is full */
        for (int i = 0; i < N + K; i++)
                cr_assert_eq(add(lb, (uint64_t)i, 1000 + 100 * i), ITD_OK,
                             "add %d", i);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, N);
        cr_expect_eq(s.dropped_full, K);
        /* every user purchases: the K oldest resolve nothing, the newest
         * N resolve positive with their own features */
        for (int i = 0; i < N + K; i++)
                itd_labeler_observe(lb, (uint64_t)i, 1000 + 100 * i + 50,
                                    ITD_EV_PURCHASE);
        itd_example_t ex[N + K];
        cr_assert_eq(itd_labeler_take(lb, ex, N + K), N);
        for (int i = 0; i < N; i++) {
                int64_t want = 1000 + 100 * (K + i);
                cr_expect_eq(ex[i].ts_ms, want, "example %d", i);
                cr_expect_eq(ex[i].user_hash, (uint64_t)(K + i));
                cr_expect_eq(ex[i].label, 1);
                cr_expect_eq(ex[i].next, ITD_NEXT_PURCHASE);
                cr_expect_eq(ex[i].judge, 1);
                cr_expect_float_eq(ex[i].x[0], (float)want, 0.0f,
                                   "features of the slot's new owner");
        }
        itd_labeler_advance(lb, INT64_MAX);
        cr_expect_eq(itd_labeler_take(lb, ex, N + K), 0, "nothing left");
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 0);
        cr_expect_eq(s.positives, N);
        cr_expect_eq(s.negatives, 0);
        cr_expect_eq(s.dropped_full, K);
        itd_labeler_destroy(lb);
}

Test(labeler, full_pool_drops_by_event_time_not_add_order) {
        itd_labeler_t *lb = make(3, 0);
        cr_assert_eq(add(lb, 1, 3000), ITD_OK);
        cr_assert_eq(add(lb, 2, 1000), ITD_OK); /* late: the oldest */
        cr_assert_eq(add(lb, 3, 2000), ITD_OK);
        cr_assert_eq(add(lb, 4, 4000), ITD_OK);
        itd_labeler_advance(lb, INT64_MAX);
        itd_example_t ex[4];
        size_t n = itd_labeler_take(lb, ex, 4);
        cr_assert_eq(n, 3);
        for (size_t i = 0; i < n; i++)
                cr_expect_neq(ex[i].user_hash, 2, "ts 1000 was dropped");
        itd_labeler_destroy(lb);
}

Test(labeler, full_pool_keeps_examples_not_yet_taken) {
        itd_labeler_t *lb = make(3, 0);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(add(lb, (uint64_t)i, 1000 + i), ITD_OK);
        itd_labeler_advance(lb, 1000 + H + 1); /* resolves user 0 only */
        /* the oldest pending (user 1) makes room, not the resolved one */
        cr_expect_eq(add(lb, 5, 2000), ITD_OK);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 2);
        cr_expect_eq(s.dropped_full, 1);
        itd_example_t ex[4];
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].user_hash, 0);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f,
                           "valid until the next call");
        itd_labeler_advance(lb, INT64_MAX);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 2);
        cr_expect_eq(ex[0].user_hash, 2);
        cr_expect_eq(ex[1].user_hash, 5);
        itd_labeler_destroy(lb);

        /* nothing pending, every slot waits for take: the new prediction
         * is the one not kept, and the waiting example stays intact */
        lb = make(1, 0);
        cr_assert_eq(add(lb, 1, 1000), ITD_OK);
        itd_labeler_advance(lb, INT64_MAX);
        cr_expect_eq(add(lb, 2, 5000), ITD_OK);
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 0);
        cr_expect_eq(s.dropped_full, 1);
        cr_assert_eq(itd_labeler_take(lb, ex, 4), 1);
        cr_expect_eq(ex[0].user_hash, 1);
        cr_expect_float_eq(ex[0].x[0], 1000.0f, 0.0f);
        itd_labeler_observe(lb, 2, 5100, ITD_EV_PURCHASE);
        itd_labeler_advance(lb, INT64_MAX);
        cr_expect_eq(itd_labeler_take(lb, ex, 4), 0, "user 2 was not kept");
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
        cr_assert_eq(itd_labeler_add(lb, 1, 0, 0, x, ids, 0.5f, NULL), ITD_OK);
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
                cr_assert_eq(itd_labeler_add(lb, (uint64_t)user[i], ts[i],
                                             (int64_t)i, x, ids, 0, NULL),
                             ITD_OK);
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

/* ---------------------------------------------------- pool and snapshots */

static long vm_size_bytes(void) {
        FILE *f = fopen("/proc/self/statm", "r");
        long size = 0;
        cr_assert_not_null(f);
        cr_assert_eq(fscanf(f, "%ld", &size), 1);
        fclose(f);
        return size * sysconf(_SC_PAGESIZE);
}

Test(labeler, pool_grows_on_demand_up_to_max_pending) {
        /* eagerly, 1M x 256 floats would reserve over 1 GB */
        itd_labeler_conf_t c = {.dim = 256, .n_ids = 12, .horizon_ms = H,
                                .session_gap_ms = GAP,
                                .max_pending = 1000000};
        long before = vm_size_bytes();
        itd_labeler_t *big = itd_labeler_new(&c, NULL, 0);
        cr_assert_not_null(big);
        long grown = vm_size_bytes() - before;
        cr_expect_lt(grown, 64L << 20, "a new labeler reserved %ld bytes",
                     grown);
        itd_labeler_destroy(big);

        /* a capacity that is no power of two is met exactly */
        itd_labeler_t *lb = make(3000, 0);
        for (int i = 0; i < 3000; i++)
                cr_assert_eq(add(lb, (uint64_t)(i % 700), 1000 + i), ITD_OK,
                             "add %d", i);
        /* full: the oldest (ts 1000) makes room, the pool does not grow */
        cr_expect_eq(add(lb, 1, 5000), ITD_OK);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        cr_expect_eq(s.pending, 3000);
        cr_expect_eq(s.dropped_full, 1);
        /* every one of them resolves, features intact after the moves */
        itd_labeler_advance(lb, INT64_MAX);
        itd_example_t ex[256];
        size_t n, total = 0;
        while ((n = itd_labeler_take(lb, ex, 256)) > 0) {
                for (size_t j = 0; j < n; j++)
                        cr_expect_float_eq(ex[j].x[0], (float)ex[j].ts_ms,
                                           0.0f);
                total += n;
        }
        cr_expect_eq(total, 3000);
        itd_labeler_destroy(lb);
}

/* Snapshot mid-stream, restore, and drive both with the same calls. */
static void check_snapshot_round_trip(int policy) {
        itd_labeler_conf_t c = small_conf();
        c.policy = policy;
        itd_labeler_t *a = itd_labeler_new(&c, NULL, 0);
        unsigned seed = 17;
        int64_t now = 1000000;
        itd_example_t ex[16], ey[16];
        size_t n;
        for (int i = 0; i < 6000; i++)
                random_op(a, &seed, &now, ex, &n);
        /* leave resolved examples untaken and a taken batch outstanding */
        itd_labeler_advance(a, now - 20 * 60000);
        n = itd_labeler_take(a, ex, 3);
        itd_labeler_stats_t sa, sb;
        itd_labeler_stats(a, &sa);
        cr_assert_gt(sa.pending, 100, "too few pending: %llu",
                     (unsigned long long)sa.pending);
        size_t len;
        unsigned char *snap = labeler_bytes(a, &len);
        char err[256] = "";
        itd_labeler_t *b = labeler_from(snap, len, &c, err, sizeof(err));
        cr_assert_not_null(b, "%s", err);
        itd_labeler_stats(b, &sb);
        cr_expect(memcmp(&sa, &sb, sizeof(sa)) == 0);

        unsigned seed_a = 23, seed_b = 23;
        int64_t now_a = now, now_b = now;
        size_t compared = 0;
        for (int i = 0; i < 6000; i++) {
                size_t na, nb;
                random_op(a, &seed_a, &now_a, ex, &na);
                random_op(b, &seed_b, &now_b, ey, &nb);
                cr_assert_eq(na, nb, "op %d", i);
                for (size_t j = 0; j < na; j++) {
                        cr_assert_eq(ex[j].ts_ms, ey[j].ts_ms, "op %d", i);
                        cr_assert_eq(ex[j].user_hash, ey[j].user_hash);
                        cr_assert_eq(ex[j].offset, ey[j].offset);
                        cr_assert_eq(ex[j].label, ey[j].label);
                        cr_assert_eq(ex[j].next, ey[j].next);
                        cr_assert_eq(ex[j].judge, ey[j].judge);
                        cr_assert_eq(ex[j].train, ey[j].train);
                        cr_assert(ex[j].score == ey[j].score);
                        cr_assert(memcmp(ex[j].next_probs, ey[j].next_probs,
                                         sizeof(ex[j].next_probs)) == 0);
                        cr_assert(memcmp(ex[j].x, ey[j].x,
                                         3 * sizeof(float)) == 0);
                        cr_assert(memcmp(ex[j].ids, ey[j].ids,
                                         2 * sizeof(uint32_t)) == 0);
                        compared++;
                }
        }
        itd_labeler_advance(a, INT64_MAX);
        itd_labeler_advance(b, INT64_MAX);
        while ((n = itd_labeler_take(a, ex, 16)) > 0) {
                cr_assert_eq(itd_labeler_take(b, ey, 16), n);
                for (size_t j = 0; j < n; j++) {
                        cr_assert_eq(ex[j].ts_ms, ey[j].ts_ms);
                        cr_assert_eq(ex[j].user_hash, ey[j].user_hash);
                        cr_assert_eq(ex[j].offset, ey[j].offset);
                        cr_assert_eq(ex[j].label, ey[j].label);
                        compared++;
                }
        }
        cr_expect_eq(itd_labeler_take(b, ey, 16), 0);
        itd_labeler_stats(a, &sa);
        itd_labeler_stats(b, &sb);
        cr_expect(memcmp(&sa, &sb, sizeof(sa)) == 0);
        cr_expect_gt(compared, 1000);
        cr_expect_gt(sa.dropped_full, 0);
        free(snap);
        itd_labeler_destroy(a);
        itd_labeler_destroy(b);
}

Test(labeler, restored_snapshot_resolves_the_same_examples_in_order) {
        check_snapshot_round_trip(ITD_LABELS_WAIT);
}

/* Fake entries queued, dropped predictions kept for them (per-user cap 6),
 * slot flags: all survive a snapshot. */
Test(labeler, fake_negative_snapshot_resolves_the_same_examples_in_order) {
        check_snapshot_round_trip(ITD_LABELS_FAKE_NEGATIVE);
}

Test(labeler, restore_detects_corruption_truncation_and_other_conf) {
        itd_labeler_conf_t c = small_conf();
        itd_labeler_t *lb = itd_labeler_new(&c, NULL, 0);
        unsigned seed = 2;
        int64_t now = 0;
        itd_example_t ex[16];
        size_t n;
        for (int i = 0; i < 1500; i++)
                random_op(lb, &seed, &now, ex, &n);
        size_t len;
        unsigned char *snap = labeler_bytes(lb, &len);
        char err[512];
        size_t at[] = {3, 20, 100, len / 2, len - 1};
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
                snap[at[k]] ^= 0x01;
                err[0] = '\0';
                itd_labeler_t *r = labeler_from(snap, len, &c, err,
                                                sizeof(err));
                cr_expect_null(r, "flip at byte %zu went unnoticed", at[k]);
                itd_labeler_destroy(r);
                cr_expect(strstr(err, "corrupt labeler snapshot") ||
                              strstr(err, "incompatible labeler snapshot"),
                          "flip at %zu: %s", at[k], err);
                cr_expect_eq(restored_code,
                             strstr(err, "corrupt") ? ITD_ERR_CORRUPT
                                                    : ITD_ERR_INCOMPATIBLE,
                             "flip at %zu: code %d for %s", at[k],
                             (int)restored_code, err);
                snap[at[k]] ^= 0x01;
        }
        size_t cut[] = {0, 50, len / 2, len - 1};
        for (size_t k = 0; k < sizeof(cut) / sizeof(cut[0]); k++) {
                err[0] = '\0';
                itd_labeler_t *r = labeler_from(snap, cut[k], &c, err,
                                                sizeof(err));
                cr_expect_null(r);
                itd_labeler_destroy(r);
                char want[64];
                snprintf(want, sizeof(want), "input ended at byte %zu",
                         cut[k]);
                cr_expect(strstr(err, "truncated labeler snapshot") &&
                              strstr(err, want),
                          "cut at %zu: %s", cut[k], err);
                cr_expect_eq(restored_code, ITD_ERR_CORRUPT, "cut at %zu",
                             cut[k]);
        }
        itd_labeler_conf_t other = c;
        other.dim = 4;
        cr_expect_null(labeler_from(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "incompatible labeler snapshot") &&
                      strstr(err, "labeler.dim = 3"), "%s", err);
        cr_expect_eq(restored_code, ITD_ERR_INCOMPATIBLE);
        other = c;
        other.horizon_ms = H + 1;
        cr_expect_null(labeler_from(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "horizon_ms"), "%s", err);
        itd_labeler_stats_t s;
        itd_labeler_stats(lb, &s);
        other = c;
        other.max_pending = 1;
        cr_expect_null(labeler_from(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "max_pending"), "%s", err);
        cr_expect_eq(restored_code, ITD_ERR_INCOMPATIBLE);
        itd_labeler_t *r = labeler_from(snap, len, &c, err, sizeof(err));
        cr_expect_not_null(r, "%s", err);
        itd_labeler_destroy(r);
        free(snap);
        itd_labeler_destroy(lb);
}

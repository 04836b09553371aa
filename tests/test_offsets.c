/*
 * test_offsets.c - the commit position never passes an unacknowledged
 * output (at-least-once), whatever order delivery reports come in.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "intentd/offsets.h"

Test(offsets, commits_only_the_fully_acknowledged_prefix) {
        itd_offsets_t *ot = itd_offsets_new();
        uint64_t t[5];
        for (int i = 0; i < 5; i++)
                t[i] = itd_offsets_track(ot, 2, 100 + i, 1);
        int64_t next;
        cr_expect_eq(itd_offsets_advance(ot, 2, &next), 0);
        cr_expect_eq(next, -1);
        itd_offsets_ack(ot, t[1]);
        itd_offsets_ack(ot, t[2]);
        itd_offsets_advance(ot, 2, &next);
        cr_expect_eq(next, -1, "offset 100 is not acknowledged yet");
        itd_offsets_ack(ot, t[0]);
        cr_expect_eq(itd_offsets_advance(ot, 2, &next), 1);
        cr_expect_eq(next, 103);
        cr_expect_eq(itd_offsets_in_flight(ot), 2);
        itd_offsets_destroy(ot);
}

Test(offsets, filtered_events_need_no_acknowledgement) {
        itd_offsets_t *ot = itd_offsets_new();
        itd_offsets_track(ot, 0, 7, 0);
        uint64_t t = itd_offsets_track(ot, 0, 8, 2);
        itd_offsets_track(ot, 0, 9, 0);
        int64_t next;
        itd_offsets_advance(ot, 0, &next);
        cr_expect_eq(next, 8);
        itd_offsets_ack(ot, t);
        itd_offsets_advance(ot, 0, &next);
        cr_expect_eq(next, 8, "one of two outputs still waits");
        itd_offsets_ack(ot, t);
        itd_offsets_advance(ot, 0, &next);
        cr_expect_eq(next, 10);
        itd_offsets_destroy(ot);
}

Test(offsets, stale_tokens_of_a_revoked_partition_are_ignored) {
        itd_offsets_t *ot = itd_offsets_new();
        uint64_t old = itd_offsets_track(ot, 1, 50, 1);
        itd_offsets_reset(ot, 1);
        cr_expect_eq(itd_offsets_in_flight(ot), 0);
        uint64_t fresh = itd_offsets_track(ot, 1, 60, 1);
        itd_offsets_ack(ot, old);
        int64_t next;
        itd_offsets_advance(ot, 1, &next);
        cr_expect_eq(next, -1, "an old report must not acknowledge offset 60");
        itd_offsets_ack(ot, fresh);
        itd_offsets_advance(ot, 1, &next);
        cr_expect_eq(next, 61);
        itd_offsets_destroy(ot);
}

Test(offsets, random_acknowledgement_order_over_many_partitions) {
        enum { P = 4, N = 5000 };
        itd_offsets_t *ot = itd_offsets_new();
        uint64_t *tok = malloc(sizeof(uint64_t) * P * N);
        for (int i = 0; i < N; i++)
                for (int p = 0; p < P; p++)
                        tok[p * N + i] = itd_offsets_track(ot, p, i, 1);
        /* Fisher-Yates with a fixed seed: reports arrive in any order. */
        srand(42);
        for (int i = P * N - 1; i > 0; i--) {
                int j = rand() % (i + 1);
                uint64_t x = tok[i];
                tok[i] = tok[j];
                tok[j] = x;
        }
        int64_t last[P] = {-1, -1, -1, -1};
        for (int i = 0; i < P * N; i++) {
                itd_offsets_ack(ot, tok[i]);
                for (int p = 0; p < P; p++) {
                        int64_t next;
                        itd_offsets_advance(ot, p, &next);
                        cr_assert(next >= last[p], "commit position went back");
                        last[p] = next;
                }
        }
        for (int p = 0; p < P; p++)
                cr_expect_eq(last[p], N);
        cr_expect_eq(itd_offsets_in_flight(ot), 0);
        free(tok);
        itd_offsets_destroy(ot);
}

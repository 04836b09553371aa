/*
 * test_engine_erase.c - erasure on request at the engine
 * (itd_engine_erase): after one user is erased, the snapshot of the
 * partition that held them has no trace of them (not their id, in the
 * state's arena for a long id, not their hash, in the labeler's slots and
 * the trigger tables, not the frontier's tag), their pending predictions
 * and queued examples are gone and never judged, the other users are
 * untouched, and their later events start from empty state.
 */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enginesim.h"
#include "intentd/partition.h"
#include "intentd/state.h"
#include "testutil.h"

/* Longer than a user record's inline id: it lives in the state's arena. */
#define LONG_ID "erase-me-please-this-id-is-longer-than-the-inline-part"
#define N_EV 600
#define BATCH 32

static int holds(const char *buf, size_t len, const void *needle, size_t n) {
        return memmem(buf, len, needle, n) != NULL;
}

/* The generated stream with every fifth event made the long-id user's
 * (on partition 0, where even user numbers go), ending with events
 * recent enough that their predictions still wait for a label. */
static void stream(itd_row_t *in, size_t n) {
        gen_stream(in, n, 40, 2 * 60 * MIN_MS, 3);
        for (size_t i = 0; i < n; i += 5) {
                itd_row_t *r = &in[i];
                set_input(r, LONG_ID, r->ev.ts_ms, r->ev.type, 0, r->offset);
        }
}

static sim_t *engine(void) {
        /* every score crosses the trigger threshold: every user has a
         * trigger entry (and a risk trigger entry, made for every user
         * judged) */
        const kv_t kv[] = {{"topics.risk", "risk"},
                           {"labels.policy", "fake_negative"},
                           {"triggers.rule", "absolute"},
                           {"triggers.enter", "0.001"},
                           {"triggers.exit", "0"}};
        itd_conf_t *conf = conf_with(kv, sizeof kv / sizeof kv[0]);
        sim_t *s = sim_new(conf);
        itd_conf_destroy(conf);
        itd_engine_enable_triggers(s->eng);
        return s;
}

/* An engine fed the stream in[] (filled here), the long-id user erased. */
static sim_t *fed_and_erased(itd_row_t *in) {
        stream(in, N_EV);
        sim_t *s = engine();
        sim_feed(s, in, N_EV, BATCH);
        itd_partition_erased_t e;
        cr_assert_eq(itd_engine_erase(s->eng, LONG_ID, itd_user_hash(LONG_ID),
                                      &e, NULL, 0),
                     1);
        return s;
}

Test(engine_erase, the_partition_snapshot_keeps_no_trace_of_the_user) {
        static itd_row_t in[N_EV];
        stream(in, N_EV);
        sim_t *s = engine();
        sim_feed(s, in, N_EV, BATCH);
        uint64_t h = itd_user_hash(LONG_ID);
        uint32_t tag = (uint32_t)(h >> 32);

        size_t len;
        char *before = partition_snapshot(s->eng, 0, &len);
        /* the checks below would pass vacuously without these */
        cr_assert(holds(before, len, LONG_ID, strlen(LONG_ID)));
        cr_assert(holds(before, len, &h, sizeof h));
        free(before);
        itd_user_summary_t u;
        int32_t part;
        cr_assert_eq(itd_engine_user(s->eng, "user2", &u, &part), ITD_OK);
        itd_user_summary_t other_before = u;
        cr_assert_eq(itd_engine_user(s->eng, LONG_ID, &u, &part), ITD_OK);
        uint64_t seen = 0;
        for (int t = 0; t < ITD_EV__COUNT; t++)
                seen += u.lifetime[t];

        itd_partition_erased_t e;
        int32_t held[4] = {-1, -1, -1, -1};
        cr_assert_eq(itd_engine_erase(s->eng, LONG_ID, h, &e, held, 4), 1);
        cr_expect_eq(held[0], 0);
        cr_expect_eq(e.users, 1);
        cr_expect_eq(e.events, seen);
        cr_expect_gt(seen, 0);
        cr_expect_gt(e.pending, 0, "the newest predictions wait for labels");
        cr_expect_eq(e.triggers, 1);
        cr_expect_eq(e.risk_triggers, 1);

        char *after = partition_snapshot(s->eng, 0, &len);
        cr_expect_not(holds(after, len, LONG_ID, strlen(LONG_ID)),
                      "the id is still in the snapshot");
        cr_expect_not(holds(after, len, &h, sizeof h),
                      "the user hash is still in the snapshot");
        cr_expect_not(holds(after, len, &tag, sizeof tag),
                      "the user's tag is still in the snapshot");
        free(after);
        cr_expect_eq(itd_engine_user(s->eng, LONG_ID, &u, &part),
                     ITD_ERR_NOT_FOUND);
        /* the others are untouched */
        cr_assert_eq(itd_engine_user(s->eng, "user2", &u, &part), ITD_OK);
        cr_expect_eq(memcmp(u.lifetime, other_before.lifetime,
                            sizeof u.lifetime),
                     0);

        /* a second request finds nothing */
        cr_expect_eq(itd_engine_erase(s->eng, LONG_ID, h, &e, NULL, 0), 0);
        cr_expect_eq(e.users + e.pending + e.queued + e.triggers, 0);
        sim_destroy(s);
}

Test(engine_erase, pending_predictions_are_never_judged) {
        static itd_row_t in[N_EV];
        uint64_t h = itd_user_hash(LONG_ID);
        sim_t *s = fed_and_erased(in);
        size_t judged_before = s->n_ex;
        itd_engine_advance(s->eng, in[N_EV - 1].ev.ts_ms + FAR);
        cr_expect_gt(s->n_ex, judged_before, "others' labels resolve");
        for (size_t i = judged_before; i < s->n_ex; i++)
                cr_expect_neq(s->ex[i].user_hash, h,
                              "example %zu is the erased user's", i);
        itd_engine_stats_t st = sim_stats(s);
        cr_expect_eq(st.pending, 0);
        sim_destroy(s);
}

Test(engine_erase, later_events_start_from_empty_state) {
        static itd_row_t in[N_EV];
        sim_t *s = fed_and_erased(in);

        /* one new event of the erased user, and the same of a user never
         * seen, at the same time in the same partition */
        int64_t ts = in[N_EV - 1].ev.ts_ms + SEC_MS;
        itd_row_t later[2];
        set_input(&later[0], LONG_ID, ts, ITD_EV_VIEW, 0, N_EV);
        set_input(&later[1], "never-seen-before", ts, ITD_EV_VIEW, 0,
                  N_EV + 1);
        size_t at = s->n;
        sim_feed(s, later, 2, 2);
        itd_user_summary_t a, b;
        int32_t pa, pb;
        cr_assert_eq(itd_engine_user(s->eng, LONG_ID, &a, &pa), ITD_OK);
        cr_assert_eq(itd_engine_user(s->eng, "never-seen-before", &b, &pb),
                     ITD_OK);
        cr_expect_eq(a.first_ts_ms, ts / 1000 * 1000);
        cr_expect_eq(a.session_events, 1);
        cr_expect_eq(memcmp(a.lifetime, b.lifetime, sizeof a.lifetime), 0);
        cr_expect_eq(memcmp(a.counts, b.counts, sizeof a.counts), 0);
        /* what the model saw: the same features as a new user's */
        cr_expect(same_score(s->out[at].purchase_probability,
                             s->out[at + 1].purchase_probability),
                  "%g vs %g", (double)s->out[at].purchase_probability,
                  (double)s->out[at + 1].purchase_probability);
        sim_destroy(s);
}

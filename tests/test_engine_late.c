/*
 * test_engine_late.c - late data through the engine (daemon/engine.c):
 * every valid event gets a prediction; one future-dated event does not
 * make the events after it late; a late event changes no state, adds no
 * pending label and fires no trigger, but still resolves the open label of
 * an earlier prediction; the counters add up (docs/FEATURES.md, "Late
 * data").
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "intentd/conf.h"
#include "intentd/event.h"

#define MIN_MS 60000LL
#define T0 1700000000000LL

static itd_conf_t *small_conf(void) {
        itd_conf_t *conf = itd_conf_new();
        char err[256];
        static const char *const kv[][2] = {
            {"model.embedding.buckets", "1024"},
            {"model.hidden", "16"},
            {"labels.horizon", "30m"},
            {"windows.allowed_lateness", "5s"},
            /* every score crosses: a trigger would fire for any event */
            {"triggers.enter", "0.0001"},
            {"triggers.exit", "0.00005"},
        };
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
                cr_assert_eq(itd_conf_set(conf, kv[i][0], kv[i][1], err,
                                          sizeof err), ITD_OK, "%s: %s",
                             kv[i][0], err);
        return conf;
}

typedef struct run_s {
        itd_engine_t *eng;
        itd_input_t in[512];
        itd_prediction_t out[512];
        itd_outcome_t oc[512];
        size_t n;
        int64_t offset;
} run_t;

static void add(run_t *r, const char *user, int64_t ts, itd_event_type_t t) {
        cr_assert_lt(r->n, 512);
        itd_input_t *in = &r->in[r->n++];
        itd_event_clear(&in->ev);
        snprintf(in->ev.user_id, sizeof in->ev.user_id, "%s", user);
        in->ev.ts_ms = ts;
        in->ev.type = t;
        in->partition = 0;
        in->offset = r->offset++;
}

/* Processes what was added; every outcome must be a prediction. */
static void flush(run_t *r) {
        cr_assert_eq(itd_engine_process(r->eng, "events", r->in, r->n, r->out,
                                         r->oc), ITD_OK);
        for (size_t i = 0; i < r->n; i++) {
                cr_expect_eq(r->oc[i], ITD_OUT_PREDICTED,
                             "%s at %lld got no prediction",
                             r->in[i].ev.user_id,
                             (long long)(r->in[i].ev.ts_ms - T0));
                cr_expect_str_eq(r->out[i].user_id, r->in[i].ev.user_id);
        }
        r->n = 0;
}

static run_t *run_new(const itd_conf_t *conf) {
        static run_t r;
        memset(&r, 0, sizeof r);
        char err[256];
        r.eng = itd_engine_new(conf, err, sizeof err);
        cr_assert(r.eng, "%s", err);
        itd_engine_enable_triggers(r.eng);
        return &r;
}

Test(engine_late, one_future_dated_event_does_not_silence_the_partition) {
        itd_conf_t *conf = small_conf();
        run_t *r = run_new(conf);
        char user[32];
        for (int i = 0; i < 20; i++) {
                snprintf(user, sizeof user, "u%d", i);
                add(r, user, T0 + i * 1000, ITD_EV_VIEW);
        }
        /* a client whose clock is 50 minutes ahead (within max_future) */
        add(r, "stray", T0 + 50 * MIN_MS, ITD_EV_VIEW);
        for (int i = 20; i < 200; i++) {
                snprintf(user, sizeof user, "u%d", i % 30);
                add(r, user, T0 + i * 1000, ITD_EV_VIEW);
        }
        flush(r);
        itd_engine_stats_t s;
        itd_engine_stats(r->eng, &s);
        cr_expect_eq(s.events, 201);
        cr_expect_eq(s.predictions, 201);
        cr_expect_eq(s.late, 0, "%llu events after the stray one were late",
                     (unsigned long long)s.late);
        cr_expect_eq(s.filtered, 0);
        /* the stray event's prediction waits like any other: nothing got
         * resolved as negative by a watermark an hour ahead */
        cr_expect_eq(s.examples_neg, 0);
        itd_engine_part_info_t info;
        cr_assert_eq(itd_engine_partition_info(r->eng, 0, &info), ITD_OK);
        cr_expect_lt(info.watermark_ms, T0 + 200 * 1000);
        itd_engine_destroy(r->eng);
        itd_conf_destroy(conf);
}

Test(engine_late, a_late_event_is_predicted_changes_no_state_and_resolves_open_labels) {
        itd_conf_t *conf = small_conf();
        run_t *r = run_new(conf);
        char user[32];
        add(r, "buyer", T0 + 1000, ITD_EV_ADD_TO_CART);
        for (int i = 0; i < 40; i++) {
                snprintf(user, sizeof user, "u%d", i);
                add(r, user, T0 + 10 * MIN_MS + i * 1000, ITD_EV_VIEW);
        }
        flush(r);
        itd_engine_stats_t before, after;
        itd_engine_stats(r->eng, &before);
        itd_engine_part_info_t info;
        cr_assert_eq(itd_engine_partition_info(r->eng, 0, &info), ITD_OK);
        cr_assert_gt(info.watermark_ms, T0 + 5 * MIN_MS);
        cr_assert_eq(before.examples_pos, 0);
        cr_assert_eq(before.late, 0);

        /* The buyer's phone uploads its purchase 9 minutes late: within
         * the 30-minute horizon of the cart prediction, whose label is
         * still open. A user never seen before sends a late view too. */
        add(r, "buyer", T0 + MIN_MS, ITD_EV_PURCHASE);
        add(r, "newcomer", T0 + 2 * MIN_MS, ITD_EV_VIEW);
        flush(r);
        itd_engine_stats(r->eng, &after);
        cr_expect_eq(after.predictions, before.predictions + 2);
        cr_expect_eq(after.late, 2);
        cr_expect_eq(after.users, before.users,
                     "a late event creates no user");
        cr_expect_eq(after.pending, before.pending - 1,
                     "the cart prediction resolved; the late ones add "
                     "nothing pending");
        cr_expect_eq(after.examples_pos, 1,
                     "a late purchase inside an open horizon is a positive");
        cr_expect_null(itd_engine_trigger(r->eng, 0),
                       "a late event fires no trigger");
        cr_expect_null(itd_engine_trigger(r->eng, 1));
        cr_expect_eq(after.events, after.predictions + after.filtered);

        /* The dumped state has no purchase for the buyer: late events do
         * not change windows. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_eq(itd_engine_dump_state(r->eng, f), ITD_OK);
        fclose(f);
        cr_assert(strstr(text, "\"buyer\"") != NULL, "%s", text);
        cr_expect(strstr(text, "\"PURCHASE\":1") == NULL, "%s", text);
        cr_expect(strstr(text, "newcomer") == NULL);
        free(text);
        itd_engine_destroy(r->eng);
        itd_conf_destroy(conf);
}

/* A purchase that arrives after the watermark closed the horizon of an
 * earlier prediction changes nothing: that label was already negative. */
Test(engine_late, a_late_purchase_does_not_reopen_a_closed_label) {
        itd_conf_t *conf = small_conf();
        run_t *r = run_new(conf);
        char user[32];
        add(r, "buyer", T0, ITD_EV_VIEW);
        for (int i = 0; i < 40; i++) {
                snprintf(user, sizeof user, "u%d", i);
                add(r, user, T0 + 40 * MIN_MS + i * 1000, ITD_EV_VIEW);
        }
        flush(r);
        itd_engine_stats_t before, after;
        itd_engine_stats(r->eng, &before);
        cr_assert_eq(before.examples_neg, 1,
                     "the buyer's view resolved negative");
        add(r, "buyer", T0 + 20 * MIN_MS, ITD_EV_PURCHASE);
        flush(r);
        itd_engine_stats(r->eng, &after);
        cr_expect_eq(after.late, 1);
        cr_expect_eq(after.examples_pos, 0);
        cr_expect_eq(after.examples_neg, before.examples_neg);
        itd_engine_destroy(r->eng);
        itd_conf_destroy(conf);
}

/*
 * test_trigger.c - marketing triggers: hysteresis between triggers.enter
 * and triggers.exit, per-user cool-down in event time, independence of
 * users, bounded memory with LRU eviction, snapshots, and the Avro record.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/codec.h"
#include "intentd/conf.h"
#include "intentd/trigger.h"
#include "testutil.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define T0 1700000000000LL /* an event time in 2023 */

/* Exact: floats that went through Avro's 4-byte float come back
 * bit-identical, and 0.5 parses exactly. */
#define FLOAT_EXACT 0.0f

/* An absolute rule; the relative parameters valid but unused. */
static itd_trigger_conf_t conf_of(float enter, float exit, int64_t cool_ms,
                                  size_t max_users) {
        return (itd_trigger_conf_t){.rule = ITD_TRIGGER_RULE_ABSOLUTE,
                                    .enter = enter, .exit = exit,
                                    .top_percent = 1, .exit_top_percent = 5,
                                    .lift = 3, .exit_lift = 1.5,
                                    .half_life_events = 10000,
                                    .min_events = 100,
                                    .cooldown_ms = cool_ms,
                                    .max_users = max_users};
}

static itd_triggers_t *make(float enter, float exit, int64_t cool_ms,
                            size_t max_users) {
        char err[256];
        itd_trigger_conf_t c = conf_of(enter, exit, cool_ms, max_users);
        itd_triggers_t *t = itd_triggers_new(&c, err, sizeof err);
        cr_assert(t, "itd_triggers_new: %s", err);
        return t;
}

/* Feeds one event (no staleness reference); returns 0 (nothing), 'U' or
 * 'D'. */
static int feed(itd_triggers_t *t, uint64_t user, int64_t ts, float score) {
        itd_trigger_fire_t f = {.direction = ITD_TRIGGER__COUNT};
        int fired = itd_triggers_update(t, user, ts, INT64_MIN, score, &f);
        if (!fired)
                return 0;
        cr_assert(f.direction == ITD_TRIGGER_UP ||
                  f.direction == ITD_TRIGGER_DOWN);
        return f.direction == ITD_TRIGGER_UP ? 'U' : 'D';
}

Test(trigger, oscillating_around_enter_fires_once_until_below_exit) {
        itd_triggers_t *t = make(0.5f, 0.3f, 0, 16);
        /* One event a minute; cool-down 0 so only hysteresis acts. */
        static const struct {
                float score;
                int want;
        } rows[] = {
            {0.10f, 0},   {0.49f, 0},   {0.50f, 'U'}, /* at enter: fires */
            {0.45f, 0},   {0.55f, 0},   {0.40f, 0},   {0.60f, 0},
            {0.31f, 0},   {0.30f, 0},   /* at exit is not below it */
            {0.70f, 0},   {0.29f, 'D'}, /* below exit: re-armed */
            {0.35f, 0},   {0.49f, 0},   {0.51f, 'U'}, {0.52f, 0},
            {0.05f, 'D'}, {0.04f, 0},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
                cr_expect_eq(feed(t, 42, T0 + (int64_t)i * MIN_MS,
                                  rows[i].score),
                             rows[i].want, "row %zu (score %.2f)", i,
                             (double)rows[i].score);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.fired_up, 2);
        cr_expect_eq(st.fired_down, 2);
        itd_triggers_destroy(t);
}

Test(trigger, cooldown_counts_event_time_not_wall_time) {
        /* All calls happen within microseconds of wall time; only the
         * event timestamps say whether an hour has passed. */
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 16);
        cr_expect_eq(feed(t, 7, T0, 0.9f), 'U');
        cr_expect_eq(feed(t, 7, T0 + 10 * MIN_MS, 0.1f), 'D');
        /* Re-armed, but 20 minutes after the UP: held back. */
        cr_expect_eq(feed(t, 7, T0 + 20 * MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(t, 7, T0 + 59 * MIN_MS, 0.9f), 0);
        /* The first event at the end of the cool-down that is still high
         * fires: the crossing was held back, not forgotten. */
        cr_expect_eq(feed(t, 7, T0 + HOUR_MS, 0.8f), 'U');
        cr_expect_eq(feed(t, 7, T0 + HOUR_MS + MIN_MS, 0.9f), 0);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.held_back, 2);
        itd_triggers_destroy(t);
}

Test(trigger, a_held_back_crossing_that_falls_back_does_not_fire_later) {
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 16);
        cr_expect_eq(feed(t, 7, T0, 0.9f), 'U');
        cr_expect_eq(feed(t, 7, T0 + MIN_MS, 0.1f), 'D');
        cr_expect_eq(feed(t, 7, T0 + 2 * MIN_MS, 0.9f), 0); /* held back */
        /* After the cool-down the score is low: nothing to fire. */
        cr_expect_eq(feed(t, 7, T0 + 2 * HOUR_MS, 0.4f), 0);
        cr_expect_eq(feed(t, 7, T0 + 2 * HOUR_MS + MIN_MS, 0.5f), 'U');
        itd_triggers_destroy(t);
}

Test(trigger, an_event_older_than_the_last_up_is_inside_the_cooldown) {
        itd_triggers_t *t = make(0.5f, 0.3f, 0, 16);
        cr_expect_eq(feed(t, 9, T0, 0.9f), 'U');
        cr_expect_eq(feed(t, 9, T0 + 1000, 0.1f), 'D');
        /* Out of order: event time before the UP, even with cool-down 0. */
        cr_expect_eq(feed(t, 9, T0 - 1000, 0.9f), 0);
        cr_expect_eq(feed(t, 9, T0, 0.9f), 'U');
        itd_triggers_destroy(t);
}

Test(trigger, users_are_independent) {
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 16);
        cr_expect_eq(feed(t, 1, T0, 0.9f), 'U');
        /* User 2 crosses in user 1's cool-down: fires for user 2. */
        cr_expect_eq(feed(t, 2, T0 + MIN_MS, 0.9f), 'U');
        /* User 1 stays high: no repeat; user 3 low: nothing. */
        cr_expect_eq(feed(t, 1, T0 + 2 * MIN_MS, 0.95f), 0);
        cr_expect_eq(feed(t, 3, T0 + 2 * MIN_MS, 0.2f), 0);
        /* User 2 falls: only user 2 re-arms. */
        cr_expect_eq(feed(t, 2, T0 + 3 * MIN_MS, 0.1f), 'D');
        cr_expect_eq(feed(t, 1, T0 + 3 * MIN_MS, 0.45f), 0);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.users, 2, "user 3 never fired and needs no entry");
        itd_triggers_destroy(t);
}

Test(trigger, non_finite_scores_change_nothing) {
        itd_triggers_t *t = make(0.5f, 0.3f, 0, 16);
        cr_expect_eq(feed(t, 5, T0, NAN), 0);
        cr_expect_eq(feed(t, 5, T0, INFINITY), 0);
        cr_expect_eq(feed(t, 5, T0, 0.9f), 'U');
        cr_expect_eq(feed(t, 5, T0 + 1, -INFINITY), 0);
        cr_expect_eq(feed(t, 5, T0 + 2, 0.1f), 'D');
        itd_triggers_destroy(t);
}

Test(trigger, full_table_forgets_the_least_recently_seen_user) {
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 3);
        for (uint64_t u = 1; u <= 3; u++)
                cr_expect_eq(feed(t, u, T0, 0.9f), 'U');
        /* Seeing user 1 again makes user 2 the least recently seen. */
        cr_expect_eq(feed(t, 1, T0 + MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(t, 4, T0 + MIN_MS, 0.9f), 'U');
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.users, 3);
        cr_expect_eq(st.evicted, 1);
        /* Users 1, 3, 4 are still remembered: in cool-down, disarmed. */
        cr_expect_eq(feed(t, 1, T0 + 2 * MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(t, 3, T0 + 2 * MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(t, 4, T0 + 2 * MIN_MS, 0.9f), 0);
        /* User 2 was forgotten: it comes back armed, out of cool-down. */
        cr_expect_eq(feed(t, 2, T0 + 2 * MIN_MS, 0.9f), 'U');
        itd_triggers_destroy(t);
}

Test(trigger, many_users_grow_and_evict_without_losing_the_recent_ones) {
        /* Past the first doubling and the cap, with deletions in between:
         * the index must stay consistent (backward-shift deletion). */
        const size_t cap = 5000;
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, cap);
        const uint64_t n = 20000;
        for (uint64_t u = 0; u < n; u++)
                cr_assert_eq(feed(t, u * 0x9E3779B97F4A7C15ULL, T0, 0.9f),
                             'U', "user %llu", (unsigned long long)u);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.users, cap);
        cr_expect_eq(st.evicted, n - cap);
        /* The last cap users are remembered (cool-down holds them back);
         * the ones before were forgotten (they fire again). */
        size_t held = 0, refired = 0;
        for (uint64_t u = n - cap; u < n; u++)
                held += feed(t, u * 0x9E3779B97F4A7C15ULL, T0 + 1, 0.9f) == 0;
        for (uint64_t u = 0; u < 100; u++)
                refired += feed(t, u * 0x9E3779B97F4A7C15ULL, T0 + 1,
                                0.9f) == 'U';
        cr_expect_eq(held, cap);
        cr_expect_eq(refired, 100);
        itd_triggers_destroy(t);
}

Test(trigger, rejects_exit_above_enter) {
        char err[256] = "";
        itd_trigger_conf_t c = conf_of(0.3f, 0.5f, 0, 10);
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        cr_expect(strstr(err, "triggers.exit") && strstr(err, "0.5"),
                  "error names the option and value: %s", err);
        c = conf_of(1.5f, 0.3f, 0, 10);
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        cr_expect(strstr(err, "triggers.enter"), "%s", err);
        c = conf_of(0.5f, 0.3f, -1, 10);
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        c = conf_of(0.5f, 0.3f, 0, 0);
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
}

Test(trigger, config_file_refuses_exit_above_enter) {
        char dir[256], path[512], err[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/t.yaml", dir);
        cr_assert_eq(tu_write_file(path, "triggers:\n  enter: 0.4\n"
                                         "  exit: 0.6\n"), 0);
        itd_conf_t *conf = itd_conf_new();
        cr_expect_eq(itd_conf_load(conf, path, err, sizeof err),
                     ITD_ERR_CONF);
        cr_expect(strstr(err, "triggers.exit") && strstr(err, "t.yaml"),
                  "error names the file and option: %s", err);
        /* A refused file changes nothing: the defaults stay. */
        cr_expect_float_eq(conf->triggers_enter, 0.5, FLOAT_EXACT);
        cr_assert_eq(tu_write_file(path, "triggers:\n  enter: 0.6\n"
                                         "  exit: 0.6\n  cooldown: 0\n"),
                     0);
        cr_expect_eq(itd_conf_load(conf, path, err, sizeof err), ITD_OK,
                     "%s", err);
        cr_expect_eq(conf->triggers_cooldown_ms, 0);
        itd_conf_destroy(conf);
}

/* The table's behaviour as a string of outcomes over a fixed probe. */
static void probe_behaviour(itd_triggers_t *t, char *out, size_t n_users) {
        for (size_t u = 0; u < n_users; u++) {
                int a = feed(t, u + 1, T0 + 30 * MIN_MS, 0.9f);
                int b = feed(t, u + 1, T0 + 31 * MIN_MS, 0.1f);
                out[u] = (char)(a ? a : b ? b : '.');
        }
        out[n_users] = '\0';
}

Test(trigger, snapshot_round_trip_restores_flags_cooldowns_and_lru) {
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 8);
        /* Users 1..6 fire at T0; 2 and 4 re-arm; 5 is seen last. */
        for (uint64_t u = 1; u <= 6; u++)
                cr_assert_eq(feed(t, u, T0, 0.9f), 'U');
        cr_assert_eq(feed(t, 2, T0 + MIN_MS, 0.1f), 'D');
        cr_assert_eq(feed(t, 4, T0 + MIN_MS, 0.1f), 'D');
        cr_assert_eq(feed(t, 5, T0 + MIN_MS, 0.4f), 0);

        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        char err[256];
        cr_assert_eq(itd_triggers_snapshot(t, f, err, sizeof err), ITD_OK,
                     "%s", err);
        cr_assert_eq(itd_triggers_snapshot(t, f, err, sizeof err), ITD_OK);
        fclose(f);

        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, HOUR_MS, 8);
        f = fmemopen(buf, len, "rb");
        itd_triggers_t *r;
        itd_triggers_restore(f, &c, &r, err, sizeof err);
        cr_assert(r, "restore: %s", err);
        /* Exactly one snapshot's bytes were read: the second follows. */
        itd_triggers_t *r2;
        itd_triggers_restore(f, &c, &r2, err, sizeof err);
        cr_assert(r2, "second restore: %s", err);
        fclose(f);

        itd_triggers_stats_t a, b;
        itd_triggers_stats(t, &a);
        itd_triggers_stats(r, &b);
        cr_expect_eq(memcmp(&a, &b, sizeof a), 0, "counters differ");

        char want[16], got[16], got2[16];
        probe_behaviour(t, want, 8);
        probe_behaviour(r, got, 8);
        probe_behaviour(r2, got2, 8);
        cr_expect_str_eq(got, want);
        cr_expect_str_eq(got2, want);

        /* A smaller table keeps the most recently seen users: 5 (seen
         * last), then 4 and 2. */
        c.max_users = 3;
        f = fmemopen(buf, len, "rb");
        itd_triggers_t *small;
        itd_triggers_restore(f, &c, &small, err, sizeof err);
        fclose(f);
        cr_assert(small, "%s", err);
        itd_triggers_stats(small, &b);
        cr_expect_eq(b.users, 3);
        cr_expect_eq(b.evicted, a.evicted + 3);
        cr_expect_eq(feed(small, 5, T0 + 2 * MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(small, 1, T0 + 2 * MIN_MS, 0.9f), 'U');

        itd_triggers_destroy(t);
        itd_triggers_destroy(r);
        itd_triggers_destroy(r2);
        itd_triggers_destroy(small);
        free(buf);
}

Test(trigger, restore_refuses_flipped_and_truncated_snapshots) {
        itd_triggers_t *t = make(0.5f, 0.3f, HOUR_MS, 8);
        for (uint64_t u = 1; u <= 4; u++)
                feed(t, u, T0, 0.9f);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        char err[256];
        cr_assert_eq(itd_triggers_snapshot(t, f, err, sizeof err), ITD_OK);
        fclose(f);
        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, HOUR_MS, 8);

        /* A flipped bit in the header, then in the payload. */
        size_t spots[] = {40, len - 5};
        for (size_t i = 0; i < 2; i++) {
                buf[spots[i]] ^= 0x10;
                f = fmemopen(buf, len, "rb");
                itd_triggers_t *r;
                cr_expect_eq(itd_triggers_restore(f, &c, &r, err, sizeof err),
                             ITD_ERR_CORRUPT);
                fclose(f);
                cr_expect_null(r);
                cr_expect(strstr(err, "corrupt trigger snapshot") != NULL,
                          "byte %zu: %s", spots[i], err);
                itd_triggers_destroy(r);
                buf[spots[i]] ^= 0x10;
        }
        f = fmemopen(buf, len - 7, "rb");
        itd_triggers_t *r;
        cr_expect_eq(itd_triggers_restore(f, &c, &r, err, sizeof err),
                     ITD_ERR_CORRUPT);
        fclose(f);
        cr_expect_null(r);
        cr_expect(strstr(err, "truncated trigger snapshot") != NULL, "%s",
                  err);
        itd_triggers_destroy(r);
        itd_triggers_destroy(t);
        free(buf);
}

Test(trigger, record_encodes_and_decodes_in_both_framings) {
        char err[256];
        itd_codec_t *codec = itd_codec_new(err, sizeof err);
        cr_assert(codec, "%s", err);
        itd_trigger_conf_t c0 = conf_of(0.5f, 0.3f, 0, 4);
        c0.max_event_age_ms = 30 * MIN_MS;
        itd_triggers_t *t = itd_triggers_new(&c0, err, sizeof err);
        cr_assert(t, "%s", err);
        itd_prediction_t p;
        memset(&p, 0, sizeof p);
        itd_prediction_make_id(&p, "intentd.events", 3, 12345);
        strcpy(p.user_id, "user-\xc3\xa9-17");
        p.event_ts_ms = T0;
        p.predicted_at_ms = T0 + 250;
        p.purchase_probability = 0.734f;

        p.next_action = ITD_NEXT_ADD_TO_CART;
        p.next_probs[ITD_NEXT_ADD_TO_CART] = 0.625f;
        p.n_top_categories = 2;
        strcpy(p.top_categories[0], "shoes");
        strcpy(p.top_categories[1], "socks");
        p.top_category_scores[0] = 2.5f;
        p.top_category_scores[1] = 0.75f;

        itd_trigger_fire_t fire;
        cr_assert_eq(itd_triggers_update(t, 17, T0, INT64_MIN, 0.734f,
                                         &fire), 1);
        itd_trigger_rec_t rec;
        itd_triggers_make_record(&p, &fire, &rec);
        /* decided with the prediction: fired_at is its predicted_at */
        cr_expect_eq(rec.fired_at_ms, T0 + 250);
        cr_expect_str_eq(rec.prediction_id, "intentd.events/3/12345");
        cr_expect_float_eq(rec.threshold, 0.5f, FLOAT_EXACT);
        cr_expect_eq(rec.rule, ITD_TRIGGER_RULE_ABSOLUTE);
        cr_expect_float_eq(rec.parameter, 0.5f, FLOAT_EXACT);
        cr_expect_eq(rec.expires_at_ms, T0 + 30 * MIN_MS);

        const int32_t ids[] = {-1, 42};
        for (size_t i = 0; i < 2; i++) {
                unsigned char buf[512];
                size_t len = 0;
                cr_assert_eq(itd_codec_encode_trigger(codec, &rec, ids[i],
                                                      buf, sizeof buf, &len),
                             ITD_OK);
                itd_trigger_rec_t back;
                cr_assert_eq(itd_codec_decode_trigger(
                                 codec, buf, len,
                                 ids[i] < 0 ? ITD_FRAMING_BARE
                                            : ITD_FRAMING_CONFLUENT,
                                 &back, err, sizeof err),
                             ITD_OK, "%s", err);
                cr_expect_str_eq(back.prediction_id, rec.prediction_id);
                cr_expect_str_eq(back.user_id, rec.user_id);
                cr_expect_float_eq(back.score, rec.score, FLOAT_EXACT);
                cr_expect_float_eq(back.threshold, rec.threshold,
                                   FLOAT_EXACT);
                cr_expect_eq(back.direction, ITD_TRIGGER_UP);
                cr_expect_eq(back.event_ts_ms, T0);
                cr_expect_eq(back.fired_at_ms, T0 + 250);
                cr_expect_eq(back.rule, ITD_TRIGGER_RULE_ABSOLUTE);
                cr_expect_float_eq(back.parameter, 0.5f, FLOAT_EXACT);
                cr_expect_eq(back.expires_at_ms, T0 + 30 * MIN_MS);
                cr_expect_eq(back.next_action, ITD_NEXT_ADD_TO_CART);
                cr_expect_float_eq(back.next_action_probability, 0.625f,
                                   FLOAT_EXACT);
                cr_expect_eq(back.n_top_categories, 2);
                cr_expect_str_eq(back.top_categories[0], "shoes");
                cr_expect_str_eq(back.top_categories[1], "socks");
                cr_expect_float_eq(back.top_category_scores[1], 0.75f,
                                   FLOAT_EXACT);
                /* Truncated and too-small buffers fail cleanly. */
                cr_expect_eq(itd_codec_decode_trigger(
                                 codec, buf, len - 1, ITD_FRAMING_BARE,
                                 &back, err, sizeof err),
                             ITD_ERR_DECODE);
                cr_expect_eq(itd_codec_encode_trigger(codec, &rec, ids[i],
                                                      buf, 8, &len),
                             ITD_ERR_FULL);
        }

        /* DOWN carries the exit threshold; no expiry without the guard. */
        itd_trigger_conf_t nc = conf_of(0.5f, 0.3f, 0, 4);
        cr_assert_eq(itd_triggers_set_conf(t, &nc, err, sizeof err), ITD_OK);
        cr_assert_eq(itd_triggers_update(t, 17, T0 + 1, INT64_MIN, 0.1f,
                                         &fire), 1);
        itd_triggers_make_record(&p, &fire, &rec);
        rec.fired_at_ms = T0 + 300;
        unsigned char buf[512];
        size_t len;
        cr_assert_eq(itd_codec_encode_trigger(codec, &rec, -1, buf,
                                              sizeof buf, &len), ITD_OK);
        itd_trigger_rec_t back;
        cr_assert_eq(itd_codec_decode_trigger(codec, buf, len,
                                              ITD_FRAMING_AUTO, &back, err,
                                              sizeof err), ITD_OK, "%s", err);
        cr_expect_eq(back.direction, ITD_TRIGGER_DOWN);
        cr_expect_float_eq(back.threshold, 0.3f, FLOAT_EXACT);
        cr_expect_eq(back.expires_at_ms, INT64_MIN);
        cr_expect_str_eq(itd_trigger_direction_name(back.direction), "DOWN");

        rec.direction = ITD_TRIGGER__COUNT;
        cr_expect_eq(itd_codec_encode_trigger(codec, &rec, -1, buf,
                                              sizeof buf, &len),
                     ITD_ERR_ENCODE);
        itd_triggers_destroy(t);
        itd_codec_destroy(codec);
}

/* ------------------------------------------------ relative rules */

static itd_triggers_t *make_rule(itd_trigger_rule_t rule,
                                 int64_t max_age_ms) {
        char err[256];
        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, 0, 100000);
        c.rule = rule;
        c.max_event_age_ms = max_age_ms;
        itd_triggers_t *t = itd_triggers_new(&c, err, sizeof err);
        cr_assert(t, "%s", err);
        return t;
}

/* A deterministic score for user u at step i: most users low (around
 * 2%), a few high. */
static float score_of(uint64_t u, int i) {
        uint64_t h = (u * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)i * 0xBF58476D1CE4E5B9ULL);
        h ^= h >> 31;
        double x = (double)(h % 10000) / 10000.0; /* uniform in [0, 1) */
        return (float)(0.005 + 0.03 * x * x);
}

Test(trigger, top_percent_fires_for_about_that_share_of_fresh_users) {
        itd_triggers_t *t = make_rule(ITD_TRIGGER_RULE_TOP_PERCENT, 0);
        /* 100 warm-up scores, then 20000 users with one score each: with
         * cool-down 0 and every user seen once, UP fires for each user in
         * the top 1% of the scores before it. */
        int ups = 0, warm = 0;
        for (int i = 0; i < 20100; i++) {
                itd_trigger_fire_t f;
                if (!itd_triggers_update(t, (uint64_t)i + 1, T0 + i, INT64_MIN,
                                         score_of((uint64_t)i, 0), &f))
                        continue;
                cr_assert_eq(f.direction, ITD_TRIGGER_UP);
                cr_expect_eq(f.rule, ITD_TRIGGER_RULE_TOP_PERCENT);
                cr_expect_float_eq(f.parameter, 1.0f, FLOAT_EXACT);
                warm += i < 100;
                ups++;
        }
        cr_expect_eq(warm, 0, "fired during the warm-up (min_events 100)");
        cr_expect(ups >= 150 && ups <= 250, "%d UPs of 20000 (1%% = 200)",
                  ups);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.warming, 100);
        itd_triggers_destroy(t);
}

Test(trigger, relative_thresholds_follow_the_live_distribution) {
        /* The same ranking at two base rates, ten times apart: the top-1%
         * rule fires equally often on both, an absolute 0.1 only on the
         * high one. */
        int ups[2][2] = {{0}};
        for (int scale = 0; scale < 2; scale++) {
                itd_triggers_t *rel =
                    make_rule(ITD_TRIGGER_RULE_TOP_PERCENT, 0);
                itd_triggers_t *abs_ = make(0.1f, 0.05f, 0, 100000);
                for (int i = 0; i < 20000; i++) {
                        float s = score_of((uint64_t)i, 1) *
                                  (scale ? 10.0f : 1.0f);
                        ups[scale][0] += itd_triggers_update(
                            rel, (uint64_t)i + 1, T0 + i, INT64_MIN, s, NULL);
                        ups[scale][1] += feed(abs_, (uint64_t)i + 1, T0 + i,
                                              s) == 'U';
                }
                itd_triggers_destroy(rel);
                itd_triggers_destroy(abs_);
        }
        cr_expect(abs(ups[0][0] - ups[1][0]) <= ups[0][0] / 10,
                  "top 1%%: %d and %d", ups[0][0], ups[1][0]);
        cr_expect_eq(ups[0][1], 0);
        cr_expect_gt(ups[1][1], 1000);
}

Test(trigger, lift_fires_at_a_multiple_of_the_mean_score) {
        itd_triggers_t *t = make_rule(ITD_TRIGGER_RULE_LIFT, 0);
        /* Mean 0.02 from 1000 scores of one user; then 0.059 (below 3x) and
         * 0.061 (above) for new users; a DOWN below 1.5 x the mean. */
        for (int i = 0; i < 1000; i++)
                cr_assert_eq(itd_triggers_update(t, 1, T0 + i, INT64_MIN,
                                                 0.02f, NULL), 0);
        itd_trigger_fire_t f;
        cr_expect_eq(itd_triggers_update(t, 2, T0 + 2000, INT64_MIN, 0.059f,
                                         &f), 0);
        cr_expect_eq(itd_triggers_update(t, 3, T0 + 2001, INT64_MIN, 0.061f,
                                         &f), 1);
        cr_expect_eq(f.rule, ITD_TRIGGER_RULE_LIFT);
        cr_expect_float_eq(f.parameter, 3.0f, FLOAT_EXACT);
        /* The threshold in force: 3 x the mean of the 1001 scores before,
         * which the distribution keeps within float rounding. */
        cr_expect_float_eq(f.threshold, 3 * (1000 * 0.02 + 0.059) / 1001,
                           1e-4);
        cr_expect_eq(itd_triggers_update(t, 3, T0 + 2002, INT64_MIN, 0.031f,
                                         &f), 0, "above 1.5 x: stays");
        cr_expect_eq(itd_triggers_update(t, 3, T0 + 2003, INT64_MIN, 0.029f,
                                         &f), 1);
        cr_expect_eq(f.direction, ITD_TRIGGER_DOWN);
        cr_expect_float_eq(f.parameter, 1.5f, FLOAT_EXACT);
        itd_triggers_destroy(t);
}

Test(trigger, stale_events_fire_nothing_and_change_nothing) {
        itd_triggers_t *t = make_rule(ITD_TRIGGER_RULE_ABSOLUTE, 30 * MIN_MS);
        itd_trigger_fire_t f;
        /* 31 minutes behind the reference: stale, user stays armed. */
        cr_expect_eq(itd_triggers_update(t, 4, T0, T0 + 31 * MIN_MS, 0.9f,
                                         &f), 0);
        /* 29 minutes behind: fires, and expires 30 minutes after it. */
        cr_expect_eq(itd_triggers_update(t, 4, T0 + 2 * MIN_MS,
                                         T0 + 31 * MIN_MS, 0.9f, &f), 1);
        cr_expect_eq(f.expires_at_ms, T0 + 32 * MIN_MS);
        /* A stale low score does not re-arm. */
        cr_expect_eq(itd_triggers_update(t, 4, T0 - HOUR_MS, T0 + HOUR_MS,
                                         0.0f, &f), 0);
        cr_expect_eq(itd_triggers_update(t, 4, T0 + HOUR_MS, T0 + HOUR_MS,
                                         0.0f, &f), 1);
        cr_expect_eq(f.direction, ITD_TRIGGER_DOWN);
        /* No reference: nothing is stale. Extreme times do not wrap. */
        cr_expect_eq(itd_triggers_update(t, 5, INT64_MIN + 1, INT64_MIN,
                                         0.9f, &f), 1);
        cr_expect_eq(itd_triggers_update(t, 6, INT64_MIN + 1, INT64_MAX,
                                         0.9f, &f), 0);
        cr_expect_eq(itd_triggers_update(t, 7, INT64_MAX - 1, INT64_MAX,
                                         0.9f, &f), 1);
        cr_expect_eq(f.expires_at_ms, INT64_MAX);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.stale, 3);
        itd_triggers_destroy(t);
}

Test(trigger, a_new_configuration_applies_from_the_next_event) {
        char err[256];
        itd_triggers_t *t = make(0.5f, 0.3f, 0, 16);
        cr_expect_eq(feed(t, 1, T0, 0.45f), 0);
        itd_trigger_conf_t c = conf_of(0.4f, 0.2f, 0, 16);
        cr_assert_eq(itd_triggers_set_conf(t, &c, err, sizeof err), ITD_OK);
        cr_expect_eq(feed(t, 1, T0 + 1, 0.45f), 'U');
        cr_expect_eq(feed(t, 1, T0 + 2, 0.25f), 0, "0.25 is above exit 0.2");
        /* A bad one is refused whole. */
        c = conf_of(0.4f, 0.5f, 0, 16);
        cr_expect_eq(itd_triggers_set_conf(t, &c, err, sizeof err),
                     ITD_ERR_CONF);
        cr_expect(strstr(err, "triggers.exit"), "%s", err);
        cr_expect_eq(feed(t, 1, T0 + 3, 0.19f), 'D');
        itd_triggers_destroy(t);
}

Test(trigger, refuses_bad_relative_parameters) {
        char err[256];
        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, 0, 16);
        c.exit_top_percent = 0.5; /* narrower than top_percent 1 */
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        cr_expect(strstr(err, "triggers.exit_top_percent"), "%s", err);
        c = conf_of(0.5f, 0.3f, 0, 16);
        c.exit_lift = 4; /* above lift 3 */
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        cr_expect(strstr(err, "triggers.exit_lift"), "%s", err);
        c = conf_of(0.5f, 0.3f, 0, 16);
        c.top_percent = 0;
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        c = conf_of(0.5f, 0.3f, 0, 16);
        c.max_event_age_ms = -1;
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
        c = conf_of(0.5f, 0.3f, 0, 16);
        c.rule = ITD_TRIGGER_RULE__COUNT;
        cr_expect_null(itd_triggers_new(&c, err, sizeof err));
}

Test(trigger, snapshot_keeps_the_score_distribution) {
        char err[256];
        itd_triggers_t *t = make_rule(ITD_TRIGGER_RULE_TOP_PERCENT, 0);
        for (int i = 0; i < 3000; i++)
                itd_triggers_update(t, (uint64_t)i % 500, T0 + i, INT64_MIN,
                                    score_of((uint64_t)i, 2), NULL);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cr_assert_eq(itd_triggers_snapshot(t, f, err, sizeof err), ITD_OK);
        fclose(f);
        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, 0, 100000);
        c.rule = ITD_TRIGGER_RULE_TOP_PERCENT;
        f = fmemopen(buf, len, "rb");
        itd_triggers_t *r;
        itd_triggers_restore(f, &c, &r, err, sizeof err);
        fclose(f);
        cr_assert(r, "%s", err);
        /* Both tables decide alike from here on, fire for fire. */
        for (int i = 3000; i < 8000; i++) {
                itd_trigger_fire_t fa = {0}, fb = {0};
                float s = score_of((uint64_t)i, 2);
                int a = itd_triggers_update(t, (uint64_t)i % 500, T0 + i,
                                            INT64_MIN, s, &fa);
                int b = itd_triggers_update(r, (uint64_t)i % 500, T0 + i,
                                            INT64_MIN, s, &fb);
                cr_assert_eq(a, b, "event %d", i);
                cr_assert(memcmp(&fa.threshold, &fb.threshold,
                                 sizeof fa.threshold) == 0);
        }
        itd_triggers_destroy(r);
        itd_triggers_destroy(t);
        free(buf);
}

Test(trigger, a_version_1_snapshot_restores_with_an_empty_distribution) {
        /* tests/fixtures/trigger_v1.snap: written by the version 1 code
         * (before relative rules): enter 0.5, exit 0.3, cool-down 1 h;
         * users 1..4 fired UP at T0, user 2 re-armed at T0 + 1 min. */
        char path[512], err[256];
        FILE *f = fopen(tu_src("tests/fixtures/trigger_v1.snap", path,
                               sizeof path), "rb");
        cr_assert(f, "cannot open %s", path);
        itd_trigger_conf_t c = conf_of(0.5f, 0.3f, HOUR_MS, 8);
        itd_triggers_t *t;
        itd_triggers_restore(f, &c, &t, err, sizeof err);
        cr_assert(t, "%s", err);
        cr_expect_eq(fgetc(f), EOF, "read exactly the snapshot's bytes");
        fclose(f);
        itd_triggers_stats_t st;
        itd_triggers_stats(t, &st);
        cr_expect_eq(st.users, 4);
        cr_expect_eq(st.fired_up, 4);
        cr_expect_eq(st.fired_down, 1);
        cr_expect_eq(itd_scoredist_count(itd_triggers_dist(t)), 0);
        /* User 1 is disarmed: low re-arms it. User 2 is armed but in its
         * cool-down: held back. User 5 is new. */
        cr_expect_eq(feed(t, 1, T0 + 2 * MIN_MS, 0.1f), 'D');
        cr_expect_eq(feed(t, 2, T0 + 2 * MIN_MS, 0.9f), 0);
        cr_expect_eq(feed(t, 5, T0 + 2 * MIN_MS, 0.9f), 'U');
        itd_triggers_destroy(t);
}

Test(trigger, sighup_reload_applies_the_trigger_options) {
        char dir[256], path[512], err[512], applied[512], restart[512];
        cr_assert(tu_tmpdir(dir, sizeof dir));
        snprintf(path, sizeof path, "%s/t.yaml", dir);
        itd_conf_t *conf = itd_conf_new();
        cr_assert_eq(conf->triggers_rule, ITD_TRIGGER_RULE_TOP_PERCENT,
                     "the default rule is relative");
        cr_assert_eq(tu_write_file(path, "triggers:\n  rule: lift\n"
                                         "  lift: 4\n  exit_lift: 2\n"
                                         "  max_event_age: 10m\n"
                                         "  cooldown: 5m\n"),
                     0);
        itd_conf_t *fresh = itd_conf_new();
        cr_assert_eq(itd_conf_load(fresh, path, err, sizeof err), ITD_OK,
                     "%s", err);
        itd_conf_reload(conf, fresh, applied, sizeof applied, restart,
                        sizeof restart);
        cr_expect_eq(conf->triggers_rule, ITD_TRIGGER_RULE_LIFT);
        cr_expect_float_eq(conf->triggers_lift, 4.0, FLOAT_EXACT);
        cr_expect_eq(conf->triggers_max_event_age_ms, 10 * MIN_MS);
        cr_expect(strstr(applied, "triggers.rule"), "applied: %s", applied);
        cr_expect_str_eq(restart, "");
        /* A file whose re-arm level exceeds the firing level is refused
         * at load, before any reload. */
        cr_assert_eq(tu_write_file(path, "triggers:\n  lift: 2\n"
                                         "  exit_lift: 3\n"),
                     0);
        cr_expect_eq(itd_conf_load(fresh, path, err, sizeof err),
                     ITD_ERR_CONF);
        cr_expect(strstr(err, "triggers.exit_lift"), "%s", err);
        itd_conf_destroy(fresh);
        itd_conf_destroy(conf);
}

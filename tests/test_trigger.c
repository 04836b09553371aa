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

static itd_trigger_conf_t conf_of(float enter, float exit, int64_t cool_ms,
                                  size_t max_users) {
        return (itd_trigger_conf_t){.enter = enter, .exit = exit,
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

/* Feeds one event; returns 0 (nothing), 'U' or 'D'. */
static int feed(itd_triggers_t *t, uint64_t user, int64_t ts, float score) {
        itd_trigger_direction_t dir = ITD_TRIGGER__COUNT;
        int fired = itd_triggers_update(t, user, ts, score, &dir);
        if (!fired)
                return 0;
        cr_assert(dir == ITD_TRIGGER_UP || dir == ITD_TRIGGER_DOWN);
        return dir == ITD_TRIGGER_UP ? 'U' : 'D';
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
        itd_triggers_t *r = itd_triggers_restore(f, &c, err, sizeof err);
        cr_assert(r, "restore: %s", err);
        /* Exactly one snapshot's bytes were read: the second follows. */
        itd_triggers_t *r2 = itd_triggers_restore(f, &c, err, sizeof err);
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
        itd_triggers_t *small = itd_triggers_restore(f, &c, err, sizeof err);
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
                itd_triggers_t *r = itd_triggers_restore(f, &c, err,
                                                         sizeof err);
                fclose(f);
                cr_expect_null(r);
                cr_expect(strstr(err, "corrupt trigger snapshot") != NULL,
                          "byte %zu: %s", spots[i], err);
                itd_triggers_destroy(r);
                buf[spots[i]] ^= 0x10;
        }
        f = fmemopen(buf, len - 7, "rb");
        itd_triggers_t *r = itd_triggers_restore(f, &c, err, sizeof err);
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
        itd_triggers_t *t = make(0.5f, 0.3f, 0, 4);
        itd_prediction_t p;
        memset(&p, 0, sizeof p);
        itd_prediction_make_id(&p, "intentd.events", 3, 12345);
        strcpy(p.user_id, "user-\xc3\xa9-17");
        p.event_ts_ms = T0;
        p.purchase_probability = 0.734f;

        itd_trigger_direction_t dir;
        cr_assert_eq(itd_triggers_update(t, 17, T0, 0.734f, &dir), 1);
        itd_trigger_rec_t rec;
        itd_triggers_make_record(t, &p, dir, T0 + 250, &rec);
        cr_expect_str_eq(rec.prediction_id, "intentd.events/3/12345");
        cr_expect_float_eq(rec.threshold, 0.5f, FLOAT_EXACT);

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
                /* Truncated and too-small buffers fail cleanly. */
                cr_expect_eq(itd_codec_decode_trigger(
                                 codec, buf, len - 1, ITD_FRAMING_BARE,
                                 &back, err, sizeof err),
                             ITD_ERR_DECODE);
                cr_expect_eq(itd_codec_encode_trigger(codec, &rec, ids[i],
                                                      buf, 8, &len),
                             ITD_ERR_FULL);
        }

        /* DOWN carries the exit threshold. */
        cr_assert_eq(itd_triggers_update(t, 17, T0 + 1, 0.1f, &dir), 1);
        itd_triggers_make_record(t, &p, dir, T0 + 300, &rec);
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
        cr_expect_str_eq(itd_trigger_direction_name(back.direction), "DOWN");

        rec.direction = ITD_TRIGGER__COUNT;
        cr_expect_eq(itd_codec_encode_trigger(codec, &rec, -1, buf,
                                              sizeof buf, &len),
                     ITD_ERR_ENCODE);
        itd_triggers_destroy(t);
        itd_codec_destroy(codec);
}

/*
 * test_engine_triggers.c - marketing triggers through the engine
 * (core/include/intentd/engine.h): the hysteresis and cool-down rules of trigger.h,
 * applied in event time per user to the scores the engine publishes, never
 * to late events; each record names its prediction.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enginesim.h"

/* ----------------------------------------------------------- triggers */

/* trigger.h's rules, written out: per user, armed until an UP; UP when
 * armed, score >= enter and not within cooldown of the last UP (event
 * time; an event older than the last UP is within it); DOWN when disarmed
 * and score < exit. Late events take no part. */
typedef struct oracle_user_s {
        char user[ITD_ID_MAX];
        int known, armed;
        int64_t last_up;
} oracle_user_t;

static int oracle(oracle_user_t *users, size_t cap, const char *user,
                  int64_t ts, float score, float enter, float exit,
                  int64_t cooldown, itd_trigger_direction_t *dir,
                  int *held) {
        oracle_user_t *u = NULL;
        for (size_t i = 0; i < cap && !u; i++)
                if (!users[i].known || !strcmp(users[i].user, user))
                        u = &users[i];
        cr_assert_not_null(u);
        if (!u->known) {
                u->known = 1;
                u->armed = 1;
                snprintf(u->user, sizeof u->user, "%s", user);
        }
        *held = 0;
        if (u->armed) {
                if (score < enter)
                        return 0;
                if (u->last_up != INT64_MIN &&
                    (ts < u->last_up || ts - u->last_up < cooldown)) {
                        *held = 1;
                        return 0;
                }
                u->armed = 0;
                u->last_up = ts;
                *dir = ITD_TRIGGER_UP;
                return 1;
        }
        if (score < exit) {
                u->armed = 1;
                *dir = ITD_TRIGGER_DOWN;
                return 1;
        }
        return 0;
}

static int score_cmp(const void *a, const void *b) {
        float x = *(const float *)a, y = *(const float *)b;
        return (x > y) - (x < y);
}

typedef struct trig_count_s {
        size_t up, down, held;
} trig_count_t;

/* Runs the oracle over what s published (late events skipped); want[i]
 * and dir[i] (may be NULL) get its decision per input. */
static trig_count_t oracle_run(const sim_t *s, float enter, float exit,
                               int64_t cooldown, int *want,
                               itd_trigger_direction_t *dir) {
        oracle_user_t users[16];
        memset(users, 0, sizeof users);
        for (size_t i = 0; i < 16; i++)
                users[i].last_up = INT64_MIN;
        trig_count_t n = {0, 0, 0};
        for (size_t i = 0; i < s->n; i++) {
                const itd_prediction_t *pr = &s->out[i];
                itd_trigger_direction_t d = ITD_TRIGGER__COUNT;
                int w = 0, h = 0;
                if (!s->late[i])
                        w = oracle(users, 16, pr->user_id, pr->event_ts_ms,
                                   pr->purchase_probability, enter, exit,
                                   cooldown, &d, &h);
                n.up += w && d == ITD_TRIGGER_UP;
                n.down += w && d == ITD_TRIGGER_DOWN;
                n.held += h;
                if (want)
                        want[i] = w;
                if (dir)
                        dir[i] = d;
        }
        return n;
}

/*
 * A stream whose scores rise, fall and rise again: purchases, then an
 * hour and a half without any, then purchases again, with a learning rate
 * high enough that the model follows. The thresholds are then chosen from
 * the scores (the first pair of percentiles under which the rules' oracle
 * sees UPs, DOWNs and a crossing held back by the cool-down), so the test
 * holds whatever the model scores; it fails only if no pair exercises
 * every rule.
 */
#define TRIG_N 500
#define TRIG_COOLDOWN_MS (100 * MIN_MS)

Test(engine_triggers, hysteresis_and_cooldown_in_event_time_per_user) {
        static itd_row_t in[TRIG_N];
        gen_stream(in, TRIG_N, 10, 180 * MIN_MS, 8);
        for (size_t i = 170; i < 340; i++)
                if (in[i].ev.type == ITD_EV_PURCHASE)
                        in[i].ev.type = ITD_EV_VIEW;
        /* the latest parameters score, not their average over the last
         * steps, and an SGD wide path at a high rate instead of the Newton
         * inputs (whose prior is worth far more than 500 events), and
         * positives learned as they come (no hold), so the scores follow
         * the stream */
        kv_t kv[] = {{"triggers.rule", "absolute"},
                     {"model.learning.rate", "0.02"},
                     {"model.batch.size", "8"},
                     {"model.average.steps", "0"},
                     {"model.linear.newton", "false"},
                     {"model.wide.learning.rate", "0.01"},
                     {"model.positives.hold", "0"},
                     {"triggers.cooldown", "100m"},
                     {"triggers.enter", NULL},
                     {"triggers.exit", NULL}};
        /* Scores first, triggers off (triggers never change a score);
         * batches of 1 so that the engine tells which events were late. */
        itd_conf_t *conf = conf_with(kv, 8);
        sim_t *probe = sim_new(conf);
        sim_feed(probe, in, TRIG_N, 1);
        static float sorted[TRIG_N];
        for (size_t i = 0; i < TRIG_N; i++)
                sorted[i] = probe->out[i].purchase_probability;
        qsort(sorted, TRIG_N, sizeof *sorted, score_cmp);
        char enter_s[32] = "", exit_s[32] = "";
        float enter = 0, exit = 0;
        for (int pe = 50; pe <= 90 && !*enter_s; pe += 5)
                for (int px = 5; px <= pe - 10 && !*enter_s; px += 5) {
                        /* as the configuration will read them */
                        char e[32], x[32];
                        snprintf(e, sizeof e, "%.9g", sorted[TRIG_N * pe / 100]);
                        snprintf(x, sizeof x, "%.9g", sorted[TRIG_N * px / 100]);
                        float fe = (float)strtod(e, NULL);
                        float fx = (float)strtod(x, NULL);
                        if (!(fx < fe))
                                continue;
                        trig_count_t n = oracle_run(probe, fe, fx,
                                                    TRIG_COOLDOWN_MS, NULL,
                                                    NULL);
                        if (n.up >= 8 && n.down >= 5 && n.held >= 1) {
                                snprintf(enter_s, sizeof enter_s, "%s", e);
                                snprintf(exit_s, sizeof exit_s, "%s", x);
                                enter = fe;
                                exit = fx;
                        }
                }
        cr_assert(*enter_s, "no thresholds make this stream exercise "
                            "UP, DOWN and the cool-down");
        kv[8].value = enter_s;
        kv[9].value = exit_s;
        itd_conf_t *tconf = conf_with(kv, 10);
        sim_t *s = sim_new(tconf);
        itd_engine_enable_triggers(s->eng);
        sim_feed(s, in, TRIG_N, 1);

        static int want[TRIG_N];
        static itd_trigger_direction_t dir[TRIG_N];
        trig_count_t n = oracle_run(s, enter, exit, TRIG_COOLDOWN_MS, want,
                                    dir);
        size_t late_high = 0;
        for (size_t i = 0; i < TRIG_N; i++) {
                const itd_prediction_t *pr = &s->out[i];
                expect_same_prediction(pr, &probe->out[i], i, "triggers on");
                cr_expect_eq(s->late[i], probe->late[i]);
                late_high += s->late[i] && pr->purchase_probability >= enter;
                cr_expect_eq(s->fired[i], want[i],
                             "event #%zu (%s at +%llds%s)", i, pr->user_id,
                             (long long)((pr->event_ts_ms - T0) / 1000),
                             s->late[i] ? ", late" : "");
                if (!want[i] || !s->fired[i])
                        continue;
                const itd_trigger_rec_t *t = &s->trig[i];
                cr_expect_eq(t->direction, dir[i], "event #%zu", i);
                cr_expect_str_eq(t->prediction_id, pr->prediction_id);
                cr_expect_str_eq(t->user_id, pr->user_id);
                cr_expect(t->score == pr->purchase_probability);
                cr_expect(t->threshold ==
                          (dir[i] == ITD_TRIGGER_UP ? enter : exit));
                cr_expect_eq(t->event_ts_ms, pr->event_ts_ms);
        }
        cr_expect_gt(n.up, 0);
        cr_expect_gt(late_high, 0, "no late event scored above enter: "
                                   "'a late event fires no trigger' is "
                                   "untested");
        sim_destroy(s);
        sim_destroy(probe);
        itd_conf_destroy(tconf);
        itd_conf_destroy(conf);
}


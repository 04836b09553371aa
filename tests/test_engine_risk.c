/*
 * test_engine_risk.c - the risk score through the engine: every
 * prediction publishes it and it tells the simulator's bots from its
 * shoppers; predictions that score risky are judged but not learned from
 * (risk.train.*); risk triggers fire on a table of their own; the
 * partition's population of paces survives its snapshot, and an older
 * snapshot without it still reads.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/eval.h"
#include "intentd/partition.h"
#include "intentd/risk.h"
#include "intentd/simulator.h"

#define T0 1511568000000LL /* 2017-11-25T00:00:00Z */
#define DAY_MS 86400000LL

typedef struct kv_s {
        const char *key, *value;
} kv_t;

static itd_engine_t *engine_with(const kv_t *kv, size_t n) {
        itd_conf_t *conf = itd_conf_new();
        char err[256];
        const kv_t base[] = {{"model.embedding.buckets", "1024"},
                             {"model.hidden", "16"}};
        for (size_t i = 0; i < 2; i++)
                cr_assert_eq(itd_conf_set(conf, base[i].key, base[i].value,
                                          err, sizeof err), ITD_OK, "%s", err);
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(itd_conf_set(conf, kv[i].key, kv[i].value, err,
                                          sizeof err), ITD_OK, "%s: %s",
                             kv[i].key, err);
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        cr_assert_not_null(eng, "%s", err);
        itd_conf_destroy(conf);
        return eng;
}

/* What one run over the simulator's stream gave. */
typedef struct run_s {
        float *risk;     /* per prediction */
        uint8_t *bot;    /* per prediction */
        size_t n;
        size_t risky;    /* predictions scoring >= 0.5 */
        size_t risky_bots;
        size_t up_users_bot, up_users_shopper; /* users with a risk UP */
        size_t bots, shoppers;                 /* users */
        int trig_score_ok; /* every risk record carries its risk score */
        itd_engine_stats_t stats;
} run_t;

/* Feeds 600 shoppers and 5 % bots for a day (seed 7) to eng; with
 * triggers, counts the users whose risk trigger went UP. */
static void run_sim(itd_engine_t *eng, run_t *r) {
        itd_sim_conf_t sc = {.users = 600, .days = 1.0, .seed = 7,
                             .start_ms = T0, .bot_fraction = 0.05};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        size_t max = itd_engine_max_batch(eng), cap = 1 << 15;
        itd_row_t *rows = calloc(max, sizeof *rows);
        memset(r, 0, sizeof *r);
        r->risk = malloc(cap * sizeof *r->risk);
        r->bot = malloc(cap);
        r->trig_score_ok = 1;
        /* users by simulator index: "u-<n>" / "bot-<n>" seen with an UP */
        char(*up)[ITD_ID_MAX] = calloc(4096, ITD_ID_MAX);
        size_t n_up = 0;
        int64_t offset = 0, last = T0;
        for (;;) {
                size_t n = 0;
                while (n < max && itd_sim_next(sim, &rows[n].ev) == ITD_OK) {
                        itd_row_decoded(&rows[n], 0, offset++);
                        last = rows[n].ev.ts_ms;
                        n++;
                }
                if (!n)
                        break;
                cr_assert_eq(itd_engine_process(eng, "events", rows, n, 0,
                                                err, sizeof err),
                             ITD_OK, "%s", err);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_eq(rows[i].outcome, ITD_OUT_PREDICTED);
                        if (r->n == cap) {
                                cap *= 2;
                                r->risk = realloc(r->risk,
                                                  cap * sizeof *r->risk);
                                r->bot = realloc(r->bot, cap);
                        }
                        float risk = (float)rows[i].pred.risk_score;
                        int bot = itd_sim_is_bot(rows[i].ev.user_id);
                        cr_assert(risk >= 0.0f && risk <= 1.0f, "risk %g",
                                  risk);
                        r->risk[r->n] = risk;
                        r->bot[r->n++] = (uint8_t)bot;
                        r->risky += risk >= 0.5f;
                        r->risky_bots += risk >= 0.5f && bot;
                        const itd_trigger_rec_t *t = rows[i].risk_trigger;
                        if (!t)
                                continue;
                        if (t->score != risk)
                                r->trig_score_ok = 0;
                        if (t->direction != ITD_TRIGGER_UP)
                                continue;
                        size_t k = 0;
                        while (k < n_up && strcmp(up[k], t->user_id))
                                k++;
                        if (k == n_up && n_up < 4096) {
                                snprintf(up[n_up++], ITD_ID_MAX, "%s",
                                         t->user_id);
                                if (bot)
                                        r->up_users_bot++;
                                else
                                        r->up_users_shopper++;
                        }
                }
        }
        itd_engine_advance(eng, last + DAY_MS);
        itd_engine_stats(eng, &r->stats);
        r->bots = itd_sim_bots(&sc);
        r->shoppers = sc.users;
        free(up);
        free(rows);
        itd_sim_destroy(sim);
}

static void run_free(run_t *r) {
        free(r->risk);
        free(r->bot);
}

Test(engine_risk, predictions_carry_a_risk_that_separates_bots_and_bots_do_not_teach) {
        itd_engine_t *eng = engine_with(NULL, 0); /* defaults: 0.5, 0 */
        run_t r;
        run_sim(eng, &r);
        double auc = itd_eval_auc(r.risk, r.bot, r.n);
        cr_log_info("engine risk (600 users, 1 day, seed 7, bots 0.05): %zu "
                    "predictions, risk AUC for bots %.4f, %zu scored >= 0.5 "
                    "(%zu of them bots'), %llu not trained on",
                    r.n, auc, r.risky, r.risky_bots,
                    (unsigned long long)r.stats.risk_untrained);
        cr_expect_geq(auc, 0.95, "risk AUC for bots %.4f", auc);
        /* the simulator's stream is in time order: nothing is late, so
         * every risky prediction waits for its label untrained */
        cr_assert_eq(r.stats.late, 0);
        cr_expect_eq(r.stats.risk_untrained, r.risky);
        cr_expect_geq((double)r.risky_bots, 0.99 * (double)r.risky,
                      "risky predictions are bots'");
        uint64_t trained = r.stats.examples_pos + r.stats.examples_neg;
        run_free(&r);
        itd_engine_destroy(eng);

        /* 0: every prediction learned from */
        const kv_t all[] = {{"risk.train.threshold", "0"}};
        eng = engine_with(all, 1);
        run_sim(eng, &r);
        cr_expect_eq(r.stats.risk_untrained, 0);
        cr_expect_gt(r.stats.examples_pos + r.stats.examples_neg, trained,
                     "the risky examples are learned from too");
        run_free(&r);
        itd_engine_destroy(eng);

        /* weight 1 keeps every risky example: the same as 0 */
        const kv_t keep[] = {{"risk.train.weight", "1"}};
        eng = engine_with(keep, 1);
        run_sim(eng, &r);
        cr_expect_eq(r.stats.risk_untrained, 0);
        run_free(&r);
        itd_engine_destroy(eng);
}

Test(engine_risk, risk_triggers_fire_for_bots_on_a_table_of_their_own) {
        const kv_t kv[] = {{"topics.risk", "intentd.risk"},
                           {"risk.trigger.enter", "0.8"},
                           {"risk.trigger.exit", "0.5"}};
        itd_engine_t *eng = engine_with(kv, 3);
        itd_engine_enable_triggers(eng);
        run_t r;
        run_sim(eng, &r);
        cr_log_info("risk triggers: %zu of %zu bots and %zu of %zu shoppers "
                    "went UP; %llu UP, %llu DOWN",
                    r.up_users_bot, r.bots, r.up_users_shopper, r.shoppers,
                    (unsigned long long)r.stats.risk_triggers_up,
                    (unsigned long long)r.stats.risk_triggers_down);
        cr_expect(r.trig_score_ok, "a risk record carries the risk score");
        cr_expect_geq((double)r.up_users_bot, 0.8 * (double)r.bots);
        cr_expect_leq((double)r.up_users_shopper, 0.01 * (double)r.shoppers);
        cr_expect_geq(r.stats.risk_triggers_up, r.up_users_bot);
        run_free(&r);
        itd_engine_destroy(eng);

        /* off without topics.risk */
        eng = engine_with(NULL, 0);
        itd_engine_enable_triggers(eng);
        run_sim(eng, &r);
        cr_expect_eq(r.stats.risk_triggers_up, 0);
        run_free(&r);
        itd_engine_destroy(eng);
}

static unsigned char *bytes_of(const itd_partition_t *pt, int full,
                               size_t *len) {
        char *buf = NULL, err[256];
        FILE *f = open_memstream(&buf, len);
        if (full) {
                cr_assert_eq(itd_partition_write(pt, f, err, sizeof err),
                             ITD_OK, "%s", err);
        } else {
                /* what a build before the risk sections wrote */
                cr_assert_eq(itd_state_snapshot(itd_partition_state(pt), f,
                                                err, sizeof err), ITD_OK);
                cr_assert_eq(itd_labeler_snapshot(itd_partition_labeler(pt),
                                                  f, err, sizeof err),
                             ITD_OK);
                cr_assert_eq(itd_triggers_snapshot(
                                 itd_partition_triggers(pt), f, err,
                                 sizeof err),
                             ITD_OK);
        }
        fclose(f);
        return (unsigned char *)buf;
}

static itd_partition_t *read_back(const unsigned char *buf, size_t len,
                                  const itd_partition_conf_t *pc) {
        FILE *f = fmemopen((void *)buf, len, "r");
        itd_partition_t *pt = NULL;
        char err[256];
        cr_assert_eq(itd_partition_read(f, 0, pc, 0, 0, &pt, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_expect_eq(fgetc(f), EOF, "read exactly its bytes");
        fclose(f);
        return pt;
}

Test(engine_risk, the_population_and_risk_table_survive_a_snapshot) {
        const kv_t kv[] = {{"topics.risk", "intentd.risk"}};
        itd_engine_t *eng = engine_with(kv, 1);
        itd_engine_enable_triggers(eng);
        run_t r;
        run_sim(eng, &r);
        run_free(&r);
        const itd_partition_t *pt = itd_engine_partition_get(eng, 0);
        const itd_partition_conf_t *pc = itd_engine_partition_conf(eng);
        double m0, s0, w0, m1, s1, w1;
        itd_risk_population(itd_partition_risk(pt), &m0, &s0, &w0);

        size_t len;
        unsigned char *buf = bytes_of(pt, 1, &len);
        itd_partition_t *back = read_back(buf, len, pc);
        itd_risk_population(itd_partition_risk(back), &m1, &s1, &w1);
        cr_expect(m0 == m1 && s0 == s1 && w0 == w1,
                  "population %g/%g/%g, restored %g/%g/%g", m0, s0, w0, m1,
                  s1, w1);
        itd_triggers_stats_t a, b;
        itd_triggers_stats(itd_partition_risk_triggers(pt), &a);
        itd_triggers_stats(itd_partition_risk_triggers(back), &b);
        cr_expect_eq(a.users, b.users);
        cr_expect_gt(a.users, 0);
        itd_partition_destroy(back);

        /* read by a configuration without risk triggers: skipped past */
        itd_partition_conf_t off = *pc;
        off.risk.triggers_on = 0;
        back = read_back(buf, len, &off);
        cr_expect_null(itd_partition_risk_triggers(back));
        itd_partition_destroy(back);
        free(buf);

        /* an older snapshot: a fresh population (the prior), an empty
         * risk table */
        buf = bytes_of(pt, 0, &len);
        back = read_back(buf, len, pc);
        itd_risk_t *fresh = itd_risk_new();
        itd_risk_population(fresh, &m0, &s0, &w0);
        itd_risk_population(itd_partition_risk(back), &m1, &s1, &w1);
        cr_expect(m0 == m1 && s0 == s1 && w0 == w1);
        itd_triggers_stats(itd_partition_risk_triggers(back), &b);
        cr_expect_eq(b.users, 0);
        itd_risk_destroy(fresh);
        itd_partition_destroy(back);
        free(buf);
        itd_engine_destroy(eng);
}

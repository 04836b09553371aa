/*
 * bench_risk_train.c - what the risk score does for the purchase model:
 * the simulator's stream (shoppers plus a share of bots) through the whole
 * engine, once learning from every prediction (risk.train.threshold 0)
 * and once leaving out the predictions that score risky (the default),
 * for bot shares 0, 2 % and 5 % and three seeds (simulator and model).
 *
 * Per run it prints: the AUC of the published risk_score for telling the
 * bots' events from the shoppers' (every prediction), the progressive AUC
 * of purchase_probability on the shoppers' judged examples only (the
 * bots' own purchases are no one's business), the same over everyone, and
 * how many predictions were not trained on (shoppers among them).
 *
 * usage: bench_risk_train [USERS [DAYS]]   (default 2000 users, 3 days)
 * Last line: one JSON object {"bench":"risk_train",...}. An accuracy
 * measurement, no timing; not run by `make bench` (a few minutes).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/conf.h"
#include "intentd/engine.h"
#include "intentd/eval.h"
#include "intentd/simulator.h"
#include "intentd/state.h"

#define T0 1511568000000LL /* 2017-11-25T00:00:00Z */
#define DAY_MS 86400000LL

/* Growable (score, label) pairs. */
typedef struct {
        float *s;
        uint8_t *y;
        size_t n, cap;
} pairs_t;

static void pairs_add(pairs_t *p, float s, int y) {
        if (p->n == p->cap) {
                p->cap = p->cap ? p->cap * 2 : 4096;
                p->s = realloc(p->s, p->cap * sizeof *p->s);
                p->y = realloc(p->y, p->cap * sizeof *p->y);
                if (!p->s || !p->y)
                        abort();
        }
        p->s[p->n] = s;
        p->y[p->n++] = (uint8_t)y;
}

static void pairs_free(pairs_t *p) {
        free(p->s);
        free(p->y);
}

/* The bots' user hashes (open addressing; 0 is the empty slot). */
#define BOTSET_CAP (1u << 16)
typedef struct {
        uint64_t key[BOTSET_CAP];
} botset_t;

static uint64_t *bot_slot(botset_t *b, uint64_t h) {
        h |= 1;
        size_t i = (size_t)(h * UINT64_C(0x9E3779B97F4A7C15) >> 48);
        while (b->key[i] && b->key[i] != h)
                i = (i + 1) & (BOTSET_CAP - 1);
        return &b->key[i];
}

typedef struct {
        botset_t *bots;
        pairs_t shoppers, all;
} judged_t;

static void hook(void *arg, int32_t partition, const itd_example_t *ex) {
        (void)partition;
        judged_t *j = arg;
        pairs_add(&j->all, ex->score, ex->label);
        if (*bot_slot(j->bots, ex->user_hash) != (ex->user_hash | 1))
                pairs_add(&j->shoppers, ex->score, ex->label);
}

typedef struct {
        double risk_auc, shopper_auc, all_auc;
        uint64_t untrained, untrained_shoppers, events, bot_events;
} result_t;

static int run(uint64_t users, double days, uint64_t seed, double bots,
               const char *threshold, result_t *r) {
        char err[512], seedtxt[32];
        itd_conf_t *conf = itd_conf_new();
        snprintf(seedtxt, sizeof seedtxt, "%" PRIu64, seed);
        if (itd_conf_set(conf, "risk.train.threshold", threshold, err,
                         sizeof err) ||
            itd_conf_set(conf, "model.seed", seedtxt, err, sizeof err)) {
                fprintf(stderr, "bench_risk_train: %s\n", err);
                return 1;
        }
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        itd_sim_conf_t sc = {.users = users, .days = days, .seed = seed,
                             .start_ms = T0, .bot_fraction = bots};
        itd_sim_t *sim = eng ? itd_sim_new(&sc, err, sizeof err) : NULL;
        if (!sim) {
                fprintf(stderr, "bench_risk_train: %s\n", err);
                itd_engine_destroy(eng);
                itd_conf_destroy(conf);
                return 1;
        }
        judged_t *j = calloc(1, sizeof *j);
        j->bots = calloc(1, sizeof *j->bots);
        itd_engine_set_example_hook(eng, hook, j);
        size_t max = itd_engine_max_batch(eng);
        itd_row_t *rows = calloc(max, sizeof *rows);
        pairs_t risk = {0};
        int64_t offset = 0, last_ts = T0;
        memset(r, 0, sizeof *r);
        for (;;) {
                size_t n = 0;
                while (n < max && itd_sim_next(sim, &rows[n].ev) == ITD_OK) {
                        itd_row_decoded(&rows[n], 0, offset++);
                        if (itd_sim_is_bot(rows[n].ev.user_id))
                                *bot_slot(j->bots, rows[n].user_hash) =
                                    rows[n].user_hash | 1;
                        last_ts = rows[n].ev.ts_ms;
                        n++;
                }
                if (n == 0)
                        break;
                if (itd_engine_process(eng, "events", rows, n, 0, err,
                                       sizeof err)) {
                        fprintf(stderr, "bench_risk_train: %s\n", err);
                        return 1;
                }
                for (size_t i = 0; i < n; i++) {
                        if (rows[i].outcome != ITD_OUT_PREDICTED)
                                continue;
                        int bot = itd_sim_is_bot(rows[i].ev.user_id);
                        pairs_add(&risk, (float)rows[i].pred.risk_score, bot);
                        r->bot_events += (uint64_t)bot;
                        r->events++;
                }
        }
        /* every horizon closes */
        itd_engine_advance(eng, last_ts + DAY_MS);
        itd_engine_stats_t st;
        itd_engine_stats(eng, &st);
        r->untrained = st.risk_untrained;
        r->risk_auc = bots > 0 ? itd_eval_auc(risk.s, risk.y, risk.n) : 0.0;
        r->shopper_auc = itd_eval_auc(j->shoppers.s, j->shoppers.y,
                                      j->shoppers.n);
        r->all_auc = itd_eval_auc(j->all.s, j->all.y, j->all.n);
        /* shoppers' predictions left out: judged count minus trained */
        r->untrained_shoppers = 0;
        for (size_t i = 0; i < risk.n; i++)
                if (!risk.y[i] && strcmp(threshold, "0") != 0 &&
                    risk.s[i] >= (float)conf->risk_train_threshold)
                        r->untrained_shoppers++;
        pairs_free(&risk);
        pairs_free(&j->shoppers);
        pairs_free(&j->all);
        free(j->bots);
        free(j);
        free(rows);
        itd_sim_destroy(sim);
        itd_engine_destroy(eng);
        itd_conf_destroy(conf);
        return 0;
}

int main(int argc, char **argv) {
        uint64_t users = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000;
        double days = argc > 2 ? strtod(argv[2], NULL) : 3.0;
        const double shares[] = {0.0, 0.02, 0.05};
        const char *thresholds[] = {"0", "0.5"};
        printf("bench_risk_train: %" PRIu64 " users, %g days; purchase AUC "
               "on shoppers' judged examples\n", users, days);
        printf("%-5s %-4s %-9s %9s %9s %9s %9s %10s %10s\n", "bots", "seed",
               "threshold", "events", "risk_auc", "shop_auc", "all_auc",
               "untrained", "shop_untr");
        double sum[3][2] = {{0}}, rsum[3] = {0};
        for (size_t b = 0; b < 3; b++)
                for (uint64_t seed = 1; seed <= 3; seed++)
                        for (size_t t = 0; t < 2; t++) {
                                result_t r;
                                if (run(users, days, seed, shares[b],
                                        thresholds[t], &r))
                                        return 1;
                                printf("%-5.2f %-4" PRIu64 " %-9s %9" PRIu64
                                       " %9.4f %9.4f %9.4f %10" PRIu64
                                       " %10" PRIu64 "\n",
                                       shares[b], seed, thresholds[t],
                                       r.events, r.risk_auc, r.shopper_auc,
                                       r.all_auc, r.untrained,
                                       r.untrained_shoppers);
                                fflush(stdout);
                                sum[b][t] += r.shopper_auc / 3.0;
                                if (t == 1)
                                        rsum[b] += r.risk_auc / 3.0;
                        }
        printf("{\"bench\":\"risk_train\",\"users\":%" PRIu64 ",\"days\":%g",
               users, days);
        for (size_t b = 0; b < 3; b++)
                printf(",\"bots_%g\":{\"risk_auc\":%.4f,\"shopper_auc_all_"
                       "trained\":%.4f,\"shopper_auc_risky_left_out\":%.4f}",
                       shares[b], rsum[b], sum[b][0], sum[b][1]);
        printf("}\n");
        return 0;
}

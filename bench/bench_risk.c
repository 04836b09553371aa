/*
 * bench_risk.c - what the risk score costs on the hot path.
 *
 * The simulator's stream (10k shoppers plus 5 % bots, 2 days) is fed in
 * batches of 256 to two partition states: one only updated
 * (itd_state_update), the other updated and scored (itd_state_update then
 * itd_risk_score per event, as the engine does). Both see every batch, in
 * alternating order, so a shared machine's noise hits both alike; the
 * difference of their thread CPU times per event is the score's cost.
 * Events are generated before timing.
 *
 * Last line: one JSON object {"bench":"risk",...}. Run by `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "intentd/event.h"
#include "intentd/risk.h"
#include "intentd/simulator.h"
#include "intentd/state.h"

#define BATCH 256
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void) {
        itd_state_conf_t conf = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 5000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 7 * DAY_MS,
            .max_users = 1000000,
        };
        itd_sim_conf_t sc = {.users = 10000, .days = 2.0, .seed = 1,
                             .start_ms = 1511568000000LL,
                             .bot_fraction = 0.05};
        char errstr[256];
        itd_sim_t *sim = itd_sim_new(&sc, errstr, sizeof errstr);
        itd_state_t *plain = itd_state_new(&conf, errstr, sizeof errstr);
        itd_state_t *scored = itd_state_new(&conf, errstr, sizeof errstr);
        itd_risk_t *rk = itd_risk_new();
        if (!sim || !plain || !scored) {
                fprintf(stderr, "bench_risk: %s\n", errstr);
                return 1;
        }
        size_t cap = 1 << 20, n = 0;
        itd_event_t *evs = malloc(cap * sizeof *evs);
        while (itd_sim_next(sim, &evs[n]) == ITD_OK)
                if (++n == cap)
                        evs = realloc(evs, (cap *= 2) * sizeof *evs);
        itd_sim_destroy(sim);

        float *x = calloc(itd_features_dim(&conf), sizeof *x);
        uint32_t ids[ITD_SPARSE_IDS];
        itd_topcats_t top;
        double t_plain = 0, t_scored = 0, sum = 0;
        size_t high = 0;
        for (size_t b = 0; b < n; b += BATCH) {
                size_t m = n - b < BATCH ? n - b : BATCH;
                for (int pass = 0; pass < 2; pass++) {
                        int with = (pass == 0) == ((b / BATCH) % 2 == 0);
                        itd_state_t *st = with ? scored : plain;
                        double t = now_ns();
                        for (size_t i = b; i < b + m; i++) {
                                itd_err_t err = itd_state_update(st, &evs[i], itd_user_hash(evs[i].user_id), x, ids, &top);
                                if (with) {
                                        float r = itd_risk_score(
                                            rk, st, &evs[i], err == ITD_OK,
                                            NULL);
                                        sum += r;
                                        high += r >= 0.5f;
                                }
                        }
                        t = now_ns() - t;
                        if (with)
                                t_scored += t;
                        else
                                t_plain += t;
                }
        }
        double ns_plain = t_plain / (double)n, ns_scored = t_scored / (double)n;
        printf("risk score over %zu events (10k shoppers + 5 %% bots, 2 "
               "days): update %.1f ns/event, update+risk %.1f ns/event, "
               "risk %.1f ns/event; mean score %.3f, %.1f %% >= 0.5\n",
               n, ns_plain, ns_scored, ns_scored - ns_plain,
               sum / (double)n, 100.0 * (double)high / (double)n);
        printf("{\"bench\":\"risk\",\"events\":%zu,\"ns_update\":%.1f,"
               "\"ns_update_risk\":%.1f,\"ns_risk\":%.1f}\n",
               n, ns_plain, ns_scored, ns_scored - ns_plain);
        free(x);
        free(evs);
        itd_risk_destroy(rk);
        itd_state_destroy(plain);
        itd_state_destroy(scored);
        return 0;
}

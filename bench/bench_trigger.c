/*
 * bench_trigger.c - cost of the marketing-trigger decision per scored
 * event (pipeline/trigger.c), on the pipeline thread's hot path: ns per
 * itd_triggers_update for the absolute rule and the relative top_percent
 * rule (which also adds the score to the partition's distribution and
 * reads two quantiles from it), with 100k users drawn uniformly and
 * intent-like scores (logit-normal around 3%). Thread CPU time of the
 * update loop only; median of 5 runs of 2M updates.
 *
 * Last line: one JSON object {"bench":"trigger",...}.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "intentd/trigger.h"

#define N 2000000
#define USERS 100000
#define RUNS 5

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_u64(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double run(itd_trigger_rule_t rule, const uint64_t *user,
                  const float *score, uint64_t *fired) {
        char err[256];
        itd_trigger_conf_t c = {.rule = rule, .enter = 0.1f, .exit = 0.05f,
                                .top_percent = 1, .exit_top_percent = 5,
                                .lift = 3, .exit_lift = 1.5,
                                .half_life_events = 10000,
                                .min_events = 1000,
                                .max_event_age_ms = 30 * 60000,
                                .cooldown_ms = 3600000,
                                .max_users = 1000000};
        double ns[RUNS];
        for (int r = 0; r < RUNS; r++) {
                itd_triggers_t *t = itd_triggers_new(&c, err, sizeof err);
                if (!t) {
                        fprintf(stderr, "bench_trigger: %s\n", err);
                        exit(1);
                }
                *fired = 0;
                double t0 = now_ns();
                for (int i = 0; i < N; i++)
                        *fired += (uint64_t)itd_triggers_update(
                            t, user[i], 1700000000000LL + i * 100LL,
                            INT64_MIN, score[i], NULL);
                ns[r] = (now_ns() - t0) / N;
                itd_triggers_destroy(t);
        }
        qsort(ns, RUNS, sizeof ns[0], cmp);
        return ns[RUNS / 2];
}

int main(void) {
        uint64_t *user = malloc(N * sizeof *user);
        float *score = malloc(N * sizeof *score);
        for (int i = 0; i < N; i++) {
                user[i] = (next_u64() % USERS) * 0x9E3779B97F4A7C15ULL;
                double u1 = ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0;
                double u2 = ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0;
                double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
                score[i] = (float)(1 / (1 + exp(-(-3.5 + 0.8 * z))));
        }
        uint64_t fa, fr;
        double abs_ns = run(ITD_TRIGGER_RULE_ABSOLUTE, user, score, &fa);
        double rel_ns = run(ITD_TRIGGER_RULE_TOP_PERCENT, user, score, &fr);
        printf("trigger update, %d events of %d users: absolute %.1f ns "
               "(%llu fired), top_percent %.1f ns (%llu fired)\n",
               N, USERS, abs_ns, (unsigned long long)fa, rel_ns,
               (unsigned long long)fr);
        printf("{\"bench\":\"trigger\",\"absolute_ns\":%.1f,"
               "\"top_percent_ns\":%.1f}\n",
               abs_ns, rel_ns);
        free(user);
        free(score);
        return 0;
}

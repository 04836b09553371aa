/*
 * test_trigsweep.c - the trigger sweep (trigsweep.h) split into parts,
 * each part on a thread of its own over every score in stream order,
 * counts exactly what one part counts: every row fires the same UPs and
 * DOWNs for the same users, with as many parts as replay has workers, or
 * more parts than rows.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "intentd/trigsweep.h"

#define N 20000
#define BATCH 1000
#define USERS 500

typedef struct {
        uint64_t user[N];
        int64_t ts[N];
        float score[N];
} stream_t;

/* Users with a purchase propensity of their own, scores around it, event
 * time moving on by up to a minute, a NaN now and then. */
static void gen(stream_t *s) {
        uint64_t x = 88172645463325252ULL;
        int64_t ts = 1700000000000LL;
        for (size_t i = 0; i < N; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                uint64_t u = x % USERS;
                s->user[i] = u * 0x9e3779b97f4a7c15ULL + 1;
                ts += (int64_t)(x >> 40) % 60000;
                s->ts[i] = ts;
                double base = (double)(u % 17) / 40.0;
                double noise = (double)((x >> 20) % 1000) / 4000.0;
                s->score[i] = i % 997 == 5 ? NAN : (float)(base + noise);
        }
}

static itd_trigger_conf_t conf(void) {
        return (itd_trigger_conf_t){.rule = ITD_TRIGGER_RULE_TOP_PERCENT,
                                    .enter = 0.5f, .exit = 0.3f,
                                    .top_percent = 1, .exit_top_percent = 5,
                                    .lift = 3, .exit_lift = 1.5,
                                    .half_life_events = 2000,
                                    .min_events = 100,
                                    .cooldown_ms = 10 * 60000,
                                    .max_users = 200};
}

static itd_trigsweep_t *sweep(size_t parts, const unsigned *weight) {
        char err[256];
        itd_trigger_conf_t c = conf();
        itd_trigsweep_t *sw =
            itd_trigsweep_new(&c, parts, weight, err, sizeof err);
        cr_assert_not_null(sw, "%s", err);
        return sw;
}

typedef struct {
        itd_trigsweep_t *sw;
        const stream_t *s;
        size_t part, from, to;
} job_t;

static void *run_part(void *arg) {
        job_t *j = arg;
        for (size_t i = j->from; i < j->to; i++)
                itd_trigsweep_add_part(j->sw, j->part, j->s->user[i],
                                       j->s->ts[i], j->s->score[i]);
        return NULL;
}

/* Batch after batch, every part on its own thread at once. */
static void feed_parts(itd_trigsweep_t *sw, const stream_t *s) {
        size_t n = itd_trigsweep_parts(sw);
        pthread_t th[16];
        job_t jobs[16];
        cr_assert_leq(n, 16);
        for (size_t from = 0; from < N; from += BATCH) {
                for (size_t p = 0; p < n; p++) {
                        jobs[p] = (job_t){sw, s, p, from, from + BATCH};
                        cr_assert_eq(pthread_create(&th[p], NULL, run_part,
                                                    &jobs[p]),
                                     0);
                }
                for (size_t p = 0; p < n; p++)
                        pthread_join(th[p], NULL);
        }
}

Test(trigsweep, parts_on_threads_count_what_one_part_counts) {
        static stream_t s;
        gen(&s);
        itd_trigsweep_t *one = sweep(1, NULL);
        for (size_t i = 0; i < N; i++)
                itd_trigsweep_add(one, s.user[i], s.ts[i], s.score[i]);
        json_t *want = itd_trigsweep_json(one);

        /* not a vacuous comparison: relative and absolute rows fired */
        const json_t *rows = json_object_get(want, "rows");
        size_t fired = 0;
        for (size_t i = 0; i < json_array_size(rows); i++)
                fired += json_integer_value(
                             json_object_get(json_array_get(rows, i), "up")) >
                         0;
        cr_assert_geq(fired, 10, "%zu rows fired", fired);
        cr_assert_eq(json_integer_value(json_object_get(want, "scores")),
                     N - N / 997 - (N % 997 > 5));

        /* as replay weighs them: the first part two, the others three */
        static const unsigned weight[40] = {2, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                                            3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
        size_t parts[] = {2, 3, 15, 40, 2, 3};
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
                itd_trigsweep_t *sw = sweep(parts[k], k >= 4 ? weight : NULL);
                cr_assert_eq(itd_trigsweep_parts(sw),
                             parts[k] < 15 ? parts[k] : 15);
                feed_parts(sw, &s);
                json_t *got = itd_trigsweep_json(sw);
                char *a = json_dumps(want, JSON_SORT_KEYS);
                char *b = json_dumps(got, JSON_SORT_KEYS);
                cr_assert_str_eq(b, a, "%zu parts", parts[k]);
                free(a);
                free(b);
                json_decref(got);
                itd_trigsweep_destroy(sw);
        }
        json_decref(want);
        itd_trigsweep_destroy(one);
}

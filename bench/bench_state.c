/*
 * bench_state.c - speed and memory of the per-user state.
 *
 * Speed: ns per event for itd_state_update (apply the event, extract the
 * features) at 10k and 1M users, each with and without an
 * itd_state_prefetch pass over every batch of 256 events first (what the
 * engine does per poll batch). Synthetic stream: users drawn uniformly
 * (the cache-hostile case: a million users do not fit any cache), a
 * Taobao-like type mix, 1000 categories, 100k items, time advancing so the
 * run spans a day. Also the simulator's stream (simulator.h) at 10k users.
 * Only the update pass is timed (thread CPU time; with and without
 * prefetch alternate batch by batch, so noise from a shared machine hits
 * both alike); generating events is not.
 *
 * Memory: process RSS growth (/proc/self/statm) per user after feeding 1M
 * and 5M users 1..20 events each (P(k) ~ k^-1.5, mean ~3.5, ~6% of users
 * past the 12-event ring), spread over 6 days so every event is still
 * inside the 7-day window; and heavy users (500 events each). Arrays are
 * kept out of the heap (fixed mmap threshold) so RSS measures the state,
 * not the allocator's reuse of earlier runs' memory.
 *
 * Last line: one JSON object {"bench":"state",...}. Run by `make bench`.
 */
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "intentd/event.h"
#include "intentd/simulator.h"
#include "intentd/state.h"
#include "state_int.h"

#define BATCH 256
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define T0_MS 1700000000000LL /* 2023-11-14, any fixed time will do */
#define SPEED_EVENTS 2000000
#define K_MAX 20

static itd_state_conf_t bench_conf(size_t max_users) {
        itd_state_conf_t c = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 60000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 30 * DAY_MS,
            .max_users = max_users,
        };
        return c;
}

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double rss_bytes(void) {
        FILE *f = fopen("/proc/self/statm", "r");
        long size = 0, resident = 0;
        if (!f)
                return 0;
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
                resident = 0;
        fclose(f);
        return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static uint64_t splitmix(uint64_t *s) {
        uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

/* Taobao-like mix in per mille: views, searches, carts, removes,
 * purchases, favourites. */
static itd_event_type_t draw_type(uint64_t r) {
        static const int cum[ITD_EV__COUNT] = {830, 880, 935, 945, 968, 1000};
        int v = (int)(r % 1000);
        int t = 0;
        while (v >= cum[t])
                t++;
        return (itd_event_type_t)t;
}

static void make_event(itd_event_t *ev, uint64_t user, int64_t ts,
                       uint64_t *rng) {
        uint64_t r = splitmix(rng);
        ev->ts_ms = ts;
        ev->type = draw_type(r);
        uint32_t item = (uint32_t)((r >> 12) % 100000);
        snprintf(ev->user_id, sizeof ev->user_id, "u%" PRIu64, user);
        snprintf(ev->item_id, sizeof ev->item_id, "i%" PRIu32, item);
        snprintf(ev->category, sizeof ev->category, "c%" PRIu32, item / 100);
        ev->price = 1.0 + (double)(item % 997);
        if (ev->type == ITD_EV_SEARCH)
                snprintf(ev->query, sizeof ev->query, "red shoe %" PRIu32,
                         item % 50);
        else
                ev->query[0] = '\0';
}

/* Times one pass over the batch: prefetch (optional), then update. */
static double run_batch(itd_state_t *st, const itd_event_t *evs, size_t n,
                        int prefetch, float *x) {
        uint32_t ids[ITD_SPARSE_IDS];
        itd_topcats_t top;
        double t = now_ns();
        if (prefetch)
                for (size_t i = 0; i < n; i++)
                        itd_state_prefetch(st, itd_user_hash(evs[i].user_id));
        for (size_t i = 0; i < n; i++)
                itd_state_update(st, &evs[i], itd_user_hash(evs[i].user_id), x, ids, &top);
        return now_ns() - t;
}

/*
 * ns per event without and with the prefetch pass (ns[0], ns[1]) over
 * SPEED_EVENTS uniform events, after one event per user. The two modes
 * alternate batch by batch on the same state, so both see the same state
 * and the same neighbours on a shared machine.
 */
static void speed_synthetic(size_t n_users, double *ns) {
        itd_state_conf_t conf = bench_conf(n_users * 2);
        char errstr[256];
        itd_state_t *st = itd_state_new(&conf, errstr, sizeof errstr);
        if (!st) {
                fprintf(stderr, "bench_state: %s\n", errstr);
                exit(1);
        }
        itd_event_t *evs = calloc(BATCH, sizeof *evs);
        float *x = calloc(itd_features_dim(&conf), sizeof *x);
        uint64_t rng = 42;
        int64_t ts = T0_MS;
        for (size_t u = 0; u < n_users; u += BATCH) {
                size_t n = 0;
                for (; n < BATCH && u + n < n_users; n++)
                        make_event(&evs[n], u + n, ts += 3, &rng);
                run_batch(st, evs, n, 0, x);
        }
        int64_t step = DAY_MS / SPEED_EVENTS;
        double total[2] = {0, 0};
        size_t k = 0;
        for (size_t done = 0; done < SPEED_EVENTS; done += BATCH, k++) {
                for (size_t i = 0; i < BATCH; i++)
                        make_event(&evs[i], splitmix(&rng) % n_users,
                                   ts += step, &rng);
                total[k % 2] += run_batch(st, evs, BATCH, (int)(k % 2), x);
        }
        for (int m = 0; m < 2; m++)
                ns[m] = total[m] / (double)(k / 2 * BATCH);
        itd_state_destroy(st);
        free(evs);
        free(x);
}

/* The same over the simulator's first SPEED_EVENTS events. */
static void speed_sim(uint64_t users, double *ns) {
        itd_state_conf_t conf = bench_conf(users * 2);
        char errstr[256];
        itd_state_t *st = itd_state_new(&conf, errstr, sizeof errstr);
        itd_sim_conf_t sc = {.users = users, .days = 30, .seed = 7,
                             .start_ms = T0_MS};
        itd_sim_t *sim = itd_sim_new(&sc, errstr, sizeof errstr);
        if (!st || !sim) {
                fprintf(stderr, "bench_state: %s\n", errstr);
                exit(1);
        }
        itd_event_t *evs = calloc(BATCH, sizeof *evs);
        float *x = calloc(itd_features_dim(&conf), sizeof *x);
        double total[2] = {0, 0};
        size_t done[2] = {0, 0}, k = 0;
        while (done[0] + done[1] < SPEED_EVENTS) {
                size_t n = 0;
                while (n < BATCH && itd_sim_next(sim, &evs[n]) == ITD_OK)
                        n++;
                if (!n)
                        break;
                total[k % 2] += run_batch(st, evs, n, (int)(k % 2), x);
                done[k % 2] += n;
                k++;
        }
        for (int m = 0; m < 2; m++)
                ns[m] = done[m] ? total[m] / (double)done[m] : 0;
        itd_sim_destroy(sim);
        itd_state_destroy(st);
        free(evs);
        free(x);
}

/* Events of user u: 1..K_MAX with P(k) ~ k^-1.5, from a hash of u. */
static int events_of(uint64_t u, const double *cdf) {
        uint64_t s = u * 2654435761u + 17;
        double r = (double)(splitmix(&s) >> 11) * 0x1.0p-53;
        int k = 1;
        while (k < K_MAX && r > cdf[k - 1])
                k++;
        return k;
}

typedef struct mem_result_s {
        double rss_per_user;   /* bytes */
        double stats_per_user; /* itd_state_stats bytes / users */
        double overflowed;     /* share of users holding an overflow block */
        double events_per_user;
        double ns_per_event;
} mem_result_t;

/*
 * Feeds n_users users, user u getting k(u) events (heavy: `heavy` each),
 * in rounds (round r: one event for every user with more than r), all
 * within 6 days; measures RSS growth.
 */
static mem_result_t memory_run(size_t n_users, int heavy) {
        double cdf[K_MAX], z = 0;
        for (int k = 1; k <= K_MAX; k++)
                z += pow(k, -1.5);
        double acc = 0;
        for (int k = 1; k <= K_MAX; k++) {
                acc += pow(k, -1.5) / z;
                cdf[k - 1] = acc;
        }
        size_t total = 0;
        int rounds = heavy ? heavy : K_MAX;
        for (size_t u = 0; u < n_users; u++)
                total += heavy ? (size_t)heavy : (size_t)events_of(u, cdf);
        int64_t step = 6 * DAY_MS / (int64_t)total;
        if (step < 1)
                step = 1;

        itd_state_conf_t conf = bench_conf(n_users);
        char errstr[256];
        itd_event_t *evs = calloc(BATCH, sizeof *evs);
        float *x = calloc(itd_features_dim(&conf), sizeof *x);
        malloc_trim(0); /* what earlier runs freed must not be reused */
        double rss0 = rss_bytes();
        itd_state_t *st = itd_state_new(&conf, errstr, sizeof errstr);
        uint64_t rng = 9;
        int64_t ts = T0_MS;
        size_t n = 0;
        double ns = 0;
        for (int r = 0; r < rounds; r++) {
                for (size_t u = 0; u < n_users; u++) {
                        if (!heavy && events_of(u, cdf) <= r)
                                continue;
                        make_event(&evs[n++], u, ts += step, &rng);
                        if (n == BATCH) {
                                ns += run_batch(st, evs, n, 1, x);
                                n = 0;
                        }
                }
        }
        ns += run_batch(st, evs, n, 1, x);
        double rss1 = rss_bytes();
        itd_state_stats_t ss;
        itd_state_stats(st, &ss);
        size_t with_ov = 0;
        for (size_t i = 0; i < st->n_users; i++)
                with_ov += st->users[i].ov != 0;
        mem_result_t res = {
            .rss_per_user = (rss1 - rss0) / (double)n_users,
            .stats_per_user = (double)ss.bytes / (double)n_users,
            .overflowed = (double)with_ov / (double)n_users,
            .events_per_user = (double)total / (double)n_users,
            .ns_per_event = ns / (double)total,
        };
        itd_state_destroy(st);
        free(evs);
        free(x);
        return res;
}

int main(int argc, char **argv) {
        /* "speed": only the speed part (for profiling) */
        int speed_only = argc > 1 && strcmp(argv[1], "speed") == 0;
        /* A fixed mmap threshold: glibc's sliding one would put arrays
         * below 32 MB on the heap, where the halves that doubling leaves
         * behind stay resident and would be charged to the state. */
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        double t_start = now_ns();
        printf("bench_state: per-user state, %d-event batches, "
               "windows 5m/1h/1d/7d\n", BATCH);
        double s10k[2], s1m[2], sim10k[2];
        speed_synthetic(10000, s10k);
        speed_synthetic(1000000, s1m);
        speed_sim(10000, sim10k);
        printf("update+features  10k users: %6.1f ns/event, with prefetch "
               "%6.1f\n", s10k[0], s10k[1]);
        printf("update+features   1M users: %6.1f ns/event, with prefetch "
               "%6.1f\n", s1m[0], s1m[1]);
        printf("simulator stream 10k users: %6.1f ns/event, with prefetch "
               "%6.1f\n", sim10k[0], sim10k[1]);
        fflush(stdout);
        if (speed_only)
                return 0;

        mem_result_t m1 = memory_run(1000000, 0);
        mem_result_t m5 = memory_run(5000000, 0);
        mem_result_t mh = memory_run(20000, 500);
        const struct {
                const char *name;
                const mem_result_t *m;
        } rows[] = {{"1M users", &m1}, {"5M users", &m5},
                    {"20k heavy", &mh}};
        for (size_t i = 0; i < 3; i++)
                printf("memory %-9s: %6.1f B/user RSS, %6.1f B/user "
                       "accounted, %4.1f%% overflowed, %.1f events/user, "
                       "%.0f ns/event\n", rows[i].name,
                       rows[i].m->rss_per_user, rows[i].m->stats_per_user,
                       100.0 * rows[i].m->overflowed,
                       rows[i].m->events_per_user, rows[i].m->ns_per_event);
        double seconds = (now_ns() - t_start) / 1e9;
        printf("{\"bench\":\"state\",\"batch\":%d,"
               "\"ns_per_event\":{\"users_10k\":%.1f,"
               "\"users_10k_prefetch\":%.1f,\"users_1m\":%.1f,"
               "\"users_1m_prefetch\":%.1f,\"sim_10k\":%.1f,"
               "\"sim_10k_prefetch\":%.1f},"
               "\"bytes_per_user_rss\":{\"users_1m\":%.1f,\"users_5m\":%.1f,"
               "\"heavy_500\":%.1f},"
               "\"bytes_per_user_accounted\":{\"users_1m\":%.1f,"
               "\"users_5m\":%.1f,\"heavy_500\":%.1f},"
               "\"overflowed_share_5m\":%.4f,\"seconds\":%.1f}\n",
               BATCH, s10k[0], s10k[1], s1m[0], s1m[1], sim10k[0], sim10k[1],
               m1.rss_per_user, m5.rss_per_user, mh.rss_per_user,
               m1.stats_per_user, m5.stats_per_user, mh.stats_per_user,
               m5.overflowed, seconds);
        return 0;
}

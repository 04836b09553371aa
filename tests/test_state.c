/*
 * test_state.c - per-user windows against a brute-force sliding-window
 * count (random streams with out-of-order, late and duplicate events, and
 * the real Taobao tail users), the watermark (a robust frontier that one
 * future-dated event cannot move), late events scored without changing
 * the state, TTL and LRU eviction, dumps. Snapshots and labels are in
 * test_state_snapshot.c.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/event.h"
#include "intentd/state.h"
#include "state_int.h"
#include "testutil.h"
#include "state_helpers.h"

typedef struct ref_ev_s {
        int user;
        int64_t ts;
        int type;
} ref_ev_t;

static int64_t fdiv(int64_t a, int64_t b) {
        int64_t q = a / b;
        if (a % b != 0 && (a < 0) != (b < 0))
                q--;
        return q;
}

static uint32_t ref_count(const ref_ev_t *evs, size_t n, int user, int type,
                          int64_t lo, int64_t hi) {
        /* events of user/type with lo <= ts < hi */
        uint32_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (evs[i].user == user && evs[i].type == type &&
                    evs[i].ts >= lo && evs[i].ts < hi)
                        c++;
        return c;
}

/*
 * Compares every user's window counts at now with brute force. The stated
 * approximation (state_int.h): exact when the user never had more than
 * ITD_RING events; otherwise off by at most the events of that type in
 * the buckets of width ceil(span/ITD_OV_K) that straddle a window edge.
 * Returns how many (user, window, type) cells were not exact.
 */
static size_t check_against_ref(const itd_state_t *st,
                                const itd_state_conf_t *conf,
                                const ref_ev_t *evs, size_t n, int n_users,
                                const char *(*name)(int, char *),
                                int64_t now) {
        size_t inexact = 0;
        char buf[64];
        for (int u = 0; u < n_users; u++) {
                size_t total = 0;
                for (size_t i = 0; i < n; i++)
                        total += evs[i].user == u;
                uint32_t got[ITD_WINDOWS_MAX * T];
                itd_err_t err = itd_state_counts(st, name(u, buf), now, got);
                if (total == 0) {
                        cr_expect_eq(err, ITD_ERR_NOT_FOUND);
                        continue;
                }
                cr_assert_eq(err, ITD_OK, "user %s missing", buf);
                for (size_t w = 0; w < conf->n_windows; w++) {
                        int64_t span = conf->window_ms[w];
                        int64_t width = (span + ITD_OV_K - 1) / ITD_OV_K;
                        int64_t a = now - span;
                        int64_t jl = fdiv(a + 1, width), jh = fdiv(now, width);
                        for (int t = 0; t < T; t++) {
                                uint32_t exact =
                                    ref_count(evs, n, u, t, a + 1, now + 1);
                                uint32_t bound = 0;
                                if (total > ITD_RING) {
                                        if (jl * width != a + 1)
                                                bound += ref_count(
                                                    evs, n, u, t, jl * width,
                                                    jl * width + width);
                                        if (jh * width + width != now + 1 &&
                                            jh != jl)
                                                bound += ref_count(
                                                    evs, n, u, t, jh * width,
                                                    jh * width + width);
                                }
                                uint32_t g = got[w * T + t];
                                uint32_t diff = g > exact ? g - exact
                                                          : exact - g;
                                inexact += diff != 0;
                                cr_expect(diff <= bound,
                                          "user %s window %zu type %d at "
                                          "%" PRId64 ": got %u, exact %u, "
                                          "allowed error %u",
                                          buf, w, t, now, g, exact, bound);
                        }
                }
        }
        return inexact;
}

Test(state, conf_check_names_the_bad_field) {
        itd_state_conf_t c = default_conf();
        char err[256];
        cr_assert_eq(itd_state_conf_check(&c, err, sizeof(err)), ITD_OK);
        c.window_ms[2] = c.window_ms[1];
        cr_assert_eq(itd_state_conf_check(&c, err, sizeof(err)), ITD_ERR_CONF);
        cr_assert(strstr(err, "window_ms[2]") != NULL, "%s", err);
        c = default_conf();
        c.max_users = 0;
        cr_assert_null(itd_state_new(&c, err, sizeof(err)));
        cr_assert(strstr(err, "max_users") != NULL, "%s", err);
}

/* Random streams: skewed users (some far beyond the ring), events out of
 * order within the lateness, late events (refused) and duplicates. */
static void random_stream_case(unsigned seed,
                               const char *(*name)(int, char *)) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        cr_assert_not_null(st);
        enum { N = 12000, USERS = 40 };
        ref_ev_t *evs = calloc(N, sizeof(*evs));
        size_t n = 0;
        srand(seed);
        int64_t base = 1511848894000LL, max_ts = INT64_MIN;
        uint64_t late = 0;
        char buf[64];
        ref_ev_t prev = {0, base, 0};
        for (int i = 0; i < N; i++) {
                base += rand() % 120000; /* ~10 days over the stream */
                ref_ev_t e;
                int r = rand() % 100;
                if (r < 3 && i > 0) {
                        e = prev; /* duplicate delivery */
                } else {
                        /* user k with weight ~ 1/(k+1)^1.5 */
                        double uu = (double)rand() / RAND_MAX;
                        e.user = (int)(USERS * pow(uu, 3.0));
                        if (e.user >= USERS)
                                e.user = USERS - 1;
                        e.type = rand() % T;
                        e.ts = base - rand() % 50000; /* out of order */
                        if (r >= 97)
                                /* late: the frontier trails the
                                 * newest event by ~8 users' arrivals,
                                 * about 8 minutes here */
                                e.ts = base - conf.allowed_lateness_ms -
                                       30 * MIN_MS - rand() % 100000;
                }
                /* the watermark's own rule is checked below
                 * (watermark_is_the_lower_median_of_recent_users) */
                int64_t wm = itd_state_watermark(st);
                itd_err_t err = feed(st, name(e.user, buf), e.ts, e.type);
                if (e.ts < wm) {
                        cr_assert_eq(err, ITD_ERR_RANGE);
                        late++;
                        continue;
                }
                cr_assert_eq(err, ITD_OK);
                if (e.ts > max_ts)
                        max_ts = e.ts;
                evs[n++] = e;
                prev = e;
                if (n % 3000 == 0)
                        check_against_ref(st, &conf, evs, n, USERS, name,
                                          max_ts);
        }
        itd_state_stats_t stats;
        itd_state_stats(st, &stats);
        cr_expect_eq(stats.late_events, late);
        cr_expect_gt(late, 0);
        size_t inexact = 0;
        int64_t later[] = {0, 10 * MIN_MS, 3 * HOUR_MS, 2 * DAY_MS,
                           8 * DAY_MS};
        for (size_t k = 0; k < sizeof(later) / sizeof(later[0]); k++)
                inexact += check_against_ref(st, &conf, evs, n, USERS, name,
                                             max_ts + later[k]);
        cr_log_info("seed %u: %zu inexact cells, %" PRIu64 " late", seed,
                    inexact, late);
        /* the approximation is the exception, not the rule */
        cr_expect_lt(inexact, (size_t)(5 * USERS * 4 * T / 4),
                     "%zu inexact cells", inexact);
        free(evs);
        itd_state_destroy(st);
}

Test(state, window_counts_match_brute_force_on_random_streams) {
        random_stream_case(1, short_name);
        random_stream_case(2, short_name);
}

Test(state, window_counts_match_brute_force_with_long_user_ids) {
        random_stream_case(3, long_name);
}

Test(state, users_with_few_events_are_counted_exactly) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1000000000000LL;
        int64_t ts[] = {t0, t0 + 1000, t0 + 299999, t0 + 300000,
                        t0 + HOUR_MS, t0 + DAY_MS + 1};
        for (size_t i = 0; i < 6; i++)
                cr_assert_eq(feed(st, "a", ts[i], (int)(i % 2)), ITD_OK);
        uint32_t c[4 * T];
        /* now = t0 + 300000: 5m window is (t0, t0 + 300000] */
        cr_assert_eq(itd_state_counts(st, "a", t0 + 300000, c), ITD_OK);
        cr_expect_eq(c[0 * T + ITD_EV_VIEW], 1);   /* t0 is out, +299999 */
        cr_expect_eq(c[0 * T + ITD_EV_SEARCH], 2); /* +1000, +300000 */
        cr_expect_eq(c[1 * T + ITD_EV_VIEW], 2);   /* 1h reaches t0 */
        cr_expect_eq(c[1 * T + ITD_EV_SEARCH], 2); /* later ones are not
                                                    * counted before now */
        cr_assert_eq(itd_state_counts(st, "a", t0 + DAY_MS + 1, c), ITD_OK);
        cr_expect_eq(c[2 * T + ITD_EV_VIEW] + c[2 * T + ITD_EV_SEARCH], 5);
        cr_expect_eq(c[3 * T + ITD_EV_VIEW] + c[3 * T + ITD_EV_SEARCH], 6);
        cr_expect_eq(itd_state_counts(st, "nobody", t0, c), ITD_ERR_NOT_FOUND);
        itd_state_destroy(st);
}

Test(state, refuses_events_older_than_the_watermark_and_counts_them) {
        itd_state_conf_t conf = default_conf();
        conf.allowed_lateness_ms = 100;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        cr_expect_eq(itd_state_watermark(st), INT64_MIN);
        cr_assert_eq(feed(st, "a", 1000, ITD_EV_VIEW), ITD_OK);
        cr_expect_eq(itd_state_watermark(st), INT64_MIN,
                     "one user alone does not move the watermark");
        cr_assert_eq(feed(st, "b", 1000, ITD_EV_VIEW), ITD_OK);
        cr_expect_eq(itd_state_frontier(st), 1000);
        cr_expect_eq(itd_state_watermark(st), 900);
        cr_assert_eq(feed(st, "a", 950, ITD_EV_VIEW), ITD_OK);  /* in order */
        cr_assert_eq(feed(st, "a", 900, ITD_EV_VIEW), ITD_OK);  /* at wm */
        cr_assert_eq(feed(st, "a", 899, ITD_EV_VIEW), ITD_ERR_RANGE);
        cr_assert_eq(feed(st, "c", 10, ITD_EV_VIEW), ITD_ERR_RANGE);
        uint32_t c[4 * T];
        cr_assert_eq(itd_state_counts(st, "a", 1000, c), ITD_OK);
        cr_expect_eq(c[ITD_EV_VIEW], 3);
        cr_expect_eq(itd_state_counts(st, "c", 1000, c), ITD_ERR_NOT_FOUND,
                     "a refused event must not create its user");
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.late_events, 2);
        itd_state_advance(st, 5000);
        cr_expect_eq(itd_state_watermark(st), 5000);
        itd_state_advance(st, 10);
        cr_expect_eq(itd_state_watermark(st), 5000, "watermark never recedes");
        cr_expect_eq(feed(st, "a", 4999, ITD_EV_VIEW), ITD_ERR_RANGE);
        itd_state_destroy(st);
}

/* A stray event an hour ahead (a bad client clock), even a burst of them
 * from one user, or a minority of users ahead, must not move the
 * watermark: the events that follow are on time. */
Test(state, future_dated_events_do_not_move_the_watermark) {
        itd_state_conf_t conf = default_conf();
        conf.allowed_lateness_ms = 5000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1700000000000LL;
        char user[32];
        /* the very first event of the partition is the stray one */
        cr_assert_eq(feed(st, "stray", t0 + HOUR_MS, ITD_EV_VIEW), ITD_OK);
        for (int i = 0; i < 100; i++) {
                snprintf(user, sizeof user, "u%d", i % 40);
                cr_assert_eq(feed(st, user, t0 + i * 1000, ITD_EV_VIEW), ITD_OK,
                             "event %d refused as late", i);
                if (i == 50) /* one user's burst from a clock an hour ahead */
                        for (int k = 0; k < 20; k++)
                                cr_assert_eq(feed(st, "burst",
                                                  t0 + HOUR_MS + k, 0),
                                             ITD_OK);
                if (i == 70) /* seven other users ahead, interleaved */
                        for (int k = 0; k < 7; k++) {
                                snprintf(user, sizeof user, "ahead%d", k);
                                cr_assert_eq(feed(st, user,
                                                  t0 + 50 * MIN_MS, 0),
                                             ITD_OK);
                        }
        }
        cr_expect_leq(itd_state_frontier(st), t0 + 99 * 1000);
        cr_expect_geq(itd_state_frontier(st), t0 + 80 * 1000,
                      "the frontier follows the many users in order");
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.late_events, 0);
        /* once most recent users agree on a later time, it moves */
        for (int i = 0; i < 16; i++) {
                snprintf(user, sizeof user, "v%d", i);
                cr_assert_eq(feed(st, user, t0 + 2 * HOUR_MS, 0), ITD_OK);
        }
        cr_expect_eq(itd_state_frontier(st), t0 + 2 * HOUR_MS);
        cr_expect_eq(itd_state_watermark(st), t0 + 2 * HOUR_MS - 5000);
        itd_state_destroy(st);
}

/* Reference: the newest time of each of the last 16 distinct users (by
 * arrival of an on-time event), lower median, never back, from 2 users. */
Test(state, watermark_is_the_lower_median_of_recent_users) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        enum { K = ITD_FRONT_USERS };
        int ref_user[K];
        int64_t ref_ts[K];
        int n = 0;
        int64_t frontier = INT64_MIN, base = 1600000000000LL;
        char user[32];
        srand(11);
        for (int i = 0; i < 20000; i++) {
                base += rand() % 2000;
                int u = rand() % 30;
                int64_t ts = base - rand() % 90000;
                if (rand() % 50 == 0)
                        ts += HOUR_MS; /* a clock ahead */
                snprintf(user, sizeof user, "user-%d", u);
                int64_t wm = itd_state_watermark(st);
                itd_err_t err = feed(st, user, ts, rand() % T);
                cr_assert_eq(err, ts < wm ? ITD_ERR_RANGE : ITD_OK);
                if (err != ITD_OK)
                        continue;
                int j = 0;
                while (j < n && ref_user[j] != u)
                        j++;
                if (j < n || n == K) {
                        if (j == n)
                                j = 0;
                        else if (ref_ts[j] > ts)
                                ts = ref_ts[j];
                        memmove(ref_user + j, ref_user + j + 1,
                                (size_t)(n - 1 - j) * sizeof(int));
                        memmove(ref_ts + j, ref_ts + j + 1,
                                (size_t)(n - 1 - j) * sizeof(int64_t));
                        n--;
                }
                ref_user[n] = u;
                ref_ts[n++] = ts;
                if (n >= 2) {
                        int64_t sorted[K];
                        memcpy(sorted, ref_ts, (size_t)n * sizeof(int64_t));
                        for (int a = 1; a < n; a++)
                                for (int b = a; b > 0 &&
                                                sorted[b - 1] > sorted[b];
                                     b--) {
                                        int64_t t = sorted[b];
                                        sorted[b] = sorted[b - 1];
                                        sorted[b - 1] = t;
                                }
                        if (sorted[(n - 1) / 2] > frontier)
                                frontier = sorted[(n - 1) / 2];
                }
                cr_assert_eq(itd_state_frontier(st), frontier, "event %d", i);
                cr_assert_eq(itd_state_watermark(st),
                             frontier == INT64_MIN
                                 ? INT64_MIN
                                 : frontier - conf.allowed_lateness_ms);
        }
        itd_state_destroy(st);
}

/* A late event is scored from its user's state as it stands (window
 * counts as of its own time) and changes nothing at all. */
Test(state, peek_scores_a_late_event_and_changes_nothing) {
        itd_state_conf_t conf = default_conf();
        conf.allowed_lateness_ms = 1000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1700000000000LL;
        cr_assert_eq(feed(st, "a", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "a", t0 + 10 * MIN_MS, ITD_EV_ADD_TO_CART),
                     ITD_OK);
        cr_assert_eq(feed(st, "b", t0 + 10 * MIN_MS, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(itd_state_watermark(st), t0 + 10 * MIN_MS - 1000);
        size_t n_before, n_after;
        unsigned char *before = snapshot_bytes(st, &n_before);

        itd_event_t ev;
        make_event(&ev, "a", t0 + 2 * MIN_MS, ITD_EV_SEARCH);
        snprintf(ev.category, sizeof ev.category, "%s", "never-seen");
        float x[512], y[512];
        uint32_t ids[ITD_SPARSE_IDS];
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_ERR_RANGE);
        cr_assert_eq(itd_state_peek(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        /* 5m window as of t0 + 2m: the view at t0 only, not the cart */
        char name[64];
        size_t dim = itd_features_dim(&conf);
        for (size_t i = 0; i < dim; i++) {
                itd_features_name(&conf, i, name, sizeof name);
                if (!strcmp(name, "count_5m_view"))
                        cr_expect_float_eq(x[i], logf(2.0f), 1e-6f);
                if (!strcmp(name, "count_5m_add_to_cart"))
                        cr_expect_float_eq(x[i], 0.0f, 1e-6f);
                if (!strcmp(name, "life_add_to_cart"))
                        cr_expect_float_eq(x[i], logf(2.0f), 1e-6f,
                                           "lifetime: the user as it is");
        }
        /* an unknown user reads as a new one */
        make_event(&ev, "nobody", t0, ITD_EV_VIEW);
        cr_assert_eq(itd_state_peek(st, &ev, itd_user_hash(ev.user_id), y, ids, NULL), ITD_OK);
        unsigned char *after = snapshot_bytes(st, &n_after);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.late_events, 1, "counted by update, not by peek");
        cr_expect_eq(s.users, 2);
        /* only the late counter differs */
        cr_assert_eq(n_after, n_before);
        size_t diff = 0;
        for (size_t i = 0; i < n_before; i++)
                diff += before[i] != after[i];
        cr_expect_leq(diff, 16, "late counter and checksums only");
        free(before);
        free(after);
        itd_state_destroy(st);
}

/* A user whose clock ran ahead by more than the ring can span still gets
 * its normal events applied, just not counted in windows: no offset
 * wraps around. */
Test(state, events_far_behind_their_users_newest_do_not_wrap_the_ring) {
        itd_state_conf_t conf = default_conf();
        conf.n_windows = 2;
        conf.window_ms[0] = MIN_MS;
        conf.window_ms[1] = 5 * MIN_MS;
        conf.allowed_lateness_ms = 1000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1700000000000LL;
        cr_assert_eq(feed(st, "x", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "y", t0, ITD_EV_VIEW), ITD_OK);
        /* 60 days ahead: past the ring's 32-bit millisecond offsets */
        cr_assert_eq(feed(st, "a", t0 + 60 * DAY_MS, ITD_EV_PURCHASE), ITD_OK);
        for (int i = 1; i <= 3; i++)
                cr_assert_eq(feed(st, "a", t0 + i * 1000, ITD_EV_VIEW),
                             ITD_OK);
        uint32_t c[2 * T];
        cr_assert_eq(itd_state_counts(st, "a", t0 + 3000, c), ITD_OK);
        cr_expect_eq(c[ITD_EV_VIEW], 0);
        cr_expect_eq(c[1 * T + ITD_EV_VIEW], 0);
        cr_assert_eq(itd_state_counts(st, "a", t0 + 60 * DAY_MS, c), ITD_OK);
        cr_expect_eq(c[ITD_EV_PURCHASE], 1);
        cr_expect_eq(c[ITD_EV_VIEW], 0);
        itd_state_destroy(st);
}

/* Before the first watermark (one user seen: no frontier yet) an event
 * pushed out of a full ring still counts: nothing has left any window. */
Test(state, events_past_the_ring_count_before_the_first_watermark) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1700000000000LL;
        int n = 3 * ITD_RING;
        for (int i = 0; i < n; i++)
                cr_assert_eq(feed(st, "a", t0 + i * 1000, ITD_EV_VIEW),
                             ITD_OK);
        cr_assert_eq(itd_state_watermark(st), INT64_MIN);
        uint32_t c[4 * T];
        cr_assert_eq(itd_state_counts(st, "a", t0 + n * 1000, c), ITD_OK);
        cr_expect_eq(c[0 * T + ITD_EV_VIEW], (uint32_t)n, "5m: %u of %d",
                     c[0 * T + ITD_EV_VIEW], n);
        cr_expect_eq(c[1 * T + ITD_EV_VIEW], (uint32_t)n, "1h: %u of %d",
                     c[1 * T + ITD_EV_VIEW], n);
        itd_state_destroy(st);
}

/* The TTL sweep stops early at the first user that proves the rest are
 * fresh; a user ahead of the partition proves nothing. */
Test(state, a_user_ahead_of_the_partition_does_not_stop_ttl_eviction) {
        itd_state_conf_t conf = default_conf();
        conf.idle_ttl_ms = HOUR_MS;
        conf.allowed_lateness_ms = 1000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1700000000000LL;
        cr_assert_eq(feed(st, "a", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "b", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "ahead", t0 + 5 * DAY_MS, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "c", t0 + 1000, ITD_EV_VIEW), ITD_OK);
        itd_state_advance(st, t0 + 2 * HOUR_MS);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 1, "only the user ahead is fresh");
        cr_expect_eq(s.evicted_ttl, 3);
        itd_state_destroy(st);
}

Test(state, evicts_users_idle_past_the_ttl) {
        itd_state_conf_t conf = default_conf();
        conf.idle_ttl_ms = HOUR_MS;
        conf.allowed_lateness_ms = 1000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        int64_t t0 = 1000000000000LL;
        cr_assert_eq(feed(st, "old", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "mid", t0 + 30 * MIN_MS, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "new", t0 + HOUR_MS, ITD_EV_VIEW), ITD_OK);
        itd_state_advance(st, t0 + HOUR_MS); /* "old" idle exactly ttl */
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 3);
        itd_state_advance(st, t0 + 90 * MIN_MS + 1);
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 1);
        cr_expect_eq(s.evicted_ttl, 2);
        uint32_t c[4 * T];
        cr_expect_eq(itd_state_counts(st, "old", t0, c), ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_state_counts(st, "mid", t0, c), ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_state_counts(st, "new", t0 + HOUR_MS, c), ITD_OK);
        cr_expect_eq(c[ITD_EV_VIEW], 1);
        itd_state_destroy(st);
}

Test(state, evicts_the_least_recently_active_user_at_max_users) {
        itd_state_conf_t conf = default_conf();
        conf.max_users = 3;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        cr_assert_eq(feed(st, "a", 1000, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "b", 2000, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "c", 3000, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "a", 4000, ITD_EV_SEARCH), ITD_OK);
        cr_assert_eq(feed(st, "d", 5000, ITD_EV_VIEW), ITD_OK);
        uint32_t c[4 * T];
        cr_expect_eq(itd_state_counts(st, "b", 5000, c), ITD_ERR_NOT_FOUND);
        cr_expect_eq(itd_state_counts(st, "a", 5000, c), ITD_OK);
        cr_expect_eq(c[ITD_EV_VIEW] + c[ITD_EV_SEARCH], 2);
        cr_expect_eq(itd_state_counts(st, "c", 5000, c), ITD_OK);
        cr_expect_eq(itd_state_counts(st, "d", 5000, c), ITD_OK);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 3);
        cr_expect_eq(s.evicted_cap, 1);
        itd_state_destroy(st);
}

/* A reference LRU over many users with long ids: the table's deletions,
 * the dense-array moves and the id arena's compaction keep every held
 * user's counts right. */
Test(state, lru_churn_keeps_every_held_user_exact) {
        itd_state_conf_t conf = default_conf();
        conf.max_users = 50;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        enum { USERS = 400, N = 40000 };
        uint64_t touch[USERS] = {0};
        int held[USERS] = {0}, n_held = 0;
        uint32_t cnt[USERS][T];
        memset(cnt, 0, sizeof(cnt));
        srand(7);
        char buf[64];
        int64_t ts = 1000000000000LL;
        for (uint64_t i = 1; i <= N; i++) {
                int u = rand() % USERS, t = rand() % T;
                ts += 10; /* all events stay inside the 5m window */
                if (!held[u]) {
                        if (n_held == 50) {
                                int lru = -1;
                                for (int k = 0; k < USERS; k++)
                                        if (held[k] && (lru < 0 ||
                                                        touch[k] < touch[lru]))
                                                lru = k;
                                held[lru] = 0;
                                memset(cnt[lru], 0, sizeof(cnt[lru]));
                                n_held--;
                        }
                        held[u] = 1;
                        n_held++;
                }
                touch[u] = i;
                cnt[u][t]++;
                cr_assert_eq(feed(st, long_name(u, buf), ts, t), ITD_OK);
        }
        for (int u = 0; u < USERS; u++) {
                uint32_t c[4 * T];
                itd_err_t err = itd_state_counts(st, long_name(u, buf), ts, c);
                if (!held[u]) {
                        cr_expect_eq(err, ITD_ERR_NOT_FOUND, "%s", buf);
                        continue;
                }
                cr_assert_eq(err, ITD_OK, "%s", buf);
                /* all events lie in one 7d overflow bucket, never
                 * straddling: the 7d counts are exact */
                for (int t = 0; t < T; t++)
                        cr_expect_eq(c[3 * T + t], cnt[u][t], "%s type %d",
                                     buf, t);
        }
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 50);
        cr_expect_gt(s.evicted_cap, 1000);
        itd_state_destroy(st);
}

Test(state, dump_writes_one_json_line_per_user_sorted_by_id) {
        itd_state_conf_t conf = default_conf();
        conf.window_ms[2] = 24 * HOUR_MS;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        cr_assert_eq(feed(st, "u2", 1000, ITD_EV_PURCHASE), ITD_OK);
        cr_assert_eq(feed(st, "u\"1", 2000, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "u\"1", 3000, ITD_EV_VIEW), ITD_OK);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_eq(itd_state_dump(st, 3000, f), ITD_OK);
        fclose(f);
        const char *want =
            "{\"user_id\":\"u\\\"1\",\"windows\":{"
            "\"5m\":{\"VIEW\":2,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":0,\"FAVORITE\":0},"
            "\"1h\":{\"VIEW\":2,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":0,\"FAVORITE\":0},"
            "\"1d\":{\"VIEW\":2,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":0,\"FAVORITE\":0},"
            "\"7d\":{\"VIEW\":2,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":0,\"FAVORITE\":0}}}\n"
            "{\"user_id\":\"u2\",\"windows\":{"
            "\"5m\":{\"VIEW\":0,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":1,\"FAVORITE\":0},"
            "\"1h\":{\"VIEW\":0,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":1,\"FAVORITE\":0},"
            "\"1d\":{\"VIEW\":0,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":1,\"FAVORITE\":0},"
            "\"7d\":{\"VIEW\":0,\"SEARCH\":0,\"ADD_TO_CART\":0,"
            "\"REMOVE_FROM_CART\":0,\"PURCHASE\":1,\"FAVORITE\":0}}}\n";
        cr_expect_str_eq(text, want);
        free(text);
        itd_state_destroy(st);
}

Test(state, stats_bytes_cover_the_user_records) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        char buf[64];
        for (int u = 0; u < 10000; u++)
                cr_assert_eq(feed(st, short_name(u, buf), 1000 + u,
                                  ITD_EV_VIEW), ITD_OK);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 10000);
        cr_expect_geq(s.bytes, 10000 * sizeof(itd_user_t));
        /* doubling keeps at most ~2x of (record + slot) per user */
        cr_expect_leq(s.bytes, 2 * 10000 * (ITD_USER_BYTES + 16) + 100000);
        itd_state_destroy(st);
}

/* The real tail users of Taobao UserBehavior, time-sorted, against brute
 * force for every user at the end of the file. */
Test(state, taobao_tail_users_window_counts_match_brute_force) {
        char path[4096];
        if (!tu_shared_data(
                "taobao_userbehavior_tail_users/UserBehavior_tail10000.csv",
                path, sizeof(path)))
                cr_skip_test("taobao_userbehavior_tail_users: shared data "
                             "absent");
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f);
        size_t cap = 16384, n = 0;
        ref_ev_t *evs = malloc(cap * sizeof(*evs));
        long *uids = malloc(cap * sizeof(*uids));
        int n_users = 0;
        long user, item, cat, secs;
        char beh[16];
        while (fscanf(f, "%ld,%ld,%ld,%15[^,],%ld", &user, &item, &cat, beh,
                      &secs) == 5) {
                int type = !strcmp(beh, "pv")     ? ITD_EV_VIEW
                           : !strcmp(beh, "cart") ? ITD_EV_ADD_TO_CART
                           : !strcmp(beh, "fav")  ? ITD_EV_FAVORITE
                           : !strcmp(beh, "buy")  ? ITD_EV_PURCHASE
                                                  : -1;
                cr_assert_neq(type, -1, "behaviour %s", beh);
                int u = 0;
                while (u < n_users && uids[u] != user)
                        u++;
                if (u == n_users)
                        uids[n_users++] = user;
                cr_assert_lt(n, cap);
                evs[n].user = u;
                evs[n].ts = (int64_t)secs * 1000;
                evs[n].type = type;
                n++;
        }
        fclose(f);
        cr_assert_gt(n, 9000);
        /* stable sort by time (insertion sort keeps ties in file order) */
        for (size_t i = 1; i < n; i++) {
                ref_ev_t e = evs[i];
                size_t j = i;
                while (j > 0 && evs[j - 1].ts > e.ts) {
                        evs[j] = evs[j - 1];
                        j--;
                }
                evs[j] = e;
        }
        /* users are named by their index in order of appearance */
        const char *(*name)(int, char *) = short_name;
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        char buf[64];
        int64_t max_ts = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(feed(st, name(evs[i].user, buf), evs[i].ts,
                                  evs[i].type), ITD_OK);
                if (evs[i].ts > max_ts)
                        max_ts = evs[i].ts;
        }
        size_t inexact = check_against_ref(st, &conf, evs, n, n_users, name,
                                           max_ts);
        cr_log_info("taobao: %d users, %zu events, %zu inexact cells",
                    n_users, n, inexact);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, (uint64_t)n_users);
        cr_expect_lt(inexact, (size_t)n_users * 4 * T / 4,
                     "%zu of %d cells inexact", inexact, n_users * 4 * T);
        free(evs);
        free(uids);
        itd_state_destroy(st);
}

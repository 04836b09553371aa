/*
 * test_simulator.c - the seeded shopper simulator: determinism, time order,
 * event mix near Taobao's, returning users, learnable intent, bounded
 * memory, that tests/fixtures/events_small.jsonl is its output, and bots
 * that mix in without changing the shoppers.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/simulator.h"
#include "testutil.h"

#define START_MS 1704067200000LL /* 2024-01-01T00:00:00Z */

static itd_sim_t *sim_new(uint64_t users, double days, uint64_t seed) {
        itd_sim_conf_t conf = {users, days, seed, START_MS, 0};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&conf, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        return sim;
}

/* Compact copy of what the statistics need. */
typedef struct {
        uint64_t user;
        int64_t ts_ms;
        uint32_t seq;
        uint8_t type;
} rec_t;

typedef struct {
        rec_t *r;
        size_t n;
} recs_t;

static recs_t collect(uint64_t users, double days, uint64_t seed) {
        recs_t out = {NULL, 0};
        size_t cap = 1 << 16;
        itd_event_t ev;
        itd_sim_t *sim = sim_new(users, days, seed);
        out.r = malloc(cap * sizeof *out.r);
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                if (out.n == cap)
                        out.r = realloc(out.r, (cap *= 2) * sizeof *out.r);
                out.r[out.n].user = strtoull(ev.user_id + 1, NULL, 10);
                out.r[out.n].ts_ms = ev.ts_ms;
                out.r[out.n].seq = (uint32_t)out.n;
                out.r[out.n].type = (uint8_t)ev.type;
                out.n++;
        }
        itd_sim_destroy(sim);
        return out;
}

static int by_user_time(const void *a, const void *b) {
        const rec_t *x = a, *y = b;
        if (x->user != y->user)
                return x->user < y->user ? -1 : 1;
        if (x->ts_ms != y->ts_ms)
                return x->ts_ms < y->ts_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

Test(simulator, rejects_a_bad_configuration_with_a_reason) {
        char err[256];
        itd_sim_conf_t bad[] = {{0, 1.0, 1, START_MS, 0},
                                {10, 0.0, 1, START_MS, 0},
                                {10, NAN, 1, START_MS, 0},
                                {10, 1.0, 1, -5, 0},
                                {10, 1.0, 1, START_MS, -0.1},
                                {10, 1.0, 1, START_MS, 0.6},
                                {10, 1.0, 1, START_MS, NAN}};
        const char *want[] = {"users", "days", "days", "start",
                              "bots",  "bots", "bots"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                err[0] = '\0';
                cr_expect_null(itd_sim_new(&bad[i], err, sizeof err));
                cr_expect(strstr(err, want[i]), "case %zu: %s", i, err);
        }
}

Test(simulator, same_seed_gives_the_same_events_and_another_seed_does_not) {
        itd_sim_t *a = sim_new(2000, 0.5, 42), *b = sim_new(2000, 0.5, 42);
        itd_sim_t *c = sim_new(2000, 0.5, 43);
        itd_event_t ea, eb, ec;
        char ja[512], jb[512], jc[512];
        size_t n = 0, differ = 0;
        for (;;) {
                itd_err_t ra = itd_sim_next(a, &ea), rb = itd_sim_next(b, &eb);
                cr_assert_eq(ra, rb, "event %zu", n);
                if (ra)
                        break;
                itd_event_to_json(&ea, ja, sizeof ja);
                itd_event_to_json(&eb, jb, sizeof jb);
                cr_assert_str_eq(ja, jb, "event %zu", n);
                if (itd_sim_next(c, &ec) == ITD_OK) {
                        itd_event_to_json(&ec, jc, sizeof jc);
                        differ += strcmp(ja, jc) != 0;
                }
                n++;
        }
        cr_assert_gt(n, 5000);
        cr_assert_gt(differ, n / 2, "seed 43 repeats seed 42: %zu of %zu",
                     differ, n);
        itd_sim_destroy(a);
        itd_sim_destroy(b);
        itd_sim_destroy(c);
}

Test(simulator, events_are_well_formed_and_in_time_order) {
        const uint64_t users = 3000;
        const double days = 1.0;
        itd_sim_t *sim = sim_new(users, days, 5);
        itd_event_t ev;
        int64_t last = START_MS;
        size_t n = 0;
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                cr_assert_geq(ev.ts_ms, last, "event %zu goes back", n);
                last = ev.ts_ms;
                cr_assert_lt(ev.ts_ms, START_MS + (int64_t)(days * 86400000));
                uint64_t u = strtoull(ev.user_id + 1, NULL, 10);
                cr_assert(ev.user_id[0] == 'u' && u >= 1 && u <= users, "%s",
                          ev.user_id);
                cr_assert_str_not_empty(ev.event_id);
                cr_assert_str_not_empty(ev.session_id);
                if (ev.type == ITD_EV_SEARCH) {
                        cr_assert_str_not_empty(ev.query);
                        cr_assert_str_empty(ev.item_id);
                } else {
                        cr_assert(ev.item_id[0] == 'i' &&
                                  ev.category[0] == 'c');
                        cr_assert(ev.price > 0.0 && isfinite(ev.price));
                }
                n++;
        }
        cr_assert_eq(itd_sim_next(sim, &ev), ITD_ERR_EOF);
        itd_sim_destroy(sim);
        cr_assert_gt(n, 10000);
}

Test(simulator, event_mix_is_near_taobao) {
        /* Targets from the Taobao slice (shared data README): 89 % views
         * (searches counted with them), 5.5 % carts, 3.1 % favourites,
         * 2.3 % purchases. Tolerances allow for the simulator being a
         * simple model, not a fit; 350k events make sampling noise
         * negligible (< 0.1 point). */
        recs_t rs = collect(20000, 1.0, 11);
        size_t count[ITD_EV__COUNT] = {0};
        for (size_t i = 0; i < rs.n; i++)
                count[rs.r[i].type]++;
        double pct[ITD_EV__COUNT];
        cr_log_info("simulator mix over %zu events:", rs.n);
        for (int t = 0; t < ITD_EV__COUNT; t++) {
                pct[t] = 100.0 * (double)count[t] / (double)rs.n;
                cr_log_info("  %-16s %6.2f %%", itd_event_type_name(t), pct[t]);
        }
        cr_assert_geq(rs.n, 200000);
        cr_expect_float_eq(pct[ITD_EV_VIEW] + pct[ITD_EV_SEARCH], 89.0, 2.0);
        cr_expect(pct[ITD_EV_SEARCH] >= 2.0 && pct[ITD_EV_SEARCH] <= 5.0);
        cr_expect_float_eq(pct[ITD_EV_ADD_TO_CART], 5.5, 1.0);
        cr_expect_float_eq(pct[ITD_EV_FAVORITE], 3.0, 0.8);
        cr_expect_float_eq(pct[ITD_EV_PURCHASE], 2.3, 0.5);
        cr_expect(pct[ITD_EV_REMOVE_FROM_CART] > 0.2 &&
                  pct[ITD_EV_REMOVE_FROM_CART] < 1.5);
        free(rs.r);
}

Test(simulator, gaps_within_a_session_are_about_a_minute) {
        itd_sim_t *sim = sim_new(1000, 1.0, 3);
        itd_event_t ev;
        /* Sessions are numbered "S<seed>-<n>"; keep the last time per n. */
        size_t cap = 1 << 16, ngaps = 0;
        int64_t *last = calloc(cap, sizeof *last);
        double *gaps = malloc(200000 * sizeof *gaps);
        while (itd_sim_next(sim, &ev) == ITD_OK && ngaps < 200000) {
                size_t s = strtoull(strchr(ev.session_id, '-') + 1, NULL, 10);
                cr_assert_lt(s, cap);
                if (last[s])
                        gaps[ngaps++] = (double)(ev.ts_ms - last[s]) / 1000.0;
                last[s] = ev.ts_ms;
        }
        itd_sim_destroy(sim);
        cr_assert_gt(ngaps, 1000);
        /* median by counting: fraction of gaps under 40 s and under 100 s */
        size_t under40 = 0, under100 = 0;
        for (size_t i = 0; i < ngaps; i++) {
                under40 += gaps[i] < 40.0;
                under100 += gaps[i] < 100.0;
        }
        cr_assert_lt(under40, ngaps / 2, "median gap under 40 s");
        cr_assert_gt(under100, ngaps / 2, "median gap over 100 s");
        free(last);
        free(gaps);
}

Test(simulator, many_users_return_on_several_days) {
        recs_t rs = collect(2000, 3.0, 9);
        qsort(rs.r, rs.n, sizeof *rs.r, by_user_time);
        size_t users = 0, multi_day = 0, heavy = 0;
        for (size_t i = 0; i < rs.n;) {
                size_t j = i;
                int days_seen[3] = {0};
                while (j < rs.n && rs.r[j].user == rs.r[i].user) {
                        days_seen[(rs.r[j].ts_ms - START_MS) / 86400000]++;
                        j++;
                }
                users++;
                multi_day += (days_seen[0] > 0) + (days_seen[1] > 0) +
                                 (days_seen[2] > 0) >= 2;
                heavy += j - i >= 100;
                i = j;
        }
        cr_log_info("%zu users seen, %zu on 2+ days, %zu with 100+ events",
                    users, multi_day, heavy);
        cr_assert_gt(multi_day, users / 2);
        cr_assert_gt(heavy, 0, "no heavy (Zipf head) users");
        free(rs.r);
}

Test(simulator, purchases_follow_carts_and_purchases_more_than_views) {
        /* Label as the daemon defines it: the user buys within 30 min
         * after the event. */
        recs_t rs = collect(5000, 2.0, 21);
        qsort(rs.r, rs.n, sizeof *rs.r, by_user_time);
        size_t pos[ITD_EV__COUNT] = {0}, tot[ITD_EV__COUNT] = {0};
        for (size_t i = 0; i < rs.n; i++) {
                int label = 0;
                const rec_t *e = &rs.r[i];
                for (size_t j = i + 1; j < rs.n && rs.r[j].user == e->user &&
                                       rs.r[j].ts_ms <= e->ts_ms + 1800000;
                     j++)
                        if (rs.r[j].type == ITD_EV_PURCHASE &&
                            rs.r[j].ts_ms > rs.r[i].ts_ms) {
                                label = 1;
                                break;
                        }
                tot[rs.r[i].type]++;
                pos[rs.r[i].type] += label;
        }
        double rate[ITD_EV__COUNT];
        for (int t = 0; t < ITD_EV__COUNT; t++) {
                rate[t] = tot[t] ? (double)pos[t] / (double)tot[t] : 0.0;
                cr_log_info("P(purchase within 30 min | %s) = %.3f (n=%zu)",
                            itd_event_type_name(t), rate[t], tot[t]);
        }
        cr_assert_gt(tot[ITD_EV_ADD_TO_CART], 1000);
        cr_assert_gt(rate[ITD_EV_ADD_TO_CART], 2.0 * rate[ITD_EV_VIEW]);
        cr_assert_gt(rate[ITD_EV_PURCHASE], 1.5 * rate[ITD_EV_VIEW]);
        /* still mostly negatives, as in real data (6 % after a view) */
        cr_assert(rate[ITD_EV_VIEW] > 0.02 && rate[ITD_EV_VIEW] < 0.15);
        free(rs.r);
}

Test(simulator, past_buyers_buy_more_later) {
        /* Per-user propensity: a user's purchases in the first half
         * predict purchases in the second. */
        recs_t rs = collect(3000, 4.0, 13);
        qsort(rs.r, rs.n, sizeof *rs.r, by_user_time);
        const int64_t half = START_MS + 2 * 86400000LL;
        size_t ev_b = 0, buy_b = 0, ev_n = 0, buy_n = 0;
        for (size_t i = 0; i < rs.n;) {
                size_t j = i, early_buys = 0, late_ev = 0, late_buys = 0;
                for (; j < rs.n && rs.r[j].user == rs.r[i].user; j++) {
                        int buy = rs.r[j].type == ITD_EV_PURCHASE;
                        if (rs.r[j].ts_ms < half) {
                                early_buys += buy;
                        } else {
                                late_ev++;
                                late_buys += buy;
                        }
                }
                if (early_buys) {
                        ev_b += late_ev;
                        buy_b += late_buys;
                } else {
                        ev_n += late_ev;
                        buy_n += late_buys;
                }
                i = j;
        }
        double rb = (double)buy_b / (double)ev_b;
        double rn = (double)buy_n / (double)ev_n;
        cr_log_info("later purchase rate: past buyers %.4f, others %.4f", rb,
                    rn);
        cr_assert_gt(rb, 1.5 * rn);
        free(rs.r);
}

Test(simulator, memory_follows_open_sessions_not_the_population) {
        /* A million users for half an hour: even 16 bytes per user would
         * be 16 MB; the ~15k sessions open at a time take about 4 MB. */
        struct mallinfo2 before = mallinfo2();
        itd_sim_t *sim = sim_new(1000000, 1.0 / 48, 1);
        itd_event_t ev;
        size_t n = 0, peak = 0;
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                if (++n % 10000 == 0) {
                        struct mallinfo2 now = mallinfo2();
                        if (now.uordblks > peak)
                                peak = now.uordblks;
                }
        }
        itd_sim_destroy(sim);
        size_t grew = peak > before.uordblks ? peak - before.uordblks : 0;
        cr_log_info("%zu events, heap grew by %zu kB", n, grew / 1024);
        cr_assert_gt(n, 100000);
        cr_assert_lt(grew, (size_t)8 << 20);
}

Test(simulator, small_fixture_is_this_simulators_output) {
        /* tests/fixtures/events_small.jsonl = users 500, days 0.5, seed 7,
         * start 2017-11-25T00:00:00Z (the default of `intentd simulate`),
         * one itd_event_to_json line per event. If the simulator changes
         * on purpose, regenerate it with
         * `intentd simulate --users 500 --days 0.5 --seed 7 --out FILE`. */
        char path[512], line[1024], want[1024];
        FILE *f = fopen(tu_src("tests/fixtures/events_small.jsonl", path,
                               sizeof path),
                        "r");
        cr_assert_not_null(f);
        itd_sim_conf_t conf = {500, 0.5, 7, 1511568000000LL, 0};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&conf, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        itd_event_t ev;
        size_t n = 0;
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                cr_assert_eq(itd_sim_next(sim, &ev), ITD_OK,
                             "fixture has more events than the simulator");
                itd_event_to_json(&ev, want, sizeof want);
                cr_assert_str_eq(line, want, "line %zu differs", n + 1);
                n++;
        }
        cr_assert_eq(itd_sim_next(sim, &ev), ITD_ERR_EOF,
                     "simulator has more events than the fixture");
        fclose(f);
        itd_sim_destroy(sim);
}

static itd_sim_t *sim_bots(uint64_t users, double days, uint64_t seed,
                           double bots) {
        itd_sim_conf_t conf = {users, days, seed, START_MS, bots};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&conf, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        return sim;
}

Test(simulator, bots_mix_in_without_changing_the_shoppers) {
        /* The shoppers' events with bots on are exactly the events with
         * bots off, in the same order; bots fill the gaps in time order. */
        itd_sim_t *plain = sim_new(2000, 0.5, 42);
        itd_sim_t *mixed = sim_bots(2000, 0.5, 42, 0.05);
        itd_sim_conf_t conf = {2000, 0.5, 42, START_MS, 0.05};
        cr_assert_eq(itd_sim_bots(&conf), 105); /* 2000 * 0.05 / 0.95 */
        itd_event_t ep, em;
        char jp[512], jm[512];
        size_t shoppers = 0, bot_events = 0;
        int64_t last = START_MS;
        char seen[106] = {0};
        while (itd_sim_next(mixed, &em) == ITD_OK) {
                cr_assert_geq(em.ts_ms, last, "event goes back in time");
                last = em.ts_ms;
                if (itd_sim_is_bot(em.user_id)) {
                        long b = strtol(em.user_id + 4, NULL, 10);
                        cr_assert(b >= 1 && b <= 105, "%s", em.user_id);
                        seen[b] = 1;
                        cr_assert_str_not_empty(em.event_id);
                        cr_assert_str_not_empty(em.session_id);
                        if (em.type != ITD_EV_SEARCH)
                                cr_assert(em.item_id[0] == 'i' &&
                                          em.category[0] == 'c' &&
                                          em.price > 0.0);
                        bot_events++;
                        continue;
                }
                cr_assert_eq(itd_sim_next(plain, &ep), ITD_OK,
                             "more shoppers' events with bots than without");
                itd_event_to_json(&ep, jp, sizeof jp);
                itd_event_to_json(&em, jm, sizeof jm);
                cr_assert_str_eq(jm, jp, "shopper event %zu", shoppers);
                shoppers++;
        }
        cr_assert_eq(itd_sim_next(plain, &ep), ITD_ERR_EOF,
                     "fewer shoppers' events with bots than without");
        size_t active = 0;
        for (int b = 1; b <= 105; b++)
                active += seen[b];
        cr_log_info("%zu shopper events, %zu bot events from %zu bots",
                    shoppers, bot_events, active);
        cr_assert_gt(bot_events, shoppers / 10);
        cr_assert_gt(active, 80, "most bots act within half a day");
        itd_sim_destroy(plain);
        itd_sim_destroy(mixed);
}

/* What one bot did: event types and its gaps within a session. */
typedef struct {
        unsigned types;  /* bit per event type */
        int64_t last_ms; /* previous event, same session */
        char session[ITD_ID_MAX];
        size_t n_gaps;
        double gaps[64];
} bot_seen_t;

static int by_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

Test(simulator, bots_are_of_several_kinds_each_with_its_own_pace) {
        itd_sim_conf_t conf = {3000, 1.0, 5, START_MS, 0.1};
        size_t n_bots = itd_sim_bots(&conf);
        bot_seen_t *bots = calloc(n_bots + 1, sizeof *bots);
        itd_sim_t *sim = sim_bots(3000, 1.0, 5, 0.1);
        itd_event_t ev;
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                if (!itd_sim_is_bot(ev.user_id))
                        continue;
                bot_seen_t *b = &bots[strtoul(ev.user_id + 4, NULL, 10)];
                b->types |= 1u << ev.type;
                if (!strcmp(b->session, ev.session_id) && b->n_gaps < 64)
                        b->gaps[b->n_gaps++] =
                            (double)(ev.ts_ms - b->last_ms) / 1000.0;
                snprintf(b->session, sizeof b->session, "%s", ev.session_id);
                b->last_ms = ev.ts_ms;
        }
        itd_sim_destroy(sim);
        const unsigned view = 1u << ITD_EV_VIEW, search = 1u << ITD_EV_SEARCH,
                       cart = 1u << ITD_EV_ADD_TO_CART,
                       buy = 1u << ITD_EV_PURCHASE;
        size_t scrapers = 0, scalpers = 0, carders = 0, active = 0;
        double lo = 1e9, hi = 0;
        for (size_t i = 1; i <= n_bots; i++) {
                bot_seen_t *b = &bots[i];
                if (!b->types)
                        continue;
                active++;
                if (!(b->types & ~(view | search))) {
                        scrapers++;
                        if (b->n_gaps >= 9) {
                                /* a scraper's median pause */
                                qsort(b->gaps, b->n_gaps, sizeof *b->gaps,
                                      by_double);
                                double med = b->gaps[b->n_gaps / 2];
                                lo = med < lo ? med : lo;
                                hi = med > hi ? med : hi;
                        }
                } else if (b->types & cart) {
                        scalpers++;
                } else if ((b->types & buy) && !(b->types & search)) {
                        carders++;
                }
        }
        cr_log_info("%zu active bots: %zu scrapers (median pauses %.1f .. "
                    "%.1f s), %zu scalpers, %zu carders",
                    active, scrapers, lo, hi, scalpers, carders);
        cr_assert_eq(scrapers + scalpers + carders, active,
                     "a bot of no known kind");
        cr_expect_gt(scrapers, active / 4);
        cr_expect_gt(scalpers, active / 6);
        cr_expect_gt(carders, active / 10);
        /* habits differ per bot: pauses from under 1.5 s to over 5 s */
        cr_expect_lt(lo, 1.5);
        cr_expect_gt(hi, 5.0);
        free(bots);
}

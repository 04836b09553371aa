/*
 * test_risk.c - the per-event risk score: it separates the simulator's
 * bots from its shoppers, real Taobao shoppers score low, each sub-score
 * reads what it says from a hand-built window, the pace is judged against
 * the partition's own population, and the population survives a snapshot.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/reader.h"
#include "intentd/risk.h"
#include "intentd/simulator.h"
#include "intentd/state.h"
#include "testutil.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define T0 1511568000000LL /* 2017-11-25T00:00:00Z */

static itd_state_conf_t conf(void) {
        itd_state_conf_t c = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 5000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 7 * DAY_MS,
            .max_users = 1000000,
        };
        return c;
}

typedef struct {
        itd_state_t *st;
        itd_risk_t *rk;
        float *x;
} part_t;

static part_t part_new(void) {
        itd_state_conf_t c = conf();
        char err[256];
        part_t p = {itd_state_new(&c, err, sizeof err), itd_risk_new(),
                    calloc(itd_features_dim(&c), sizeof(float))};
        cr_assert_not_null(p.st, "%s", err);
        return p;
}

static void part_free(part_t *p) {
        itd_state_destroy(p->st);
        itd_risk_destroy(p->rk);
        free(p->x);
}

/* Applies ev and scores it, as the engine does. */
static float feed(part_t *p, const itd_event_t *ev, float *parts) {
        uint32_t ids[ITD_SPARSE_IDS];
        itd_err_t err = itd_state_update(p->st, ev, itd_user_hash(ev->user_id), p->x, ids, NULL);
        return itd_risk_score(p->rk, p->st, ev, err == ITD_OK, parts);
}

static float feed_one(part_t *p, const char *user, int64_t ts,
                      itd_event_type_t type, const char *cat, float *parts) {
        itd_event_t ev;
        itd_event_clear(&ev);
        ev.ts_ms = ts;
        ev.type = type;
        snprintf(ev.user_id, sizeof ev.user_id, "%s", user);
        if (cat) {
                snprintf(ev.category, sizeof ev.category, "%s", cat);
                snprintf(ev.item_id, sizeof ev.item_id, "i-%s-%lld", cat,
                         (long long)ts);
                ev.price = 10.0;
        }
        return feed(p, &ev, parts);
}

/* AUC with ties counted half: rank-sum over (score, is_positive). */
typedef struct {
        float s;
        int pos;
} scored_t;

static int by_score(const void *a, const void *b) {
        float x = ((const scored_t *)a)->s, y = ((const scored_t *)b)->s;
        return (x > y) - (x < y);
}

static double auc(scored_t *v, size_t n) {
        qsort(v, n, sizeof *v, by_score);
        double rank_sum = 0.0, npos = 0.0;
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j < n && v[j].s == v[i].s)
                        j++;
                double mid = (double)(i + j + 1) / 2.0; /* ranks from 1 */
                for (size_t k = i; k < j; k++)
                        if (v[k].pos) {
                                rank_sum += mid;
                                npos += 1.0;
                        }
                i = j;
        }
        double nneg = (double)n - npos;
        return (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg);
}

/* Per-user means, keyed by user id (linear probing; test sizes are tiny). */
typedef struct {
        char id[ITD_ID_MAX];
        double sum;
        size_t n;
} user_acc_t;

static user_acc_t *user_slot(user_acc_t *tab, size_t cap, const char *id) {
        size_t h = (size_t)itd_hash_str(id, 0) & (cap - 1);
        while (tab[h].id[0] && strcmp(tab[h].id, id))
                h = (h + 1) & (cap - 1);
        if (!tab[h].id[0])
                snprintf(tab[h].id, sizeof tab[h].id, "%s", id);
        return &tab[h];
}

Test(risk, separates_the_simulators_bots_from_its_shoppers) {
        /* 600 shoppers and 5 % bots for a day: ~16k events. */
        itd_sim_conf_t sc = {.users = 600, .days = 1.0, .seed = 7,
                             .start_ms = T0, .bot_fraction = 0.05};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        part_t p = part_new();
        size_t cap = 1 << 15, n = 0, ucap = 4096;
        scored_t *ev_scores = malloc(cap * sizeof *ev_scores);
        user_acc_t *users = calloc(ucap, sizeof *users);
        itd_event_t ev;
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                if (n == cap)
                        ev_scores = realloc(ev_scores,
                                            (cap *= 2) * sizeof *ev_scores);
                float r = feed(&p, &ev, NULL);
                cr_assert(r >= 0.0f && r <= 1.0f, "score %g", r);
                ev_scores[n].s = r;
                ev_scores[n].pos = itd_sim_is_bot(ev.user_id);
                n++;
                user_acc_t *u = user_slot(users, ucap, ev.user_id);
                u->sum += r;
                u->n++;
        }
        scored_t *us = malloc(ucap * sizeof *us);
        size_t nu = 0, bots = 0;
        for (size_t i = 0; i < ucap; i++)
                if (users[i].id[0]) {
                        us[nu].s = (float)(users[i].sum / (double)users[i].n);
                        us[nu].pos = itd_sim_is_bot(users[i].id);
                        bots += us[nu].pos;
                        nu++;
                }
        double auc_ev = auc(ev_scores, n), auc_user = auc(us, nu);
        cr_log_info("risk on the simulator (600 users, 1 day, seed 7, bots "
                    "0.05): %zu events, %zu users (%zu bots); AUC per event "
                    "%.4f, per user (mean score) %.4f",
                    n, nu, bots, auc_ev, auc_user);
        cr_assert_eq(bots, itd_sim_bots(&sc));
        cr_expect_geq(auc_ev, 0.95);
        cr_expect_geq(auc_user, 0.95);
        free(ev_scores);
        free(users);
        free(us);
        part_free(&p);
        itd_sim_destroy(sim);
}

Test(risk, real_taobao_shoppers_rarely_score_high) {
        char path[4096], err[512];
        if (!tu_shared_data(
                "taobao_userbehavior_tail_users/UserBehavior_tail10000.csv",
                path, sizeof path))
                cr_skip_test("taobao_userbehavior_tail_users: shared data "
                             "absent");
        itd_reader_t *rd = itd_reader_open(path, ITD_FORMAT_TAOBAO, 1, err,
                                           sizeof err);
        cr_assert_not_null(rd, "%s", err);
        part_t p = part_new();
        size_t n = 0, over[3] = {0}, ucap = 256;
        const float cut[3] = {0.1f, 0.5f, 0.9f};
        user_acc_t *users = calloc(ucap, sizeof *users);
        float worst = 0.0f;
        itd_event_t ev;
        while (itd_reader_next(rd, &ev, err, sizeof err) == ITD_OK) {
                float r = feed(&p, &ev, NULL);
                for (int i = 0; i < 3; i++)
                        over[i] += r >= cut[i];
                if (r > worst)
                        worst = r;
                user_acc_t *u = user_slot(users, ucap, ev.user_id);
                u->sum += r;
                u->n++;
                n++;
        }
        double worst_mean = 0.0;
        size_t nu = 0;
        for (size_t i = 0; i < ucap; i++)
                if (users[i].id[0]) {
                        nu++;
                        double m = users[i].sum / (double)users[i].n;
                        if (m > worst_mean)
                                worst_mean = m;
                }
        cr_log_info("risk on %zu real Taobao events of %zu shoppers: >= 0.1 "
                    "%zu, >= 0.5 %zu, >= 0.9 %zu events; highest %.3f; "
                    "highest user mean %.4f",
                    n, nu, over[0], over[1], over[2], worst, worst_mean);
        cr_assert_eq(n, 10000);
        /* Real shoppers: at most 1 in 1000 events at 0.5, no user whose
         * events average 0.5 (measured: none, highest event 0.28). */
        cr_expect_leq(over[1], n / 1000);
        cr_expect_lt(worst_mean, 0.5);
        free(users);
        part_free(&p);
        itd_reader_destroy(rd);
}

/* A shopper's gaps: log-normal around 65 s, deterministic. */
static int64_t shopper_gap_ms(uint64_t *s) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u1 = ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u2 = ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        return (int64_t)(65000.0 * exp(z));
}

Test(risk, a_metronome_scores_high_and_a_shopper_zero) {
        part_t p = part_new();
        float parts[ITD_RISK__COUNT], r = 0.0f;
        int64_t t = T0;
        /* every 2 s, +-1 %: 30 requests a minute like clockwork */
        for (int i = 0; i < 20; i++, t += 2000 + (i % 3 - 1) * 20)
                r = feed_one(&p, "metronome", t, ITD_EV_VIEW, "c1", parts);
        cr_log_info("metronome: risk %.3f (velocity %.3f regularity %.3f)", r,
                    parts[ITD_RISK_VELOCITY], parts[ITD_RISK_REGULARITY]);
        cr_expect_float_eq(parts[ITD_RISK_REGULARITY], 1.0f, 1e-6);
        cr_expect_gt(parts[ITD_RISK_VELOCITY], 0.5f);
        cr_expect_geq(r, 0.99f);

        uint64_t seed = 3;
        t = T0;
        float most = 0.0f;
        for (int i = 0; i < 20; i++) {
                t += shopper_gap_ms(&seed);
                r = feed_one(&p, "shopper", t, ITD_EV_VIEW, "c2", parts);
                if (r > most)
                        most = r;
        }
        cr_expect_float_eq(most, 0.0f, 1e-6, "a shopper scores %g", most);
        part_free(&p);
}

Test(risk, events_at_one_millisecond_are_one_action) {
        /* A checkout of twelve items logs twelve purchases at once: no
         * pace, no regularity, and no view before them. */
        part_t p = part_new();
        float parts[ITD_RISK__COUNT], r = 0.0f;
        feed_one(&p, "u", T0, ITD_EV_ADD_TO_CART, "c1", NULL);
        for (int i = 0; i < 12; i++)
                r = feed_one(&p, "u", T0 + 90000, ITD_EV_PURCHASE, "c1",
                             parts);
        cr_expect_float_eq(r, 0.0f, 1e-6, "bulk checkout scores %g", r);
        part_free(&p);
}

Test(risk, a_cart_or_purchase_right_after_a_view_is_evidence) {
        static const struct {
                itd_event_type_t type;
                int64_t after_ms;
                float want;
        } rows[] = {
            {ITD_EV_PURCHASE, 800, 0.5f},      /* one instant purchase */
            {ITD_EV_PURCHASE, 2000, 0.5f},     /* 2 s still counts */
            {ITD_EV_PURCHASE, 2001, 0.0f},
            {ITD_EV_PURCHASE, 30000, 0.0f},    /* a considered purchase */
            {ITD_EV_ADD_TO_CART, 500, 0.25f},  /* one instant cart */
            {ITD_EV_FAVORITE, 500, 0.0f},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                part_t p = part_new();
                float parts[ITD_RISK__COUNT];
                feed_one(&p, "u", T0, ITD_EV_VIEW, "c1", NULL);
                feed_one(&p, "u", T0 + rows[i].after_ms, rows[i].type, "c1",
                         parts);
                cr_expect_float_eq(parts[ITD_RISK_CHECKOUT], rows[i].want,
                                   1e-6, "row %zu: checkout %g", i,
                                   parts[ITD_RISK_CHECKOUT]);
                part_free(&p);
        }
        /* Two instant purchases: 1 - 0.5^2. */
        part_t p = part_new();
        float parts[ITD_RISK__COUNT];
        feed_one(&p, "u", T0, ITD_EV_VIEW, "c1", NULL);
        feed_one(&p, "u", T0 + 900, ITD_EV_PURCHASE, "c1", NULL);
        feed_one(&p, "u", T0 + 60000, ITD_EV_VIEW, "c1", NULL);
        feed_one(&p, "u", T0 + 61000, ITD_EV_PURCHASE, "c1", parts);
        cr_expect_float_eq(parts[ITD_RISK_CHECKOUT], 0.75f, 1e-6);
        part_free(&p);
}

Test(risk, cart_bursts_within_a_minute) {
        /* carts 12 s apart, no view between: only the burst counts;
         * 3 carts in a minute is 0.25, 4 is 0.5, 6 or more 1 */
        const float want[] = {0.0f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.0f};
        part_t p = part_new();
        for (int i = 0; i < 7; i++) {
                float parts[ITD_RISK__COUNT];
                feed_one(&p, "u", T0 + 10000LL * i, ITD_EV_ADD_TO_CART, "c1",
                         parts);
                cr_expect_float_eq(parts[ITD_RISK_CHECKOUT], want[i], 1e-6,
                                   "cart %d: %g", i + 1,
                                   parts[ITD_RISK_CHECKOUT]);
        }
        part_free(&p);
}

Test(risk, many_categories_in_a_minute_is_breadth_one_category_is_not) {
        part_t wide = part_new(), narrow = part_new();
        float pw[ITD_RISK__COUNT], pn[ITD_RISK__COUNT];
        /* 16 views in ~55 s, irregular gaps */
        static const int gap_ms[] = {1000, 6000, 2000, 9000, 1500, 4000,
                                     2500, 7000, 1200, 3000, 5000, 2200,
                                     800,  4400, 3600, 1800};
        int64_t t = T0;
        for (int i = 0; i < 16; i++) {
                char cat[16];
                t += gap_ms[i];
                snprintf(cat, sizeof cat, "c%d", 100 + 37 * i);
                feed_one(&wide, "u", t, ITD_EV_VIEW, cat, pw);
                feed_one(&narrow, "u", t, ITD_EV_VIEW, "c1", pn);
        }
        cr_log_info("breadth: 16 categories %.3f, one category %.3f",
                    pw[ITD_RISK_BREADTH], pn[ITD_RISK_BREADTH]);
        cr_expect_gt(pw[ITD_RISK_BREADTH], 0.5f);
        cr_expect_float_eq(pn[ITD_RISK_BREADTH], 0.0f, 1e-6);
        /* everything else sees the same times and types */
        cr_expect_float_eq(pw[ITD_RISK_VELOCITY], pn[ITD_RISK_VELOCITY], 0);
        cr_expect_float_eq(pw[ITD_RISK_CHECKOUT], pn[ITD_RISK_CHECKOUT], 0);
        part_free(&wide);
        part_free(&narrow);
}

static void population(const part_t *p, double *median, double *weight) {
        double spread;
        itd_risk_population(p->rk, median, &spread, weight);
}

/* n sessions of 12 irregular actions at about pace_per_min, one user
 * after another from *t on (so none is late). */
static void sessions_at(part_t *p, int n, double pace_per_min,
                        const char *prefix, int64_t *t_ms) {
        uint64_t seed = 11;
        int64_t t = *t_ms;
        for (int s = 0; s < n; s++) {
                char user[32];
                snprintf(user, sizeof user, "%s%d", prefix, s);
                for (int i = 0; i < 12; i++) {
                        /* shopper-like spread (sigma 1), rescaled */
                        t += (int64_t)((double)shopper_gap_ms(&seed) *
                                       (60.0 / 65.0 / 1.6487) /
                                       pace_per_min) + 1;
                        feed_one(p, user, t, ITD_EV_VIEW, "c1", NULL);
                }
        }
        *t_ms = t;
}

Test(risk, pace_is_judged_against_the_partitions_own_population) {
        part_t slow = part_new(), quick = part_new();
        int64_t ts = T0, tq = T0;
        sessions_at(&slow, 400, 0.5, "s", &ts);
        /* a population drifting quicker, in steps the trimming admits */
        sessions_at(&quick, 400, 1.5, "a", &tq);
        sessions_at(&quick, 400, 4.0, "b", &tq);
        sessions_at(&quick, 400, 8.0, "q", &tq);
        double m_slow, m_quick, w;
        population(&slow, &m_slow, &w);
        population(&quick, &m_quick, &w);
        cr_log_info("population medians (ln actions/min): slow %.2f, quick "
                    "%.2f", m_slow, m_quick);
        cr_expect_lt(m_slow, m_quick);
        /* one user at 10 actions a minute, in both partitions */
        float ps[ITD_RISK__COUNT], pq[ITD_RISK__COUNT];
        int64_t t = (ts > tq ? ts : tq) + HOUR_MS;
        static const int gap_ms[] = {2000, 11000, 4000, 9000, 3000, 7000,
                                     5000, 12000, 2500, 6000, 4500};
        for (int i = 0; i < 11; i++) {
                t += gap_ms[i];
                feed_one(&slow, "x", t, ITD_EV_VIEW, "c1", ps);
                feed_one(&quick, "x", t, ITD_EV_VIEW, "c1", pq);
        }
        cr_log_info("velocity of one pace: slow partition %.3f, quick %.3f",
                    ps[ITD_RISK_VELOCITY], pq[ITD_RISK_VELOCITY]);
        cr_expect_gt(ps[ITD_RISK_VELOCITY], 0.5f);
        cr_expect_float_eq(pq[ITD_RISK_VELOCITY], 0.0f, 1e-6);
        part_free(&slow);
        part_free(&quick);
}

Test(risk, a_session_joins_the_population_once_and_late_events_never) {
        part_t p = part_new();
        double m0, w0, m1, w1, m2, w2;
        population(&p, &m0, &w0);
        /* one session of 20 shopper-like actions */
        uint64_t seed = 5;
        int64_t t = T0;
        for (int i = 0; i < 20; i++) {
                t += shopper_gap_ms(&seed);
                feed_one(&p, "u", t, ITD_EV_VIEW, "c1", NULL);
        }
        population(&p, &m1, &w1);
        cr_expect_float_eq(w1, w0 * (1.0 - 1.0 / 2048.0) + 1.0, 1e-9,
                           "weight %g after one session from %g", w1, w0);
        /* the same user's next session counts again */
        t += 2 * HOUR_MS;
        for (int i = 0; i < 8; i++) {
                t += shopper_gap_ms(&seed);
                feed_one(&p, "u", t, ITD_EV_VIEW, "c1", NULL);
        }
        population(&p, &m2, &w2);
        cr_expect_float_eq(w2, w1 * (1.0 - 1.0 / 2048.0) + 1.0, 1e-9);
        /* late: scored from the window as it stands, nothing learned */
        itd_event_t ev;
        itd_event_clear(&ev);
        ev.ts_ms = t - HOUR_MS;
        ev.type = ITD_EV_VIEW;
        snprintf(ev.user_id, sizeof ev.user_id, "u");
        for (int i = 0; i < 10; i++)
                (void)itd_risk_score(p.rk, p.st, &ev, 0, NULL);
        double m3, w3;
        population(&p, &m3, &w3);
        cr_expect_float_eq(w3, w2, 0);
        /* a user the state does not hold */
        snprintf(ev.user_id, sizeof ev.user_id, "nobody");
        float parts[ITD_RISK__COUNT];
        cr_expect_float_eq(itd_risk_score(p.rk, p.st, &ev, 0, parts), 0.0f,
                           0);
        for (int i = 0; i < ITD_RISK__COUNT; i++)
                cr_expect_float_eq(parts[i], 0.0f, 0, "%s",
                                   itd_risk_part_name((itd_risk_part_t)i));
        part_free(&p);
}

/* Writes a snapshot of rk to a temporary file; returns it rewound. */
static FILE *snapshot(const itd_risk_t *rk) {
        FILE *f = tmpfile();
        char err[256];
        cr_assert_eq(itd_risk_snapshot(rk, f, err, sizeof err), ITD_OK, "%s",
                     err);
        rewind(f);
        return f;
}

Test(risk, a_restored_population_scores_bit_for_bit_the_same) {
        itd_sim_conf_t sc = {.users = 300, .days = 1.0, .seed = 9,
                             .start_ms = T0, .bot_fraction = 0.1};
        char err[256];
        itd_sim_t *sim = itd_sim_new(&sc, err, sizeof err);
        cr_assert_not_null(sim, "%s", err);
        part_t a = part_new();
        itd_event_t ev;
        size_t n = 0;
        while (n < 4000 && itd_sim_next(sim, &ev) == ITD_OK) {
                feed(&a, &ev, NULL);
                n++;
        }
        /* b: state and population restored from a's snapshots */
        FILE *fs = tmpfile();
        cr_assert_eq(itd_state_snapshot(a.st, fs, err, sizeof err), ITD_OK);
        rewind(fs);
        itd_state_conf_t c = conf();
        part_t b = {NULL, NULL, calloc(itd_features_dim(&c), sizeof(float))};
        itd_state_restore(fs, &c, &b.st, err, sizeof err);
        cr_assert_not_null(b.st, "%s", err);
        fclose(fs);
        FILE *fr = snapshot(a.rk);
        itd_risk_restore(fr, &b.rk, err, sizeof err);
        cr_assert_not_null(b.rk, "%s", err);
        cr_expect_eq(fgetc(fr), EOF, "restore read past its snapshot");
        fclose(fr);
        size_t same = 0, m = 0;
        while (itd_sim_next(sim, &ev) == ITD_OK) {
                float ra = feed(&a, &ev, NULL), rb = feed(&b, &ev, NULL);
                same += memcmp(&ra, &rb, sizeof ra) == 0;
                m++;
        }
        cr_assert_gt(m, 1000);
        cr_expect_eq(same, m, "%zu of %zu scores differ", m - same, m);
        double ma, sa, wa, mb, sb, wb;
        itd_risk_population(a.rk, &ma, &sa, &wa);
        itd_risk_population(b.rk, &mb, &sb, &wb);
        cr_expect(ma == mb && sa == sb && wa == wb);
        itd_sim_destroy(sim);
        part_free(&a);
        part_free(&b);
}

Test(risk, a_damaged_snapshot_is_refused_with_a_reason) {
        itd_risk_t *rk = itd_risk_new();
        FILE *f = snapshot(rk);
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        unsigned char *buf = malloc((size_t)len);
        rewind(f);
        cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        char err[256];
        static const struct {
                long at; /* byte to flip, or -1: cut to half */
                const char *want;
        } rows[] = {
            {-1, "truncated risk snapshot"},
            {0, "risk snapshot"},          /* magic */
            {-2, "corrupt risk snapshot"}, /* last payload byte */
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                FILE *g = tmpfile();
                long n = rows[i].at == -1 ? len / 2 : len;
                long flip = rows[i].at == -2 ? len - 1 : rows[i].at;
                for (long k = 0; k < n; k++)
                        fputc(k == flip ? buf[k] ^ 0x40 : buf[k], g);
                rewind(g);
                err[0] = '\0';
                itd_risk_t *r;
                cr_expect_eq(itd_risk_restore(g, &r, err, sizeof err),
                             ITD_ERR_CORRUPT, "row %zu", i);
                cr_expect_null(r, "row %zu", i);
                cr_expect(strstr(err, rows[i].want), "row %zu: %s", i, err);
                fclose(g);
        }
        free(buf);
        itd_risk_destroy(rk);
}

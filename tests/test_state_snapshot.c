/*
 * test_state_snapshot.c - the state's snapshots (restored state behaves
 * identically, several partitions in sequence, version 1, bit flips and
 * truncation, other windows refused), labels by user key, the table sized
 * by max_users, prefetch.
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

static double logit(double p) { return log(p / (1.0 - p)); }

static size_t feature_at(const itd_state_conf_t *conf, const char *name) {
        char buf[64];
        for (size_t i = 0; i < itd_features_dim(conf); i++)
                if (!strcmp(itd_features_name(conf, i, buf, sizeof buf), name))
                        return i;
        cr_assert_fail("no feature %s", name);
        return 0;
}

/* ------------------------------------------------------------ snapshots */

/* A rich event: categories (dictionary), items, queries, prices, long and
 * short ids, so the snapshot carries every part of the state. */
static void rich_event(itd_event_t *ev, unsigned *seed, int64_t ts,
                       int n_users) {
        itd_event_clear(ev);
        int u = (int)(n_users * pow((double)rand_r(seed) / RAND_MAX, 2.5));
        if (u >= n_users)
                u = n_users - 1;
        if (u % 3 == 0)
                long_name(u, ev->user_id);
        else
                short_name(u, ev->user_id);
        ev->ts_ms = ts;
        ev->type = (itd_event_type_t)(rand_r(seed) % T);
        int item = rand_r(seed) % 300;
        snprintf(ev->item_id, sizeof(ev->item_id), "i%d", item);
        snprintf(ev->category, sizeof(ev->category), "cat-%d", item / 10);
        if (rand_r(seed) % 2)
                ev->price = 1.0 + item;
        if (ev->type == ITD_EV_SEARCH)
                snprintf(ev->query, sizeof(ev->query), "red shoe %d",
                         item % 7);
}

/* Feeds n events from (seed, t) to st; returns the next time. */
static int64_t feed_rich(itd_state_t *st, unsigned *seed, int64_t t,
                         size_t n, int n_users) {
        itd_event_t ev;
        float x[512];
        uint32_t ids[ITD_SPARSE_IDS];
        for (size_t i = 0; i < n; i++) {
                t += rand_r(seed) % 200000;
                int64_t ts = t - rand_r(seed) % 90000; /* some late ones */
                rich_event(&ev, seed, ts, n_users);
                itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
        }
        return t;
}

static char *dump_text(const itd_state_t *st, int64_t now) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_eq(itd_state_dump(st, now, f), ITD_OK);
        fclose(f);
        return text;
}

/* The status of the last restore_bytes call. */
static itd_err_t restored_code;

static itd_state_t *restore_bytes(const unsigned char *buf, size_t len,
                                  const itd_state_conf_t *conf, char *err,
                                  size_t cap) {
        FILE *f = fmemopen((void *)buf, len ? len : 1, "r");
        cr_assert_not_null(f);
        if (!len)
                fgetc(f); /* an empty input: fmemopen needs 1 byte */
        itd_state_t *st;
        restored_code = itd_state_restore(f, conf, &st, err, cap);
        cr_expect_eq(restored_code == ITD_OK, st != NULL,
                     "a state exactly when ITD_OK");
        fclose(f);
        return st;
}

/* The user table stops growing at what max_users needs (a capacity that
 * is no power of two) and runs full at load 0.75 from then on: every held
 * user is still found, through evictions, erasures and a snapshot. */
Test(state, a_full_table_sized_by_max_users_finds_every_user) {
        itd_state_conf_t conf = default_conf();
        conf.max_users = 2000;
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        enum { USERS = 7000 };
        char buf[32];
        int64_t ts = 1000000000000LL;
        for (int u = 0; u < USERS; u++) {
                snprintf(buf, sizeof buf, "user%d", u);
                cr_assert_eq(feed(st, buf, ts += 10, u % T), ITD_OK);
                /* a second event for an older held user: the LRU order
                 * is not the arrival order */
                if (u >= 1000 && u % 3 == 0) {
                        snprintf(buf, sizeof buf, "user%d", u - 1000);
                        cr_assert_eq(feed(st, buf, ts += 10, 0), ITD_OK);
                }
        }
        cr_expect(st->slot_cap > 2048 && st->slot_cap < 4096 &&
                      (st->slot_cap & (st->slot_cap - 1)) != 0,
                  "slot_cap %zu", st->slot_cap);
        cr_expect_eq(st->n_users, 2000);
        for (int u = 0; u < USERS; u += 97) {
                snprintf(buf, sizeof buf, "user%d", u);
                if (itd_state_user_get(st, buf))
                        cr_expect_eq(itd_state_erase(st, buf, NULL), ITD_OK);
        }
        size_t len;
        unsigned char *snap = snapshot_bytes(st, &len);
        char err[256] = "";
        itd_state_t *b = restore_bytes(snap, len, &conf, err, sizeof(err));
        cr_assert_not_null(b, "%s", err);
        cr_expect_eq(b->slot_cap, st->slot_cap);
        const itd_state_t *sts[2] = {st, b};
        for (int k = 0; k < 2; k++) {
                size_t held = 0;
                for (int u = 0; u < USERS; u++) {
                        snprintf(buf, sizeof buf, "user%d", u);
                        const itd_user_t *usr = itd_state_user_get(sts[k], buf);
                        if (!usr)
                                continue;
                        held++;
                        cr_expect(u % 97 != 0, "erased %s is found", buf);
                        cr_expect_str_eq(itd_user_id(sts[k], usr), buf);
                }
                cr_expect_eq(held, sts[k]->n_users, "state %d", k);
        }
        free(snap);
        itd_state_destroy(b);
        itd_state_destroy(st);
}

Test(state, restored_snapshot_behaves_identically_on_further_events) {
        itd_state_conf_t conf = default_conf();
        conf.max_users = 150; /* LRU eviction before and after */
        conf.idle_ttl_ms = 2 * DAY_MS;
        itd_state_t *a = itd_state_new(&conf, NULL, 0);
        unsigned seed = 11;
        int64_t t = feed_rich(a, &seed, 1511848894000LL, 6000, 400);
        itd_state_advance(a, itd_state_watermark(a) + HOUR_MS);
        size_t len;
        unsigned char *snap = snapshot_bytes(a, &len);
        char err[256] = "";
        itd_state_t *b = restore_bytes(snap, len, &conf, err, sizeof(err));
        cr_assert_not_null(b, "%s", err);
        cr_expect_eq(itd_state_watermark(b), itd_state_watermark(a));

        /* the same further events, features compared bit for bit */
        unsigned sa = 99, sb = 99;
        itd_event_t ea, eb;
        float xa[512], xb[512];
        uint32_t ia[ITD_SPARSE_IDS], ib[ITD_SPARSE_IDS];
        itd_topcats_t ta, tb;
        size_t dim = itd_features_dim(&conf);
        int64_t ts_a = t, ts_b = t;
        for (int i = 0; i < 4000; i++) {
                ts_a += rand_r(&sa) % 200000;
                ts_b += rand_r(&sb) % 200000;
                rich_event(&ea, &sa, ts_a - rand_r(&sa) % 90000, 400);
                rich_event(&eb, &sb, ts_b - rand_r(&sb) % 90000, 400);
                itd_err_t ra = itd_state_update(a, &ea, itd_user_hash(ea.user_id), xa, ia, &ta);
                itd_err_t rb = itd_state_update(b, &eb, itd_user_hash(eb.user_id), xb, ib, &tb);
                cr_assert_eq(ra, rb, "event %d", i);
                if (ra != ITD_OK)
                        continue;
                cr_assert(memcmp(xa, xb, dim * sizeof(float)) == 0,
                          "features differ at event %d", i);
                cr_assert(memcmp(ia, ib, sizeof(ia)) == 0, "event %d", i);
                cr_assert_eq(ta.n, tb.n);
                for (size_t k = 0; k < ta.n; k++) {
                        cr_assert_str_eq(ta.name[k], tb.name[k]);
                        cr_assert(ta.score[k] == tb.score[k]);
                }
                if (i % 1000 == 999) {
                        itd_state_advance(a, itd_state_watermark(a) + DAY_MS);
                        itd_state_advance(b, itd_state_watermark(b) + DAY_MS);
                }
        }
        int64_t now = itd_state_watermark(a);
        char *da = dump_text(a, now), *db = dump_text(b, now);
        cr_expect_str_eq(da, db);
        cr_expect_gt(strlen(da), 1000);
        itd_state_stats_t sta, stb;
        itd_state_stats(a, &sta);
        itd_state_stats(b, &stb);
        cr_expect(memcmp(&sta, &stb, sizeof(sta)) == 0,
                  "stats differ: users %" PRIu64 "/%" PRIu64 ", evicted cap %"
                  PRIu64 "/%" PRIu64, sta.users, stb.users, sta.evicted_cap,
                  stb.evicted_cap);
        cr_expect_gt(sta.evicted_cap, 0);
        cr_expect_gt(sta.late_events, 0);
        /* and a snapshot of the restored state is the same bytes */
        size_t len2;
        unsigned char *snap_a = snapshot_bytes(a, &len);
        unsigned char *snap_b = snapshot_bytes(b, &len2);
        cr_expect_eq(len, len2);
        cr_expect(len == len2 && memcmp(snap_a, snap_b, len) == 0);
        free(snap);
        free(snap_a);
        free(snap_b);
        free(da);
        free(db);
        itd_state_destroy(a);
        itd_state_destroy(b);
}

/* Labels reach their user by the user's key, and only that user; the
 * features read them (FEATURES.md, "User propensity"); snapshots keep
 * them. */
Test(state, labels_count_for_their_user_by_key_and_survive_a_snapshot) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        const char *lng = "a-user-id-longer-than-15-bytes";
        int64_t t0 = 1700000000000LL;
        cr_assert_eq(feed(st, "alice", t0, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, "bob", t0 + 1000, ITD_EV_VIEW), ITD_OK);
        cr_assert_eq(feed(st, lng, t0 + 2000, ITD_EV_VIEW), ITD_OK);
        for (int i = 0; i < 3; i++)
                cr_expect_eq(itd_state_label(st, itd_user_hash("alice"),
                                             1), ITD_OK);
        cr_expect_eq(itd_state_label(st, itd_user_hash("alice"), 0),
                     ITD_OK);
        cr_expect_eq(itd_state_label(st, itd_user_hash(lng), 0), ITD_OK);
        /* a user no longer held: the partition counts it, nobody else */
        cr_expect_eq(itd_state_label(st, itd_user_hash("carol"), 0),
                     ITD_ERR_NOT_FOUND);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 3, "a label creates no user");

        size_t len;
        unsigned char *snap = snapshot_bytes(st, &len);
        char err[256] = "";
        itd_state_t *b = restore_bytes(snap, len, &conf, err, sizeof err);
        cr_assert_not_null(b, "%s", err);
        size_t f_lo = feature_at(&conf, "label_logodds");
        size_t f_n = feature_at(&conf, "labels_resolved");
        itd_state_t *both[] = {st, b};
        for (int k = 0; k < 2; k++) {
                float x[512];
                uint32_t ids[ITD_SPARSE_IDS];
                itd_event_t ev;
                /* partition: 3 of 6 positive -> (3 + 1) / (6 + 2) = 1/2;
                 * alice 3 of 4, bob none, the long id 0 of 1; prior 50 */
                make_event(&ev, "alice", t0 + 5000, ITD_EV_VIEW);
                cr_assert_eq(itd_state_update(both[k], &ev, itd_user_hash(ev.user_id), x, ids, NULL),
                             ITD_OK);
                cr_expect_float_eq(x[f_lo], logit(28.0 / 54.0), 1e-5,
                                   "alice: %g", (double)x[f_lo]);
                cr_expect_float_eq(x[f_n], log1pf(4.0f), 1e-5);
                make_event(&ev, "bob", t0 + 6000, ITD_EV_VIEW);
                cr_assert_eq(itd_state_update(both[k], &ev, itd_user_hash(ev.user_id), x, ids, NULL),
                             ITD_OK);
                cr_expect_float_eq(x[f_lo], 0.0f, 1e-6, "bob: no labels");
                cr_expect_float_eq(x[f_n], 0.0f, 1e-6);
                make_event(&ev, lng, t0 + 7000, ITD_EV_VIEW);
                cr_assert_eq(itd_state_update(both[k], &ev, itd_user_hash(ev.user_id), x, ids, NULL),
                             ITD_OK);
                cr_expect_float_eq(x[f_lo], logit(25.0 / 51.0), 1e-5,
                                   "long id: %g", (double)x[f_lo]);
        }
        free(snap);
        itd_state_destroy(b);
        itd_state_destroy(st);
}

/* 8-bit label counts halve together instead of saturating: the share
 * stays, and a heavy user's label history never freezes. */
Test(state, label_counts_halve_together_when_full) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        cr_assert_eq(feed(st, "heavy", 1700000000000LL, ITD_EV_VIEW), ITD_OK);
        uint64_t key = itd_user_hash("heavy");
        const itd_user_t *u = &st->users[0];
        for (int i = 0; i < 255; i++)
                itd_state_label(st, key, i % 4 == 0);
        cr_expect_eq(u->lab_n, 255);
        cr_expect_eq(u->lab_pos, 64);
        /* the 256th halves first: 255 -> 128, 64 -> 32, then counts */
        itd_state_label(st, key, 1);
        cr_expect_eq(u->lab_n, 129);
        cr_expect_eq(u->lab_pos, 33);
        for (int i = 0; i < 2000; i++)
                itd_state_label(st, key, i % 4 == 0);
        cr_expect_leq(u->lab_n, 255);
        cr_expect_geq(u->lab_n, 128);
        double share = (double)u->lab_pos / (double)u->lab_n;
        cr_expect_float_eq(share, 0.25, 0.02, "share %g of %u", share,
                           (unsigned)u->lab_n);
        itd_state_destroy(st);
}

Test(state, snapshots_of_several_partitions_read_back_in_sequence) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *p0 = itd_state_new(&conf, NULL, 0);
        itd_state_t *p1 = itd_state_new(&conf, NULL, 0);
        unsigned seed = 5;
        feed_rich(p0, &seed, 1511848894000LL, 500, 50);
        feed_rich(p1, &seed, 1511848894000LL, 700, 80);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cr_assert_eq(itd_state_snapshot(p0, f, NULL, 0), ITD_OK);
        cr_assert_eq(itd_state_snapshot(p1, f, NULL, 0), ITD_OK);
        fclose(f);
        f = fmemopen(buf, len, "r");
        char err[256] = "";
        itd_state_t *r0;
        itd_state_restore(f, &conf, &r0, err, sizeof(err));
        cr_assert_not_null(r0, "%s", err);
        itd_state_t *r1;
        itd_state_restore(f, &conf, &r1, err, sizeof(err));
        cr_assert_not_null(r1, "%s", err);
        cr_expect_eq(fgetc(f), EOF);
        fclose(f);
        int64_t now = itd_state_watermark(p1);
        char *a0 = dump_text(p0, now), *b0 = dump_text(r0, now);
        char *a1 = dump_text(p1, now), *b1 = dump_text(r1, now);
        cr_expect_str_eq(a0, b0);
        cr_expect_str_eq(a1, b1);
        free(a0);
        free(b0);
        free(a1);
        free(b1);
        free(buf);
        itd_state_destroy(p0);
        itd_state_destroy(p1);
        itd_state_destroy(r0);
        itd_state_destroy(r1);
}

/* tests/fixtures/state_v1.snap: 30 events of 3 users (one id past the
 * inline bytes), 4 categories, ts 1700000000000 + 20 s each, written by
 * the build before the frontier (snapshot version 1, x86-64 layout, the
 * default_conf of this file). It still loads; its watermark, the newest
 * event time minus the lateness, gives the frontier. */
Test(state, restores_a_version_1_snapshot) {
        itd_state_conf_t conf = default_conf();
        char path[1024], err[256] = "";
        tu_src("tests/fixtures/state_v1.snap", path, sizeof path);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        itd_state_t *st;
        itd_state_restore(f, &conf, &st, err, sizeof err);
        fclose(f);
        cr_assert_not_null(st, "%s", err);
        int64_t t0 = 1700000000000LL, wm = t0 + 29 * 20000 - 60000;
        cr_expect_eq(itd_state_watermark(st), wm);
        cr_expect_eq(itd_state_frontier(st), wm + 60000);
        itd_state_stats_t s;
        itd_state_stats(st, &s);
        cr_expect_eq(s.users, 3);
        uint32_t c[4 * T];
        cr_assert_eq(itd_state_counts(st, "alice", t0 + 29 * 20000, c),
                     ITD_OK);
        uint32_t total = 0;
        for (int t = 0; t < T; t++)
                total += c[3 * T + t];
        cr_expect_eq(total, 10);
        cr_assert_eq(itd_state_counts(st,
                                      "a-user-id-longer-than-15-bytes",
                                      t0 + 29 * 20000, c), ITD_OK);
        /* its 224-byte records widened: no labels yet, and the
         * partition's event counts rebuilt from the users' */
        {
                float x[512];
                uint32_t ids[ITD_SPARSE_IDS];
                itd_event_t ev;
                make_event(&ev, "alice", wm + 2, ITD_EV_VIEW);
                FILE *g = fopen(path, "rb");
                cr_assert_not_null(g, "%s", path);
                itd_state_t *tmp;
                itd_state_restore(g, &conf, &tmp, err, sizeof err);
                fclose(g);
                cr_assert_not_null(tmp, "%s", err);
                cr_assert_eq(itd_state_update(tmp, &ev, itd_user_hash(ev.user_id), x, ids, NULL),
                             ITD_OK);
                cr_expect_eq(x[feature_at(&conf, "label_logodds")], 0.0f);
                cr_expect_eq(x[feature_at(&conf, "labels_resolved")], 0.0f);
                cr_expect(isfinite(x[feature_at(&conf, "purchase_logodds")]));
                itd_state_stats_t ts;
                itd_state_stats(tmp, &ts);
                cr_expect_eq(ts.users, 3);
                itd_state_destroy(tmp);
        }
        /* it goes on like a fresh state, and snapshots as version 4 */
        cr_expect_eq(feed(st, "bob", wm - 1, ITD_EV_VIEW), ITD_ERR_RANGE);
        cr_expect_eq(feed(st, "bob", wm + 1, ITD_EV_VIEW), ITD_OK);
        size_t len;
        unsigned char *snap = snapshot_bytes(st, &len);
        uint64_t vw;
        memcpy(&vw, snap + 8, sizeof vw);
        cr_expect_eq((uint32_t)vw, 4);
        itd_state_t *b = restore_bytes(snap, len, &conf, err, sizeof err);
        cr_expect_not_null(b, "%s", err);
        itd_state_destroy(b);
        free(snap);
        itd_state_destroy(st);
}

Test(state, restore_detects_bit_flips_and_truncation) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        unsigned seed = 3;
        feed_rich(st, &seed, 1511848894000LL, 2000, 60);
        size_t len;
        unsigned char *snap = snapshot_bytes(st, &len);
        char err[512];
        /* one flipped bit anywhere: header, users, ids, dictionary */
        size_t at[] = {0, 9, 30, 200, len / 3, len / 2, len - 40, len - 1};
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
                snap[at[k]] ^= 0x10;
                err[0] = '\0';
                itd_state_t *r = restore_bytes(snap, len, &conf, err,
                                               sizeof(err));
                cr_expect_null(r, "flip at byte %zu went unnoticed", at[k]);
                itd_state_destroy(r);
                cr_expect(strstr(err, "corrupt state snapshot") ||
                              strstr(err, "incompatible state snapshot"),
                          "flip at %zu: %s", at[k], err);
                /* the class comes as a code, never from the message */
                cr_expect_eq(restored_code,
                             strstr(err, "corrupt") ? ITD_ERR_CORRUPT
                                                    : ITD_ERR_INCOMPATIBLE,
                             "flip at %zu: code %d for %s", at[k],
                             (int)restored_code, err);
                cr_expect(strstr(err, "byte") != NULL, "%s", err);
                snap[at[k]] ^= 0x10;
        }
        /* cut short anywhere: the message names where input ended */
        size_t cut[] = {0, 7, 100, len / 2, len - 1};
        for (size_t k = 0; k < sizeof(cut) / sizeof(cut[0]); k++) {
                err[0] = '\0';
                itd_state_t *r = restore_bytes(snap, cut[k], &conf, err,
                                               sizeof(err));
                cr_expect_null(r);
                itd_state_destroy(r);
                char want[64];
                snprintf(want, sizeof(want), "input ended at byte %zu",
                         cut[k]);
                cr_expect(strstr(err, "truncated state snapshot") &&
                              strstr(err, want),
                          "cut at %zu: %s", cut[k], err);
                cr_expect_eq(restored_code, ITD_ERR_CORRUPT, "cut at %zu",
                             cut[k]);
        }
        /* intact, it restores */
        itd_state_t *r = restore_bytes(snap, len, &conf, err, sizeof(err));
        cr_expect_not_null(r, "%s", err);
        itd_state_destroy(r);
        free(snap);
        itd_state_destroy(st);
}

Test(state, restore_refuses_a_snapshot_of_other_windows_and_names_them) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        unsigned seed = 8;
        feed_rich(st, &seed, 1511848894000LL, 300, 40);
        size_t len;
        unsigned char *snap = snapshot_bytes(st, &len);
        char err[512];
        itd_state_conf_t other = conf;
        other.window_ms[1] = 2 * HOUR_MS;
        cr_expect_null(restore_bytes(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "incompatible state snapshot") &&
                      strstr(err, "state.window_ms[1] = 3600000") &&
                      strstr(err, "7200000"), "%s", err);
        cr_expect_eq(restored_code, ITD_ERR_INCOMPATIBLE);
        other = conf;
        other.allowed_lateness_ms = 0;
        cr_expect_null(restore_bytes(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "allowed_lateness_ms"), "%s", err);
        other = conf;
        other.n_windows = 3;
        cr_expect_null(restore_bytes(snap, len, &other, err, sizeof(err)));
        cr_expect(strstr(err, "n_windows"), "%s", err);
        /* limits may change: fewer max_users evicts the least recent */
        other = conf;
        other.max_users = 10;
        other.idle_ttl_ms = DAY_MS;
        itd_state_t *r = restore_bytes(snap, len, &other, err, sizeof(err));
        cr_assert_not_null(r, "%s", err);
        itd_state_stats_t s0, s1;
        itd_state_stats(st, &s0);
        itd_state_stats(r, &s1);
        cr_expect_eq(s1.users, 10);
        cr_expect_eq(s1.evicted_cap, s0.evicted_cap + s0.users - 10);
        itd_state_destroy(r);
        /* not a state snapshot at all */
        const char junk[] = "{\"user_id\":\"u1\"}\n and more bytes here...";
        cr_expect_null(restore_bytes((const unsigned char *)junk,
                                     sizeof(junk), &conf, err, sizeof(err)));
        cr_expect(strstr(err, "bad magic at byte 0"), "%s", err);
        cr_expect_eq(restored_code, ITD_ERR_CORRUPT);
        free(snap);
        itd_state_destroy(st);
}

Test(state, prefetch_changes_nothing) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *a = itd_state_new(&conf, NULL, 0);
        itd_state_t *b = itd_state_new(&conf, NULL, 0);
        unsigned seed = 4;
        itd_event_t evs[64];
        float xa[512], xb[512];
        uint32_t ids[ITD_SPARSE_IDS];
        int64_t t = 1511848894000LL;
        size_t dim = itd_features_dim(&conf);
        for (int batch = 0; batch < 40; batch++) {
                for (int i = 0; i < 64; i++)
                        rich_event(&evs[i], &seed, t += 5000, 500);
                for (int i = 0; i < 64; i++)
                        itd_state_prefetch(b, itd_user_hash(evs[i].user_id));
                for (int i = 0; i < 64; i++) {
                        cr_assert_eq(itd_state_update(a, &evs[i], itd_user_hash(evs[i].user_id), xa, ids,
                                                      NULL),
                                     itd_state_update(b, &evs[i], itd_user_hash(evs[i].user_id), xb, ids,
                                                      NULL));
                        cr_assert(memcmp(xa, xb, dim * sizeof(float)) == 0);
                }
        }
        itd_state_destroy(a);
        itd_state_destroy(b);
}

/*
 * test_features.c - the dense feature vector, its names (and their
 * documentation), no leakage from later events, sparse ids, top categories.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intentd/event.h"
#include "intentd/state.h"
#include "testutil.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
/* features are float expressions of exact small integers: float rounding */
#define EPS 1e-5f

static itd_state_conf_t default_conf(void) {
        itd_state_conf_t c = {
            .n_windows = 4,
            .window_ms = {5 * MIN_MS, HOUR_MS, DAY_MS, 7 * DAY_MS},
            .allowed_lateness_ms = 60000,
            .session_gap_ms = 30 * MIN_MS,
            .idle_ttl_ms = 30 * DAY_MS,
            .max_users = 100000,
        };
        return c;
}

static size_t feature_index(const itd_state_conf_t *conf, const char *name) {
        char buf[64];
        size_t dim = itd_features_dim(conf);
        for (size_t i = 0; i < dim; i++)
                if (!strcmp(itd_features_name(conf, i, buf, sizeof(buf)),
                            name))
                        return i;
        cr_assert_fail("no feature named %s", name);
        return 0;
}

static double logit(double p) { return log(p / (1.0 - p)); }

static void ev_set(itd_event_t *ev, const char *user, int64_t ts, int type,
                   const char *item, const char *cat, double price,
                   const char *query) {
        itd_event_clear(ev);
        snprintf(ev->user_id, sizeof(ev->user_id), "%s", user);
        ev->ts_ms = ts;
        ev->type = (itd_event_type_t)type;
        snprintf(ev->item_id, sizeof(ev->item_id), "%s", item ? item : "");
        snprintf(ev->category, sizeof(ev->category), "%s", cat ? cat : "");
        snprintf(ev->query, sizeof(ev->query), "%s", query ? query : "");
        ev->price = price;
}

Test(features, names_are_unique_documented_and_as_many_as_dim) {
        itd_state_conf_t conf = default_conf();
        size_t dim = itd_features_dim(&conf);
        cr_assert_gt(dim, 60);
        char path[4096];
        char *doc = tu_read_file(tu_src("docs/FEATURES.md", path,
                                        sizeof(path)));
        cr_assert_not_null(doc, "docs/FEATURES.md unreadable");
        char (*names)[64] = calloc(dim, 64);
        for (size_t i = 0; i < dim; i++) {
                cr_assert_not_null(
                    itd_features_name(&conf, i, names[i], 64));
                cr_expect_gt(strlen(names[i]), 0);
                for (size_t j = 0; j < i; j++)
                        cr_expect_str_neq(names[i], names[j]);
                /* per-window names are documented by pattern */
                const char *key = names[i];
                char pat[80];
                if (!strncmp(key, "count_", 6)) {
                        snprintf(pat, sizeof(pat), "count_<window>_%s",
                                 strchr(key + 6, '_') + 1);
                        key = pat;
                }
                char quoted[96];
                snprintf(quoted, sizeof(quoted), "`%s`", key);
                cr_expect(strstr(doc, quoted) != NULL,
                          "feature %s not in docs/FEATURES.md", quoted);
        }
        char buf[64];
        cr_expect_null(itd_features_name(&conf, dim, buf, sizeof(buf)));
        cr_expect_str_eq(itd_features_name(&conf, 0, buf, sizeof(buf)),
                         "count_5m_view");
        feature_index(&conf, "count_7d_purchase");
        feature_index(&conf, "purchase_rate");
        feature_index(&conf, "secs_since_purchase");
        conf.n_windows = 2;
        cr_expect_eq(itd_features_dim(&conf), dim - 2 * ITD_EV__COUNT);
        free(names);
        free(doc);
}

Test(features, lifetime_features_are_the_documented_ones) {
        /* the set docs/FEATURES.md lists under "Lifetime features"; the
         * model fits the others by Newton steps (model.linear.newton) */
        static const char *const lifetime[] = {
            "life_view", "life_search", "life_add_to_cart",
            "life_remove_from_cart", "life_purchase", "life_favorite",
            "life_events", "purchase_rate", "never_view", "never_search",
            "never_add_to_cart", "never_remove_from_cart", "never_purchase",
            "never_favorite", "secs_since_first", "view_price_max",
            "purchase_logodds", "label_logodds", "labels_resolved"};
        const size_t n_life = sizeof lifetime / sizeof *lifetime;
        itd_state_conf_t conf = default_conf();
        size_t dim = itd_features_dim(&conf);
        char path[4096];
        char *doc = tu_read_file(tu_src("docs/FEATURES.md", path,
                                        sizeof(path)));
        cr_assert_not_null(doc, "docs/FEATURES.md unreadable");
        const char *sec = strstr(doc, "## Lifetime features");
        cr_assert_not_null(sec, "no \"Lifetime features\" section");
        const char *end = strstr(sec + 3, "\n## ");
        size_t found = 0;
        for (size_t i = 0; i < dim; i++) {
                char nm[64], quoted[80];
                itd_features_name(&conf, i, nm, sizeof nm);
                int want = 0;
                for (size_t k = 0; k < n_life; k++)
                        want |= !strcmp(nm, lifetime[k]);
                cr_expect_eq(itd_features_lifetime(&conf, i), want, "%s",
                             nm);
                found += want;
                snprintf(quoted, sizeof quoted, "`%s`", nm);
                const char *at = strstr(sec, quoted);
                if (want)
                        cr_expect(at && (!end || at < end),
                                  "%s not listed as lifetime", nm);
        }
        cr_expect_eq(found, n_life);
        cr_expect_eq(itd_features_lifetime(&conf, dim), 0);
        free(doc);
}

Test(features, values_follow_their_definitions) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        size_t dim = itd_features_dim(&conf);
        float *x = calloc(dim, sizeof(float));
        uint32_t ids[ITD_SPARSE_IDS];
        itd_event_t ev;
        /* 1970-01-05 was a Monday; 06:00 UTC */
        int64_t t0 = 4 * DAY_MS + 6 * HOUR_MS;
        ev_set(&ev, "a", t0, ITD_EV_VIEW, "i1", "c1", 99.0, NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        cr_expect_float_eq(x[feature_index(&conf, "purchase_rate")],
                           0.5f / 11.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "never_purchase")], 1.0f,
                           EPS);
        cr_expect_float_eq(x[feature_index(&conf, "hour_sin")], 1.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "hour_cos")], 0.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "dow_sin")], 0.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "dow_cos")], 1.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "price")],
                           log1pf(99.0f) / 4.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "is_view")], 1.0f, EPS);
        /* user propensity (FEATURES.md, "User propensity"): 0 purchases of
         * 1 event against the partition's (0 + 1) / (1 + 2), prior 30 */
        cr_expect_float_eq(x[feature_index(&conf, "purchase_logodds")],
                           logit(10.0 / 31.0) - logit(1.0 / 3.0), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "label_logodds")], 0.0f,
                           EPS);
        cr_expect_float_eq(x[feature_index(&conf, "labels_resolved")], 0.0f,
                           EPS);

        ev_set(&ev, "a", t0 + 100000, ITD_EV_ADD_TO_CART, "i1", "c1", 99.0,
               NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        ev_set(&ev, "a", t0 + 200000, ITD_EV_PURCHASE, "i1", "c1", 99.0,
               NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        cr_expect_float_eq(x[feature_index(&conf, "count_5m_view")],
                           log1pf(1.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "count_5m_purchase")],
                           log1pf(1.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "life_events")],
                           log1pf(3.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "purchase_rate")],
                           1.5f / 13.0f, EPS);
        /* recency is measured to the previous event of that type */
        cr_expect_float_eq(x[feature_index(&conf, "never_purchase")], 1.0f,
                           EPS);
        cr_expect_float_eq(x[feature_index(&conf, "secs_since_view")],
                           log1pf(200.0f) / 8.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "secs_since_prev_event")],
                           log1pf(100.0f) / 8.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_events")],
                           log1pf(3.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_carts")],
                           log1pf(1.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_cart_value")],
                           log1pf(99.0f) / 4.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "is_purchase")], 1.0f,
                           EPS);
        cr_expect_float_eq(x[feature_index(&conf, "is_view")], 0.0f, EPS);
        /* 1 purchase of 3 events; the partition's (1 + 1) / (3 + 2) */
        cr_expect_float_eq(x[feature_index(&conf, "purchase_logodds")],
                           logit(13.0 / 33.0) - logit(0.4), EPS);

        /* after the session gap a new session starts */
        ev_set(&ev, "a", t0 + 200000 + 31 * MIN_MS, ITD_EV_VIEW, "i2", "c2",
               NAN, NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        cr_expect_float_eq(x[feature_index(&conf, "sess_events")],
                           log1pf(1.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_carts")], 0.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "never_purchase")], 0.0f,
                           EPS);
        cr_expect_float_eq(x[feature_index(&conf, "secs_since_purchase")],
                           log1pf(31.0f * 60.0f) / 8.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "has_price")], 0.0f, EPS);
        /* the event itself is in its windows */
        cr_expect_float_eq(x[feature_index(&conf, "count_5m_view")],
                           log1pf(1.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "count_5m_purchase")],
                           0.0f, EPS);
        cr_expect_float_eq(x[feature_index(&conf, "count_1h_view")],
                           log1pf(2.0f), EPS);
        for (size_t i = 0; i < dim; i++)
                cr_expect(isfinite(x[i]), "feature %zu not finite", i);
        free(x);
        itd_state_destroy(st);
}

/* Features at an event equal those of a state fed only the stream up to
 * that event: nothing later leaks in. */
Test(features, features_at_an_event_ignore_later_events) {
        itd_state_conf_t conf = default_conf();
        size_t dim = itd_features_dim(&conf);
        enum { N = 3000, CHECKS = 6 };
        itd_event_t *evs = calloc(N, sizeof(*evs));
        srand(11);
        int64_t ts = 1511848894000LL;
        const char *queries[] = {"red shoes", "phone case", "", "tv"};
        for (int i = 0; i < N; i++) {
                char user[16], item[16], cat[16];
                ts += rand() % 60000;
                snprintf(user, sizeof(user), "u%d", rand() % 30);
                snprintf(item, sizeof(item), "i%d", rand() % 200);
                snprintf(cat, sizeof(cat), "c%d", rand() % 12);
                ev_set(&evs[i], user, ts - rand() % 30000, rand() % 6, item,
                       cat, rand() % 4 ? (double)(rand() % 500) : NAN,
                       queries[rand() % 4]);
        }
        float *full = calloc((size_t)N * dim, sizeof(float));
        uint32_t *full_ids = calloc((size_t)N * ITD_SPARSE_IDS, 4);
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        for (int i = 0; i < N; i++)
                cr_assert_eq(itd_state_update(st, &evs[i], itd_user_hash(evs[i].user_id), full + i * dim,
                                              full_ids + i * ITD_SPARSE_IDS,
                                              NULL), ITD_OK);
        itd_state_destroy(st);
        float *x = calloc(dim, sizeof(float));
        uint32_t ids[ITD_SPARSE_IDS];
        for (int c = 1; c <= CHECKS; c++) {
                int k = c * N / (CHECKS + 1);
                itd_state_t *pre = itd_state_new(&conf, NULL, 0);
                for (int i = 0; i <= k; i++)
                        cr_assert_eq(itd_state_update(pre, &evs[i], itd_user_hash(evs[i].user_id), x, ids,
                                                      NULL), ITD_OK);
                cr_expect_arr_eq(x, full + k * dim, dim * sizeof(float),
                                 "features at event %d differ", k);
                cr_expect_arr_eq(ids, full_ids + k * ITD_SPARSE_IDS,
                                 sizeof(ids));
                itd_state_destroy(pre);
        }
        for (size_t i = 0; i < (size_t)N * dim; i++)
                cr_assert(isfinite(full[i]), "feature %zu of event %zu",
                          i % dim, i / dim);
        free(x);
        free(full);
        free(full_ids);
        free(evs);
}

Test(features, sparse_ids_hold_recent_distinct_values_newest_first) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        itd_state_t *st2 = itd_state_new(&conf, NULL, 0);
        float *x = calloc(itd_features_dim(&conf), sizeof(float));
        uint32_t ids[ITD_SPARSE_IDS], ids2[ITD_SPARSE_IDS];
        itd_event_t ev;
        ev_set(&ev, "a", 1000, ITD_EV_SEARCH, "", "", NAN, "red  shoes");
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        for (int i = 0; i < ITD_SPARSE_SLOTS; i++) {
                cr_expect_eq(ids[i], ITD_SPARSE_NONE);     /* categories */
                cr_expect_eq(ids[4 + i], ITD_SPARSE_NONE); /* items */
        }
        cr_expect_neq(ids[8], ITD_SPARSE_NONE);
        cr_expect_neq(ids[9], ITD_SPARSE_NONE);
        cr_expect_neq(ids[8], ids[9]);
        cr_expect_eq(ids[10], ITD_SPARSE_NONE);
        uint32_t red = ids[8];

        ev_set(&ev, "a", 2000, ITD_EV_VIEW, "i1", "c1", 5, NULL);
        itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
        ev_set(&ev, "a", 3000, ITD_EV_VIEW, "i2", "c2", 5, NULL);
        itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL);
        ev_set(&ev, "a", 4000, ITD_EV_VIEW, "i1", "c1", 5, NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        /* i1 moved to the front, not repeated */
        cr_expect_neq(ids[4], ids[5]);
        cr_expect_eq(ids[6], ITD_SPARSE_NONE);
        cr_expect_neq(ids[0], ids[1]);
        cr_expect_eq(ids[2], ITD_SPARSE_NONE);
        cr_expect_eq(ids[8], red, "query tokens persist");

        /* the same strings hash the same in another state */
        ev_set(&ev, "zz", 5000, ITD_EV_VIEW, "i1", "c1", 5, NULL);
        cr_assert_eq(itd_state_update(st2, &ev, itd_user_hash(ev.user_id), x, ids2, NULL), ITD_OK);
        cr_expect_eq(ids2[0], ids[0]);
        cr_expect_eq(ids2[4], ids[4]);
        free(x);
        itd_state_destroy(st);
        itd_state_destroy(st2);
}

Test(features, top_categories_rank_decayed_weighted_scores) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        float *x = calloc(itd_features_dim(&conf), sizeof(float));
        uint32_t ids[ITD_SPARSE_IDS];
        itd_topcats_t top;
        itd_event_t ev;
        int64_t t = 1000000;
        /* three views of shoes, one purchase of books (weight 5) */
        for (int i = 0; i < 3; i++) {
                ev_set(&ev, "a", t++, ITD_EV_VIEW, "i", "shoes", 1, NULL);
                itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, &top);
        }
        ev_set(&ev, "a", t++, ITD_EV_PURCHASE, "i", "books", 1, NULL);
        itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, &top);
        ev_set(&ev, "a", t++, ITD_EV_VIEW, "i", "toys", 1, NULL);
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, &top), ITD_OK);
        cr_assert_eq(top.n, 3);
        cr_expect_str_eq(top.name[0], "books");
        cr_expect_str_eq(top.name[1], "shoes");
        cr_expect_str_eq(top.name[2], "toys");
        /* decay over ms is negligible here: float rounding only */
        cr_expect_float_eq(top.score[0], 5.0f, 1e-3f);
        cr_expect_float_eq(top.score[1], 3.0f, 1e-3f);
        /* a day later every score has halved */
        ev_set(&ev, "a", t + DAY_MS, ITD_EV_SEARCH, "", "", NAN, "x");
        cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, &top), ITD_OK);
        cr_expect_float_eq(top.score[0], 2.5f, 1e-3f);
        itd_state_destroy(st);
        free(x);
}

/* The record keeps lifetime counts in 16 bits and session event, cart and
 * search counts in 8 (docs/FEATURES.md, "Memory per user"): they saturate
 * rather than wrap. */
Test(features, lifetime_and_session_counts_saturate_instead_of_wrapping) {
        itd_state_conf_t conf = default_conf();
        itd_state_t *st = itd_state_new(&conf, NULL, 0);
        size_t dim = itd_features_dim(&conf);
        float *x = calloc(dim, sizeof(*x));
        uint32_t ids[ITD_SPARSE_IDS];
        itd_event_t ev;
        /* one session: 1 s apart, well within the 30 min gap */
        for (int i = 0; i < 70000; i++) {
                int type = i < 300 ? ITD_EV_ADD_TO_CART : ITD_EV_VIEW;
                ev_set(&ev, "bot", 1000000 + (int64_t)i * 1000, type, NULL,
                       NULL, NAN, NULL);
                cr_assert_eq(itd_state_update(st, &ev, itd_user_hash(ev.user_id), x, ids, NULL), ITD_OK);
        }
        cr_expect_float_eq(x[feature_index(&conf, "life_view")],
                           logf(1.0f + 65535.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "life_add_to_cart")],
                           logf(1.0f + 300.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_carts")],
                           logf(1.0f + 255.0f), EPS);
        cr_expect_float_eq(x[feature_index(&conf, "sess_events")],
                           logf(1.0f + 255.0f), EPS);
        free(x);
        itd_state_destroy(st);
}

/*
 * test_query.c - the query endpoint's mailbox (daemon/query.h) without
 * HTTP: questions answered by the pipeline side from the engine and the
 * latest-prediction cache, the user named by pseudonym only, "unknown"
 * users, the slot limit, the rate limit, and questions nobody answers in
 * time getting a 503 and a wake.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "conf_parts.h"
#include "intentd/engine.h"
#include "intentd/log.h"
#include "intentd/conf.h"
#include "intentd/log.h"
#include "query.h"

static int woken[64];
static void wake(void *conn) { woken[(int)(intptr_t)conn]++; }

static itd_engine_t *engine_with(const char *user, int n) {
        char err[256];
        itd_conf_t *conf = itd_conf_new();
        itd_engine_t *eng = itd_conf_new_engine(conf, err, sizeof err);
        itd_conf_destroy(conf);
        cr_assert(eng, "%s", err);
        for (int i = 0; i < n; i++) {
                itd_row_t in = {0};
                strcpy(in.ev.user_id, user);
                itd_row_decoded(&in, 1, i);
                strcpy(in.ev.category, "shoes");
                in.ev.ts_ms = 1700000000000LL + i * 1000;
                in.ev.type = ITD_EV_VIEW;
                in.ev.price = NAN;
                cr_assert_eq(itd_engine_process(eng, "t", &in, 1,
                                                itd_now_wall_ms(), NULL, 0),
                             ITD_OK);
        }
        return eng;
}

static json_t *take(itd_query_t *q, int t, unsigned *status) {
        size_t len;
        char *body = itd_query_take(q, t, status, &len);
        cr_assert(body);
        cr_expect_null(strstr(body, "alice"), "clear id in %s", body);
        json_t *doc = json_loads(body, 0, NULL);
        cr_assert(doc, "not JSON: %s", body);
        free(body);
        return doc;
}

Test(query, the_pipeline_answers_known_and_unknown_users) {
        itd_engine_t *eng = engine_with("alice", 5);
        itd_query_t *q = itd_query_new(100);
        itd_query_set_wake(q, wake);
        memset(woken, 0, sizeof woken);
        itd_prediction_t pr = {.purchase_probability = 0.25f,
                               .next_action = ITD_NEXT_PURCHASE,
                               .event_ts_ms = 1700000004000LL,
                               .model_version = 7};
        strcpy(pr.user_id, "alice");
        strcpy(pr.prediction_id, "t/1/4");
        strcpy(pr.model_id, "0123456789abcdef-0123456789abcdef");
        pr.next_probs[ITD_NEXT_PURCHASE] = 0.5f;
        itd_query_note(q, &pr, itd_user_hash(pr.user_id));

        int a = itd_query_post(q, "alice", (void *)1, 0);
        int b = itd_query_post(q, "bob", (void *)2, 0);
        cr_assert(a >= 0 && b >= 0);
        /* Not published yet: the pipeline does not see them. */
        itd_query_serve(q, &eng, 1);
        cr_expect_eq(woken[1] + woken[2], 0);
        itd_query_publish(q, a);
        itd_query_publish(q, b);
        itd_query_serve(q, &eng, 1);
        cr_expect_eq(woken[1], 1);
        cr_expect_eq(woken[2], 1);

        unsigned status;
        json_t *doc = take(q, a, &status);
        cr_expect_eq(status, 200);
        cr_expect(json_is_true(json_object_get(doc, "known")));
        json_t *st = json_object_get(doc, "state");
        cr_expect_eq(json_integer_value(json_object_get(st, "partition")), 1);
        json_t *m5 = json_object_get(json_object_get(st, "windows"), "5m");
        cr_expect_eq(json_integer_value(json_object_get(m5, "VIEW")), 5);
        json_t *cats = json_object_get(st, "top_categories");
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_array_get(cats, 0), "category")),
                         "shoes");
        json_t *lat = json_object_get(doc, "latest");
        cr_expect_float_eq(json_real_value(json_object_get(
                               lat, "purchase_probability")),
                           0.25, 1e-6);
        cr_expect_str_eq(json_string_value(json_object_get(lat,
                                                           "next_action")),
                         "PURCHASE");
        cr_expect_eq(json_integer_value(json_object_get(lat,
                                                        "model_version")),
                     7);
        json_decref(doc);

        doc = take(q, b, &status);
        cr_expect_eq(status, 404);
        cr_expect(json_is_false(json_object_get(doc, "known")));
        json_decref(doc);
        itd_query_destroy(q);
        itd_engine_destroy(eng);
}

Test(query, bounded_in_slots_rate_and_time) {
        itd_query_t *q = itd_query_new(16);
        itd_query_set_wake(q, wake);
        memset(woken, 0, sizeof woken);
        int t[ITD_QUERY_SLOTS];
        for (int i = 0; i < ITD_QUERY_SLOTS; i++) {
                t[i] = itd_query_post(q, "x", (void *)(intptr_t)i, 1000);
                cr_assert_geq(t[i], 0);
                itd_query_publish(q, t[i]);
        }
        cr_expect_eq(itd_query_post(q, "x", NULL, 1000), -1, "slots full");
        /* Nobody serves: past the wait, each gets a 503 and one wake. */
        cr_expect_eq(itd_query_expire(q, 1000 + ITD_QUERY_WAIT_MS - 1, 0),
                     ITD_QUERY_SLOTS);
        cr_expect_eq(woken[0], 0);
        itd_query_expire(q, 1000 + ITD_QUERY_WAIT_MS, 0);
        for (int i = 0; i < ITD_QUERY_SLOTS; i++) {
                cr_expect_eq(woken[i], 1);
                unsigned status;
                size_t len;
                free(itd_query_take(q, t[i], &status, &len));
                cr_expect_eq(status, 503);
        }
        cr_expect_eq(itd_query_expire(q, 0, 0), 0, "every slot free");

        /* ITD_QUERY_RATE at once, then one more a 1/RATE s later (times
         * on the monotonic clock the bucket started on). */
        int64_t t0 = itd_now_mono_ms() + 10000;
        int ok = 0;
        for (int i = 0; i < 2 * ITD_QUERY_RATE; i++)
                ok += itd_query_allow(q, t0);
        cr_expect_eq(ok, ITD_QUERY_RATE);
        cr_expect(itd_query_allow(q, t0 + 1000 / ITD_QUERY_RATE));
        cr_expect(!itd_query_allow(q, t0 + 1000 / ITD_QUERY_RATE));

        /* Closing: nothing new is taken. */
        itd_query_expire(q, 0, 1);
        cr_expect_eq(itd_query_post(q, "x", NULL, 0), -1);
        itd_query_destroy(q);
}

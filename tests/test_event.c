/*
 * test_event.c - the event record: enum names, JSON round trip, and one
 * error per way a JSON event can be wrong, each naming the field.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "intentd/event.h"
#include "intentd/prediction.h"
#include "testutil.h"

#include <stdint.h>

static void full_event(itd_event_t *ev) {
        itd_event_clear(ev);
        ev->ts_ms = 1511658000123;
        ev->type = ITD_EV_ADD_TO_CART;
        ev->price = 19.99;
        strcpy(ev->user_id, "u42");
        strcpy(ev->event_id, "e-1");
        strcpy(ev->item_id, "i7");
        strcpy(ev->category, "c3");
        strcpy(ev->session_id, "s-9");
        strcpy(ev->query, "red \"shoes\"\\ \n\t");
}

Test(event, type_names_round_trip_through_parse) {
        for (int t = 0; t < ITD_EV__COUNT; t++) {
                itd_event_type_t back;
                cr_expect_eq(itd_event_type_parse(itd_event_type_name(t),
                                                  &back),
                             ITD_OK);
                cr_expect_eq((int)back, t);
        }
        itd_event_type_t x;
        cr_assert_eq(itd_event_type_parse("view", &x), ITD_ERR_PARSE);
        cr_assert_str_eq(itd_event_type_name(ITD_EV__COUNT), "?");
}

Test(event, clear_marks_every_field_absent) {
        itd_event_t ev;
        full_event(&ev);
        itd_event_clear(&ev);
        cr_assert(isnan(ev.price));
        cr_assert_eq(ev.ts_ms, 0);
        cr_assert_str_empty(ev.user_id);
        cr_assert_str_empty(ev.query);
        cr_assert_str_empty(ev.session_id);
}

Test(event, json_round_trip_keeps_every_field) {
        itd_event_t ev, back;
        char buf[1024], err[256];
        full_event(&ev);
        size_t n = itd_event_to_json(&ev, buf, sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq(strlen(buf), n);
        cr_assert_eq(itd_event_from_json(buf, n, &back, err, sizeof err),
                     ITD_OK, "%s", err);
        tu_assert_same_event(&ev, &back);
}

Test(event, json_omits_absent_fields_and_reads_them_back_absent) {
        itd_event_t ev, back;
        char buf[512], err[256];
        itd_event_clear(&ev);
        strcpy(ev.user_id, "u1");
        ev.ts_ms = 5;
        ev.type = ITD_EV_SEARCH;
        size_t n = itd_event_to_json(&ev, buf, sizeof buf);
        cr_assert_str_eq(buf,
                         "{\"user_id\":\"u1\",\"ts\":5,\"type\":\"SEARCH\"}");
        cr_assert_eq(itd_event_from_json(buf, n, &back, err, sizeof err),
                     ITD_OK, "%s", err);
        tu_assert_same_event(&ev, &back);
}

Test(event, json_reads_nulls_as_absent_and_ignores_unknown_fields) {
        const char *j = "{\"user_id\":\"u1\",\"ts\":7,\"type\":\"PURCHASE\","
                        "\"price\":null,\"item_id\":null,\"extra\":[1,2],"
                        "\"price_currency\":\"EUR\"}";
        itd_event_t ev;
        char err[256];
        cr_assert_eq(itd_event_from_json(j, strlen(j), &ev, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert(isnan(ev.price));
        cr_assert_str_empty(ev.item_id);
        cr_assert_eq(ev.type, ITD_EV_PURCHASE);
}

Test(event, json_accepts_integer_price_and_unterminated_input) {
        const char *j = "{\"user_id\":\"u1\",\"ts\":7,\"type\":\"VIEW\","
                        "\"price\":12}GARBAGE";
        itd_event_t ev;
        char err[256];
        size_t len = strlen(j) - strlen("GARBAGE");
        cr_assert_eq(itd_event_from_json(j, len, &ev, err, sizeof err),
                     ITD_OK, "%s", err);
        cr_assert_eq(ev.price, 12.0);
}

Test(event, to_json_returns_zero_when_the_buffer_is_too_small) {
        itd_event_t ev;
        char buf[1024];
        full_event(&ev);
        size_t n = itd_event_to_json(&ev, buf, sizeof buf);
        cr_assert_gt(n, 0);
        cr_assert_eq(itd_event_to_json(&ev, buf, n), 0);
        cr_assert_eq(itd_event_to_json(&ev, buf, n + 1), n);
}

Test(event, json_errors_name_the_field_and_the_problem) {
        char long_id[200];
        memset(long_id, 'x', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = '\0';
        char too_long[400];
        snprintf(too_long, sizeof too_long,
                 "{\"user_id\":\"%s\",\"ts\":1,\"type\":\"VIEW\"}", long_id);
        char long_query[400];
        snprintf(long_query, sizeof long_query,
                 "{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\","
                 "\"query\":\"%s\"}",
                 long_id);
        const struct {
                const char *json;
                const char *want1, *want2;
        } cases[] = {
            {"{\"ts\":1,\"type\":\"VIEW\"}", "'user_id'", "missing"},
            {"{\"user_id\":\"\",\"ts\":1,\"type\":\"VIEW\"}", "'user_id'",
             "empty"},
            {"{\"user_id\":7,\"ts\":1,\"type\":\"VIEW\"}", "'user_id'",
             "expected a string, got an integer"},
            {too_long, "'user_id'", "limit of 63"},
            {long_query, "'query'", "limit of 127"},
            {"{\"user_id\":\"u\",\"type\":\"VIEW\"}", "'ts'", "missing"},
            {"{\"user_id\":\"u\",\"ts\":1.5,\"type\":\"VIEW\"}", "'ts'",
             "integer milliseconds"},
            {"{\"user_id\":\"u\",\"ts\":\"1\",\"type\":\"VIEW\"}", "'ts'",
             "got a string"},
            {"{\"user_id\":\"u\",\"ts\":1}", "'type'", "missing"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"view\"}", "'type'",
             "unknown symbol \"view\""},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":3}", "'type'",
             "expected a string"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\",\"price\":\"9\"}",
             "'price'", "expected a number"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\",\"item_id\":[]}",
             "'item_id'", "got an array"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\","
             "\"session_id\":true}",
             "'session_id'", "got a boolean"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\","
             "\"event_id\":{}}",
             "'event_id'", "got an object"},
            {"{\"user_id\":\"u\",\"ts\":1,\"type\":\"VIEW\","
             "\"category\":1.5}",
             "'category'", "got a real number"},
            {"{\"user_id\":\"u\\u0000v\",\"ts\":1,\"type\":\"VIEW\"}",
             "'user_id'", "NUL byte"},
            {"{\"user_id\":\"u\",\"user_id\":\"v\",\"ts\":1,"
             "\"type\":\"VIEW\"}",
             "event JSON", "duplicate"},
            {"{\"user_id\":\"u\xff\",\"ts\":1,\"type\":\"VIEW\"}",
             "invalid UTF-8", "byte 13"},
            {"[1,2]", "event JSON", "expected an object"},
            {"{\"user_id\":", "event JSON", "column"},
            {"", "event JSON", ""},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                itd_event_t ev;
                char err[256] = "";
                itd_err_t rc = itd_event_from_json(
                    cases[i].json, strlen(cases[i].json), &ev, err, sizeof err);
                cr_expect_eq(rc, ITD_ERR_DECODE, "case %zu accepted", i);
                cr_expect(strstr(err, cases[i].want1) &&
                              strstr(err, cases[i].want2),
                          "case %zu: \"%s\" lacks \"%s\" / \"%s\"", i, err,
                          cases[i].want1, cases[i].want2);
        }
}

Test(event, hash_is_stable_and_seeded) {
        uint64_t a = itd_hash_str("u42", 0);
        cr_assert_eq(a, itd_hash_str("u42", 0));
        cr_assert_neq(a, itd_hash_str("u42", 1));
        cr_assert_neq(a, itd_hash_str("u43", 0));
        /* Pinned: the value must not change across builds and hosts, or
         * users would move between shards and checkpoints. */
        char buf[32];
        snprintf(buf, sizeof buf, "%016llx",
                 (unsigned long long)itd_hash_str("", 0));
        cr_assert_str_eq(buf, "2d06800538d394c2");
}

/* The id is written by hand (no snprintf on the hot path): check it against
 * snprintf over the edge values. */
Test(event, prediction_id_is_topic_partition_offset) {
        const struct {
                int32_t partition;
                int64_t offset;
        } rows[] = {{0, 0},          {3, 81234},      {31, 9000000000LL},
                    {2147483647, INT64_MAX}, {-1, -1}, {7, INT64_MIN}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                itd_prediction_t p;
                char want[128];
                snprintf(want, sizeof want, "intentd.events/%d/%lld",
                         (int)rows[i].partition, (long long)rows[i].offset);
                itd_prediction_make_id(&p, "intentd.events", rows[i].partition,
                                       rows[i].offset);
                cr_expect_str_eq(p.prediction_id, want);
        }
}
